"""What a sync applies: the exports the table still lacks, in order, and the point in time it reflects after.

Pure Python over the export listing: no Spark here, so planning and its refusals happen before any job
touches the table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from ddb_iceberg.engine.ledger import (
    ACCEPTED_GAPS,
    APPLIED_EXPORTS,
    BASELINE_EXPORT,
    BASELINE_TIME,
    ORPHANS_SWEPT_AT,
    REBASELINE_OF,
    REFLECTS_TIME,
    REQUEST_ID,
    SOURCE,
    SYNC_ID,
    TABLE_ARN,
    LedgerEntry,
)
from ddb_iceberg.errors import GapError, SyncError
from ddb_iceberg.exports import Export, ExportListing, Gap, find_gaps
from ddb_iceberg.exports.manifest import ExportView, format_timestamp, to_micros


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
    # A re-baseline replaces the rows of a table that has some: what the table reflected before it (None when its
    # ledger was lost).
    rebaseline: bool = False
    rebaseline_of: datetime | None = None

    @property
    def exports(self) -> tuple[Export, ...]:
        return ((self.baseline,) if self.baseline else ()) + self.incrementals

    @property
    def is_noop(self) -> bool:
        return not self.exports

    @property
    def old_images_are_the_tables(self) -> bool:
        """Whether each change's OldImage is the item as the table holds it before the change's window: the table
        stands on its ledger (no baseline here) and the windows are NEW_AND_OLD_IMAGES ones that tile on from the
        point it reflects, with no gap and no overlap. An OldImage is the item as the window began (the export
        format), so a key's first change in the plan finds the table's row as its OldImage; a gap or an overlap
        would make it the item at another time than the table's."""
        if self.baseline is not None or self.reflects_before is None or not self.incrementals:
            return False
        point = to_micros(self.reflects_before)
        for export in self.incrementals:
            start, end = export.window_micros
            if export.summary.output_view is not ExportView.NEW_AND_OLD_IMAGES or start != point:
                return False
            point = end
        return True

    def snapshot_properties(
        self, swept_at: datetime, sync_id: str, source: str, request_id: str | None = None
    ) -> dict[str, str]:
        """The ledger entry of the commit that applies this plan (its row counts are the commit's own)."""
        properties = {
            SYNC_ID: sync_id,
            SOURCE: source,
            ORPHANS_SWEPT_AT: format_timestamp(swept_at),
            REFLECTS_TIME: format_timestamp(self.reflects_after),
            APPLIED_EXPORTS: ",".join(e.export_id for e in self.exports),
            BASELINE_EXPORT: self.baseline_export,
            BASELINE_TIME: format_timestamp(self.baseline_time),
            TABLE_ARN: self.table_arn,
            ACCEPTED_GAPS: json.dumps([str(g) for g in self.gaps]),
        }
        if request_id:
            properties[REQUEST_ID] = request_id
        if self.rebaseline:
            properties[REBASELINE_OF] = format_timestamp(self.rebaseline_of) if self.rebaseline_of else "unknown"
        return properties


def plan_sync(
    listing: ExportListing,
    ledger: LedgerEntry | None,
    *,
    allow_gaps: bool = False,
    up_to: datetime | None = None,
    rebaseline: bool = False,
) -> SyncPlan:
    """Choose what to apply: with no ledger, the latest full export and the windows after it; else the windows
    that end after the point the table reflects (and, given `up_to`, no later than it). Gaps are refused
    unless allowed.

    `rebaseline` (for a table that holds data) starts again from the latest full export, as with no ledger, and
    the sync replaces the table's rows in one commit; a table that already stands on that full export is synced
    as usual, so a re-baseline run twice changes nothing the second time."""
    if len(listing.table_arns) > 1:
        raise SyncError(f"source {listing.source.uri} holds exports of several tables: {sorted(listing.table_arns)}")
    replaced = ledger
    if rebaseline and ledger is not None and ledger.baseline_export != _latest_full(listing, up_to).export_id:
        ledger = None
    if ledger is None:
        baseline: Export | None = _latest_full(listing, up_to)
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
        raise GapError(gaps, listing.incomplete)
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
        rebaseline=rebaseline and baseline is not None,
        rebaseline_of=replaced.reflects if rebaseline and baseline is not None and replaced is not None else None,
    )


def _latest_full(listing: ExportListing, up_to: datetime | None) -> Export:
    full_exports = [e for e in listing.full_exports if up_to is None or e.summary.covers_to <= up_to]
    if not full_exports:
        raise SyncError(
            f"no full export under {listing.source.uri}: a table starts from a full export "
            "(export the table in full first, then incrementally)"
        )
    return full_exports[-1]
