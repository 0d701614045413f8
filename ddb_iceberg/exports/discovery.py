"""Finding the exports under a source that may still apply, and putting them in the order they apply.

A source gains an export every window, for years: 35,000 a year at 15-minute windows. What a sync, a check or an
exporter reads must not grow with them, so the source is listed once and only the exports that may still apply
are read. That rests on one fact of the format: an export's id is the time it was requested (epoch
milliseconds, `01768386924000-d339e52d`), and DynamoDB exports only the past, so an export that covers any time
after a moment T was requested after T. The exports requested before the point a table reflects are never read
again (an id that does not parse is always read, never skipped).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pyarrow.fs as pafs

from ddb_iceberg.errors import ExportError
from ddb_iceberg.exports.manifest import format_timestamp
from ddb_iceberg.exports.reader import STARTED_MARKER, SUMMARY_FILE, Export
from ddb_iceberg.exports.source import ExportSource

# The folder that all incremental exports of a prefix share for their data files.
SHARED_DATA_FOLDER = "data"
# `<start time in epoch milliseconds, 14 digits>-<8 hex digits>` (see ../shared/docs/export-format.md).
EXPORT_ID = re.compile(r"(?P<millis>\d{13,14})-[0-9a-z]+")
# Exports requested this long before a moment are read as if requested after it: an export's id comes from
# DynamoDB's clock, but copies and simulators name folders too, and reading a few exports more costs little.
EXPORT_ID_CLOCK_MARGIN = timedelta(minutes=10)
# Manifests read at once (each export's are a few small objects: latency, not bandwidth, is what a sync waits for).
CONCURRENT_READS = 16
_T = TypeVar("_T")
_R = TypeVar("_R")


def export_started_at(export_id: str) -> datetime | None:
    """When an export was requested, from its id; None for an id that does not have that shape."""
    match = EXPORT_ID.fullmatch(export_id)
    return datetime.fromtimestamp(int(match["millis"]) / 1000, UTC) if match else None


@dataclass(frozen=True)
class ExportFolder:
    """One `AWSDynamoDB/<ExportId>/` folder, as the listing shows it (nothing in it read yet)."""

    export_id: str
    path: str
    started: datetime | None

    def may_cover_after(self, moment: datetime) -> bool:
        """Whether the export may hold changes after `moment` (it was requested after it, or its id is unknown)."""
        return self.started is None or self.started > moment - EXPORT_ID_CLOCK_MARGIN


@dataclass(frozen=True)
class ExportListing:
    """What a source holds of interest: completed exports in applying order, and exports not (yet) complete.

    `folders` counts every export folder under the source; `read` how many of them were opened."""

    source: ExportSource
    full_exports: tuple[Export, ...]
    incremental_exports: tuple[Export, ...]
    incomplete: tuple[str, ...] = field(default=())
    folders: int = 0
    read: int = 0

    @property
    def exports(self) -> tuple[Export, ...]:
        return self.full_exports + self.incremental_exports

    @property
    def table_arns(self) -> frozenset[str]:
        return frozenset(export.summary.table_arn for export in self.exports)


def list_export_folders(source: ExportSource) -> list[ExportFolder]:
    """The export folders under the source, oldest request first: one listing, nothing opened."""
    folders = [
        ExportFolder(info.base_name, info.path, export_started_at(info.base_name))
        for info in source.list_folder(source.exports_root).values()
        if info.type == pafs.FileType.Directory and info.base_name != SHARED_DATA_FOLDER
    ]
    return sorted(folders, key=lambda folder: folder.export_id)


def discover_exports(
    source: ExportSource, *, after: datetime | None = None, applied: Collection[str] = ()
) -> ExportListing:
    """The exports under `source` that may cover time after `after` (all of them when None), read and ordered;
    `applied` names exports known to end by `after` (the ledger's latest commit applied them), not read again.

    Full exports are ordered by exportTime; incremental exports by window (exportFromTime, then exportToTime).
    Folders with no manifest-summary.json are exports still running, or failed (a FAILED export's folder stays):
    they are reported as incomplete, never read.
    """
    folders = list_export_folders(source)
    wanted = [
        folder
        for folder in folders
        if after is None or (folder.may_cover_after(after) and folder.export_id not in applied)
    ]
    return _listing(source, len(folders), _Reader(source).read(wanted))


def discover_from_latest_full(source: ExportSource, *, up_to: datetime | None = None) -> ExportListing:
    """The newest full export (of those that end by `up_to`) and every export that may cover time after it:
    what a new table, or a re-baseline, starts from. Folders are read newest first until a full export turns
    up, so the history before it is not read."""
    folders = list_export_folders(source)
    reader = _Reader(source)
    newest_first = folders[::-1]
    baseline: Export | None = None
    start, batch = 0, 2  # the newest folder is often the full export a re-baseline was asked for
    while start < len(newest_first):
        loaded = reader.read(newest_first[start : start + batch])
        full = [e for e in loaded.exports if e.summary.is_full and (up_to is None or e.summary.covers_to <= up_to)]
        if full:
            baseline = max(full, key=lambda e: (e.summary.covers_to, e.export_id))
            break
        start, batch = start + batch, min(2 * batch, CONCURRENT_READS)
    if baseline is not None:
        # A full export may be taken of a moment in the past (ExportTime), after windows that follow that moment:
        # those were requested before the full export, and are read too.
        reader.read([f for f in folders if f.may_cover_after(baseline.summary.covers_to)])
    return _listing(source, len(folders), reader.loaded)


def load_export(source: ExportSource, export_id: str) -> Export:
    """One export by its id (e.g. a table's baseline); ExportError when its folder is missing or incomplete."""
    folder = f"{source.exports_root}/{export_id}"
    contents = source.list_folder(folder)
    if not contents:
        raise ExportError(export=export_id, problem=f"is not under {source.describe(source.exports_root)}")
    return Export.load(source, folder, contents)


@dataclass
class _Loaded:
    exports: list[Export] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)
    read: int = 0


class _Reader:
    """Reads export folders' manifests, several at once, each folder once."""

    def __init__(self, source: ExportSource) -> None:
        self.source = source
        self.loaded = _Loaded()
        self._seen: set[str] = set()

    def read(self, folders: Sequence[ExportFolder]) -> _Loaded:
        """Read the folders not read yet; returns what these were."""
        new = [folder for folder in folders if folder.export_id not in self._seen]
        self._seen.update(folder.export_id for folder in new)
        batch = _Loaded(read=len(new))
        for export, incomplete in read_concurrently(self._read_one, new):
            if export is not None:
                batch.exports.append(export)
            elif incomplete is not None:
                batch.incomplete.append(incomplete)
        self.loaded.exports += batch.exports
        self.loaded.incomplete += batch.incomplete
        self.loaded.read += batch.read
        return batch

    def _read_one(self, folder: ExportFolder) -> tuple[Export | None, str | None]:
        contents = self.source.list_folder(folder.path)
        if SUMMARY_FILE not in contents:
            started = STARTED_MARKER in contents or SHARED_DATA_FOLDER in contents
            return None, folder.export_id if started else None
        return Export.load(self.source, folder.path, contents), None


def read_concurrently(function: Callable[[_T], _R], items: Iterable[_T]) -> list[_R]:
    """`function` over `items` on a few threads (reading from S3 waits on the network, not the GIL), results in the
    items' order."""
    items = list(items)
    if len(items) <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(CONCURRENT_READS, len(items))) as pool:
        return list(pool.map(function, items))


def _listing(source: ExportSource, folders: int, loaded: _Loaded) -> ExportListing:
    full = sorted((e for e in loaded.exports if e.summary.is_full), key=lambda e: (e.summary.covers_to, e.export_id))
    incremental = sorted(
        (e for e in loaded.exports if not e.summary.is_full),
        key=lambda e: (e.summary.covers_from, e.summary.covers_to, e.export_id),
    )
    return ExportListing(
        source, tuple(full), tuple(incremental), tuple(sorted(loaded.incomplete)), folders, loaded.read
    )


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
