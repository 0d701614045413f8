"""The Iceberg table as an asset: each window's partition brings the table up to that window's end."""

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import dagster as dg

from ddb_iceberg.assets.exports import window_of
from ddb_iceberg.assets.failures import failures_reported
from ddb_iceberg.engine.sync import SyncResult
from ddb_iceberg.resources import IcebergTableResource
from ddb_iceberg.resources.prices import numeric_metadata, summed
from ddb_iceberg.table_names import (
    CHANGE_FEED,
    DEFAULT_NAMES,
    FULL_EXPORT,
    ICEBERG_TABLE,
    ITEM_HISTORY,
    TableNames,
)

PREVIEW_ROWS = 5


class IcebergTableConfig(dg.Config):
    """How the merge treats missing windows, and whether it starts again from the latest full export."""

    allow_gaps: bool = False  # apply exports across uncovered time (and record the gap) instead of refusing
    # Replace the table's rows with the latest full export and the windows after it, in one commit (history and
    # tags stay): the way out of a gap or a lost ledger. The job `rebaseline_job` sets it.
    rebaseline: bool = False


TABLE_DESCRIPTION = "The Iceberg table, equal to the DynamoDB table as of the window's end (exports merged with Spark)."
CHANGE_FEED_DESCRIPTION = (
    "The table's change feed (<table>__changes): one row per key per applied export, with the operation and the "
    "item before and after, written in the table's sync."
)
ITEM_HISTORY_DESCRIPTION = (
    "The table's item history (<table>__history, SCD type 2): one row per version of each item, valid from the end "
    "of the window that made it to the end of the one that changed or deleted it, written in the table's sync."
)


def build_iceberg_table(
    partitions_def: dg.TimeWindowPartitionsDefinition,
    incremental_export: dg.AssetsDefinition,
    names: TableNames = DEFAULT_NAMES,
    *,
    change_feed: bool = False,
    history: bool = False,
) -> dg.AssetsDefinition:
    """The table's asset; with `change_feed` and `history` (the table resource's), its change feed and item
    history too, downstream of it: one sync writes them all."""
    table_key = names.asset_key(ICEBERG_TABLE)
    specs = [
        dg.AssetSpec(
            table_key,
            description=TABLE_DESCRIPTION,
            group_name=names.table_group,
            deps=[names.asset_key(FULL_EXPORT), incremental_export.key],
            kinds={"iceberg", "spark"},
        )
    ]
    # The companions, each downstream of what it is built from (so lineage shows it); the history needs the feed.
    change_feed = change_feed or history
    companions = [(CHANGE_FEED, CHANGE_FEED_DESCRIPTION, table_key)] if change_feed else []
    if history:
        companions.append((ITEM_HISTORY, ITEM_HISTORY_DESCRIPTION, names.asset_key(CHANGE_FEED)))
    for name, description, upstream in companions:
        specs.append(
            dg.AssetSpec(
                names.asset_key(name),
                description=description,
                group_name=names.table_group,
                deps=[upstream],
                kinds={"iceberg"},
            )
        )

    @dg.multi_asset(
        name=names.qualified(ICEBERG_TABLE),
        specs=specs,
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        required_resource_keys=set(names.resource_keys.values()),
    )
    def ddb_iceberg_table(
        context: dg.AssetExecutionContext, config: IcebergTableConfig
    ) -> Iterator[dg.MaterializeResult[None]]:
        exporter, merge_runner, table = names.exporter(context), names.merge_runner(context), names.table(context)
        windows = [window_of(partitions_def, key) for key in context.partition_keys]
        up_to = max(window.end for window in windows)
        results: list[SyncResult] = []
        with failures_reported(names):
            source = exporter.export_source()
            # Every setting is checked here, before Spark starts.
            request = table.sync_request(
                source, up_to=up_to, allow_gaps=config.allow_gaps, rebaseline=config.rebaseline
            )
            if config.rebaseline:
                context.log.info("Re-baselining: the table's rows are replaced by the latest full export")
            elif not table.exists():
                # The baseline goes in first, in a commit of its own, so that it can be checked on its own.
                context.log.info("The table has no baseline yet: loading the full export first")
                baseline = exporter.baseline_for_a_new_table(context.log)
                if baseline is not None:
                    # The exporter took it on the way (the live local pipeline): the full export asset shows it.
                    context.log_event(
                        dg.AssetMaterialization(
                            asset_key=names.asset_key(FULL_EXPORT),
                            description="Taken by the table's first run, as its baseline.",
                            metadata=baseline.metadata(),
                        )
                    )
                first_window = replace(request, up_to=min(w.start for w in windows), allow_gaps=False)
                results.append(merge_runner.sync(context, table, first_window))
            results.append(merge_runner.sync(context, table, request))
        result = results[-1]
        for line in result.describe().splitlines():
            context.log.info(line)
        yield dg.MaterializeResult(asset_key=table_key, metadata=_metadata(results, table))
        if change_feed:
            yield dg.MaterializeResult(asset_key=names.asset_key(CHANGE_FEED), metadata=_feed_metadata(results))
        if history:
            yield dg.MaterializeResult(
                asset_key=names.asset_key(ITEM_HISTORY),
                metadata={
                    "table": next((r.item_history for r in reversed(results) if r.item_history), ""),
                    "exports_applied": dg.MetadataValue.int(sum(len(r.applied_exports) for r in results)),
                },
            )

    return ddb_iceberg_table


def _feed_metadata(results: list[SyncResult]) -> dict[str, Any]:
    return {
        "table": next((r.change_feed for r in reversed(results) if r.change_feed), ""),
        "rows_added": dg.MetadataValue.int(sum(r.change_feed_rows for r in results)),
        "exports_applied": dg.MetadataValue.int(sum(len(r.applied_exports) for r in results)),
    }


def _metadata(results: list[SyncResult], table: IcebergTableResource) -> dict[str, Any]:
    last = results[-1]
    metadata: dict[str, Any] = {
        "table": table.identifier,
        "rows_inserted": dg.MetadataValue.int(sum(r.rows_inserted for r in results)),
        "rows_updated": dg.MetadataValue.int(sum(r.rows_updated for r in results)),
        "rows_deleted": dg.MetadataValue.int(sum(r.rows_deleted for r in results)),
        "snapshot_id": str(last.snapshot_id),
        "reflects": last.reflects or "",
        "tag": last.tag or "",
        "exports_applied": dg.MetadataValue.int(sum(len(r.applied_exports) for r in results)),
        "rebaseline_of": next((r.rebaseline_of for r in results if r.rebaseline_of), "not a re-baseline"),
        "schema_changes": dg.MetadataValue.md("\n".join(f"- {c}" for r in results for c in r.schema_changes) or "none"),
        "type_drift": dg.MetadataValue.md("\n".join(f"- {d}" for d in last.type_drift) or "none"),
        "seconds": dg.MetadataValue.float(round(sum(r.seconds for r in results), 2)),
    }
    # Where the merge ran and what it cost (EMR Serverless): numbers, so the asset's page plots cost per window.
    metadata |= numeric_metadata(summed([r.job_run for r in results if r.job_run]))
    if last.warnings:
        metadata["warnings"] = dg.MetadataValue.md("\n".join(f"- {w}" for w in last.warnings))
    metadata["preview"] = dg.MetadataValue.md(_preview(table))
    return metadata


def _preview(table: IcebergTableResource) -> str:
    """The first rows of the table, as a Markdown table of its first columns."""
    rows = table.load().scan(limit=PREVIEW_ROWS).to_arrow().to_pylist()
    if not rows:
        return "(empty)"
    columns = list(rows[0])[:8]
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    for row in rows:
        cells = [str(row[c]).replace("|", "\\|")[:40] for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
