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


RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]
TABLE_KEY = dg.AssetKey("ddb_iceberg_table")


def build_window_schedule(
    job: Any,  # what dg.define_asset_job returns
    partitions_def: dg.TimeWindowPartitionsDefinition,
    window_minutes: int,
    lag_minutes: int,
    *,
    running: bool = False,
    table_key: dg.AssetKey = TABLE_KEY,
    name: str = "sync_each_window",
) -> dg.ScheduleDefinition:
    # DynamoDB refuses an ExportToTime too close to now, so each window is exported `lag_minutes` after it ends.
    lag = timedelta(minutes=lag_minutes)

    @dg.schedule(
        name=name,
        job=job,
        cron_schedule=offset_cron(window_minutes, lag_minutes),
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING if running else dg.DefaultScheduleStatus.STOPPED,
    )
    def sync_each_window(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        """Exports and merges the windows that closed at least the lag ago and are not in the table yet, in one
        run: the latest window, or, after a pause (or at the start), all of them since the first one missing."""
        closed = partitions_def.get_partition_keys(current_time=context.scheduled_execution_time - lag)
        if not closed:
            return dg.SkipReason("no window has closed yet")
        in_table = context.instance.get_materialized_partitions(table_key)
        missing = [key for key in closed if key not in in_table]
        if not missing:
            return dg.SkipReason(f"window {closed[-1]} is in the table already")
        if missing[0] == closed[-1]:
            return dg.RunRequest(run_key=closed[-1], partition_key=closed[-1])
        # A catch-up: one run over the range (the assets' single-run backfill policy), unless one is under way.
        running_now = context.instance.get_runs(filters=dg.RunsFilter(job_name=job.name, statuses=IN_FLIGHT), limit=1)
        if running_now:
            return dg.SkipReason(f"catching up since window {missing[0]}: run {running_now[0].run_id} is under way")
        return dg.RunRequest(
            run_key=f"{missing[0]}...{closed[-1]}", tags={RANGE_START: missing[0], RANGE_END: closed[-1]}
        )

    return sync_each_window


def build_maintenance_schedule(
    job: Any, cron_schedule: str, name: str = "maintain_table_daily"
) -> dg.ScheduleDefinition:
    # Upkeep and syncs may overlap: both commit optimistically and retry (engine.upkeep), so no pool is needed.
    return dg.ScheduleDefinition(
        name=name,
        job=job,
        cron_schedule=cron_schedule,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description="Compacts the Iceberg table, expires old snapshots and tags, removes orphan files.",
    )
