"""The change feed: a companion Iceberg table, `<table>__changes`, with one row per key per export a sync applies.

Each row is one item's change as of the end of one export's window (DynamoDB's exports already collapse the
changes inside a window): the item after it in the table's own typed columns (a delete: the key and the write
time), the item before it as a struct of the same columns (`_ddb_before`; none for an insert), the operation
(insert, update, delete), and the export (its id, its window). A re-baseline writes the differences it made to
the table's rows, marked `_ddb_rebaseline`.

It is written by the sync that changes the table, in the same protocol: both are written to branches of the
sync's own, the table's branch is published, then the feed's. A run that dies before the table's publish leaves
neither changed (the next sync plans the same exports again); one that dies between the two publishes leaves the
feed's branch, which the next sync publishes before anything else (`ChangeFeed.catch_up`). So the feed never
shows a change the table does not have, and never shows one twice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ddb_iceberg.engine.ledger import PROPERTY_PREFIX, SYNC_ID, LedgerEntry
from ddb_iceberg.engine.naming import WRITE_TIME_COLUMN, quote, quote_path
from ddb_iceberg.engine.plan import SyncPlan
from ddb_iceberg.engine.records import DELETE, OP_COLUMN, UPSERT
from ddb_iceberg.engine.request import feed_identifier
from ddb_iceberg.engine.schema import (
    GLUE_TYPE_MAX_LENGTH,
    Column,
    ColumnType,
    Kind,
    Layout,
    glue_length,
    glue_type_string,
)
from ddb_iceberg.engine.spark_table import BRANCH_PREFIX, TABLE_PROPERTIES, SparkIcebergTable
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
INSERT, UPDATE, REMOVE = "insert", "update", "delete"
# The table a feed belongs to, and the sync whose commit the feed starts after ("" for a new table).
FEED_OF_PROPERTY = PROPERTY_PREFIX + "change-feed-of"
FEED_STARTS_AFTER_PROPERTY = PROPERTY_PREFIX + "change-feed-starts-after"
_FEED_COLUMNS = f"""{quote(OPERATION_COLUMN)} STRING NOT NULL COMMENT 'ddb_iceberg: insert, update or delete',
  {quote(EXPORT_ID_COLUMN)} STRING NOT NULL COMMENT 'ddb_iceberg: the export the change came from',
  {quote(WINDOW_START_COLUMN)} TIMESTAMP NOT NULL COMMENT 'ddb_iceberg: start of the export''s window',
  {quote(WINDOW_END_COLUMN)} TIMESTAMP NOT NULL COMMENT 'ddb_iceberg: end of the export''s window',
  {quote(REBASELINE_COLUMN)} BOOLEAN NOT NULL COMMENT 'ddb_iceberg: a difference a re-baseline made'"""
# Append-only: none of the table's merge-on-read settings apply.
_FEED_PROPERTIES = {
    key: value for key, value in TABLE_PROPERTIES.items() if not key.startswith(("write.delete", "write.update"))
}


def before_type(layout: Layout) -> ColumnType:
    """The type of `_ddb_before`: a struct of the table's columns."""
    return ColumnType(Kind.STRUCT, fields=layout.columns)


def check_before_fits_glue(layout: Layout, feed: str) -> None:
    """`_ddb_before` holds every column of the table in one struct, whose type Glue stores as one string of at
    most GLUE_TYPE_MAX_LENGTH characters (each column of the table fits on its own; together they may not)."""
    length = glue_length(glue_type_string(before_type(layout)))
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


class ChangeFeed:
    """The change feed of one table, in the same catalog."""

    def __init__(self, table: SparkIcebergTable) -> None:
        self.of = table
        self.table = SparkIcebergTable(table.spark, table.catalog, feed_identifier(f"{table.namespace}.{table.name}"))

    def catch_up(self, ledger: LedgerEntry | None) -> str | None:
        """Publish the feed's branch of the table's last sync when a run died between the two publishes; a warning
        when the feed lacks that sync and no branch holds it (removed by hand)."""
        if ledger is None or not ledger.sync_id or not self.table.exists():
            return None
        if self._head_sync_id() == ledger.sync_id:
            return None
        for branch, sync_id in self.table.branch_heads(BRANCH_PREFIX).items():
            if sync_id == ledger.sync_id:
                self.table.publish_appends(branch)
                return None
        if self._head_sync_id() is None and self.table.properties().get(FEED_STARTS_AFTER_PROPERTY) == ledger.sync_id:
            return None  # the feed was made by a run that died before the table's commit
        return (
            f"the change feed {self.table.namespace}.{self.table.name} lacks the changes of the table's sync "
            f"{ledger.sync_id} (its branch is gone): its rows from then on miss them"
        )

    def _head_sync_id(self) -> str | None:
        snapshot_id = self.table.current_snapshot_id()
        if snapshot_id is None:
            return None
        return self.table.snapshot_summary(snapshot_id).get(SYNC_ID)

    def prepare(self, layout: Layout, ledger: LedgerEntry | None) -> None:
        """Create the feed for the table's layout, or add the columns and fields the layout has and it lacks (the
        sync has checked the layout first: `check_before_fits_glue`)."""
        if not self.table.exists():
            self._create(layout, ledger.sync_id if ledger is not None else "")
            return
        before = Column(BEFORE_COLUMN, "", "", before_type(layout))
        self.table.add_missing_columns((*layout.columns, before), nullable=True)

    def _create(self, layout: Layout, starts_after: str) -> None:
        table = self.table
        table.spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {quote_path(table.catalog, table.namespace)}")
        columns = [column_ddl(c, nullable=c not in layout.key_columns) for c in layout.columns]
        columns.append(
            f"{quote(BEFORE_COLUMN)} {spark_type(before_type(layout))} "
            "COMMENT 'ddb_iceberg: the item before the change (none for an insert)'"
        )
        properties = {
            **_FEED_PROPERTIES,
            FEED_OF_PROPERTY: f"{self.of.namespace}.{self.of.name}",
            FEED_STARTS_AFTER_PROPERTY: starts_after,
        }
        rendered = ", ".join(f"{sql_string(k)} = {sql_string(v)}" for k, v in properties.items())
        listed = ",\n  ".join([*columns, _FEED_COLUMNS])
        table.spark.sql(
            f"CREATE TABLE {table.full_name} (\n  {listed}\n) USING iceberg "
            f"PARTITIONED BY (days({quote(WINDOW_END_COLUMN)})) TBLPROPERTIES ({rendered})"
        )

    def write(self, rows: DataFrame, properties: Mapping[str, str], branch: str) -> None:
        """Append the feed's rows to `branch` in one commit carrying `properties` (an empty one when none)."""
        self.table.append(rows, properties, branch)
        if self.table.branch_head(branch)[1].get(SYNC_ID) != properties[SYNC_ID]:
            self.table.commit_empty(properties, branch)


def feed_rows(
    rows: DataFrame, layout: Layout, before: DataFrame | None, windows: list[ExportWindow], *, small: bool = False
) -> DataFrame:
    """The feed's rows for the changes of a sync that applies windows (and perhaps a baseline) to the table:
    `rows` are the table's rows of each key's latest change in each export (`Changes.rows_by_export`),
    `before` the table as the sync found it (None: a new table). A key's first change takes its before-image
    from the table, each later one from the change before it. `small`: a small plan's changes, read on the
    driver (engine.changes.SMALL_PLAN_ITEMS), which may be broadcast."""
    from pyspark.sql import Window
    from pyspark.sql import functions as sql

    keys = [c.name for c in layout.key_columns]
    image = sql.struct(*(sql.col(quote(c.name)) for c in layout.columns))
    rows = rows.withColumn("_after", sql.when(sql.col(OP_COLUMN) == UPSERT, image))
    prior: SparkColumn = sql.when(sql.lit(False), sql.col("_after"))  # none, typed as the images are
    if len(windows) > 1:
        in_order = Window.partitionBy(*(quote(k) for k in keys)).orderBy("export_ord")
        rows = rows.withColumn("_prior_ord", sql.lag("export_ord").over(in_order))
        rows = rows.withColumn("_prior", sql.lag("_after").over(in_order))
        prior = sql.col("_prior")
    if before is not None:
        # The table's rows of changed keys, the table scanned once. A small plan's keys and their rows are
        # broadcast: joined by bucket instead (Iceberg's storage-partitioned join), a table of one bucket would be
        # sorted and joined by one task.
        hint: Callable[[DataFrame], DataFrame] = sql.broadcast if small else lambda frame: frame
        changed = rows.select(*(quote(k) for k in keys))
        changed = changed.distinct() if len(windows) > 1 else changed
        found = before.join(hint(changed), keys, "left_semi")
        found = found.select(*(quote(k) for k in keys), image.alias("_table"))
        rows = rows.join(hint(found), keys, "left")
        first = sql.col("_prior_ord").isNull() if len(windows) > 1 else sql.lit(True)
        prior = sql.when(first, sql.col("_table")).otherwise(prior)
    rows = rows.withColumn(BEFORE_COLUMN, prior)
    # A write that changed nothing but the write time is no change (nor is it one on a DynamoDB stream, which
    # writes no record for a PutItem of the same item: https://www.tecracer.com/blog/2021/01/why-i-had-to-update-
    # my-mental-model-of-dynamodb-streams.html).
    unchanged = _same_item(sql.col(BEFORE_COLUMN), sql.col("_after"), layout)
    rows = rows.where((sql.col("_after").isNotNull() | prior.isNotNull()) & ~sql.coalesce(unchanged, sql.lit(False)))
    operation = (
        sql.when(sql.col(OP_COLUMN) == DELETE, REMOVE).when(sql.col(BEFORE_COLUMN).isNull(), INSERT).otherwise(UPDATE)
    )
    return _with_export(rows.withColumn(OPERATION_COLUMN, operation), layout, windows, rebaseline=False)


def rebaseline_rows(rows: DataFrame, layout: Layout, before: DataFrame, window: ExportWindow) -> DataFrame:
    """The feed's rows of a re-baseline: the differences between the table's rows before (`before`) and after
    (`rows`: `Changes.rows`), the write time aside; each marked `_ddb_rebaseline`, from `window` (the full
    export, to the time the table reflects after)."""
    from pyspark.sql import functions as sql

    keys = [c.name for c in layout.key_columns]
    image = sql.struct(*(sql.col(quote(c.name)) for c in layout.columns))
    old = before.select(*(quote(k) for k in keys), image.alias(BEFORE_COLUMN))
    new = rows.where(sql.col(OP_COLUMN) == UPSERT).drop(OP_COLUMN).withColumn("_after", image)
    joined = old.join(new.withColumn("_present", sql.lit(True)), keys, "full_outer")
    same = _same_item(sql.col(BEFORE_COLUMN), sql.col("_after"), layout)
    joined = joined.where(~(sql.col("_present").isNotNull() & sql.col(BEFORE_COLUMN).isNotNull() & same))
    operation = (
        sql.when(sql.col("_present").isNull(), REMOVE).when(sql.col(BEFORE_COLUMN).isNull(), INSERT).otherwise(UPDATE)
    )
    joined = joined.withColumn(OPERATION_COLUMN, operation).drop("_present").withColumn("export_ord", sql.lit(0))
    return _with_export(joined, layout, [window], rebaseline=True)


def _same_item(before: SparkColumn, after: SparkColumn, layout: Layout) -> SparkColumn:
    """Whether two images (structs of the table's columns) hold the same item, their write times aside (NULL when
    either is NULL)."""
    from pyspark.sql import functions as sql

    values = [c.name for c in layout.columns if c.name != WRITE_TIME_COLUMN]
    same = sql.struct(*(before.getField(v) for v in values)).eqNullSafe(
        sql.struct(*(after.getField(v) for v in values))
    )
    return sql.when(before.isNotNull() & after.isNotNull(), same)


def _with_export(rows: DataFrame, layout: Layout, windows: list[ExportWindow], *, rebaseline: bool) -> DataFrame:
    from pyspark.sql import functions as sql

    exports = rows.sparkSession.createDataFrame(
        [(w.export_ord, w.export_id, w.start_micros, w.end_micros) for w in windows],
        "export_ord INT, export_id STRING, start_micros BIGINT, end_micros BIGINT",
    )
    rows = rows.join(sql.broadcast(exports), "export_ord")
    return rows.select(
        *(sql.col(quote(c.name)) for c in layout.columns),
        sql.col(BEFORE_COLUMN),
        sql.col(OPERATION_COLUMN),
        sql.col("export_id").alias(EXPORT_ID_COLUMN),
        sql.timestamp_micros("start_micros").alias(WINDOW_START_COLUMN),
        sql.timestamp_micros("end_micros").alias(WINDOW_END_COLUMN),
        sql.lit(rebaseline).alias(REBASELINE_COLUMN),
    )
