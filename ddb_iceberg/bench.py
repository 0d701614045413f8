"""Benchmarks of the merge engine on the local default (`make bench`); figures go in BENCHMARKS.md.

Scenarios, on a simulated table of `items` items with `windows` hourly windows of `churn` writes each:
1. the whole series (full export + every window) applied by one sync, into a new table;
2. the full export alone (items/s);
3. catching up every window in one sync (changes/s);
4. the same windows as one-window syncs, one after another (their total time over scenario 3's);
5. one window merged into the full table and into a table a tenth its size;
6. one window merged copy-on-write instead of merge-on-read (the table default).
Spark starts once and is reported separately; every scenario gets a warehouse of its own.
"""

from __future__ import annotations

import os
import platform
import resource
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ddb_iceberg.engine.spark_session import CatalogSettings, build_spark_session, configure_catalog
from ddb_iceberg.engine.sync import SyncResult, sync_table
from ddb_iceberg.exports import ExportSource
from ddb_iceberg.exports.manifest import ManifestSummary
from ddb_iceberg.simulator import ExportTarget, SimulatedTable, SimulationConfig, write_series

Log = Callable[[str], None]


@dataclass
class BenchReport:
    items: int
    windows: int
    churn: float
    figures: dict[str, Any] = field(default_factory=dict)

    def markdown(self) -> str:
        lines = [
            "| figure | value |",
            "| --- | --- |",
            *(f"| {name} | {value} |" for name, value in self.figures.items()),
        ]
        return "\n".join(lines)


@contextmanager
def _timed(sink: dict[str, float], name: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    sink[name] = time.perf_counter() - started


def _series(root: Path, items: int, windows: int, churn: float, seed: int) -> list[ManifestSummary]:
    # writes_per_hour is the mean number of writes; ~churn of the table changes each hourly window.
    config = SimulationConfig(seed=seed, initial_items=items, writes_per_hour=max(1, round(items * churn)))
    source = ExportSource.from_uri(str(root))
    return write_series(SimulatedTable(config), ExportTarget.for_source(source, partitions=8), windows=windows)


def _subset(full_root: Path, root: Path, export_ids: list[str]) -> Path:
    """A source holding only some exports of `full_root` (hard links, no copies)."""
    (root / "AWSDynamoDB").mkdir(parents=True)
    for export_id in [*export_ids, "data"]:
        _add(full_root, root, export_id)
    return root


def _add(full_root: Path, root: Path, export_id: str) -> None:
    source = full_root / "AWSDynamoDB" / export_id
    if source.exists():
        shutil.copytree(source, root / "AWSDynamoDB" / export_id, copy_function=os.link)


def _jvm_peak_rss_mb(spark: Any) -> float | None:
    try:
        pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, AttributeError, ValueError):
        return None
    return None


def run_benchmarks(
    workdir: Path, *, items: int = 200_000, windows: int = 12, churn: float = 0.02, seed: int = 1, log: Log = print
) -> BenchReport:
    report = BenchReport(items=items, windows=windows, churn=churn)
    figures = report.figures
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    timings: dict[str, float] = {}

    log(f"Simulating {items} items and {windows} windows of {churn:.0%} churn ...")
    with _timed(timings, "simulate"):
        big = _series(workdir / "big", items, windows, churn, seed)
        small = _series(workdir / "small", items // 10, 1, churn * 10, seed)
    full_id, window_ids = big[0].export_id, [s.export_id for s in big[1:]]
    changes_total = sum(s.item_count for s in big[1:])

    log("Starting Spark ...")
    with _timed(timings, "spark start"):
        spark = build_spark_session(CatalogSettings.local(workdir / "default"))
    keys = ("customer_id", "order_id")

    def fresh_sync(
        name: str, export_ids: list[str], root: Path, catalog: str, properties: dict[str, str] | None = None
    ) -> SyncResult:
        source = _subset(root, workdir / "sources" / name, export_ids)
        configure_catalog(spark, CatalogSettings(warehouse=str(workdir / "warehouses" / name), name=catalog))
        return sync_table(
            spark, catalog, "bench.orders", ExportSource.from_uri(str(source)), key_attributes=keys,
            table_properties=properties,
        )  # fmt: skip

    log("1. the whole series in one sync ...")
    with _timed(timings, "series"):
        fresh_sync("series", [full_id, *window_ids], workdir / "big", "bench_series")

    log("2. the full export alone ...")
    with _timed(timings, "full load"):
        full_load = fresh_sync("catchup", [full_id], workdir / "big", "bench_catchup")
    log("3. catching up every window in one sync ...")
    for export_id in window_ids:
        _add(workdir / "big", workdir / "sources" / "catchup", export_id)
    with _timed(timings, "catch-up"):
        catch_up = sync_table(
            spark, "bench_catchup", "bench.orders", ExportSource.from_uri(str(workdir / "sources" / "catchup"))
        )

    log("4. the same windows, one sync each ...")
    fresh_sync("one-by-one", [full_id], workdir / "big", "bench_one_by_one")
    one_by_one: list[float] = []
    for export_id in window_ids:
        _add(workdir / "big", workdir / "sources" / "one-by-one", export_id)
        started = time.perf_counter()
        sync_table(
            spark, "bench_one_by_one", "bench.orders", ExportSource.from_uri(str(workdir / "sources" / "one-by-one"))
        )
        one_by_one.append(time.perf_counter() - started)

    log("5. one window into the full table and into a table a tenth its size ...")
    fresh_sync("small", [small[0].export_id], workdir / "small", "bench_small")
    _add(workdir / "small", workdir / "sources" / "small", small[1].export_id)
    with _timed(timings, "small window"):
        small_window = sync_table(
            spark, "bench_small", "bench.orders", ExportSource.from_uri(str(workdir / "sources" / "small"))
        )

    log("6. one window into the full table, copy-on-write instead of merge-on-read ...")
    copy_on_write = {f"write.{op}.mode": "copy-on-write" for op in ("delete", "update", "merge")}
    fresh_sync("cow", [full_id], workdir / "big", "bench_cow", copy_on_write)
    _add(workdir / "big", workdir / "sources" / "cow", window_ids[0])
    with _timed(timings, "cow window"):
        sync_table(spark, "bench_cow", "bench.orders", ExportSource.from_uri(str(workdir / "sources" / "cow")))
    mor_first_window = one_by_one[0]

    figures["machine"] = f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"
    figures["table"] = f"{items} items; {windows} hourly windows, {changes_total} change records in all"
    figures["Spark session start (once)"] = f"{timings['spark start']:.1f} s"
    figures["whole series, one sync (full load + all windows)"] = f"{timings['series']:.1f} s"
    figures["full load"] = f"{timings['full load']:.1f} s = {items / timings['full load']:,.0f} items/s"
    figures["full load, by phase"] = ", ".join(f"{name} {sec:.1f} s" for name, sec in full_load.phase_seconds.items())
    figures[f"catch up {windows} windows in one sync"] = (
        f"{timings['catch-up']:.1f} s = {catch_up.records_read / timings['catch-up']:,.0f} changes/s "
        f"(+{catch_up.rows_inserted} ~{catch_up.rows_updated} -{catch_up.rows_deleted} rows)"
    )
    figures[f"{windows} one-window syncs"] = (
        f"{sum(one_by_one):.1f} s (median {sorted(one_by_one)[len(one_by_one) // 2]:.1f} s each) = "
        f"{sum(one_by_one) / timings['catch-up']:.1f}x the one catch-up sync"
    )
    figures[f"one window into {items} rows vs {items // 10} rows"] = (
        f"{sorted(one_by_one)[len(one_by_one) // 2]:.1f} s vs {timings['small window']:.1f} s "
        f"({small_window.records_read} changes)"
    )
    figures["one window, merge-on-read vs copy-on-write (the table's default is merge-on-read)"] = (
        f"{mor_first_window:.1f} s vs {timings['cow window']:.1f} s"
    )
    jvm = _jvm_peak_rss_mb(spark)
    python_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures["peak memory"] = (
        f"driver JVM {jvm:.0f} MB, Python {python_mb:.0f} MB" if jvm else f"Python {python_mb:.0f} MB"
    )
    spark.stop()
    return report
