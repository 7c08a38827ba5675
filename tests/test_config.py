"""Configuration: defaults, YAML, --set overrides, and errors that name the key."""

from pathlib import Path

import pytest

from sonicatlas.config import ClusterTracksConfig, load_config
from sonicatlas.errors import ConfigError

CONF = Path(__file__).resolve().parents[1] / "conf"


def test_overrides_are_parsed_as_yaml_and_nested():
    config = load_config(ClusterTracksConfig, None,
                         ["k=8", "kmeans.max_iter=20", "columns={bpm: tempo}", "input=s3://b/c"])
    assert config.k == 8 and config.kmeans.max_iter == 20
    assert config.columns == {"bpm": "tempo"} and config.input == "s3://b/c"


def test_shipped_job_config_is_valid_and_states_the_defaults():
    assert load_config(ClusterTracksConfig, CONF / "cluster_tracks.yaml") == ClusterTracksConfig()


@pytest.mark.parametrize("override, key", [
    ("kk=3", "kk"),
    ("k=0", "k"),
    ("kmeans.tol=-1", "kmeans.tol"),
    ("features=[energy]", "features"),
    ("columns={bpm: beats}", "columns"),
])
def test_invalid_values_name_the_key(override, key):
    with pytest.raises(ConfigError, match=key):
        load_config(ClusterTracksConfig, None, [override])


def test_malformed_override_and_missing_file_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="key=value"):
        load_config(ClusterTracksConfig, None, ["k"])
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(ClusterTracksConfig, tmp_path / "nope.yaml")


def test_several_files_merge_sections_and_overrides_win():
    config = load_config(ClusterTracksConfig,
                         [CONF / "cluster_tracks.yaml", CONF / "cluster" / "remote.yaml"],
                         ["cluster.connect_timeout=2"])
    assert config.cluster.scheduler.startswith("tcp://")
    assert config.cluster.connect_timeout == 2 and config.k == ClusterTracksConfig().k
