"""`make bench` (`ddb-iceberg bench`): what a user waits for, measured as a user runs it. Figures go in BENCHMARKS.md.

Every figure is a whole process (`ddb-iceberg sync --json`, Spark's start included) unless it says otherwise,
repeated `runs` times and reported as median (min-max). Scenarios:

1. Scale: full loads of tables of each size in `scale_items`: seconds per item, and the peak memory of the
   sync's own Python process (the driver), which must not grow with the table.
2. A window's cost: one window of the same 4,000 changes merged into tables of each size in `window_tables`,
   bucketed by key (the default layout) and unpartitioned (the layout of earlier versions).
3. The series: a table of `series_items` items and `windows` hourly windows of `churn` writes each, as a user
   syncs it (a full load, then one catch-up sync), against the reference pipeline (`bench.reference`: the AWS
   Guidance sample's design, one Spark job per export) on the same exports, in the same run.
4. One scheduled window: one window into the series' table, against the reference's per-window job.
5. The floor: the same full export gunzipped, parsed and written as Parquet by pyarrow alone, in this process;
   and what Spark alone takes to write the floor's rows to a new Iceberg table, a whole process started as a sync
   starts Spark (no reading of exports, no checks, no decoding): no Spark engine's full load can beat it.
6. Upkeep: the series' table after `upkeep_windows` one-window syncs: files, and full scans and point lookups
   by DuckDB and Spark, before and after `maintain_table` (`bench.upkeep`).
7. History: one scheduled window's sync after `history_windows` applied windows against the same after 12:
   whole processes, exports opened, requests to S3 (moto on loopback), and the Dagster side's requests
   (`bench.history`).

0. Decoding: reading, verifying and decoding a full export of `series_items` items in this process, CPU per
   record, each of the two passes a sync makes (`bench.decode`).
8. (Optional, `--only huge`) a full load of 10,000,000 items once: seconds, and the driver's peak against the
   100,000-item load of scenario 1.
9. The change feed and the item history: the series (a full load, then one catch-up sync) and one scheduled
   window, each without them, with `--change-feed`, and with `--history` (the feed and the history), runs
   interleaved, on NEW_AND_OLD_IMAGES exports (DynamoDB's default view); and one window of NEW_IMAGE exports
   without and with the feed (whose before-images are then joined from the table).
10. Layouts: one scheduled window into the series' table, and a point lookup by key (`ddb-iceberg query`, DuckDB,
   a whole process), for the default layout (buckets of the key) and chosen partition specs (`--partition`).

For 2 and 4 each table is loaded once and its warehouse copied; every run restores the copy and times the sync.
"""

from __future__ import annotations

import gzip
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ddb_iceberg.bench.decode import decode_cpu
from ddb_iceberg.bench.history import history_figures
from ddb_iceberg.bench.upkeep import upkeep_figures
from ddb_iceberg.engine.request import Log
from ddb_iceberg.exports import ExportSource
from ddb_iceberg.exports.manifest import ExportView, ManifestSummary
from ddb_iceberg.simulator import ExportTarget
from ddb_iceberg.simulator.bulk import BulkTable

HOUR = timedelta(hours=1)
KEYS = "customer_id,order_id"
PARTITIONS = 8
WINDOW_CHANGES = 4_000
SCENARIOS = ("decode", "scale", "window", "series", "upkeep", "history", "feed", "layouts")
# Run only when named (`--only huge`): a 10,000,000-item full load, about 2 GB of gzipped export.
OPTIONAL_SCENARIOS = ("huge",)
HUGE_ITEMS = 10_000_000


@dataclass
class Timing:
    """Seconds of several runs of one measurement."""

    seconds: list[float] = field(default_factory=list)

    def add(self, seconds: float) -> None:
        self.seconds.append(seconds)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def __str__(self) -> str:
        if len(self.seconds) == 1:
            return f"{self.seconds[0]:.1f} s"
        return f"{self.median:.1f} s ({min(self.seconds):.1f}-{max(self.seconds):.1f}, {len(self.seconds)} runs)"


class _Logged(dict[str, str]):
    """Figures that are also logged as they are measured (a long run's partial results are not lost)."""

    def __init__(self, log: Log) -> None:
        super().__init__()
        self._log = log

    def __setitem__(self, name: str, value: str) -> None:
        super().__setitem__(name, value)
        self._log(f"   {name}: {value}")


@dataclass
class BenchReport:
    figures: dict[str, str] = field(default_factory=dict)
    checks: dict[str, str] = field(default_factory=dict)

    def markdown(self) -> str:
        lines = [
            "| figure | value |",
            "| --- | --- |",
            *(f"| {name} | {value} |" for name, value in self.figures.items()),
        ]
        if self.checks:
            lines += ["", "| target | measured |", "| --- | --- |"]
            lines += [f"| {name} | {value} |" for name, value in self.checks.items()]
        return "\n".join(lines)


@dataclass
class Synced:
    seconds: float
    result: dict[str, Any]

    @property
    def peak_mb(self) -> float:
        return float(self.result["driver_peak_mb"])

    @property
    def phases(self) -> str:
        return ", ".join(f"{name} {seconds:.1f} s" for name, seconds in self.result["phase_seconds"].items())


def _run(command: Sequence[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    started = time.perf_counter()
    environment = os.environ | env if env else None
    completed = subprocess.run(command, capture_output=True, text=True, check=False, env=environment)
    seconds = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])} ... failed:\n{completed.stderr[-3000:]}")
    return seconds, completed.stdout


def sync_process(source: Path | str, warehouse: Path, *options: str, env: dict[str, str] | None = None) -> Synced:
    """`ddb-iceberg sync --json` as a process of its own, timed from start to exit (`env`: more variables)."""
    command = [sys.executable, "-m", "ddb_iceberg.cli", "sync", "--source", str(source), "--table", "bench.orders"]
    command += ["--warehouse", str(warehouse), "--key", KEYS, "--json", *options]
    seconds, stdout = _run(command, env)
    return Synced(seconds, json.loads(stdout))


def spark_start_process(*, class_data_sharing: bool = True) -> float:
    """A process that starts Spark as a sync does, runs one query and exits."""
    code = (
        "from ddb_iceberg.engine.spark_session import CatalogSettings, SparkSettings, build_spark_session;"
        f"import tempfile; settings = SparkSettings(class_data_sharing={class_data_sharing});"
        "build_spark_session(CatalogSettings.local(tempfile.mkdtemp()), settings).sql('select 1').collect()"
    )
    return _run([sys.executable, "-c", code])[0]


def spark_write_process(parquet: Path, warehouse: Path) -> float:
    """A process that starts Spark as a sync does and writes the rows of `parquet` to a new Iceberg table."""
    code = (
        "from ddb_iceberg.engine.spark_session import CatalogSettings, SparkSettings, build_spark_session;"
        f"spark = build_spark_session(CatalogSettings.local({str(warehouse)!r}), SparkSettings());"
        f"spark.read.parquet({str(parquet)!r}).writeTo('ddb_iceberg.bench.floor').create()"
    )
    return _run([sys.executable, "-c", code])[0]


def reference_process(step: str, export_dir: Path, schema: Path, warehouse: Path) -> float:
    command = [sys.executable, "-m", "ddb_iceberg.bench.reference", step, "--export", str(export_dir)]
    return _run([*command, "--schema", str(schema), "--warehouse", str(warehouse)])[0]


def _source(root: Path, exports: Sequence[ManifestSummary], full: Path) -> Path:
    """A source holding only `exports` of the source `full` (hard links, no copies)."""
    (root / "AWSDynamoDB").mkdir(parents=True)
    for summary in exports:
        _link(full, root, summary.export_id)
    if (full / "AWSDynamoDB" / "data").exists() and not (root / "AWSDynamoDB" / "data").exists():
        shutil.copytree(full / "AWSDynamoDB" / "data", root / "AWSDynamoDB" / "data", copy_function=os.link)
    return root


def _link(full: Path, root: Path, export_id: str) -> None:
    shutil.copytree(full / "AWSDynamoDB" / export_id, root / "AWSDynamoDB" / export_id, copy_function=os.link)


def _restore(warehouse: Path, saved: Path) -> None:
    """Put the warehouse back as it was on the first call (a local catalog holds absolute paths: same place)."""
    if not saved.exists():
        shutil.copytree(warehouse, saved)
    else:
        shutil.rmtree(warehouse)
        shutil.copytree(saved, warehouse)


def _target(root: Path) -> ExportTarget:
    return ExportTarget.for_source(ExportSource.from_uri(str(root)), partitions=PARTITIONS)


def floor_seconds(export_dir: Path, out: Path) -> float:
    """pyarrow alone: gunzip, parse and write as Parquet every data file of an export (no checks, no types)."""
    import pyarrow as pa
    import pyarrow.json as pajson
    import pyarrow.parquet as pq

    out.mkdir(parents=True, exist_ok=True)
    files = [p for p in sorted((export_dir / "data").glob("*.json.gz")) if p.stat().st_size > 20]
    started = time.perf_counter()
    for index, path in enumerate(files):
        table = pajson.read_json(pa.BufferReader(gzip.decompress(path.read_bytes())))
        pq.write_table(table, out / f"{index}.parquet", compression="zstd")
    return time.perf_counter() - started


def run_benchmarks(
    workdir: Path,
    *,
    scale_items: Sequence[int] = (100_000, 1_000_000),
    window_tables: Sequence[int] = (200_000, 2_000_000),
    series_items: int = 200_000,
    windows: int = 12,
    churn: float = 0.02,
    runs: int = 3,
    upkeep_windows: int = 100,
    history_windows: int = 2_000,
    scenarios: Collection[str] = SCENARIOS,
    log: Log = print,
) -> BenchReport:
    """Run the scenarios (module docstring) named in `scenarios` (of SCENARIOS); Spark's start is always measured."""
    report = BenchReport(figures=_Logged(log), checks=_Logged(log))
    figures, checks = report.figures, report.checks
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    figures["machine"] = (
        f"{os.cpu_count()} cores, {platform.machine()}, {_memory_gib()} GiB, Python {platform.python_version()}, "
        f"{_java_version()}"
    )
    figures["date"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")

    log("Spark's start (a process that starts a session and runs one query) ...")
    start = Timing()
    for _ in range(runs):
        start.add(spark_start_process())
    figures["Spark's start, whole process"] = str(start)
    without = Timing([spark_start_process(class_data_sharing=False) for _ in range(runs)])
    figures["Spark's start, whole process, without the class data sharing archive"] = str(without)

    # 0. Decoding ------------------------------------------------------------------------------------------
    if "decode" in scenarios:
        log(f"0. Reading, verifying and decoding {series_items:,} items in this process ({runs} runs) ...")
        root = workdir / "decode"
        BulkTable(series_items).full_export(_target(root))
        for name, value in decode_cpu(root, tuple(KEYS.split(",")), runs).items():
            figures[f"decoding (CPU, in-process): {name}"] = value
        shutil.rmtree(root)

    # 1. Scale ---------------------------------------------------------------------------------------------
    loads: dict[int, tuple[Timing, list[float], Synced]] = {}
    for items in scale_items if "scale" in scenarios else ():
        log(f"1. Full load of {items:,} items ({runs} runs) ...")
        root = workdir / f"scale-{items}"
        BulkTable(items).full_export(_target(root / "exports"))
        timing, peaks = Timing(), []
        for run in range(runs):
            synced = sync_process(root / "exports", root / f"warehouse-{run}")
            timing.add(synced.seconds)
            peaks.append(synced.peak_mb)
        loads[items] = (timing, peaks, synced)
        figures[f"full load, {items:,} items"] = (
            f"{timing} = {timing.median / items * 1e6:.1f} µs/item; driver Python peak "
            f"{statistics.median(peaks):.0f} MB; by phase: {synced.phases}"
        )
        shutil.rmtree(root / "exports")
    small, large = min(scale_items), max(scale_items)
    if small != large and loads:
        memory = statistics.median(loads[large][1]) / statistics.median(loads[small][1])
        per_item = (loads[large][0].median / large) / (loads[small][0].median / small)
        checks[f"driver peak at {large:,} ≤ 1.5x at {small:,}"] = f"{memory:.2f}x"
        checks[f"full-load seconds per item at {large:,} ≤ 1.3x at {small:,}"] = f"{per_item:.2f}x"

    # 2. A window's cost --------------------------------------------------------------------------------------
    window_times: dict[tuple[int, str], Timing] = {}
    for items in window_tables if "window" in scenarios else ():
        root = workdir / f"window-{items}"
        log(f"2. One window of {WINDOW_CHANGES:,} changes into {items:,} rows ...")
        table = BulkTable(items)
        full = table.full_export(_target(root / "all"))
        among = min(window_tables)  # the same keys, so the same changes, in every table
        window = table.window(_target(root / "all"), table.start, table.start + HOUR, WINDOW_CHANGES, among=among)
        for layout, options in (("bucketed", ()), ("unpartitioned", ("--buckets", "0"))):
            warehouse, saved = root / f"warehouse-{layout}", root / f"loaded-{layout}"
            source = _source(root / f"source-{layout}", [full], root / "all")
            sync_process(source, warehouse, *options)
            _link(root / "all", source, window.export_id)
            timing = Timing()
            for _ in range(runs):
                _restore(warehouse, saved)
                timing.add(sync_process(source, warehouse).seconds)
            window_times[(items, layout)] = timing
            figures[f"one window ({WINDOW_CHANGES:,} changes) into {items:,} rows, {layout}"] = str(timing)
    small, large = min(window_tables), max(window_tables)
    if small != large and window_times:
        for layout in ("bucketed", "unpartitioned"):
            ratio = window_times[(large, layout)].median / window_times[(small, layout)].median
            checks[f"one window into {large:,} rows ≤ 1.5x into {small:,} rows ({layout})"] = f"{ratio:.2f}x"

    if "huge" in scenarios:
        _huge(workdir, report, loads, log)
    if "series" in scenarios:
        _series_figures(workdir, report, start, series_items, windows, churn, runs, log)
    if upkeep_windows and "upkeep" in scenarios:
        _upkeep(workdir, report, series_items, churn, upkeep_windows, log)
    if "feed" in scenarios:
        _change_feed_figures(workdir, report, series_items, windows, churn, runs, log)
    if "layouts" in scenarios:
        _layout_figures(workdir, report, series_items, windows, churn, runs, log)
    if history_windows and "history" in scenarios:
        history, history_checks = history_figures(
            workdir / "history", sync_process, long_windows=history_windows, runs=runs, log=log
        )
        for name, value in history.items():
            figures[f"history: {name}"] = value
        for name, value in history_checks.items():
            checks[name] = value
    return report


def _series_figures(
    workdir: Path,
    report: BenchReport,
    start: Timing,
    series_items: int,
    windows: int,
    churn: float,
    runs: int,
    log: Log,
) -> None:
    """Scenarios 3-5: the series, one scheduled window, the floor."""
    figures, checks = report.figures, report.checks
    root = workdir / "series"
    log(f"3. The series: {series_items:,} items, {windows} windows of {churn:.0%} churn ...")
    full, series = _series_exports(root / "all", series_items, windows, churn)
    changes = sum(summary.item_count for summary in series)
    figures["series"] = f"{series_items:,} items; {windows} hourly windows, {changes:,} changes in all"
    ours, one_window = Timing(), Timing()
    for run in range(runs):
        source = _source(root / f"source-{run}", [full], root / "all")
        loaded = sync_process(source, root / f"warehouse-{run}")
        for summary in series:
            _link(root / "all", source, summary.export_id)
        caught_up = sync_process(source, root / f"warehouse-{run}")
        ours.add(loaded.seconds + caught_up.seconds)
        figures[f"series run {run + 1}: full load, then catch-up"] = (
            f"{loaded.seconds:.1f} s + {caught_up.seconds:.1f} s (catch-up by phase: {caught_up.phases})"
        )
    # One scheduled window: the last window into the table that reflects all before it (loaded once), synced
    # right after each of the reference's window jobs below, so that both see the machine in the same state.
    source, warehouse = _source(root / "window-source", [full, *series[:-1]], root / "all"), root / "window-warehouse"
    sync_process(source, warehouse)
    _link(root / "all", source, series[-1].export_id)
    figures["series, ddb_iceberg (full load + one catch-up sync)"] = str(ours)

    log("3. ... and the reference pipeline, one job per export ...")
    exports_root = root / "all" / "AWSDynamoDB"
    schema, warehouse = root / "reference-schema.json", root / "reference-warehouse"
    reference = Timing()
    steps = [reference_process("detect", exports_root / full.export_id, schema, warehouse)]
    steps.append(reference_process("create", exports_root / full.export_id, schema, warehouse))
    per_window = Timing()
    for summary in series:
        per_window.add(reference_process("update", exports_root / summary.export_id, schema, warehouse))
        _restore(root / "window-warehouse", root / "window-loaded")
        one_window.add(sync_process(source, root / "window-warehouse").seconds)
    reference.add(sum(steps) + sum(per_window.seconds))
    figures["one scheduled window (one sync, one window, after each reference window job)"] = str(one_window)
    figures["series, reference (schema job + table job + one job per window)"] = (
        f"{reference} ({steps[0]:.1f} s + {steps[1]:.1f} s + {sum(per_window.seconds):.1f} s)"
    )
    figures["reference, one window job"] = f"median {per_window.median:.1f} s"
    checks["series: reference / ddb_iceberg ≥ 10x"] = f"{reference.median / ours.median:.1f}x"
    checks["one window: ddb_iceberg ≤ 0.5x the reference's window job"] = (
        f"{one_window.median / per_window.median:.2f}x"
    )

    log("5. The floor: pyarrow alone ...")
    floor = Timing()
    for run in range(runs):
        floor.add(floor_seconds(exports_root / full.export_id, root / f"floor-{run}"))
    figures[f"floor: pyarrow gunzip + parse + write Parquet, {series_items:,} items (in-process)"] = str(floor)
    spark_alone = Timing()
    for run in range(runs):
        shutil.rmtree(root / f"spark-alone-{run}", ignore_errors=True)
        spark_alone.add(spark_write_process(root / f"floor-{run}", root / f"spark-alone-{run}"))
    figures["Spark alone: the floor's Parquet written to a new Iceberg table (a whole process, no decoding)"] = str(
        spark_alone
    )
    full_load = Timing([float(f.split(" s + ")[0]) for name, f in figures.items() if name.startswith("series run")])
    checks[f"full load of {series_items:,} items ≤ 1.3x Spark alone"] = (
        f"{full_load.median / spark_alone.median:.2f}x ({full_load.median:.1f} s vs {spark_alone.median:.1f} s)"
    )
    checks["full load ≤ 3x the floor + Spark's start"] = (
        f"{full_load.median:.1f} s vs {3 * floor.median + start.median:.1f} s "
        f"({(full_load.median - start.median) / floor.median:.1f}x the floor after Spark's start; "
        f"Spark alone writing the same rows: {spark_alone.median:.1f} s)"
    )


def _series_exports(
    root: Path, items: int, windows: int, churn: float, view: ExportView = ExportView.NEW_IMAGE
) -> tuple[ManifestSummary, list[ManifestSummary]]:
    """The series' exports under `root`: a full export of `items` items, then `windows` hourly windows of `churn`."""
    table = BulkTable(items)
    full = table.full_export(_target(root))
    changes = int(items * churn)
    hours = [(table.start + h * HOUR, table.start + (h + 1) * HOUR) for h in range(windows)]
    series = [table.window(_target(root), start, end, changes, view=view) for start, end in hours]
    return full, series


def _change_feed_figures(
    workdir: Path, report: BenchReport, series_items: int, windows: int, churn: float, runs: int, log: Log
) -> None:
    """Scenario 9: what the change feed and the item history add to one scheduled window and to the series (whole
    processes, runs without them, with the feed, and with the feed and the history interleaved), on exports of
    DynamoDB's default view (NEW_AND_OLD_IMAGES: before-images from OldImage); and one window of NEW_IMAGE
    exports without and with the feed (before-images joined from the table)."""
    figures, checks = report.figures, report.checks
    root = workdir / "feed"
    log(f"9. The change feed and the item history: one window and the series of {series_items:,} items ...")
    full, series = _series_exports(root / "all", series_items, windows, churn, ExportView.NEW_AND_OLD_IMAGES)
    new_image_full, new_image_series = _series_exports(root / "new-image", series_items, windows, churn)
    variants = {"without": (), "feed": ("--change-feed",), "history": ("--history",)}
    whole: dict[str, Timing] = {name: Timing() for name in variants}
    for run in range(runs):
        for name, options in variants.items():
            source = _source(root / f"source-{name}-{run}", [full], root / "all")
            loaded = sync_process(source, root / f"warehouse-{name}-{run}", *options)
            for summary in series:
                _link(root / "all", source, summary.export_id)
            caught_up = sync_process(source, root / f"warehouse-{name}-{run}", *options)
            whole[name].add(loaded.seconds + caught_up.seconds)
    # One window: (variant, exports) -> options.
    one_window = {
        **{(name, "all"): options for name, options in variants.items()},
        ("without", "new-image"): (),
        ("feed", "new-image"): ("--change-feed",),
    }
    exports = {"all": (full, series), "new-image": (new_image_full, new_image_series)}
    one: dict[tuple[str, str], Timing] = {case: Timing() for case in one_window}
    sources = {}
    for (name, kind), options in one_window.items():
        loaded_full, loaded_series = exports[kind]
        sources[name, kind] = _source(
            root / f"window-source-{name}-{kind}", [loaded_full, *loaded_series[:-1]], root / kind
        )
        sync_process(sources[name, kind], root / f"window-warehouse-{name}-{kind}", *options)
        _link(root / kind, sources[name, kind], loaded_series[-1].export_id)
    for _ in range(runs):
        for (name, kind), options in one_window.items():
            warehouse = root / f"window-warehouse-{name}-{kind}"
            _restore(warehouse, root / f"window-loaded-{name}-{kind}")
            one[name, kind].add(sync_process(sources[name, kind], warehouse, *options).seconds)
    described = {"without": "without them", "feed": "with the feed", "history": "with the feed and the history"}
    for name, words in described.items():
        figures[f"change feed: the series (full load + one catch-up sync), {words}"] = str(whole[name])
        figures[f"change feed: one scheduled window, {words}"] = str(one[name, "all"])
    for name in ("without", "feed"):
        figures[f"change feed: one scheduled window of NEW_IMAGE exports, {described[name]}"] = str(
            one[name, "new-image"]
        )
    for name in ("feed", "history"):
        words = described[name]
        ratio = one[name, "all"].median / one["without", "all"].median
        checks[f"one window {words} ≤ 1.3x without"] = f"{ratio:.2f}x"
        checks[f"the series {words} ≤ 1.3x without"] = f"{whole[name].median / whole['without'].median:.2f}x"
    ratio = one["feed", "new-image"].median / one["without", "new-image"].median
    checks["one window of NEW_IMAGE exports with the feed ≤ 1.3x without"] = f"{ratio:.2f}x"
    shutil.rmtree(root)


LAYOUTS = {
    "buckets of the key (default)": (),
    "day(created_at, epoch_millis)": ("--partition", "day(created_at, epoch_millis)"),
    "status, bucket(8, customer_id)": ("--partition", "status", "--partition", "bucket(8, customer_id)"),
}


def _layout_figures(
    workdir: Path, report: BenchReport, series_items: int, windows: int, churn: float, runs: int, log: Log
) -> None:
    """Scenario 10: the partitioned layouts: one scheduled window into the series' table, and a point lookup by key
    through `ddb-iceberg query` (DuckDB), whole processes, layouts interleaved."""
    root = workdir / "layouts"
    log(f"10. Layouts: one window into {series_items:,} items, and a point lookup, per layout ...")
    full, series = _series_exports(root / "all", series_items, windows, churn)
    sources: dict[str, Path] = {}
    for n, (name, options) in enumerate(LAYOUTS.items()):
        sources[name] = _source(root / f"source-{n}", [full, *series[:-1]], root / "all")
        sync_process(sources[name], root / f"warehouse-{n}", *options)
        _link(root / "all", sources[name], series[-1].export_id)
    one = {name: Timing() for name in LAYOUTS}
    lookup = {name: Timing() for name in LAYOUTS}
    point = "SELECT * FROM bench.orders WHERE customer_id = 'CUST#00007' AND order_id = 4007"
    for _ in range(runs):
        for n, name in enumerate(LAYOUTS):
            _restore(root / f"warehouse-{n}", root / f"loaded-{n}")
            one[name].add(sync_process(sources[name], root / f"warehouse-{n}").seconds)
            command = [sys.executable, "-m", "ddb_iceberg.cli", "query", "--warehouse", str(root / f"warehouse-{n}")]
            lookup[name].add(_run([*command, "--json", point])[0])
    for name in LAYOUTS:
        report.figures[f"layout {name}: one scheduled window"] = str(one[name])
        report.figures[f"layout {name}: a point lookup by key (DuckDB, whole process)"] = str(lookup[name])
    shutil.rmtree(root)


def _huge(workdir: Path, report: BenchReport, loads: dict[int, tuple[Timing, list[float], Synced]], log: Log) -> None:
    """Scenario 8: a 10,000,000-item full load, once."""
    log(f"8. Full load of {HUGE_ITEMS:,} items (once) ...")
    root = workdir / "huge"
    started = time.perf_counter()
    BulkTable(HUGE_ITEMS).full_export(_target(root / "exports"), workers=os.cpu_count() or 1)
    written = time.perf_counter() - started
    size = sum(path.stat().st_size for path in (root / "exports").rglob("*.json.gz"))
    synced = sync_process(root / "exports", root / "warehouse")
    report.figures[f"full load, {HUGE_ITEMS:,} items (once)"] = (
        f"{synced.seconds:.0f} s = {synced.seconds / HUGE_ITEMS * 1e6:.1f} µs/item; export {size / 1e9:.2f} GB "
        f"gzipped (written in {written:.0f} s); driver Python peak {synced.peak_mb:.0f} MB; by phase: {synced.phases}"
    )
    if loads:
        small = min(loads)
        ratio = synced.peak_mb / statistics.median(loads[small][1])
        report.checks[f"driver peak at {HUGE_ITEMS:,} vs at {small:,}"] = f"{ratio:.2f}x"
    shutil.rmtree(root)


def _upkeep(workdir: Path, report: BenchReport, series_items: int, churn: float, upkeep_windows: int, log: Log) -> None:
    """Scenario 6: upkeep after many one-window syncs."""
    if upkeep_windows:
        log(f"6. Upkeep after {upkeep_windows} one-window syncs ...")
        root = workdir / "upkeep"
        table = BulkTable(series_items)
        full = table.full_export(_target(root / "all"))
        ids = [
            table.window(
                _target(root / "all"), table.start + h * HOUR, table.start + (h + 1) * HOUR, int(series_items * churn)
            ).export_id
            for h in range(upkeep_windows)
        ]
        key = (f"CUST#{12_345 % 400:05d}", 12_345)
        for name, value in upkeep_figures(root / "all", full.export_id, ids, root, key, log).items():
            report.figures[f"upkeep: {name}"] = value


def _memory_gib() -> int:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30)
    except (ValueError, OSError):
        return 0


def _java_version() -> str:
    try:
        output = subprocess.run(["java", "-version"], capture_output=True, text=True, check=False).stderr
        return output.splitlines()[0].replace('"', "")
    except (OSError, IndexError):
        return "Java unknown"
