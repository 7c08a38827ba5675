"""What the carried text columns cost to hold, dictionary-encoded or not, and to read again.

    python bench/carried_columns.py FILE.parquet [FILE.csv ...] [--repeat 5]

For each catalog file: the bytes per row that its text columns take in memory as the job reads
them (``string[pyarrow]``) and dictionary-encoded (Arrow dictionaries: int32 codes and each
distinct value once), the seconds per million rows to dictionary-encode them, and the seconds
per million rows to read them again from the file and take the accepted rows (every row but
one in a hundred), as a write that re-read the input would. Medians of ``--repeat``. Writes
bench/results/<date>-carried-columns.json. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
from run_bench import code_version, machine  # bench/ is on sys.path

RESULTS = Path(__file__).parent / "results"


def _read(path: Path, columns: list[str] | None = None) -> pa.Table:
    if path.suffix == ".csv":
        table = pcsv.read_csv(path)
        return table.select(columns) if columns else table
    return pq.read_table(path, columns=columns)


def _text(table: pa.Table) -> list[str]:
    return [f.name for f in table.schema
            if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]


def _median(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(path: Path, repeat: int) -> dict:
    table = _read(path)
    text = _text(table)
    rows = table.num_rows
    as_read = table.select(text).cast(pa.schema([(c, pa.large_string()) for c in text]))
    as_read = as_read.combine_chunks()  # one dictionary per column, not one per chunk
    encoded = pa.table({c: pc.dictionary_encode(as_read.column(c)) for c in text})
    keep = pa.array(np.flatnonzero(np.arange(rows) % 100 != 0))
    per_million = 1e6 / rows
    return {
        "file": str(path), "rows": rows, "text_columns": text,
        "distinct_per_row": {c: round(len(pc.unique(as_read.column(c))) / rows, 4)
                             for c in text},
        "bytes_per_row_as_read": round(as_read.nbytes / rows, 1),
        "bytes_per_row_dictionary": round(encoded.nbytes / rows, 1),
        "bytes_per_row_each": {c: [round(as_read.column(c).nbytes / rows, 1),
                                   round(encoded.column(c).nbytes / rows, 1)] for c in text},
        "bytes_per_row_best_of_each": round(sum(
            min(as_read.column(c).nbytes, encoded.column(c).nbytes) for c in text) / rows, 1),
        "encode_s_per_million": round(_median(
            lambda: [pc.dictionary_encode(as_read.column(c)) for c in text], repeat)
            * per_million, 3),
        "reread_take_s_per_million": round(_median(
            lambda: _read(path, text).take(keep), repeat) * per_million, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    record = {"date": dt.datetime.now().isoformat(timespec="seconds"), "machine": machine(),
              "code": code_version(), "files": [measure(p, args.repeat) for p in args.files]}
    print(json.dumps(record["files"], indent=1))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{dt.date.today()}-carried-columns.json"
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"-> {out}")


if __name__ == "__main__":
    main()
