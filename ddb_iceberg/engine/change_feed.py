"""The change feed: a companion Iceberg table, `<table>__changes`, with one row per key per export a sync applies.

Each row is one item's change as of the end of one export's window (DynamoDB's exports already collapse the
changes inside a window): the item after it in the table's own typed columns (a delete: the key and the write
time), the item before it as a struct of the same columns but the write time (`_ddb_before`; none for an insert),
the operation (insert, update, delete), and the export (its id, its window). A re-baseline writes the differences
it made to the table's rows, marked `_ddb_rebaseline`. The before-images come from the exports' OldImages where
those are the table's rows (`SyncPlan.old_images_are_the_tables`), else from the table itself.

It is written by the sync that changes the table, in the same protocol: both are written to branches of the
sync's own, the table's branch is published, then the feed's. A run that dies before the table's publish leaves
neither changed (the next sync plans the same exports again); one that dies between the two publishes leaves the
feed's branch, which the next sync publishes before anything else (`ChangeFeed.catch_up`). So the feed never
shows a change the table does not have, and never shows one twice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from ddb_iceberg.engine.companion import CompanionTable
from ddb_iceberg.engine.ledger import REBASELINE_OF, LedgerEntry
from ddb_iceberg.engine.naming import quote, quote_path
from ddb_iceberg.engine.plan import SyncPlan
from ddb_iceberg.engine.records import DELETE, OLD_IMAGE_COLUMN, OP_COLUMN, UPSERT
from ddb_iceberg.engine.request import FEED_SUFFIX
from ddb_iceberg.engine.schema import (
    GLUE_TYPE_MAX_LENGTH,
    Column,
    Layout,
    glue_length,
    glue_type_string,
)
from ddb_iceberg.engine.spark_table import TABLE_PROPERTIES
from ddb_iceberg.engine.spark_types import column_ddl, spark_type, sql_string
from ddb_iceberg.errors import SyncError
from ddb_iceberg.exports.manifest import to_micros

if TYPE_CHECKING:
    from pyspark.sql import Column as SparkColumn
    from pyspark.sql import DataFrame

OPERATION_COLUMN = "_ddb_operation"
BEFORE_COLUMN = "_ddb_before"
EXPORT_ID_COLUMN = "_ddb_export_id"
WINDOW_START_COLUMN = "_ddb_window_start"
WINDOW_END_COLUMN = "_ddb_window_end"
REBASELINE_COLUMN = "_ddb_rebaseline"
SYNC_ID_COLUMN = "_ddb_sync_id"
INSERT, UPDATE, REMOVE = "insert", "update", "delete"
_FEED_COLUMNS = f"""{quote(OPERATION_COLUMN)} STRING NOT NULL COMMENT 'ddb_iceberg: insert, update or delete',
  {quote(EXPORT_ID_COLUMN)} STRING NOT NULL COMMENT 'ddb_iceberg: the export the change came from',
  {quote(WINDOW_START_COLUMN)} TIMESTAMP NOT NULL COMMENT 'ddb_iceberg: start of the export''s window',
  {quote(WINDOW_END_COLUMN)} TIMESTAMP NOT NULL COMMENT 'ddb_iceberg: end of the export''s window',
  {quote(REBASELINE_COLUMN)} BOOLEAN NOT NULL COMMENT 'ddb_iceberg: a difference a re-baseline made',
  {quote(SYNC_ID_COLUMN)} STRING COMMENT 'ddb_iceberg: the sync that applied the change (its ledger''s sync id)'"""
# Append-only: none of the table's merge-on-read settings apply.
_FEED_PROPERTIES = {
    key: value for key, value in TABLE_PROPERTIES.items() if not key.startswith(("write.delete", "write.update"))
}


def windows_end_after(history: Sequence[LedgerEntry]) -> datetime | None:
    """A time every window of the table's last sync (`history[0]`, the ledger newest first) ends after: the time
    the sync before it left the table reflecting, so that a read of that sync's feed rows scans only their days.
    None when that entry is gone (expired) or the last sync was a re-baseline (its one window may end no later)."""
    if len(history) < 2 or REBASELINE_OF in history[0].properties:
        return None
    return history[1].reflects


def check_before_fits_glue(layout: Layout, feed: str) -> None:
    """`_ddb_before` holds every column of the table in one struct, whose type Glue stores as one string of at
    most GLUE_TYPE_MAX_LENGTH characters (each column of the table fits on its own; together they may not)."""
    length = glue_length(glue_type_string(layout.image_type))
    if length > GLUE_TYPE_MAX_LENGTH:
        raise SyncError(
            f"the change feed {feed} cannot hold the table's {len(layout.columns)} columns in its {BEFORE_COLUMN} "
            f"struct: its type would be {length:,} characters, and Glue stores at most {GLUE_TYPE_MAX_LENGTH:,} "
            "(Column.Type, https://docs.aws.amazon.com/glue/latest/webapi/API_Column.html). Nothing was written; "
            "sync without the change feed"
        )


@dataclass(frozen=True)
class ExportWindow:
    """What the feed says of the export a change came from."""

    export_ord: int
    export_id: str
    start_micros: int
    end_micros: int


def export_windows(plan: SyncPlan) -> list[ExportWindow]:
    """The plan's exports, in its order (`export_ord`); a re-baseline's one window, from its full export to the
    time the table reflects after it."""
    windows = [ExportWindow(n, export.export_id, *export.window_micros) for n, export in enumerate(plan.exports)]
    if plan.rebaseline:
        return [ExportWindow(0, windows[0].export_id, windows[0].start_micros, to_micros(plan.reflects_after))]
    return windows


class ChangeFeed(CompanionTable):
    """The change feed of one table, in the same catalog."""

    suffix = FEED_SUFFIX
    what = "change feed"

    def publish(self, branch: str, ledger: LedgerEntry, *, stale_before: datetime | None) -> None:
        self.table.publish_appends(branch, self.synced(ledger), stale_before=stale_before)

    def prepare(self, layout: Layout, ledger: LedgerEntry | None) -> None:
        """Create the feed for the table's layout, or add the columns and fields the layout has and it lacks (the
        sync has checked the layout first: `check_before_fits_glue`)."""
        if not self.table.exists():
            self._create(layout, ledger)
            return
        before = Column(BEFORE_COLUMN, "", "", layout.image_type)
        self.table.add_missing_columns((*layout.columns, before), nullable=True)

    def _create(self, layout: Layout, ledger: LedgerEntry | None) -> None:
        table = self.table
        table.spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {quote_path(table.catalog, table.namespace)}")
        columns = [column_ddl(c, nullable=c not in layout.key_columns) for c in layout.columns]
        columns.append(
            f"{quote(BEFORE_COLUMN)} {spark_type(layout.image_type)} "
            "COMMENT 'ddb_iceberg: the item before the change (none for an insert)'"
        )
        properties = {**_FEED_PROPERTIES, **self.creation_properties(ledger)}
        rendered = ", ".join(f"{sql_string(k)} = {sql_string(v)}" for k, v in properties.items())
        listed = ",\n  ".join([*columns, _FEED_COLUMNS])
        table.spark.sql(
            f"CREATE TABLE {table.full_name} (\n  {listed}\n) USING iceberg "
            f"PARTITIONED BY (days({quote(WINDOW_END_COLUMN)})) TBLPROPERTIES ({rendered})"
        )

    def write(self, rows: DataFrame, properties: Mapping[str, str], branch: str) -> None:
        """Append the feed's rows to `branch` in one commit carrying `properties` (an empty one when none)."""
        self.table.append(rows, properties, branch)
        self.table.ensure_commit(properties, branch)

    def rows_of(self, sync_id: str, *, ends_after_micros: int | None = None) -> DataFrame:
        """The feed's rows of one sync, read only from the days of windows ending after `ends_after_micros` when
        given (the sync's windows are the table's latest)."""
        rows = self.table.read()
        condition = f"{quote(SYNC_ID_COLUMN)} = {sql_string(sync_id)}"
        if ends_after_micros is not None:
            condition += f" AND {quote(WINDOW_END_COLUMN)} > timestamp_micros({int(ends_after_micros)})"
        return rows.where(condition)


def feed_rows(
    rows: DataFrame,
    layout: Layout,
    before: DataFrame | None,
    windows: list[ExportWindow],
    sync_id: str,
    *,
    small: bool = False,
) -> DataFrame:
    """The feed's rows for the changes of a sync that applies windows (and perhaps a baseline) to the table:
    `rows` are the table's rows of each key's latest change in each export (`Changes.rows_by_export`). A key's
    first change takes its before-image from its OldImage when the rows carry them (OLD_IMAGE_COLUMN: see
    `SyncPlan.old_images_are_the_tables`), else from `before`, the table as the sync found it (None: a new
    table), which is then joined to the changed keys; each later one from the change before it. `small`: a small
    plan's changes, read on the driver (engine.changes.SMALL_PLAN_ITEMS), which may be broadcast."""
    from pyspark.sql import Window
    from pyspark.sql import functions as sql

    keys = [c.name for c in layout.key_columns]
    image = _image(layout)
    rows = rows.withColumn("_after", sql.when(sql.col(OP_COLUMN) == UPSERT, image))
    first: SparkColumn = sql.lit(True)
    prior: SparkColumn = sql.when(sql.lit(False), sql.col("_after"))  # none, typed as the images are
    if len(windows) > 1:
        in_order = Window.partitionBy(*(quote(k) for k in keys)).orderBy("export_ord")
        rows = rows.withColumn("_prior_ord", sql.lag("export_ord").over(in_order))
        rows = rows.withColumn("_prior", sql.lag("_after").over(in_order))
        first, prior = sql.col("_prior_ord").isNull(), sql.col("_prior")
    if OLD_IMAGE_COLUMN in rows.columns:
        prior = sql.when(first, sql.col(OLD_IMAGE_COLUMN)).otherwise(prior)
    elif before is not None:
        # The table's rows of changed keys, the table scanned once. A small plan's keys and their rows are
        # broadcast: joined by bucket instead (Iceberg's storage-partitioned join), a table of one bucket would be
        # sorted and joined by one task.
        hint: Callable[[DataFrame], DataFrame] = sql.broadcast if small else lambda frame: frame
        changed = rows.select(*(quote(k) for k in keys))
        changed = changed.distinct() if len(windows) > 1 else changed
        found = before.join(hint(changed), keys, "left_semi")
        found = found.select(*(quote(k) for k in keys), image.alias("_table"))
        rows = rows.join(hint(found), keys, "left")
        prior = sql.when(first, sql.col("_table")).otherwise(prior)
    rows = rows.withColumn(BEFORE_COLUMN, prior)
    # A write that changed nothing but the write time is no change (nor is it one on a DynamoDB stream, which
    # writes no record for a PutItem of the same item: https://www.tecracer.com/blog/2021/01/why-i-had-to-update-
    # my-mental-model-of-dynamodb-streams.html).
    unchanged = _same_item(sql.col(BEFORE_COLUMN), sql.col("_after"))
    rows = rows.where((sql.col("_after").isNotNull() | prior.isNotNull()) & ~sql.coalesce(unchanged, sql.lit(False)))
    operation = (
        sql.when(sql.col(OP_COLUMN) == DELETE, REMOVE).when(sql.col(BEFORE_COLUMN).isNull(), INSERT).otherwise(UPDATE)
    )
    return _with_export(rows.withColumn(OPERATION_COLUMN, operation), layout, windows, sync_id, rebaseline=False)


def rebaseline_rows(
    rows: DataFrame, layout: Layout, before: DataFrame, window: ExportWindow, sync_id: str
) -> DataFrame:
    """The feed's rows of a re-baseline: the differences between the table's rows before (`before`) and after
    (`rows`: `Changes.rows`), the write time aside; each marked `_ddb_rebaseline`, from `window` (the full
    export, to the time the table reflects after)."""
    from pyspark.sql import functions as sql

    keys = [c.name for c in layout.key_columns]
    image = _image(layout)
    old = before.select(*(quote(k) for k in keys), image.alias(BEFORE_COLUMN))
    new = rows.where(sql.col(OP_COLUMN) == UPSERT).drop(OP_COLUMN).withColumn("_after", image)
    joined = old.join(new.withColumn("_present", sql.lit(True)), keys, "full_outer")
    same = _same_item(sql.col(BEFORE_COLUMN), sql.col("_after"))
    joined = joined.where(~(sql.col("_present").isNotNull() & sql.col(BEFORE_COLUMN).isNotNull() & same))
    operation = (
        sql.when(sql.col("_present").isNull(), REMOVE).when(sql.col(BEFORE_COLUMN).isNull(), INSERT).otherwise(UPDATE)
    )
    joined = joined.withColumn(OPERATION_COLUMN, operation).drop("_present").withColumn("export_ord", sql.lit(0))
    return _with_export(joined, layout, [window], sync_id, rebaseline=True)


def _image(layout: Layout) -> SparkColumn:
    """A row's item as a struct of the table's item columns (`Layout.image_type`)."""
    from pyspark.sql import functions as sql

    return sql.struct(*(sql.col(quote(c.name)) for c in layout.item_columns))


def _same_item(before: SparkColumn, after: SparkColumn) -> SparkColumn:
    """Whether two images (`Layout.image_type`: no write time) hold the same item (NULL when either is NULL)."""
    from pyspark.sql import functions as sql

    return sql.when(before.isNotNull() & after.isNotNull(), before.eqNullSafe(after))


def _with_export(
    rows: DataFrame, layout: Layout, windows: list[ExportWindow], sync_id: str, *, rebaseline: bool
) -> DataFrame:
    from pyspark.sql import functions as sql

    # The plan's windows as a literal array indexed by `export_ord`: a DataFrame made from a Python list would
    # start the executors' Python workers (seconds of a one-window sync) for a handful of rows.
    by_ord = sorted(windows, key=lambda w: w.export_ord)
    assert [w.export_ord for w in by_ord] == list(range(len(by_ord))), "export_ord numbers the plan's windows"
    exports = sql.array(
        *(
            sql.struct(
                sql.lit(w.export_id).alias("export_id"),
                sql.lit(w.start_micros).cast("bigint").alias("start_micros"),
                sql.lit(w.end_micros).cast("bigint").alias("end_micros"),
            )
            for w in by_ord
        )
    )
    rows = rows.withColumn("_export", sql.element_at(exports, sql.col("export_ord") + 1))
    return rows.select(
        *(sql.col(quote(c.name)) for c in layout.columns),
        sql.col(BEFORE_COLUMN),
        sql.col(OPERATION_COLUMN),
        sql.col("_export.export_id").alias(EXPORT_ID_COLUMN),
        sql.timestamp_micros(sql.col("_export.start_micros")).alias(WINDOW_START_COLUMN),
        sql.timestamp_micros(sql.col("_export.end_micros")).alias(WINDOW_END_COLUMN),
        sql.lit(rebaseline).alias(REBASELINE_COLUMN),
        sql.lit(sync_id).alias(SYNC_ID_COLUMN),
    )
