"""A full export followed by back-to-back incremental windows: what a user's pipeline would have produced."""

from __future__ import annotations

from datetime import datetime, timedelta

from ddb_iceberg.exports.manifest import ExportView, ManifestSummary, check_window_length
from ddb_iceberg.simulator.workload import SimulatedTable
from ddb_iceberg.simulator.writer import ExportTarget, write_full_export, write_incremental_export


def write_series(
    table: SimulatedTable,
    target: ExportTarget,
    *,
    windows: int,
    window_length: timedelta = timedelta(hours=1),
    full_export_time: datetime | None = None,
    view: ExportView = ExportView.NEW_AND_OLD_IMAGES,
) -> list[ManifestSummary]:
    """Write a full export at `full_export_time` (default: the table's start), then `windows` windows that
    tile the time after it with no gap."""
    check_window_length(window_length)  # before anything is written
    export_time = full_export_time or table.config.start
    summaries = [write_full_export(table, target, export_time)]
    window_start = summaries[0].covers_to
    for _ in range(windows):
        summaries.append(write_incremental_export(table, target, window_start, window_start + window_length, view))
        window_start += window_length
    return summaries
