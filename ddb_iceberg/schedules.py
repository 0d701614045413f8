"""The schedules: export and merge each window shortly after it closes; keep the table in shape daily."""

from datetime import timedelta
from typing import Any

import dagster as dg


def offset_cron(window_minutes: int, lag_minutes: int) -> str:
    """Ticks once per window, `lag_minutes` after each window boundary (UTC)."""
    if window_minutes < 60:
        minutes = sorted({(lag_minutes + k * window_minutes) % 60 for k in range(60 // window_minutes)})
        return f"{','.join(map(str, minutes))} * * * *"
    hours_per_window = window_minutes // 60
    if hours_per_window == 1:
        return f"{lag_minutes % 60} * * * *"
    hours = sorted({(lag_minutes // 60 + k * hours_per_window) % 24 for k in range(24 // hours_per_window)})
    return f"{lag_minutes % 60} {','.join(map(str, hours))} * * *"


def build_window_schedule(
    job: Any,  # what dg.define_asset_job returns
    partitions_def: dg.TimeWindowPartitionsDefinition,
    window_minutes: int,
    lag_minutes: int,
) -> dg.ScheduleDefinition:
    # DynamoDB refuses an ExportToTime too close to now, so each window is exported `lag_minutes` after it ends.
    lag = timedelta(minutes=lag_minutes)

    @dg.schedule(
        name="sync_each_window",
        job=job,
        cron_schedule=offset_cron(window_minutes, lag_minutes),
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.STOPPED,
    )
    def sync_each_window(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        """Exports and merges the latest window that closed at least the lag ago."""
        closed = partitions_def.get_partition_keys(current_time=context.scheduled_execution_time - lag)
        if not closed:
            return dg.SkipReason("no window has closed yet")
        return dg.RunRequest(run_key=closed[-1], partition_key=closed[-1])

    return sync_each_window


def build_maintenance_schedule(job: Any, cron_schedule: str) -> dg.ScheduleDefinition:
    # Upkeep and syncs may overlap: both commit optimistically and retry (engine.upkeep), so no pool is needed.
    return dg.ScheduleDefinition(
        name="maintain_table_daily",
        job=job,
        cron_schedule=cron_schedule,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description="Compacts the Iceberg table, expires old snapshots and tags, removes orphan files.",
    )
