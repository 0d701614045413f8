"""Asset checks on the Iceberg table: keys, ledger, baseline and freshness, read through PyIceberg."""

from datetime import UTC, datetime, timedelta

import dagster as dg
import pyarrow.compute as pc

from ddb_iceberg.engine.ledger import LAYOUT_PROPERTY
from ddb_iceberg.engine.schema import Layout
from ddb_iceberg.errors import ExportError
from ddb_iceberg.exports import load_export
from ddb_iceberg.exports.manifest import parse_timestamp
from ddb_iceberg.table_names import DEFAULT_NAMES, EXPORTER, ICEBERG_TABLE, TABLE, TableNames


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
