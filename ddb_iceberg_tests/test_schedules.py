"""Which window a schedule tick exports and merges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from ddb_iceberg.definitions import Deployment, build_definitions, local_deployment
from ddb_iceberg.partitions import export_window_partitions, window_cron
from ddb_iceberg.schedules import offset_cron

DAY = datetime(2026, 3, 5, tzinfo=UTC)
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def _schedule(window_minutes: int, lag_minutes: int, start: datetime = DAY) -> dg.ScheduleDefinition:
    deployment = Deployment(
        partitions_start=start,
        window_minutes=window_minutes,
        lag_minutes=lag_minutes,
        resources=local_deployment().resources,
    )
    return build_definitions(deployment).resolve_schedule_def("sync_each_window")


def _tick(schedule: dg.ScheduleDefinition, moment: datetime, in_table: list[str]) -> dg.RunRequest | dg.SkipReason:
    with dg.instance_for_test() as instance:
        for key in in_table:
            instance.report_runless_asset_event(dg.AssetMaterialization(asset_key="ddb_iceberg_table", partition=key))
        result = schedule(dg.build_schedule_context(instance=instance, scheduled_execution_time=moment))
    assert isinstance(result, dg.RunRequest | dg.SkipReason)
    return result


@pytest.mark.parametrize(
    ("window", "lag", "tick", "partition"),
    [
        (60, 20, datetime(2026, 3, 5, 14, 20, tzinfo=UTC), "2026-03-05T13:00"),
        (60, 20, datetime(2026, 3, 5, 14, 19, tzinfo=UTC), "2026-03-05T12:00"),
        (15, 20, datetime(2026, 3, 5, 14, 35, tzinfo=UTC), "2026-03-05T14:00"),
        (1440, 30, datetime(2026, 3, 7, 0, 30, tzinfo=UTC), "2026-03-06T00:00"),
    ],
)
def test_a_tick_runs_the_latest_window_closed_at_least_the_lag_ago(
    window: int, lag: int, tick: datetime, partition: str
) -> None:
    schedule = _schedule(window, lag)
    partitions = export_window_partitions(DAY, window)
    earlier = [key for key in partitions.get_partition_keys(current_time=tick) if key < partition]
    result = _tick(schedule, tick, in_table=earlier)
    assert isinstance(result, dg.RunRequest)
    assert result.partition_key == partition and result.run_key == partition


def test_the_first_tick_catches_up_every_closed_window_in_one_run() -> None:
    result = _tick(_schedule(60, 20), datetime(2026, 3, 5, 14, 20, tzinfo=UTC), in_table=[])
    assert isinstance(result, dg.RunRequest) and result.partition_key is None
    assert result.tags[RANGE_START] == "2026-03-05T00:00" and result.tags[RANGE_END] == "2026-03-05T13:00"


def test_after_a_pause_a_tick_catches_up_from_the_first_window_missing() -> None:
    done = [f"2026-03-05T{hour:02d}:00" for hour in range(10)]
    result = _tick(_schedule(60, 20), datetime(2026, 3, 5, 14, 20, tzinfo=UTC), in_table=done)
    assert isinstance(result, dg.RunRequest)
    assert (result.tags[RANGE_START], result.tags[RANGE_END]) == ("2026-03-05T10:00", "2026-03-05T13:00")


def test_a_tick_skips_when_the_table_has_every_closed_window() -> None:
    done = [f"2026-03-05T{hour:02d}:00" for hour in range(14)]
    assert isinstance(_tick(_schedule(60, 20), datetime(2026, 3, 5, 14, 20, tzinfo=UTC), in_table=done), dg.SkipReason)


def test_no_window_closed_yet() -> None:
    result = _tick(_schedule(60, 20), datetime(2026, 3, 5, 0, 30, tzinfo=UTC), in_table=[])
    assert isinstance(result, dg.SkipReason)


def test_the_live_local_pipeline_starts_a_day_back_with_short_windows_and_its_schedule_on(tmp_path: Path) -> None:
    now = datetime(2026, 12, 2, 3, 50, 12, tzinfo=UTC)
    deployment = local_deployment(str(tmp_path), clock="live", now=now)
    assert deployment.partitions_start == datetime(2026, 12, 1, 3, 45, tzinfo=UTC)
    assert (deployment.window_minutes, deployment.schedule_running) == (15, True)
    schedule = build_definitions(deployment).resolve_schedule_def("sync_each_window")
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    # The start is kept: a later load (a restart of `dagster dev`) has the same partitions and history.
    later = local_deployment(str(tmp_path), clock="live", now=now + timedelta(hours=5))
    assert later.partitions_start == deployment.partitions_start
    assert build_definitions(local_deployment()).resolve_schedule_def("sync_each_window").default_status == (
        dg.DefaultScheduleStatus.STOPPED
    )


@pytest.mark.parametrize(
    ("window", "lag", "cron"),
    [(60, 20, "20 * * * *"), (15, 20, "5,20,35,50 * * * *"), (1440, 90, "30 1 * * *"), (360, 20, "20 0,6,12,18 * * *")],
)
def test_ticks_follow_the_windows_by_the_lag(window: int, lag: int, cron: str) -> None:
    assert offset_cron(window, lag) == cron


@pytest.mark.parametrize("minutes", [10, 45, 1500, 90])
def test_windows_dynamodb_or_the_day_cannot_take_are_refused(minutes: int) -> None:
    with pytest.raises(ValueError):
        window_cron(minutes)
