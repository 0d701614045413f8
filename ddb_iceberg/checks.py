"""Asset checks on the Iceberg table: keys, ledger, baseline and freshness, read through PyIceberg."""

from datetime import UTC, datetime, timedelta

import dagster as dg
import pyarrow.compute as pc

from ddb_iceberg.engine.ledger import LAYOUT_PROPERTY
from ddb_iceberg.engine.schema import Layout
from ddb_iceberg.exports import ExportSource, discover_exports
from ddb_iceberg.exports.manifest import parse_timestamp
from ddb_iceberg.resources import ExporterResource, IcebergCatalogResource, MergeRunnerResource

TABLE = dg.AssetKey("ddb_iceberg_table")


@dg.asset_check(asset=TABLE, blocking=True)
def no_duplicate_keys(catalog: IcebergCatalogResource, merge_runner: MergeRunnerResource) -> dg.AssetCheckResult:
    """Every DynamoDB key appears in at most one row."""
    table = catalog.load_catalog().load_table(merge_runner.table)
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


@dg.asset_check(asset=TABLE)
def ledger_has_no_gap(catalog: IcebergCatalogResource, merge_runner: MergeRunnerResource) -> dg.AssetCheckResult:
    """No commit applied exports across uncovered time (gaps are only ever accepted with allow_gaps)."""
    status = catalog.status(merge_runner.table)
    return dg.AssetCheckResult(
        passed=not status.accepted_gaps,
        metadata={
            "accepted_gaps": status.accepted_gaps,
            "commits": len(status.commits),
            "reflects": status.reflects or "",
        },
    )


@dg.asset_check(asset=TABLE)
def baseline_row_count_matches_full_export(
    catalog: IcebergCatalogResource, merge_runner: MergeRunnerResource, exporter: ExporterResource
) -> dg.AssetCheckResult:
    """The baseline commit holds exactly as many rows as the full export has items."""
    status = catalog.status(merge_runner.table)
    if not status.commits:
        return dg.AssetCheckResult(passed=False, metadata={"reason": "the table has no ledger commit"})
    first = status.commits[0]
    if first["exports"] != [status.baseline_export]:
        return dg.AssetCheckResult(
            passed=True,
            metadata={
                "reason": "the baseline's own commit is not in the table's history (loaded together with windows, "
                "or expired by table upkeep); nothing to compare"
            },
        )
    listing = discover_exports(ExportSource.from_uri(exporter.source_uri))
    full = next((e for e in listing.full_exports if e.export_id == status.baseline_export), None)
    if full is None:
        return dg.AssetCheckResult(passed=False, metadata={"reason": f"full export {status.baseline_export} not found"})
    return dg.AssetCheckResult(
        passed=first["rows_inserted"] == full.summary.item_count,
        metadata={"baseline_rows": first["rows_inserted"], "full_export_items": full.summary.item_count},
    )


def build_freshness_check(window: timedelta, lag: timedelta) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=TABLE, name="reflects_a_recent_time")
    def reflects_a_recent_time(
        catalog: IcebergCatalogResource, merge_runner: MergeRunnerResource
    ) -> dg.AssetCheckResult:
        """The table reflects DynamoDB as of no more than two windows (plus the export lag) ago."""
        status = catalog.status(merge_runner.table)
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

    return reflects_a_recent_time
