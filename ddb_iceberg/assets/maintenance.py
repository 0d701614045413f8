"""Upkeep of the Iceberg table as an asset: each materialization compacts, expires and cleans, and reports it."""

from datetime import timedelta
from typing import Any

import dagster as dg
from pydantic import Field, model_validator

from ddb_iceberg.assets.failures import failures_reported
from ddb_iceberg.engine.export_housekeeping import (
    DEFAULT_EXPORT_RETENTION,
    HousekeepingResult,
    check_export_retention,
    remove_applied_exports,
)
from ddb_iceberg.engine.request import UpkeepSettings
from ddb_iceberg.engine.upkeep import UpkeepResult
from ddb_iceberg.resources.prices import numeric_metadata
from ddb_iceberg.table_names import DEFAULT_NAMES, TABLE_MAINTENANCE, TableNames

DEFAULTS = UpkeepSettings().in_days()


class TableMaintenanceConfig(dg.Config):
    """What upkeep keeps and when it compacts (defaults: `engine.upkeep.UpkeepSettings`), and how long applied
    exports stay (`engine.export_housekeeping`)."""

    snapshot_retention_days: float = DEFAULTS["snapshot_retention"]
    tag_retention_days: float = DEFAULTS["tag_retention"]
    orphan_age_days: float = DEFAULTS["orphan_age"]
    min_input_files: int = int(DEFAULTS["min_input_files"])
    export_retention_days: float | None = Field(
        default=DEFAULT_EXPORT_RETENTION / timedelta(days=1),
        description="Remove the exports the table has applied once requested this many days ago (null: keep "
        "every export).",
    )
    export_housekeeping_dry_run: bool = Field(
        default=False, description="List the exports housekeeping would remove, and remove none."
    )
    repartition: bool = Field(
        default=False,
        description="First partition the table anew by the table resource's partition_by (a sync never changes an "
        "existing table's partitioning); the compaction then rewrites the files written before into it. The "
        "repartition job sets it.",
    )

    @model_validator(mode="after")
    def _settings_that_can_work(self) -> "TableMaintenanceConfig":
        # The engine's own rules (UpkeepSettings, export housekeeping), checked when the run's config is read.
        self.settings()
        if self.export_retention_days is not None:
            check_export_retention(timedelta(days=self.export_retention_days))
        return self

    def settings(self) -> UpkeepSettings:
        return UpkeepSettings.from_days(
            self.snapshot_retention_days, self.tag_retention_days, self.orphan_age_days, self.min_input_files
        )


def build_table_maintenance(
    table_key: dg.AssetKey, group_name: str, names: TableNames = DEFAULT_NAMES
) -> dg.AssetsDefinition:
    @dg.asset(
        name=TABLE_MAINTENANCE,
        key_prefix=names.key_prefix,
        group_name=group_name,
        deps=[table_key],
        kinds={"iceberg"},
        required_resource_keys=set(names.resource_keys.values()),
    )
    def ddb_iceberg_table_maintenance(
        context: dg.AssetExecutionContext, config: TableMaintenanceConfig
    ) -> dg.MaterializeResult[None]:
        """Upkeep of the Iceberg table: compaction, expiry of old snapshots and tags, removal of orphan files and
        of the exports it has applied."""
        runner, table = names.merge_runner(context), names.table(context)
        with failures_reported(names):
            request = table.upkeep_request(config.settings(), repartition=config.repartition)
            result = runner.maintain(context, table, request)
            for line in result.describe().splitlines():
                context.log.info(line)
            housekeeping = None
            if config.export_retention_days is not None:
                # Here, not in the Spark job: it needs only the ledger and S3, and boto3's batch delete.
                housekeeping = remove_applied_exports(
                    names.exporter(context).export_source(),
                    table.ledger(),
                    retention=timedelta(days=config.export_retention_days),
                    dry_run=config.export_housekeeping_dry_run,
                    log=context.log.info,
                )
                for line in housekeeping.describe().splitlines():
                    context.log.info(line)
        # The settings it ran with: a table's own upkeep settings are its maintenance job's default config.
        settings_used = {"settings": dg.MetadataValue.json(config.model_dump())}
        metadata = upkeep_metadata(result) | settings_used
        if housekeeping is not None:
            metadata |= housekeeping_metadata(housekeeping)
        return dg.MaterializeResult(metadata=metadata)

    return ddb_iceberg_table_maintenance


def upkeep_metadata(result: UpkeepResult) -> dict[str, Any]:
    """Typed numbers, one entry per run: what charts of the asset's metadata over time read."""
    before, after = result.before, result.after
    metadata: dict[str, Any] = {
        "table": result.table,
        "data_files_before": dg.MetadataValue.int(before.data_files),
        "data_files_after": dg.MetadataValue.int(after.data_files),
        "data_mb_before": dg.MetadataValue.float(round(before.data_bytes / 1e6, 3)),
        "data_mb_after": dg.MetadataValue.float(round(after.data_bytes / 1e6, 3)),
        "delete_files_before": dg.MetadataValue.int(before.delete_files),
        "delete_files_after": dg.MetadataValue.int(after.delete_files),
        "delete_files_removed": dg.MetadataValue.int(result.delete_files_removed),
        "data_files_rewritten": dg.MetadataValue.int(result.data_files_rewritten),
        "snapshots_expired": dg.MetadataValue.int(result.snapshots_expired),
        "snapshots_after": dg.MetadataValue.int(after.snapshots),
        "tags_dropped": dg.MetadataValue.int(len(result.tags_dropped)),
        "orphan_files_removed": dg.MetadataValue.int(result.orphan_files_removed),
        "seconds": dg.MetadataValue.float(result.seconds),
    }
    metadata |= numeric_metadata(result.job_run)
    if result.repartitioned:
        metadata["partitioned_by"] = dg.MetadataValue.text(str(result.repartitioned["after"]))
    if result.warnings:
        metadata["warnings"] = dg.MetadataValue.md("\n".join(f"- {w}" for w in result.warnings))
    return metadata


def housekeeping_metadata(result: HousekeepingResult) -> dict[str, Any]:
    """What export housekeeping removed, as typed numbers (and what it would remove, in a dry run)."""
    metadata: dict[str, Any] = {
        "exports_removed": dg.MetadataValue.int(0 if result.dry_run else len(result.exports_removed)),
        "incomplete_exports_removed": dg.MetadataValue.int(0 if result.dry_run else len(result.incomplete_removed)),
        "export_bytes_removed": dg.MetadataValue.int(0 if result.dry_run else result.bytes_removed),
        "exports_kept_past_retention": dg.MetadataValue.int(result.exports_kept),
    }
    if result.dry_run:
        would = result.exports_removed + result.incomplete_removed
        metadata["exports_housekeeping_would_remove"] = dg.MetadataValue.md(
            "\n".join(f"- {export_id}" for export_id in would) or "nothing"
        )
        metadata["export_bytes_housekeeping_would_remove"] = dg.MetadataValue.int(result.bytes_removed)
    if result.warnings:
        metadata["export_housekeeping_warnings"] = dg.MetadataValue.md("\n".join(f"- {w}" for w in result.warnings))
    return metadata
