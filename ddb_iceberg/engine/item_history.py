"""The item history (slowly changing dimension, type 2): a companion Iceberg table, `<table>__history`, with one
row per version of each item.

A version is the item as one export left it, valid from the end of that export's window (`_ddb_valid_from`) to the
end of the window that changed or deleted it (`_ddb_valid_to`; none while it is `_ddb_is_current`). Its grain is
the window: DynamoDB's exports collapse the writes inside one, so a version is the item as the table showed it
from one sync to the next, and the history as of any window's end is exactly the table as of then. A write that
changed nothing but the write time makes no version (the change feed has no change for it), so a current
version's write time is that of the write that made the item what it is.

It is built from the change feed's rows of each sync (engine.change_feed), which the history therefore needs: a
sync's feed rows close the current version of each key they name and add the versions they make, in one MERGE that
reads only the current versions (the table is partitioned by `_ddb_is_current`: the versions a sync reads do not
grow with the history), and of them only their keys and what a closed version keeps of its own: a closed version's
item is its feed row's before-image. A history started on a table with rows starts from those rows, valid from the
time the table reflected then. It is written in the companions' protocol (engine.companion); when upkeep moved its
main between the table's publish and its own, or its branch is gone, the sync's feed rows are merged into main
again: each sync's changes are merged once (its id is the history's `ddb-iceberg.synced-through`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from ddb_iceberg.engine.change_feed import (
    BEFORE_COLUMN,
    EXPORT_ID_COLUMN,
    OPERATION_COLUMN,
    REMOVE,
    WINDOW_END_COLUMN,
    ChangeFeed,
    windows_end_after,
)
from ddb_iceberg.engine.companion import SYNCED_THROUGH_PROPERTY, CompanionTable
from ddb_iceberg.engine.ledger import TOTAL_RECORDS, LedgerEntry
from ddb_iceberg.engine.naming import quote, quote_path
from ddb_iceberg.engine.request import HISTORY_SUFFIX
from ddb_iceberg.engine.schema import Layout
from ddb_iceberg.engine.spark_table import BUCKETS_PROPERTY, MAIN_BRANCH, TABLE_PROPERTIES, SparkIcebergTable
from ddb_iceberg.engine.spark_types import column_ddl, sql_string
from ddb_iceberg.errors import SyncError
from ddb_iceberg.exports.manifest import to_micros

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

VALID_FROM_COLUMN = "_ddb_valid_from"
VALID_TO_COLUMN = "_ddb_valid_to"
IS_CURRENT_COLUMN = "_ddb_is_current"
_HISTORY_COLUMNS = ",\n  ".join(
    f"{quote(name)} {definition} COMMENT 'ddb_iceberg: {comment}'"
    for name, definition, comment in (
        (VALID_FROM_COLUMN, "TIMESTAMP NOT NULL", "the end of the window that made this version"),
        (VALID_TO_COLUMN, "TIMESTAMP", "the end of the window that changed or deleted it (none: current)"),
        (IS_CURRENT_COLUMN, "BOOLEAN NOT NULL", "whether the table holds this version now"),
        (EXPORT_ID_COLUMN, "STRING", "the export that made it (none: in the table when the history started)"),
    )
)
# In the MERGE's source only: a row closes a key's current version, or is a version to add.
_KIND, _CLOSE, _VERSION = "_ddb_kind", "close", "version"
# What a sync that finds a current version the table did not hold says of it (it fails: `ItemHistory.write`).
_DISAGREES = "holds a current version of a key the table did not hold"


class ItemHistory(CompanionTable):
    """The item history of one table, in the same catalog, built from its change feed."""

    suffix = HISTORY_SUFFIX
    what = "item history"

    def __init__(self, table: SparkIcebergTable, feed: ChangeFeed) -> None:
        super().__init__(table)
        self.feed = feed

    def prepare(self, layout: Layout, ledger: LedgerEntry | None) -> bool:
        """Create the history for the table's layout, or add the columns and fields it lacks. True when it has no
        version yet while the table has synced (`seed` it from the table's rows)."""
        if not self.table.exists():
            self._create(layout, ledger)
        else:
            self.table.add_missing_columns(layout.columns, nullable=True)
        return ledger is not None and self.table.current_snapshot_id() is None

    def _create(self, layout: Layout, ledger: LedgerEntry | None) -> None:
        table = self.table
        table.spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {quote_path(table.catalog, table.namespace)}")
        columns = ",\n  ".join([*(column_ddl(c) for c in layout.columns), _HISTORY_COLUMNS])
        properties = {**TABLE_PROPERTIES, **self.creation_properties(ledger)}
        rendered = ", ".join(f"{sql_string(k)} = {sql_string(v)}" for k, v in properties.items())
        # The current versions apart from the closed ones, bucketed by key as the table is: a sync's MERGE reads
        # only the current versions of its keys' buckets.
        partitioning = [quote(IS_CURRENT_COLUMN)]
        buckets = int(self.of.properties().get(BUCKETS_PROPERTY, "1"))
        if layout.has_key_columns and buckets:
            partitioning.append(f"bucket({buckets}, {quote(layout.key_columns[0].name)})")
        table.spark.sql(
            f"CREATE TABLE {table.full_name} (\n  {columns}\n) USING iceberg "
            f"PARTITIONED BY ({', '.join(partitioning)}) TBLPROPERTIES ({rendered})"
        )
        if layout.has_key_columns:
            keys = ", ".join(quote(c.name) for c in layout.key_columns)
            table.spark.sql(
                f"ALTER TABLE {table.full_name} WRITE DISTRIBUTED BY PARTITION LOCALLY ORDERED BY {keys}, "
                f"{quote(VALID_FROM_COLUMN)}"
            )

    def seed(self, rows: DataFrame, layout: Layout, reflects: datetime, branch: str) -> None:
        """Start the history from the table's rows (`rows`): each current, valid from the time the table
        reflects."""
        from pyspark.sql import functions as sql

        versions = rows.select(
            *(sql.col(quote(c.name)) for c in layout.columns),
            sql.timestamp_micros(sql.lit(to_micros(reflects))).alias(VALID_FROM_COLUMN),
            sql.lit(None).cast("timestamp").alias(VALID_TO_COLUMN),
            sql.lit(True).alias(IS_CURRENT_COLUMN),
            sql.lit(None).cast("string").alias(EXPORT_ID_COLUMN),
        )
        versions.writeTo(f"{self.table.catalog}.{self.table.namespace}.{self.table.name}.branch_{branch}").append()

    def write(
        self,
        changes: DataFrame,
        layout: Layout,
        properties: Mapping[str, str],
        branch: str,
        *,
        one_window: bool = False,
    ) -> None:
        """Merge one sync's change feed rows (`changes`) into `branch` (append them, into a history with no version
        yet) in one commit carrying `properties` (an empty one when there is nothing to merge). `one_window`: the
        sync applied one window (or a re-baseline's one), so each key has one change."""
        table = self.table
        keys = [c.name for c in layout.key_columns]
        names = [*(c.name for c in layout.columns), VALID_FROM_COLUMN, VALID_TO_COLUMN, IS_CURRENT_COLUMN]
        names.append(EXPORT_ID_COLUMN)
        target = table.full_name if branch == MAIN_BRANCH else f"{table.full_name}.{quote('branch_' + branch)}"
        on = " AND ".join(f"t.{quote(k)} = s.{quote(k)}" for k in keys)
        versions = version_changes(changes, layout, one_window=one_window)
        if branch != MAIN_BRANCH and table.branch_head(branch)[1].get(TOTAL_RECORDS) == "0":
            # A history with no version yet (the table's first sync) has none to close: its versions are appended.
            table.append(versions.where(f"{_KIND} = '{_VERSION}'").select(*map(quote, names)), properties, branch)
            table.ensure_commit(properties, branch)
            return
        # A closed version's item is its feed row's before-image, the item as the table held it (the history's
        # current version holds the same: `ChangeFeed`), so the MERGE reads only the current versions' keys, start,
        # export and write time. Their whole items, nested columns among them, would be read row by row rather
        # than in batches: several times the work (BENCHMARKS.md, 2026-12-07 18:45).
        before = f"s.{quote(BEFORE_COLUMN)}"
        item = [f"t.{quote(c.name)} = {before}.{quote(c.name)}" for c in layout.item_columns if c.name not in keys]
        # A current version whose key the feed says the table did not hold is a history that disagrees with the
        # table: the sync fails (nothing is published) rather than closing it with no item.
        disagrees = (
            f"raise_error(concat({sql_string(f'the {self.what} {self.name} {_DISAGREES}')}, "
            f"{sql_string(' (its change feed row has no before-image): ')}, "
            f"concat_ws(', ', {', '.join(f'cast(s.{quote(k)} AS STRING)' for k in keys)})))"
        )
        closed_at = f"CASE WHEN {before} IS NULL THEN {disagrees} ELSE s.{quote(VALID_FROM_COLUMN)} END"
        with table.registered(versions) as view:
            # `t.current = s.closes` makes the history's partition column a join key, so that the current versions
            # are joined where they lie (a storage-partitioned join, the source shuffled to them) rather than all
            # shuffled to the source; `t.current` alone is what prunes the scan to them.
            current = f"t.{quote(IS_CURRENT_COLUMN)}"
            statement = (
                f"MERGE INTO {target} t USING {view} s "
                f"ON {on} AND {current} AND {current} = (s.{_KIND} = '{_CLOSE}') "
                f"WHEN MATCHED THEN UPDATE SET {', '.join(item)}, t.{quote(VALID_TO_COLUMN)} = {closed_at}, "
                f"t.{quote(IS_CURRENT_COLUMN)} = false "
                f"WHEN NOT MATCHED AND s.{_KIND} = '{_VERSION}' THEN INSERT ({', '.join(map(quote, names))}) "
                f"VALUES ({', '.join('s.' + quote(n) for n in names)})"
            )
            with table.snapshot_properties(properties):
                try:
                    table.spark.sql(statement)
                except Exception as error:  # Spark's, with the message of `disagrees` inside it
                    found = re.search(rf"the {self.what} \S+ {_DISAGREES}[^\n]*?(?= SQLSTATE|\n|$)", str(error))
                    if found is None:
                        raise
                    raise SyncError(
                        f"{found.group(0)}. It was changed other than by syncs: mend that version, or drop the history "
                        "and the next sync starts it again from the table's rows"
                    ) from None
        table.ensure_commit(properties, branch)

    def publish(self, branch: str, ledger: LedgerEntry, *, stale_before: datetime | None) -> None:
        """Fast-forward main to the branch; when upkeep moved main meanwhile, merge the sync's feed rows into main
        instead (the branch's commit is not main's descendant) and drop the branch."""
        if self.table.fast_forward(branch, self.synced(ledger), stale_before=stale_before):
            return
        self._merge_again(ledger)
        self.table.drop_branch(branch)

    def recover(self, ledger: LedgerEntry) -> str | None:
        """No branch holds the table's last sync: merge that sync's feed rows into main, when the feed has them."""
        if self.feed.synced_through() != ledger.sync_id:
            return super().recover(ledger)
        self._merge_again(ledger)
        return None

    def _merge_again(self, ledger: LedgerEntry) -> None:
        layout = self.of.layout()
        assert layout is not None, "a synced table has a layout"
        floor = windows_end_after(self.of.ledger_history())
        changes = self.feed.rows_of(ledger.sync_id, ends_after_micros=to_micros(floor) if floor else None)
        self.write(changes, layout, ledger.properties, MAIN_BRANCH)
        self.table.set_property(SYNCED_THROUGH_PROPERTY, ledger.sync_id)


def version_changes(changes: DataFrame, layout: Layout, *, one_window: bool = False) -> DataFrame:
    """The MERGE's source for one sync's feed rows: for each key, a row that closes its current version (at the
    end of its first change's window, with that change's before-image: the closed version's item), and its
    versions (each valid until the key's next change in the sync, the last one current unless a delete).
    `one_window`: each key has one change (no ordering needed)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as sql

    if one_window:
        valid_to, nth = sql.lit(None).cast("timestamp"), sql.lit(1)
    else:
        in_order = Window.partitionBy(*(quote(c.name) for c in layout.key_columns)).orderBy(
            WINDOW_END_COLUMN, EXPORT_ID_COLUMN
        )
        valid_to, nth = sql.lead(WINDOW_END_COLUMN).over(in_order), sql.row_number().over(in_order)
    rows = changes.select(
        *(sql.col(quote(c.name)) for c in layout.columns),
        sql.col(OPERATION_COLUMN),
        sql.col(EXPORT_ID_COLUMN),
        sql.col(BEFORE_COLUMN),
        sql.col(WINDOW_END_COLUMN).alias(VALID_FROM_COLUMN),
        valid_to.alias(VALID_TO_COLUMN),
        nth.alias("_nth"),
    )
    # Each change is a version (unless a delete), and a key's first change also closes its current version: one
    # pass over the rows (a union would compute the window twice).
    kinds = sql.array(
        sql.when(sql.col(OPERATION_COLUMN) != REMOVE, sql.lit(_VERSION)),
        sql.when(sql.col("_nth") == 1, sql.lit(_CLOSE)),
    )
    rows = rows.withColumn(_KIND, sql.explode(sql.filter(kinds, lambda kind: kind.isNotNull())))
    current = (sql.col(_KIND) == _VERSION) & sql.col(VALID_TO_COLUMN).isNull()
    return rows.withColumn(IS_CURRENT_COLUMN, current).drop(OPERATION_COLUMN, "_nth")
