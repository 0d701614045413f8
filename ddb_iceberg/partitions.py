"""Export windows as Dagster time-window partitions: one partition per incremental export window."""

from __future__ import annotations

from datetime import datetime, timedelta

import dagster as dg

from ddb_iceberg.errors import SettingError
from ddb_iceberg.exports.manifest import DEFAULT_WINDOW, check_window_length

DEFAULT_WINDOW_MINUTES = DEFAULT_WINDOW // timedelta(minutes=1)
PARTITION_FORMAT = "%Y-%m-%dT%H:%M"


def window_cron(window_minutes: int) -> str:
    """The cron schedule whose ticks are the window boundaries (UTC)."""
    try:
        check_window_length(timedelta(minutes=window_minutes))
    except SettingError as error:
        raise SettingError(f"window_minutes {window_minutes}: {error}") from None
    if window_minutes < 60 and 60 % window_minutes == 0:
        return f"*/{window_minutes} * * * *"
    if window_minutes % 60 == 0 and 24 % (window_minutes // 60) == 0:
        hours = window_minutes // 60
        return "0 * * * *" if hours == 1 else "0 0 * * *" if hours == 24 else f"0 */{hours} * * *"
    raise SettingError(
        f"window_minutes {window_minutes}: the window does not divide the day evenly; use 15, 20, 30 or 60 "
        "minutes, or 2, 3, 4, 6, 8, 12 or 24 hours"
    )


def export_window_partitions(
    start: datetime, window_minutes: int = DEFAULT_WINDOW_MINUTES
) -> dg.TimeWindowPartitionsDefinition:
    """Partitions [start, start + w), [start + w, start + 2w), ... in UTC."""
    return dg.TimeWindowPartitionsDefinition(
        cron_schedule=window_cron(window_minutes),
        start=start.strftime(PARTITION_FORMAT),
        fmt=PARTITION_FORMAT,
        timezone="UTC",
    )
