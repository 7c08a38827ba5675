"""Atomic outputs: a target is replaced only by a complete new one, and failures leave nothing."""

from __future__ import annotations

import os

import fsspec
import pytest

from sonicatlas import storage


def _hidden(directory) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def test_a_written_directory_appears_whole_at_the_target(tmp_path):
    fs, path = storage.resolve(tmp_path / "out")
    with storage.replacing(fs, path) as partial:
        assert os.path.basename(partial).startswith(".out.partial-")
        os.makedirs(partial)
        (tmp_path / os.path.basename(partial) / "part.0").write_text("new")
        assert not (tmp_path / "out").exists()  # nothing at the target while writing
    assert (tmp_path / "out" / "part.0").read_text() == "new"
    assert _hidden(tmp_path) == []


def test_a_directory_with_contents_is_replaced(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.txt").write_text("old")
    fs, path = storage.resolve(str(tmp_path / "out"))
    with storage.replacing(fs, path) as partial:
        with open(partial, "w") as handle:
            handle.write("new")
    assert (tmp_path / "out").read_text() == "new"
    assert _hidden(tmp_path) == []


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_a_failed_write_leaves_the_old_target_and_no_sibling(tmp_path, error):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.txt").write_text("old")
    fs, path = storage.resolve(tmp_path / "out")
    with pytest.raises(error), storage.replacing(fs, path) as partial:
        os.makedirs(partial)
        raise error()
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["old.txt"]
    assert _hidden(tmp_path) == []


def test_a_failed_move_puts_the_old_target_back(tmp_path, monkeypatch):
    (tmp_path / "out").write_text("old")
    fs, path = storage.resolve(tmp_path / "out")
    real = os.replace

    def fail_onto_target(source, target):
        if ".partial-" in source and target == path:
            raise OSError("disk gone")
        real(source, target)

    monkeypatch.setattr(os, "replace", fail_onto_target)
    with pytest.raises(OSError, match="disk gone"), storage.replacing(fs, path) as partial:
        with open(partial, "w") as handle:
            handle.write("new")
    assert (tmp_path / "out").read_text() == "old"
    assert _hidden(tmp_path) == []


def test_a_link_at_the_target_is_replaced_not_followed(tmp_path):
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "data.txt").write_text("keep me")
    (tmp_path / "out").symlink_to(kept, target_is_directory=True)
    fs, path = storage.resolve(tmp_path / "out")
    assert storage.exists(fs, path)
    with storage.replacing(fs, path) as partial:
        with open(partial, "w") as handle:
            handle.write("new")
    assert not (tmp_path / "out").is_symlink()
    assert (kept / "data.txt").read_text() == "keep me"


def test_an_object_store_target_is_replaced_by_a_move():
    fs = fsspec.filesystem("memory")
    fs.pipe("/storage-test/out/old.txt", b"old")
    _, path = storage.resolve("memory://storage-test/out")
    try:
        with storage.replacing(fs, path) as partial:
            fs.pipe(f"{partial}/new.txt", b"new")
        assert sorted(fs.find("/storage-test")) == ["/storage-test/out/new.txt"]
    finally:
        fs.rm("/storage-test", recursive=True)


def test_an_empty_directory_is_not_occupied(tmp_path):
    fs, path = storage.resolve(tmp_path / "out")
    assert not storage.exists(fs, path) and not storage.occupied(fs, path)
    (tmp_path / "out").mkdir()
    assert storage.exists(fs, path) and not storage.occupied(fs, path)
    (tmp_path / "out" / "x").write_text("x")
    assert storage.occupied(fs, path)
