"""Finding the exports under a source and putting them in the order they apply."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import pyarrow.fs as pafs

from ddb_iceberg.exports.manifest import format_timestamp
from ddb_iceberg.exports.reader import STARTED_MARKER, SUMMARY_FILE, Export
from ddb_iceberg.exports.source import ExportSource

# The folder that all incremental exports of a prefix share for their data files.
SHARED_DATA_FOLDER = "data"


@dataclass(frozen=True)
class ExportListing:
    """What a source holds: completed exports in applying order, and exports not (yet) complete."""

    source: ExportSource
    full_exports: tuple[Export, ...]
    incremental_exports: tuple[Export, ...]
    incomplete: tuple[str, ...] = field(default=())

    @property
    def exports(self) -> tuple[Export, ...]:
        return self.full_exports + self.incremental_exports

    @property
    def table_arns(self) -> frozenset[str]:
        return frozenset(export.summary.table_arn for export in self.exports)


def discover_exports(source: ExportSource) -> ExportListing:
    """List every export under `source`, read its manifests, classify and order it.

    Full exports are ordered by exportTime; incremental exports by window (exportFromTime, then exportToTime).
    Folders with `_started` but no manifest-summary.json are exports still running (or failed): they are
    reported as incomplete, never read.
    """
    selector = pafs.FileSelector(source.exports_root, allow_not_found=True, recursive=False)
    folders = sorted(
        info.path
        for info in source.filesystem.get_file_info(selector)
        if info.type == pafs.FileType.Directory and info.base_name != SHARED_DATA_FOLDER
    )
    full: list[Export] = []
    incremental: list[Export] = []
    incomplete: list[str] = []
    for folder in folders:
        if not source.exists(f"{folder}/{SUMMARY_FILE}"):
            if source.exists(f"{folder}/{STARTED_MARKER}") or source.exists(f"{folder}/{SHARED_DATA_FOLDER}"):
                incomplete.append(folder.rsplit("/", 1)[-1])
            continue
        export = Export.load(source, folder)
        (full if export.summary.is_full else incremental).append(export)
    full.sort(key=lambda e: (e.summary.covers_to, e.export_id))
    incremental.sort(key=lambda e: (e.summary.covers_from, e.summary.covers_to, e.export_id))
    return ExportListing(source, tuple(full), tuple(incremental), tuple(incomplete))


@dataclass(frozen=True)
class Gap:
    """An interval no export covers: writes in it are lost unless a new full export re-baselines."""

    start: datetime
    end: datetime

    def __str__(self) -> str:
        return f"[{format_timestamp(self.start)}, {format_timestamp(self.end)}) ({self.end - self.start} uncovered)"


def find_gaps(reflected: datetime, incrementals: Iterable[Export]) -> list[Gap]:
    """Intervals after `reflected` (the point a table reflects) that the windows, in order, leave uncovered."""
    gaps: list[Gap] = []
    for export in incrementals:
        window_start, window_end = export.summary.covers_from, export.summary.covers_to
        if window_end <= reflected:
            continue
        if window_start > reflected:
            gaps.append(Gap(reflected, window_start))
        reflected = window_end
    return gaps
