"""What a sync applies: the ledger a table carries, the exports it still lacks, and the changes they make.

Pure Python over the export reader: no Spark here, so planning and its refusals happen before any job
touches the table.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from ddb_iceberg.exports import ChangeRecord, Export, ExportListing, FullExportItem, Gap, find_gaps
from ddb_iceberg.exports.errors import ExportError
from ddb_iceberg.exports.manifest import format_timestamp, parse_timestamp, to_micros
from ddb_iceberg.exports.typed_values import DecodedItem

Key = tuple[object, ...]

# Snapshot summary properties: the ledger, committed atomically with the data it describes.
PROPERTY_PREFIX = "ddb-iceberg."
REFLECTS_TIME = PROPERTY_PREFIX + "reflects-time"
APPLIED_EXPORTS = PROPERTY_PREFIX + "applied-exports"
BASELINE_EXPORT = PROPERTY_PREFIX + "baseline-export"
BASELINE_TIME = PROPERTY_PREFIX + "baseline-time"
TABLE_ARN = PROPERTY_PREFIX + "table-arn"
ACCEPTED_GAPS = PROPERTY_PREFIX + "accepted-gaps"
ROWS_INSERTED = PROPERTY_PREFIX + "rows-inserted"
ROWS_UPDATED = PROPERTY_PREFIX + "rows-updated"
ROWS_DELETED = PROPERTY_PREFIX + "rows-deleted"
ORPHANS_SWEPT_AT = PROPERTY_PREFIX + "orphans-swept-at"
# Table property: which attribute and DynamoDB type each column holds (see engine.schema.Layout).
LAYOUT_PROPERTY = PROPERTY_PREFIX + "layout"


class SyncError(Exception):
    """A sync that must not run; nothing has been written."""


class GapError(SyncError):
    """Windows that leave time uncovered: the writes in it would be lost."""

    def __init__(self, gaps: Sequence[Gap]) -> None:
        self.gaps = tuple(gaps)
        listed = "; ".join(str(gap) for gap in gaps)
        super().__init__(
            f"refusing to apply exports across a gap: no export covers {listed}. Writes in that time would be "
            "lost. Export the missing window(s) (or take a new full export into a new table), or pass "
            "--allow-gaps to apply anyway and record the gap."
        )


@dataclass(frozen=True)
class LedgerEntry:
    """What one commit of the table recorded about the exports it applied."""

    snapshot_id: int
    reflects: datetime
    applied_exports: tuple[str, ...]
    baseline_export: str
    baseline_time: datetime
    table_arn: str
    accepted_gaps: tuple[str, ...] = ()
    rows_inserted: int = 0
    rows_updated: int = 0
    rows_deleted: int = 0
    orphans_swept_at: datetime | None = None

    @classmethod
    def from_summary(cls, snapshot_id: int, summary: Mapping[str, str]) -> LedgerEntry | None:
        if REFLECTS_TIME not in summary:
            return None
        return cls(
            snapshot_id=snapshot_id,
            reflects=parse_timestamp(summary[REFLECTS_TIME]),
            applied_exports=tuple(filter(None, summary.get(APPLIED_EXPORTS, "").split(","))),
            baseline_export=summary.get(BASELINE_EXPORT, ""),
            baseline_time=parse_timestamp(summary.get(BASELINE_TIME, summary[REFLECTS_TIME])),
            table_arn=summary.get(TABLE_ARN, ""),
            accepted_gaps=tuple(json.loads(summary.get(ACCEPTED_GAPS, "[]"))),
            rows_inserted=int(summary.get(ROWS_INSERTED, 0)),
            rows_updated=int(summary.get(ROWS_UPDATED, 0)),
            rows_deleted=int(summary.get(ROWS_DELETED, 0)),
            orphans_swept_at=parse_timestamp(summary[ORPHANS_SWEPT_AT]) if ORPHANS_SWEPT_AT in summary else None,
        )


@dataclass(frozen=True)
class SyncPlan:
    """The exports one sync applies, in order, and the point in time the table reflects afterwards."""

    baseline: Export | None
    incrementals: tuple[Export, ...]
    skipped: tuple[Export, ...]
    gaps: tuple[Gap, ...]
    reflects_before: datetime | None
    reflects_after: datetime
    baseline_export: str
    baseline_time: datetime
    table_arn: str

    @property
    def exports(self) -> tuple[Export, ...]:
        return ((self.baseline,) if self.baseline else ()) + self.incrementals

    @property
    def is_noop(self) -> bool:
        return not self.exports

    def snapshot_properties(self, inserted: int, updated: int, deleted: int, swept_at: datetime) -> dict[str, str]:
        return {
            ORPHANS_SWEPT_AT: format_timestamp(swept_at),
            REFLECTS_TIME: format_timestamp(self.reflects_after),
            APPLIED_EXPORTS: ",".join(e.export_id for e in self.exports),
            BASELINE_EXPORT: self.baseline_export,
            BASELINE_TIME: format_timestamp(self.baseline_time),
            TABLE_ARN: self.table_arn,
            ACCEPTED_GAPS: json.dumps([str(g) for g in self.gaps]),
            ROWS_INSERTED: str(inserted),
            ROWS_UPDATED: str(updated),
            ROWS_DELETED: str(deleted),
        }


def plan_sync(
    listing: ExportListing, ledger: LedgerEntry | None, *, allow_gaps: bool = False, up_to: datetime | None = None
) -> SyncPlan:
    """Choose what to apply: with no ledger, the latest full export and the windows after it; else the windows
    that end after the point the table reflects (and, given `up_to`, no later than it). Gaps are refused
    unless allowed."""
    if len(listing.table_arns) > 1:
        raise SyncError(f"source {listing.source.uri} holds exports of several tables: {sorted(listing.table_arns)}")
    if ledger is None:
        full_exports = [e for e in listing.full_exports if up_to is None or e.summary.covers_to <= up_to]
        if not full_exports:
            raise SyncError(
                f"no full export under {listing.source.uri}: a table starts from a full export "
                "(export the table in full first, then incrementally)"
            )
        baseline: Export | None = full_exports[-1]
        assert baseline is not None
        reflects = baseline_time = baseline.summary.covers_to
        table_arn, baseline_id = baseline.summary.table_arn, baseline.export_id
    else:
        baseline, reflects, baseline_time = None, ledger.reflects, ledger.baseline_time
        table_arn, baseline_id = ledger.table_arn, ledger.baseline_export
        if listing.table_arns and table_arn and listing.table_arns != {table_arn}:
            raise SyncError(
                f"source {listing.source.uri} holds exports of {sorted(listing.table_arns)}, but the table was "
                f"built from {table_arn}"
            )
    pending = tuple(
        e
        for e in listing.incremental_exports
        if e.summary.covers_to > reflects and (up_to is None or e.summary.covers_to <= up_to)
    )
    skipped = tuple(e for e in listing.exports if e is not baseline and e not in pending)
    gaps = tuple(find_gaps(reflects, pending))
    if gaps and not allow_gaps:
        raise GapError(gaps)
    reflects_after = max([reflects, *(e.summary.covers_to for e in pending)])
    return SyncPlan(
        baseline=baseline,
        incrementals=pending,
        skipped=skipped,
        gaps=gaps,
        reflects_before=None if ledger is None else ledger.reflects,
        reflects_after=reflects_after,
        baseline_export=baseline_id,
        baseline_time=baseline_time,
        table_arn=table_arn,
    )


def key_attributes_from(listing: ExportListing) -> tuple[str, ...] | None:
    """The key attributes incremental exports name in `Keys` (full exports do not say)."""
    for export in listing.incremental_exports:
        for entry in export.data_files:
            for record in export.file_records(entry):
                assert isinstance(record, ChangeRecord)
                return tuple(record.keys)
    return None


@dataclass(frozen=True, slots=True)
class RowChange:
    """A row's final state after the sync: its image (None: deleted) and the time of its last write."""

    write_micros: int
    image: DecodedItem | None


@dataclass
class ChangeSet:
    """Every record of the plan, collapsed to the latest per key."""

    changes: dict[Key, RowChange] = field(default_factory=dict)
    records_read: int = 0
    records_stale: int = 0
    overlap_deletes: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def upserts(self) -> list[DecodedItem]:
        return [c.image for c in self.changes.values() if c.image is not None]


# Keys of table rows last written in [start, end) microseconds, with their write times.
RowsWrittenBetween = Callable[[int, int], Iterable[tuple[Key, int]]]


def collect_changes(
    plan: SyncPlan, key_attributes: Sequence[str], rows_written_between: RowsWrittenBetween | None = None
) -> ChangeSet:
    """Read and verify every export of the plan, and collapse its records to the latest per key.

    A record applies only if it was written at or after the point the table already reflects, so
    re-applied exports change nothing. Overlapping windows need one more rule, because DynamoDB leaves out
    an item created and deleted inside a window: a row last written inside the part of a window the table
    already reflects, which that window does not mention, was deleted in the window, and is deleted here.
    """
    change_set = ChangeSet()
    changes = change_set.changes
    baseline_micros = to_micros(plan.baseline_time)
    if plan.baseline is not None:
        for entry in plan.baseline.data_files:
            for record in plan.baseline.file_records(entry):
                assert isinstance(record, FullExportItem)
                key = _key(record.item, key_attributes, plan.baseline, entry.data_file_s3_key)
                changes[key] = RowChange(baseline_micros, record.item)
                change_set.records_read += 1
    reflected_time = plan.baseline.summary.covers_to if plan.baseline else plan.reflects_before
    assert reflected_time is not None
    reflected = to_micros(reflected_time)
    for export in plan.incrementals:
        window_start, window_end = (to_micros(export.summary.covers_from), to_micros(export.summary.covers_to))
        mentioned: set[Key] = set()
        for entry in export.data_files:
            for record in export.file_records(entry):
                assert isinstance(record, ChangeRecord)
                change_set.records_read += 1
                if set(record.keys) != set(key_attributes):
                    raise ExportError(
                        export=export.export_id,
                        file=entry.data_file_s3_key,
                        problem=f"a record's Keys {sorted(record.keys)} are not the table's keys "
                        f"{list(key_attributes)}",
                    )
                key = tuple(record.keys[name] for name in key_attributes)
                mentioned.add(key)
                if record.write_timestamp_micros < reflected:
                    change_set.records_stale += 1
                    continue
                previous = changes.get(key)
                if previous is None or record.write_timestamp_micros >= previous.write_micros:
                    changes[key] = RowChange(record.write_timestamp_micros, record.new_image)
        if window_start < reflected:
            _delete_compacted_away(
                change_set, mentioned, window_start, reflected, baseline_micros, rows_written_between
            )
            if window_start < baseline_micros:
                change_set.warnings.append(
                    f"window of export {export.export_id} starts before the baseline's exportTime "
                    f"{format_timestamp(plan.baseline_time)}: an item created before it and deleted inside the "
                    "window leaves no trace in any export and cannot be removed"
                )
        reflected = max(reflected, window_end)
    return change_set


def _delete_compacted_away(
    change_set: ChangeSet,
    mentioned: set[Key],
    window_start: int,
    reflected: int,
    baseline_micros: int,
    rows_written_between: RowsWrittenBetween | None,
) -> None:
    # Rows of the full export carry its exportTime, not their own write time: they are never candidates.
    start = max(window_start, baseline_micros + 1)
    if start >= reflected:
        return
    changes = change_set.changes
    for key, change in list(changes.items()):
        if change.image is not None and start <= change.write_micros < reflected and key not in mentioned:
            changes[key] = RowChange(change.write_micros, None)
            change_set.overlap_deletes += 1
    for key, write_micros in rows_written_between(start, reflected) if rows_written_between else ():
        if key not in changes and key not in mentioned:
            changes[key] = RowChange(write_micros, None)
            change_set.overlap_deletes += 1


def _key(item: DecodedItem, key_attributes: Sequence[str], export: Export, file: str) -> Key:
    missing = [name for name in key_attributes if item.get(name) is None]
    if missing:
        raise ExportError(export=export.export_id, file=file, problem=f"an item lacks key attribute(s) {missing}")
    return tuple(item[name] for name in key_attributes)
