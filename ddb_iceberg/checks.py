"""Asset checks on the Iceberg table (keys, ledger, baseline and freshness), its change feed and its item history,
read through PyIceberg."""

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import pyarrow.compute as pc

from ddb_iceberg.engine.change_feed import (
    INSERT,
    OPERATION_COLUMN,
    REMOVE,
    SYNC_ID_COLUMN,
    UPDATE,
    WINDOW_END_COLUMN,
    windows_end_after,
)
from ddb_iceberg.engine.companion import synced_through
from ddb_iceberg.engine.item_history import IS_CURRENT_COLUMN
from ddb_iceberg.engine.ledger import LAYOUT_PROPERTY
from ddb_iceberg.engine.naming import WRITE_TIME_COLUMN
from ddb_iceberg.engine.schema import Layout
from ddb_iceberg.errors import ExportError
from ddb_iceberg.exports import load_export
from ddb_iceberg.exports.manifest import parse_timestamp
from ddb_iceberg.table_names import (
    CHANGE_FEED,
    DEFAULT_NAMES,
    EXPORTER,
    ICEBERG_TABLE,
    ITEM_HISTORY,
    TABLE,
    TableNames,
)


def build_table_checks(
    window: timedelta, lag: timedelta, names: TableNames = DEFAULT_NAMES
) -> list[dg.AssetChecksDefinition]:
    """The checks on one table's Iceberg table asset, reading it through that table's resources."""
    table_key = names.asset_key(ICEBERG_TABLE)
    the_table = {names.qualified(TABLE)}

    @dg.asset_check(asset=table_key, blocking=True, required_resource_keys=the_table)
    def no_duplicate_keys(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        """Every DynamoDB key appears in at most one row."""
        table = names.table(context).load()
        layout = Layout.from_json(table.properties[LAYOUT_PROPERTY])
        if not layout.has_key_columns:
            return dg.AssetCheckResult(passed=True, metadata={"rows": 0, "reason": "no item yet (empty table)"})
        keys = [c.name for c in layout.key_columns]
        rows = table.scan(selected_fields=tuple(keys)).to_arrow()
        counts = rows.group_by(keys).aggregate([([], "count_all")])
        duplicates = counts.filter(pc.greater(counts["count_all"], 1))
        return dg.AssetCheckResult(
            passed=duplicates.num_rows == 0,
            metadata={
                "rows": rows.num_rows,
                "duplicate_keys": duplicates.num_rows,
                "examples": str(duplicates.slice(0, 5).to_pylist()),
            },
        )

    @dg.asset_check(asset=table_key, required_resource_keys=the_table)
    def ledger_has_no_gap(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        """No commit applied exports across uncovered time (gaps are only ever accepted with allow_gaps)."""
        status = names.table(context).status()
        return dg.AssetCheckResult(
            passed=not status.accepted_gaps,
            metadata={
                "accepted_gaps": status.accepted_gaps,
                "commits": len(status.commits),
                "reflects": status.reflects or "",
            },
        )

    @dg.asset_check(asset=table_key, required_resource_keys={*the_table, names.qualified(EXPORTER)})
    def baseline_row_count_matches_full_export(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        """The baseline commit holds exactly as many rows as the full export has items."""
        status = names.table(context).status()
        if not status.commits:
            return dg.AssetCheckResult(passed=False, metadata={"reason": "the table has no ledger commit"})
        first = status.commits[0]
        if first["exports"] != [status.baseline_export]:
            return dg.AssetCheckResult(
                passed=True,
                metadata={
                    "reason": "the baseline's own commit is not in the table's history (loaded together with "
                    "windows, or expired by table upkeep); nothing to compare"
                },
            )
        # The baseline alone is read, by its id: not the source's history of exports.
        try:
            full = load_export(names.exporter(context).export_source(), str(status.baseline_export))
        except ExportError as error:
            return dg.AssetCheckResult(passed=False, metadata={"reason": f"the baseline full {error}"})
        return dg.AssetCheckResult(
            passed=first["rows_inserted"] == full.summary.item_count,
            metadata={"baseline_rows": first["rows_inserted"], "full_export_items": full.summary.item_count},
        )

    @dg.asset_check(asset=table_key, required_resource_keys=the_table)
    def reflects_a_recent_time(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        """The table reflects DynamoDB as of no more than two windows (plus the export lag) ago."""
        status = names.table(context).status()
        allowed = 2 * window + lag
        if status.reflects is None:
            return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.WARN, metadata={"reflects": ""})
        behind = datetime.now(UTC) - parse_timestamp(status.reflects)
        return dg.AssetCheckResult(
            passed=behind <= allowed,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "reflects": status.reflects,
                "behind_minutes": round(behind.total_seconds() / 60),
                "allowed_minutes": round(allowed.total_seconds() / 60),
            },
        )

    return [no_duplicate_keys, ledger_has_no_gap, baseline_row_count_matches_full_export, reflects_a_recent_time]


def build_change_feed_checks(names: TableNames = DEFAULT_NAMES) -> list[dg.AssetChecksDefinition]:
    """The checks on one table's change feed, reading it and the table through that table's resource."""
    the_table = {names.qualified(TABLE)}

    @dg.asset_check(asset=names.asset_key(CHANGE_FEED), required_resource_keys=the_table)
    def change_feed_accounts_for_the_table(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        """The feed holds the table's last sync, whose inserts less deletes are the rows that sync added."""
        resource = names.table(context)
        history = resource.ledger_history()
        if not history:
            return dg.AssetCheckResult(passed=False, metadata={"reason": "the table has no ledger commit"})
        ledger = history[0]
        feed = resource.load_change_feed()
        feed_sync = _synced_through(feed)
        if feed_sync != ledger.sync_id:
            reason = "the feed lacks the table's last sync (the next sync publishes it, or warns that it cannot)"
            return dg.AssetCheckResult(
                passed=False, metadata={"reason": reason, "table_sync": ledger.sync_id, "feed_sync": feed_sync or ""}
            )
        rows_before, rows_after = _live_rows_around(resource.load(), ledger.snapshot_id)
        if rows_before is None:
            reason = "the snapshot before the table's last sync is expired (upkeep): nothing to compare"
            return dg.AssetCheckResult(passed=True, metadata={"reason": reason})
        # The sync's own rows, read from the days of its windows only (not the feed's whole history).
        row_filter = f"{SYNC_ID_COLUMN} = '{ledger.sync_id}'"
        floor = windows_end_after(history)
        if floor is not None:
            row_filter += f" AND {WINDOW_END_COLUMN} > '{floor.isoformat()}'"
        changes = feed.scan(row_filter=row_filter, selected_fields=(OPERATION_COLUMN,)).to_arrow()
        operations = Counter(changes.column(OPERATION_COLUMN).to_pylist())
        net = operations.get(INSERT, 0) - operations.get(REMOVE, 0)
        return dg.AssetCheckResult(
            passed=net == rows_after - rows_before,
            metadata={
                "inserts": operations.get(INSERT, 0),
                "updates": operations.get(UPDATE, 0),
                "deletes": operations.get(REMOVE, 0),
                "table_rows_before": rows_before,
                "table_rows_after": rows_after,
            },
        )

    return [change_feed_accounts_for_the_table]


def build_item_history_checks(names: TableNames = DEFAULT_NAMES) -> list[dg.AssetChecksDefinition]:
    """The checks on one table's item history, reading it and the table through that table's resource."""
    the_table = {names.qualified(TABLE)}

    @dg.asset_check(asset=names.asset_key(ITEM_HISTORY), required_resource_keys=the_table)
    def item_history_matches_the_table(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        """Each item of the table has exactly one current version in the history, equal to it (its write time aside:
        a write that changed nothing makes no version)."""
        resource = names.table(context)
        ledger = resource.ledger()
        if ledger is None:
            return dg.AssetCheckResult(passed=False, metadata={"reason": "the table has no ledger commit"})
        history = resource.load_history()
        if _synced_through(history) != ledger.sync_id:
            reason = "the history lacks the table's last sync (the next sync merges it, or warns that it cannot)"
            return dg.AssetCheckResult(passed=False, metadata={"reason": reason, "table_sync": ledger.sync_id})
        table = resource.load()
        layout = Layout.from_json(table.properties[LAYOUT_PROPERTY])
        columns = tuple(c.name for c in layout.columns if c.name != WRITE_TIME_COLUMN)
        in_order = [(c.name, "ascending") for c in layout.key_columns]
        # Only the current versions are read (the history is partitioned by them): not its past.
        current = history.scan(row_filter=f"{IS_CURRENT_COLUMN} = true", selected_fields=columns).to_arrow()
        rows = table.scan(selected_fields=columns).to_arrow()
        counts = current.group_by([c.name for c in layout.key_columns]).aggregate([([], "count_all")])
        repeated = counts.filter(pc.greater(counts["count_all"], 1)).num_rows
        current, rows = current.select(columns).sort_by(in_order), rows.select(columns).sort_by(in_order)
        equal = current.num_rows == rows.num_rows and current.to_pylist() == rows.to_pylist()
        return dg.AssetCheckResult(
            passed=equal and not repeated,
            metadata={"table_rows": rows.num_rows, "current_versions": current.num_rows, "keys_repeated": repeated},
        )

    return [item_history_matches_the_table]


def _synced_through(companion: Any) -> str:
    """The table's sync a companion (the change feed, the item history), read by PyIceberg, holds last."""
    head = companion.current_snapshot()
    summary = head.summary.additional_properties if head is not None and head.summary else None
    return synced_through(companion.properties, summary)


def _live_rows_around(table: Any, snapshot_id: int) -> tuple[int | None, int]:
    """The table's live rows at `snapshot_id` and at its parent (None when the parent is expired)."""

    def live(snapshot: Any) -> int:
        summary = snapshot.summary.additional_properties if snapshot.summary else {}
        return int(summary.get("total-records", 0)) - int(summary.get("total-position-deletes", 0))

    snapshot = table.snapshot_by_id(snapshot_id)
    if snapshot.parent_snapshot_id is None:
        return 0, live(snapshot)
    parent = table.snapshot_by_id(snapshot.parent_snapshot_id)
    return (live(parent) if parent is not None else None), live(snapshot)
