"""Which window a schedule tick exports and merges."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import pytest

from ddb_iceberg.definitions import Deployment, build_definitions, local_deployment
from ddb_iceberg.partitions import window_cron
from ddb_iceberg.schedules import offset_cron


def _schedule(window_minutes: int, lag_minutes: int) -> dg.ScheduleDefinition:
    deployment = Deployment(
        partitions_start=datetime(2026, 1, 1, tzinfo=UTC),
        window_minutes=window_minutes,
        lag_minutes=lag_minutes,
        resources=local_deployment().resources,
    )
    return build_definitions(deployment).resolve_schedule_def("sync_each_window")


@pytest.mark.parametrize(
    ("window", "lag", "tick", "partition"),
    [
        (60, 20, datetime(2026, 3, 5, 14, 20, tzinfo=UTC), "2026-03-05T13:00"),
        (60, 20, datetime(2026, 3, 5, 14, 19, tzinfo=UTC), "2026-03-05T12:00"),
        (15, 20, datetime(2026, 3, 5, 14, 35, tzinfo=UTC), "2026-03-05T14:00"),
        (1440, 30, datetime(2026, 3, 6, 0, 30, tzinfo=UTC), "2026-03-05T00:00"),
    ],
)
def test_a_tick_runs_the_latest_window_closed_at_least_the_lag_ago(
    window: int, lag: int, tick: datetime, partition: str
) -> None:
    result = _schedule(window, lag)(dg.build_schedule_context(scheduled_execution_time=tick))
    assert isinstance(result, dg.RunRequest)
    assert result.partition_key == partition and result.run_key == partition


def test_no_window_closed_yet() -> None:
    result = _schedule(60, 20)(
        dg.build_schedule_context(scheduled_execution_time=datetime(2026, 1, 1, 0, 30, tzinfo=UTC))
    )
    assert isinstance(result, dg.SkipReason)


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
