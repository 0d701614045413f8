"""Export housekeeping: remove the exports a table has applied, once they are older than a retention.

DynamoDB writes every export into the source and removes none. A table synced every 15 minutes gains 35,000
export folders a year, and their data files (an incremental export's in the `data/` folder all of them share):
without housekeeping the export bucket grows by every window's data forever, and so does the one listing each
sync makes of the source.

Removed, when requested more than `retention` ago (default 40 days: beyond the 35 days of point-in-time recovery
within which an export of the same time could be taken again):
- exports of the ledger's table whose changes the table holds (they end no later than the point it reflects),
  with the data files their manifests list;
- export folders that never completed (no manifest-summary.json: a FAILED export's folder stays otherwise).
Never removed: an export that ends after the point the table reflects (not applied yet); the full export the table
stands on (its baseline); the newest full export since that baseline (what a re-baseline would start from);
another table's export; anything when the ledger does not name this source as the one its syncs read.

A run that dies halfway is run again: an export's data files go first, then its manifest-summary.json (after
which the folder is an incomplete one, removed as such), then the rest of its folder.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow.fs as pafs

from ddb_iceberg.engine.ledger import LedgerEntry
from ddb_iceberg.engine.request import Log
from ddb_iceberg.errors import ExportError, SettingError
from ddb_iceberg.exports import Export, ExportSource
from ddb_iceberg.exports.discovery import SHARED_DATA_FOLDER, ExportFolder, list_export_folders, read_concurrently
from ddb_iceberg.exports.reader import SUMMARY_CHECKSUM_FILES, SUMMARY_FILE

DEFAULT_EXPORT_RETENTION = timedelta(days=40)


@dataclass
class HousekeepingResult:
    """What housekeeping removed (or, in a dry run, would remove); reported by the CLI and the upkeep asset."""

    source: str
    dry_run: bool
    retention_days: float
    exports_removed: list[str] = field(default_factory=list)
    incomplete_removed: list[str] = field(default_factory=list)
    exports_kept: int = 0  # older than the retention, but kept: see the module's "never removed"
    files_removed: int = 0
    bytes_removed: int = 0  # of the files whose size could be read
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        verb = "would remove" if self.dry_run else "removed"
        lines = [
            f"export housekeeping of {self.source} (retention {self.retention_days:g} days): {verb} "
            f"{len(self.exports_removed)} applied export(s) and {len(self.incomplete_removed)} incomplete one(s), "
            f"{self.files_removed} file(s), {self.bytes_removed / 1e6:.1f} MB; kept {self.exports_kept} older one(s)"
        ]
        if self.dry_run:
            lines += [f"  would remove {export_id}" for export_id in self.exports_removed + self.incomplete_removed]
        lines += [f"  warning: {warning}" for warning in self.warnings]
        return "\n".join(lines)


def check_export_retention(retention: timedelta) -> None:
    if retention < timedelta(0):
        raise SettingError(f"export retention {retention / timedelta(days=1):g} days is negative")


def remove_applied_exports(
    source: ExportSource,
    ledger: LedgerEntry | None,
    *,
    retention: timedelta = DEFAULT_EXPORT_RETENTION,
    now: datetime | None = None,
    dry_run: bool = False,
    log: Log = lambda _message: None,
) -> HousekeepingResult:
    """Remove the exports under `source` that the table (its latest ledger entry) has applied and that were
    requested more than `retention` before `now` (module docstring); `dry_run` only reports them."""
    check_export_retention(retention)
    now = now or datetime.now(UTC)
    result = HousekeepingResult(source.location, dry_run, retention / timedelta(days=1))
    if ledger is None:
        result.warnings.append("the table has no ledger yet: nothing is known to be applied, nothing removed")
        return result
    if not ledger.source:
        result.warnings.append(
            "the table's ledger names no export source (its last sync ran an earlier ddb_iceberg): nothing "
            "removed until a sync records it"
        )
        return result
    if ledger.source != source.location:
        raise SettingError(
            f"export housekeeping of {source.location}: the table's ledger says its syncs read {ledger.source}; "
            "refusing to remove exports from a source it does not name"
        )
    cutoff = now - retention
    old = [folder for folder in list_export_folders(source) if folder.started is None or folder.started < cutoff]
    log(f"Export housekeeping: {len(old)} export folder(s) requested before {cutoff:%Y-%m-%d %H:%M} UTC to look at")
    found = read_concurrently(lambda folder: _Found.inspect(source, folder), old)
    newest_full = _newest_full_since_baseline(found, ledger)
    for item in found:
        files = item.files_to_remove(source, ledger, cutoff, newest_full, result)
        if files is None:
            continue
        result.files_removed += len(files)
        result.bytes_removed += sum(size for _, size in files if size is not None)
        if not dry_run:
            source.delete_files([path for path, _ in files])
            source.remove_empty_folders(item.folder.path, [SHARED_DATA_FOLDER])
    verb = "Would remove" if dry_run else "Removed"
    log(f"{verb} {len(result.exports_removed)} applied and {len(result.incomplete_removed)} incomplete export(s)")
    return result


@dataclass(frozen=True)
class _Found:
    """An export folder older than the retention, as its listing and manifests show it."""

    folder: ExportFolder
    contents: dict[str, pafs.FileInfo]
    export: Export | None
    problem: str | None = None

    @classmethod
    def inspect(cls, source: ExportSource, folder: ExportFolder) -> _Found:
        contents = source.list_folder(folder.path)
        if SUMMARY_FILE not in contents:
            return cls(folder, contents, None)
        try:
            return cls(folder, contents, Export.load(source, folder.path, contents))
        except ExportError as error:
            return cls(folder, contents, None, str(error))

    def files_to_remove(
        self,
        source: ExportSource,
        ledger: LedgerEntry,
        cutoff: datetime,
        newest_full: str | None,
        result: HousekeepingResult,
    ) -> list[tuple[str, int | None]] | None:
        """The files to remove, in a safe order (data, the summary, the rest), or None to keep the export."""
        export_id = self.folder.export_id
        if self.problem is not None:
            result.warnings.append(f"kept {export_id}: its manifests do not read ({self.problem})")
            result.exports_kept += 1
            return None
        if self.export is None:
            if self.folder.started is None:  # no time to judge its age by
                result.exports_kept += 1
                return None
            result.incomplete_removed.append(export_id)
            return self._folder_files(source)
        summary = self.export.summary
        if self.folder.started is None and summary.start_time >= cutoff:
            return None  # an id without a time: its manifest says it is recent
        keep = (
            summary.table_arn != ledger.table_arn
            or summary.covers_to > ledger.reflects
            or export_id in (ledger.baseline_export, newest_full)
        )
        if keep:
            result.exports_kept += 1
            return None
        result.exports_removed.append(export_id)
        folder_files = self._folder_files(source)  # a full export's data files among them, with their sizes
        sizes = dict(folder_files)
        data = [self.export.data_file_path(entry) for entry in self.export.data_files]
        # An incremental export's data files are in the shared folder, sized one by one.
        first = [(path, sizes[path] if path in sizes else source.file_size(path)) for path in data]
        data_paths = set(data)
        return first + [(path, size) for path, size in folder_files if path not in data_paths]

    def _folder_files(self, source: ExportSource) -> list[tuple[str, int | None]]:
        """The folder's own files, manifest-summary.json and its checksum before the rest; a full export's data
        folder (listed, so that files its manifest does not name go too) first of all."""
        first = (SUMMARY_FILE, *SUMMARY_CHECKSUM_FILES)
        files = (
            [
                (info.path, info.size)
                for info in source.list_folder(self.contents[SHARED_DATA_FOLDER].path).values()
                if info.type == pafs.FileType.File
            ]
            if SHARED_DATA_FOLDER in self.contents
            else []
        )
        own = [info for info in self.contents.values() if info.type == pafs.FileType.File]
        own.sort(key=lambda info: (info.base_name not in first, info.base_name))
        return files + [(info.path, info.size) for info in own]


def _newest_full_since_baseline(found: list[_Found], ledger: LedgerEntry) -> str | None:
    """Of the old full exports the table has applied or could re-baseline from, the newest: kept."""
    full = [
        item.export
        for item in found
        if item.export is not None
        and item.export.summary.is_full
        and item.export.summary.table_arn == ledger.table_arn
        and ledger.baseline_time <= item.export.summary.covers_to <= ledger.reflects
    ]
    return max(full, key=lambda export: (export.summary.covers_to, export.export_id)).export_id if full else None
