"""The DynamoDB exports as assets: the full export, and one incremental export per window."""

from typing import Any

import dagster as dg
from pydantic import field_validator

from ddb_iceberg.assets.failures import failures_reported
from ddb_iceberg.engine.request import utc_moment
from ddb_iceberg.resources import ExportDescription
from ddb_iceberg.table_names import DEFAULT_NAMES, EXPORTER, FULL_EXPORT, INCREMENTAL_EXPORT, TableNames


class FullExportConfig(dg.Config):
    """When the full export is taken."""

    export_time: str | None = None  # ISO 8601 UTC; default: now (DynamoDB) or the simulation's start

    @field_validator("export_time")
    @classmethod
    def _iso_time(cls, value: str | None) -> str | None:
        if value is not None:
            utc_moment(value)
        return value


def window_of(partitions_def: dg.TimeWindowPartitionsDefinition, partition_key: str) -> dg.TimeWindow:
    return partitions_def.time_window_for_partition_key(partition_key)


def build_full_export(names: TableNames = DEFAULT_NAMES) -> dg.AssetsDefinition:
    @dg.asset(
        name=FULL_EXPORT,
        key_prefix=names.key_prefix,
        group_name=names.exports_group,
        kinds={"dynamodb", "s3"},
        required_resource_keys={names.qualified(EXPORTER)},
    )
    def ddb_full_export(context: dg.AssetExecutionContext, config: FullExportConfig) -> dg.MaterializeResult[None]:
        """A full export of the DynamoDB table to S3: the Iceberg table's baseline."""
        export_time = utc_moment(config.export_time) if config.export_time else None
        with failures_reported(names):
            description = names.exporter(context).export_full(export_time, context.log)
        return dg.MaterializeResult(metadata=description.metadata())

    return ddb_full_export


# The single-table default's full export.
ddb_full_export = build_full_export()


def backfill_metadata(descriptions: list[ExportDescription]) -> dict[str, Any]:
    """One materialization of many windows: the sums of what DynamoDB billed for them, and what that costs."""
    return {
        "windows": dg.MetadataValue.int(len(descriptions)),
        "item_count": dg.MetadataValue.int(sum(d.item_count for d in descriptions)),
        "billed_size_bytes": dg.MetadataValue.int(sum(d.billed_size_bytes for d in descriptions)),
        # DynamoDB bills each export on its own (an incremental one for at least 10 MB): summed per export.
        "estimated_cost_usd": dg.MetadataValue.float(round(sum(d.estimated_cost_usd for d in descriptions), 6)),
        "price_source": descriptions[0].price_source,
        "export_arns": dg.MetadataValue.json([d.export_arn for d in descriptions]),
    }


def build_incremental_export(
    partitions_def: dg.TimeWindowPartitionsDefinition, names: TableNames = DEFAULT_NAMES
) -> dg.AssetsDefinition:
    @dg.asset(
        name=INCREMENTAL_EXPORT,
        key_prefix=names.key_prefix,
        group_name=names.exports_group,
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        kinds={"dynamodb", "s3"},
        required_resource_keys={names.qualified(EXPORTER)},
    )
    def ddb_incremental_export(context: dg.AssetExecutionContext) -> dg.MaterializeResult[None]:
        """The incremental export of one window [start, end): each item changed in it, new and old images."""
        # A backfill (one run, many windows) starts the windows' exports together and waits for all of them.
        windows = [window_of(partitions_def, key) for key in context.partition_keys]
        with failures_reported(names):
            descriptions = names.exporter(context).export_incrementals(
                [(window.start, window.end) for window in windows], context.log
            )
        if len(descriptions) == 1:
            return dg.MaterializeResult(metadata=descriptions[0].metadata())
        return dg.MaterializeResult(metadata=backfill_metadata(descriptions))

    return ddb_incremental_export
