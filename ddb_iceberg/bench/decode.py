"""Scenario 0 of `make bench`: reading, verifying and decoding, in this process, CPU per record.

What the executors do to each record, timed by CPU (`time.process_time`) on one core: the first pass reads every
data file of a full export (gunzip, md5, parse, every rule of the format, keys, the type profile) into records;
the second builds the table's rows from them against the layout the profile plans. Spark is not involved. The
floor beside them is what pyarrow alone takes to gunzip and parse the same files once, on one thread.
"""

from __future__ import annotations

import pickle
import statistics
import time
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from ddb_iceberg.engine.changes import plan_tasks
from ddb_iceberg.engine.plan import plan_sync
from ddb_iceberg.engine.records import (
    DELETE,
    SUMMARY,
    UPSERT,
    TaskSummary,
    build_rows_here,
    read_tasks_here,
)
from ddb_iceberg.engine.schema import plan_layout
from ddb_iceberg.exports import ExportSource
from ddb_iceberg.exports.discovery import discover_exports


def decode_cpu(source: Path, keys: tuple[str, ...], runs: int) -> dict[str, str]:
    """CPU µs per record of each pass over a source's full export, median (min-max) of `runs`."""
    listing = discover_exports(ExportSource.from_uri(str(source)))
    plan = plan_sync(listing, None)
    tasks, _, _ = plan_tasks(plan, keys)
    reading, building = [], []
    records_read = 0
    for _ in range(runs):
        started = time.process_time()
        records = read_tasks_here(tasks, max_bytes=2**40)
        read_cpu = time.process_time() - started
        assert records is not None
        summary = TaskSummary()
        kinds = records.column("kind")
        for meta in records.filter(pc.equal(kinds, SUMMARY)).column("meta").to_pylist():
            summary.merge(pickle.loads(meta))
        records_read = summary.records_read
        layout = plan_layout(None, keys, summary.profile or {})
        changes = records.filter(pc.is_in(kinds, value_set=_APPLIED)).select(["key", "written", "kind", "image"])
        started = time.process_time()
        rows = build_rows_here(changes, layout)
        build_cpu = time.process_time() - started
        assert rows.num_rows == records_read
        reading.append(read_cpu / records_read * 1e6)
        building.append(build_cpu / records_read * 1e6)
    total = [r + b for r, b in zip(reading, building, strict=True)]
    floor = [_gunzip_and_parse(source) / records_read * 1e6 for _ in range(runs)]
    return {
        "records": f"{records_read:,}",
        "floor: gunzip and parse once with pyarrow alone, one thread": _spread(floor),
        "read and verify (gunzip, md5, parse, rules, keys, profile)": _spread(reading),
        "build rows against the layout": _spread(building),
        "in all": _spread(total),
    }


_APPLIED = pa.array([UPSERT, DELETE])


def _gunzip_and_parse(source: Path) -> float:
    """CPU seconds pyarrow alone takes to gunzip and parse every data file under `source` once, one thread."""
    started = time.process_time()
    for path in sorted(source.rglob("*.json.gz")):
        text = zlib.decompress(path.read_bytes(), wbits=31)
        if text:
            options = pajson.ReadOptions(use_threads=False, block_size=len(text) + 1)
            pajson.read_json(pa.BufferReader(text), read_options=options)
    return time.process_time() - started


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} µs/record ({min(values):.1f}-{max(values):.1f})"
