"""Export windows as Dagster time-window partitions: one partition per incremental export window."""

from __future__ import annotations

from datetime import datetime

import dagster as dg

MIN_WINDOW_MINUTES = 15
MAX_WINDOW_MINUTES = 24 * 60
PARTITION_FORMAT = "%Y-%m-%dT%H:%M"


def window_cron(window_minutes: int) -> str:
    """The cron schedule whose ticks are the window boundaries (UTC)."""
    if not MIN_WINDOW_MINUTES <= window_minutes <= MAX_WINDOW_MINUTES:
        raise ValueError(f"export windows last 15 minutes to 24 hours, not {window_minutes} minutes")
    if window_minutes < 60 and 60 % window_minutes == 0:
        return f"*/{window_minutes} * * * *"
    if window_minutes % 60 == 0 and 24 % (window_minutes // 60) == 0:
        hours = window_minutes // 60
        return "0 * * * *" if hours == 1 else "0 0 * * *" if hours == 24 else f"0 */{hours} * * *"
    raise ValueError(
        f"a {window_minutes}-minute window does not divide the day evenly; use 15, 20, 30 or 60 minutes, "
        "or 2, 3, 4, 6, 8, 12 or 24 hours"
    )


def export_window_partitions(start: datetime, window_minutes: int = 60) -> dg.TimeWindowPartitionsDefinition:
    """Partitions [start, start + w), [start + w, start + 2w), ... in UTC."""
    return dg.TimeWindowPartitionsDefinition(
        cron_schedule=window_cron(window_minutes),
        start=start.strftime(PARTITION_FORMAT),
        fmt=PARTITION_FORMAT,
        timezone="UTC",
    )
