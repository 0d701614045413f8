"""The ledger: what each commit of the table records about the exports it applied.

It lives in the snapshot summary of every commit a sync makes (atomically with the data it describes).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from ddb_iceberg.exports.manifest import parse_timestamp

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
