"""The changes a plan makes, computed by Spark: executors read, verify and decode every data file, Spark collapses
the records to the latest change per key, and the driver only plans the tasks and merges what they sum up.
Nothing on the driver grows with the number of items. (A small plan, bounded by SMALL_PLAN_ITEMS and
SMALL_PLAN_BYTES, is read by the same functions in the driver's Python: the rest is the same Spark operations.)

The rules:
- A change written before the point the table reflects is already in it (stale), so re-applied exports change
  nothing. Of the rest, each key's change with the latest write time wins; ties go to the later export, then
  the later file and line (a total order: the result never depends on how tasks were scheduled or retried).
- Overlapping windows: DynamoDB leaves out an item created and deleted inside a window, so a row last written
  inside the part of a window the table already reflects, which that window does not mention, was deleted in
  the window, and is deleted here.
- A full export holds each key once, and a key attribute holds one DynamoDB type in every record.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pyarrow as pa

from ddb_iceberg.engine.plan import SyncPlan
from ddb_iceberg.engine.records import (
    DELETE,
    ERROR,
    MENTIONED,
    RECORD_SCHEMA,
    SUMMARY,
    UPSERT,
    FileToRead,
    ReadTask,
    TaskSummary,
    build_rows_here,
    key_values,
    read_task_slots,
    read_tasks_here,
    row_builder,
    spark_schema,
)
from ddb_iceberg.engine.schema import Layout
from ddb_iceberg.engine.type_profile import ItemProfile
from ddb_iceberg.exports import ChangeRecord, ExportListing
from ddb_iceberg.exports.manifest import format_timestamp, to_micros

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

# Table rows (key text, write time) last written in [start, end) microseconds: candidates of the overlap rule.
TableRows = Callable[[int, int], "DataFrame"]
_SYNTHETIC_FILE = 2**31 - 1  # orders a delete the overlap rule makes after every record of its window
# A plan this small is read, and its rows built, in the driver's own Python, by the same functions the executors
# run: starting the executors' Python workers costs more than such a plan's reading (about 1.5 to 2 s of a
# one-window sync: BENCHMARKS.md). Its items are counted before (the manifests), its records' bytes while they
# are read: a plan found larger goes to the executors after all. Both bounds keep the driver's memory flat
# whatever the table's size (an item is at most 400 KB), and within the Python memory a driver has by default
# (Spark's overhead, at least 384 MB). (Exports' billedSizeBytes cannot tell: DynamoDB bills an incremental
# export at least 10 MB.) `spark.ddbIceberg.smallPlanItems` sets the first (0: always on the executors).
SMALL_PLAN_ITEMS_CONF = "spark.ddbIceberg.smallPlanItems"
SMALL_PLAN_ITEMS = 20_000
SMALL_PLAN_BYTES = 16 * 2**20
# Items a read task takes on: at least MIN_TASK_ITEMS (small files share a task: each costs a Python worker
# round trip), at most TASK_ITEMS (so that a large export spreads over many executors). A plan too large for the
# driver is large enough to keep every core busy: a 48,000-change catch-up read by two tasks instead of one on 2
# cores took 14.7 s against 16.2 s (medians of 5 interleaved whole processes: BENCHMARKS.md).
MIN_TASK_ITEMS = SMALL_PLAN_ITEMS
TASK_ITEMS = 500_000


def reads_on_driver(spark: SparkSession, plan: SyncPlan) -> bool:
    """Whether the plan has few enough items to be read on the driver (see SMALL_PLAN_ITEMS)."""
    limit = int(spark.conf.get(SMALL_PLAN_ITEMS_CONF, str(SMALL_PLAN_ITEMS)) or 0)
    items = sum(entry.item_count for export in plan.exports for entry in export.data_files)
    return limit > 0 and items <= limit


def key_attributes_from(listing: ExportListing) -> tuple[str, ...] | None:
    """The key attributes incremental exports name in `Keys` (full exports do not say); reads one record."""
    for export in listing.incremental_exports:
        for entry in export.data_files:
            if not entry.item_count:
                continue
            for record in export.file_records(entry):
                assert isinstance(record, ChangeRecord)
                return tuple(record.keys)
    return None


@dataclass
class Changes:
    """A plan's changes: one row per key (key, written, kind, image), computed by Spark when the merge reads them,
    and what reading summed up."""

    frame: DataFrame
    profile: ItemProfile
    records_read: int = 0
    records_stale: int = 0
    overlap_deletes: int = 0
    warnings: list[str] = field(default_factory=list)
    on_driver: bool = False  # a small plan: its records were read, and its rows are built, on the driver
    # With `by_export`: one row per key per export that changes it (key, export_ord, written, kind, image), the
    # latest change of the key in that export (the change feed's rows).
    by_export: DataFrame | None = None
    exports: int = 1  # in the plan
    # The rows carry each change's OldImage (records.OLD_IMAGE_COLUMN): the change feed's before-images.
    old_images: bool = False
    _cached: list[DataFrame] = field(default_factory=list, repr=False)
    _rows: tuple[Layout, DataFrame] | None = field(default=None, repr=False)

    @property
    def records_to_apply(self) -> int:
        """The upserts and deletes to apply (before the collapse to one per key): none means nothing changes.
        (Counting the collapsed changes would cost a Spark job of its own; the merge's commit counts rows.)"""
        return self.records_read - self.records_stale + self.overlap_deletes

    def rows(self, layout: Layout) -> DataFrame:
        """The table's rows for these changes (built by the executors, or for a small plan by the driver), with
        the operation column; built once."""
        if self._rows is None or self._rows[0] != layout:
            # One export: these rows are also the feed's (`rows_by_export`), OldImages included.
            old_images = self.old_images and self.exports == 1
            rows = _rows_of(self.frame, layout, self.on_driver, old_images=old_images)
            if self.by_export is not None and self.exports == 1 and not self.on_driver:
                rows = _kept(rows)  # read by the change feed's write (`rows_by_export`), then by the merge
                self._cached.append(rows)
            self._rows = (layout, rows)
        return self._rows[1]

    def rows_by_export(self, layout: Layout) -> DataFrame:
        """The table's rows for each export's latest change of each key, with the operation column and
        `export_ord` (needs `by_export`). A plan of one export has one change per key: its rows."""
        from pyspark.sql import functions as sql

        assert self.by_export is not None, "collected without by_export"
        if self.exports == 1:
            return self.rows(layout).withColumn("export_ord", sql.lit(0))
        return _rows_of(self.by_export, layout, self.on_driver, _EXPORT_ORD, old_images=self.old_images)

    def kept(self, frame: DataFrame, *, local: bool = False) -> DataFrame:
        """`frame` (built from these changes) computed once for the jobs that read it again, until `release`;
        `local`: it reads nothing but a small plan's rows, which are on the driver already (computed again)."""
        if local:
            return frame
        frame = _kept(frame)
        self._cached.append(frame)
        return frame

    def release(self) -> None:
        for frame in self._cached:
            frame.unpersist()


# The column that says which export of the plan a change came from (`SyncPlan.exports`' order).
_EXPORT_ORD = (pa.field("export_ord", pa.int32(), nullable=False), "export_ord INT NOT NULL")


def _rows_of(
    changes: DataFrame,
    layout: Layout,
    on_driver: bool,
    carried: tuple[pa.Field, str] | None = None,
    *,
    old_images: bool = False,
) -> DataFrame:
    fields, ddl = ([carried[0]], [carried[1]]) if carried else ([], [])
    schema = spark_schema(layout, ddl, old_images=old_images)
    if on_driver:
        rows = build_rows_here(changes.toArrow(), layout, fields, old_images=old_images)
        return changes.sparkSession.createDataFrame(rows, schema)
    return changes.mapInArrow(row_builder(layout, fields, old_images=old_images), schema)


def collect_changes(
    spark: SparkSession,
    plan: SyncPlan,
    key_attributes: Sequence[str],
    layout: Layout | None = None,
    table_rows: TableRows | None = None,
    on_driver: bool = False,
    *,
    by_export: bool = False,
    old_images: bool = False,
) -> Changes:
    """Read and verify every export of the plan on Spark's executors (`on_driver`: a small plan, on the driver,
    unless its records outgrow SMALL_PLAN_BYTES), and collapse its records to the latest change per key (and,
    with `by_export`, per key and export; `old_images`: its rows carry each change's OldImage). Raises the first
    `ExportError` a task met; nothing is written either way."""
    from pyspark.sql import functions as sql

    tasks, overlapping, warnings = plan_tasks(
        plan, tuple(key_attributes), layout, spark.sparkContext.defaultParallelism
    )
    files = {(file.export_ord, file.file_ord): file for task in tasks for file in task.files}
    # The overlap rule's deletes come from the table's rows, which no bound here covers: such plans go to the
    # executors, whose rows are never collected.
    read_here = read_tasks_here(tasks, SMALL_PLAN_BYTES) if on_driver and not overlapping else None
    on_driver = read_here is not None
    if read_here is not None:
        records = spark.createDataFrame(read_here, RECORD_SCHEMA)
    else:
        records = spark.range(0, len(tasks), 1, max(len(tasks), 1)).mapInArrow(read_task_slots(tasks), RECORD_SCHEMA)
    records = _kept(records)
    cached = [records]
    summary = _summary(records, files)
    upserts_and_deletes = records.where(sql.col("kind").isin(UPSERT, DELETE)).drop("meta")
    overlap_deletes = 0
    per_export = None
    if plan.baseline is not None and not plan.incrementals:
        # Every item of a full export is a row: no collapse, only the check that no key repeats.
        frame = upserts_and_deletes.select("key", "written", "kind", "image")
        _refuse_repeated_keys(records, frame.groupBy("key").count().where("count > 1"), files, key_attributes)
        per_export = upserts_and_deletes.select("key", "export_ord", "written", "kind", "image")
    else:
        synthetic = _overlap_deletes(spark, records, overlapping, table_rows, cached)
        overlap_deletes = sum(count for _, count in synthetic)
        for deletes, _ in synthetic:
            upserts_and_deletes = upserts_and_deletes.unionByName(deletes)
        latest_of_export = sql.max(sql.struct("written", "file_ord", "line", "kind", "image")).alias("latest")
        per_export = upserts_and_deletes.groupBy("key", "export_ord").agg(latest_of_export)
        per_export = per_export.select("key", "export_ord", "latest.written", "latest.kind", "latest.image")
        latest = sql.max(sql.struct("written", "export_ord", "file_ord", "line", "kind", "image")).alias("latest")
        in_baseline = sql.sum(sql.when(sql.col("export_ord") == 0, 1).otherwise(0)) if plan.baseline else sql.lit(0)
        collapsed = upserts_and_deletes.groupBy("key").agg(latest, in_baseline.alias("in_baseline"))
        frame = collapsed.select("key", "latest.written", "latest.kind", "latest.image", "in_baseline")
        if plan.baseline is not None:
            # Read twice (the check, then the merge): computed once.
            frame = _kept(frame)
            cached.append(frame)
            _refuse_repeated_keys(records, frame.where("in_baseline > 1"), files, key_attributes)
        frame = frame.drop("in_baseline")
    profile = summary.profile or ItemProfile()
    return Changes(
        frame=frame,
        profile=profile,
        records_read=summary.records_read,
        records_stale=summary.records_stale,
        overlap_deletes=overlap_deletes,
        warnings=warnings,
        on_driver=on_driver,
        by_export=per_export if by_export else None,
        exports=len(plan.exports),
        old_images=old_images,
        _cached=cached,
    )


@dataclass(frozen=True)
class _Overlap:
    """A window that starts before the point the table reflects when it applies."""

    export_ord: int
    start: int  # the part of the window already reflected: [start, reflected)
    reflected: int


def _kept(frame: DataFrame) -> DataFrame:
    """`frame`, computed once for the jobs that read it again, and kept on local disk. Spark's in-memory cache
    builds a task's whole output on the heap (a 1,250,000-item file is one task: about 700 MB of lines), and with
    the default 2 GB local heap a 10,000,000-item full load died of it (java.lang.OutOfMemoryError in
    CachedRDDBuilder); on disk, the heap holds one cached batch at a time (BENCHMARKS.md)."""
    from pyspark import StorageLevel

    return frame.persist(StorageLevel.DISK_ONLY)


def plan_tasks(
    plan: SyncPlan, key_attributes: tuple[str, ...], layout: Layout | None = None, parallelism: int = 1
) -> tuple[list[ReadTask], list[_Overlap], list[str]]:
    """The plan's data files in tasks, each file knowing the point the table reflects before it; the windows the
    overlap rule applies to; warnings."""
    key_columns = layout.key_columns if layout is not None and layout.has_key_columns else ()
    files: list[FileToRead] = []
    overlapping: list[_Overlap] = []
    warnings: list[str] = []
    baseline_micros = to_micros(plan.baseline_time)
    reflected_time = plan.baseline.summary.covers_to if plan.baseline else plan.reflects_before
    assert reflected_time is not None
    reflected = to_micros(reflected_time)
    for export_ord, export in enumerate(plan.exports):
        is_baseline = export is plan.baseline
        window_start, window_end = export.window_micros
        overlaps = not is_baseline and window_start < reflected
        if overlaps:
            # Rows of the full export carry its exportTime, not their own write time: they are never candidates.
            start = max(window_start, baseline_micros + 1)
            if start < reflected:
                overlapping.append(_Overlap(export_ord, start, reflected))
            if window_start < baseline_micros:
                warnings.append(
                    f"window of export {export.export_id} starts before the baseline's exportTime "
                    f"{format_timestamp(plan.baseline_time)}: an item created before it and deleted inside the "
                    "window leaves no trace in any export and cannot be removed"
                )
        before = baseline_micros if is_baseline else reflected
        for file_ord, entry in enumerate(export.data_files):
            files.append(FileToRead(export.data_file(entry), export_ord, file_ord, before, overlaps))
        if not is_baseline:
            reflected = max(reflected, window_end)
    groups = _group(files, parallelism)
    return [ReadTask(tuple(group), key_attributes, key_columns) for group in groups], overlapping, warnings


def _group(files: list[FileToRead], parallelism: int) -> list[list[FileToRead]]:
    """Files in about as many groups as there are cores (more when there is much to read: a task reads at most
    about TASK_ITEMS items, so that executors can be added and a retried task repeats little), balanced by items;
    a large file is a group of its own."""
    weight = {id(file): file.data_file.entry.item_count + 1 for file in files}
    total = sum(weight.values())
    per_task = min(max(-(-total // max(parallelism, 1)), MIN_TASK_ITEMS), TASK_ITEMS)
    groups: list[list[FileToRead]] = [[] for _ in range(max(1, -(-total // per_task)))]
    loads = [0] * len(groups)
    for file in sorted(files, key=lambda f: (-weight[id(f)], f.export_ord, f.file_ord)):
        lightest = loads.index(min(loads))
        groups[lightest].append(file)
        loads[lightest] += weight[id(file)]
    return [group for group in groups if group]


def _summary(records: DataFrame, files: dict[tuple[int, int], FileToRead]) -> TaskSummary:
    """Merge what the tasks summed up (running them all); raise the first error a task met."""
    from pyspark.sql import functions as sql

    rows = (
        records.where(sql.col("kind").isin(SUMMARY, ERROR)).select("kind", "export_ord", "file_ord", "meta").collect()
    )
    rows.sort(key=lambda row: (row["export_ord"], row["file_ord"]))
    errors = [pickle.loads(row["meta"]) for row in rows if row["kind"] == ERROR]
    if errors:
        raise errors[0]
    summary = TaskSummary()
    for row in rows:
        summary.merge(pickle.loads(row["meta"]))
    for name, tags in summary.key_types.items():
        if len(tags) > 1:
            (first, first_tag), (later, later_tag) = sorted((place, tag) for tag, place in tags.items())[:2]
            file, earlier = files[later[:2]], files[first[:2]]
            raise file.data_file.fail(
                f"key attribute {name!r} is {later_tag} here but {first_tag} in export {earlier.data_file.export_id}, "
                f"file {earlier.data_file.key}, line {first[2]}: a DynamoDB key attribute has one type",
                later[2],
            )
    return summary


def _refuse_repeated_keys(
    records: DataFrame, repeated: DataFrame, files: dict[tuple[int, int], FileToRead], key_attributes: Sequence[str]
) -> None:
    """A full export holds each key once: name the first key it repeats, and both of its lines."""
    from pyspark.sql import functions as sql

    found = repeated.select("key").limit(1).collect()
    if not found:
        return
    key = found[0]["key"]
    first, second = (
        records.where((sql.col("key") == key) & (sql.col("export_ord") == 0) & (sql.col("kind") == UPSERT))
        .select("file_ord", "line")
        .orderBy("file_ord", "line")
        .limit(2)
        .collect()
    )
    first_file = files[(0, first["file_ord"])].data_file.key
    shown = ", ".join(f"{name}={value!r}" for name, value in zip(key_attributes, key_values(key), strict=True))
    raise files[(0, second["file_ord"])].data_file.fail(
        f"repeats the key ({shown}) of file {first_file}, line {first['line']}: a full export holds each item "
        f"once. If the table's key is not ({', '.join(key_attributes)}), name all its key attributes",
        second["line"],
    )


def _overlap_deletes(
    spark: SparkSession,
    records: DataFrame,
    overlapping: list[_Overlap],
    table_rows: TableRows | None,
    cached: list[DataFrame],
) -> list[tuple[DataFrame, int]]:
    """The deletes the overlap rule makes, window by window (each depends on the ones before it)."""
    from pyspark.sql import functions as sql

    ordered = ["key", "written", "export_ord", "file_ord", "line", "kind"]
    made: list[tuple[DataFrame, int]] = []
    for window in overlapping:
        prior = records.where(sql.col("kind").isin(UPSERT, DELETE) & (sql.col("export_ord") < window.export_ord))
        prior = prior.select(*ordered)
        for deletes, _ in made:
            prior = prior.unionByName(deletes.select(*ordered))
        if table_rows is not None:
            rows = table_rows(window.start, window.reflected)
            prior = prior.unionByName(
                rows.select(
                    "key",
                    "written",
                    sql.lit(-1).alias("export_ord"),
                    sql.lit(0).alias("file_ord"),
                    sql.lit(0).cast("bigint").alias("line"),
                    sql.lit(UPSERT).alias("kind"),
                )
            )
        latest = prior.groupBy("key").agg(sql.max(sql.struct(*ordered[1:])).alias("latest"))
        candidates = latest.select("key", "latest.written", "latest.kind").where(
            (sql.col("kind") == UPSERT) & (sql.col("written") >= window.start) & (sql.col("written") < window.reflected)
        )
        mentioned = records.where(
            (sql.col("export_ord") == window.export_ord) & sql.col("kind").isin(UPSERT, DELETE, MENTIONED)
        ).select("key")
        deletes = _kept(
            candidates.join(mentioned, "key", "left_anti").select(
                "key",
                "written",
                sql.lit(window.export_ord).alias("export_ord"),
                sql.lit(_SYNTHETIC_FILE).alias("file_ord"),
                sql.lit(0).cast("bigint").alias("line"),
                sql.lit(DELETE).alias("kind"),
                sql.lit(None).cast("string").alias("image"),
            )
        )
        cached.append(deletes)
        made.append((deletes, deletes.count()))
    return made
