"""The ledger: what each commit of the table records about the exports it applied.

Where it lives (README, "The ledger"):
- in the snapshot summary of every commit a sync makes, atomically with the data it describes;
- and a copy of the latest entry in the table property `ddb-iceberg.ledger`, written right after that commit
  together with the commit's tag, naming the snapshot it belongs to.

Table upkeep (compaction, expiry of snapshots, dropped tags) and other writers commit snapshots without the
ledger. The current snapshot's ancestry is searched first: the newest ancestor with a ledger tells what the
table reflects, also after a rollback. Only when expiry has removed every such ancestor does the table
property speak, and only for a snapshot that was an ancestor (see `find_ledger`). No ledger at all on a table
with data is refused, never taken for a new table.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

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
# Set by a re-baseline (the table's content replaced by a full export): the time the table reflected before
# ("unknown" when its ledger was lost).
REBASELINE_OF = PROPERTY_PREFIX + "rebaseline-of"
# Names the sync attempt that made the commit, so that it can find its own snapshot among others' commits.
SYNC_ID = PROPERTY_PREFIX + "sync-id"
# Names the request the sync served (the EMR Serverless job run's client token), when its launcher gave one: a
# launcher that did not receive the job's result finds the commit by it (resources.emr_serverless).
REQUEST_ID = PROPERTY_PREFIX + "request-id"
# The export source the sync read (`ExportSource.location`): export housekeeping removes exports only there.
SOURCE = PROPERTY_PREFIX + "source"
# What Iceberg itself records in a commit's summary.
MERGE_INSERTED = "spark.merge-into.num-target-rows-inserted"
MERGE_UPDATED = "spark.merge-into.num-target-rows-updated"
MERGE_DELETED = "spark.merge-into.num-target-rows-deleted"
ADDED_RECORDS = "added-records"
TOTAL_RECORDS = "total-records"
# Table properties: which attribute and DynamoDB type each column holds (see engine.schema.Layout), and the
# latest ledger entry with the id of its snapshot (it outlives that snapshot's expiry).
LAYOUT_PROPERTY = PROPERTY_PREFIX + "layout"
# How the table holds map attributes, chosen when it was made: "columns" (a struct each) or "json" (text).
MAPS_PROPERTY = PROPERTY_PREFIX + "maps"
LEDGER_PROPERTY = PROPERTY_PREFIX + "ledger"
# The result of the latest upkeep and the request it served (`upkeep.UpkeepResult`): a launcher that did not
# receive the job's result reads it from here, as a sync's is read from the ledger.
UPKEEP_PROPERTY = PROPERTY_PREFIX + "upkeep"
_SNAPSHOT_ID = "snapshot-id"


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
    sync_id: str = ""
    request_id: str = ""
    source: str = ""
    # The entry as it was stored: every `ddb-iceberg.*` property of the commit.
    properties: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_summary(cls, snapshot_id: int, summary: Mapping[str, str]) -> LedgerEntry | None:
        if REFLECTS_TIME not in summary:
            return None
        properties = {key: str(summary[key]) for key in summary if str(key).startswith(PROPERTY_PREFIX)}
        # Row counts: the MERGE's own metrics (Spark 4.1 with Iceberg 1.11 put them in the summary), a baseline
        # append's added records, or what earlier versions of ddb_iceberg recorded themselves.
        merged = MERGE_INSERTED in summary
        counts = {
            ROWS_INSERTED: summary.get(ROWS_INSERTED) or summary.get(MERGE_INSERTED if merged else ADDED_RECORDS),
            ROWS_UPDATED: summary.get(ROWS_UPDATED) or summary.get(MERGE_UPDATED),
            ROWS_DELETED: summary.get(ROWS_DELETED) or summary.get(MERGE_DELETED),
        }
        properties |= {key: str(value or 0) for key, value in counts.items()}
        return cls(
            snapshot_id=snapshot_id,
            reflects=parse_timestamp(summary[REFLECTS_TIME]),
            applied_exports=tuple(filter(None, summary.get(APPLIED_EXPORTS, "").split(","))),
            baseline_export=summary.get(BASELINE_EXPORT, ""),
            baseline_time=parse_timestamp(summary.get(BASELINE_TIME, summary[REFLECTS_TIME])),
            table_arn=summary.get(TABLE_ARN, ""),
            accepted_gaps=tuple(json.loads(summary.get(ACCEPTED_GAPS, "[]"))),
            rows_inserted=int(properties[ROWS_INSERTED]),
            rows_updated=int(properties[ROWS_UPDATED]),
            rows_deleted=int(properties[ROWS_DELETED]),
            orphans_swept_at=parse_timestamp(summary[ORPHANS_SWEPT_AT]) if ORPHANS_SWEPT_AT in summary else None,
            sync_id=summary.get(SYNC_ID, ""),
            request_id=summary.get(REQUEST_ID, ""),
            source=summary.get(SOURCE, ""),
            properties=properties,
        )

    def table_property(self) -> str:
        """The entry as the `ddb-iceberg.ledger` table property stores it: its properties and snapshot id."""
        return json.dumps({_SNAPSHOT_ID: self.snapshot_id, **self.properties}, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_table_property(cls, text: str) -> LedgerEntry | None:
        """The entry a `ddb-iceberg.ledger` table property holds (None if it is not one)."""
        try:
            stored = json.loads(text)
            return cls.from_summary(int(stored.pop(_SNAPSHOT_ID)), stored)
        except (ValueError, TypeError, KeyError, AttributeError):
            return None


class Ancestor(NamedTuple):
    """A snapshot of the current one's ancestry."""

    snapshot_id: int
    summary: Mapping[str, str]
    sequence_number: int
    parent_id: int | None


def find_ledger(
    ancestry: Iterable[Ancestor],
    table_property: str | None,
    sequence_number_of: Callable[[int], int | None],
    *,
    latest_only: bool = False,
) -> list[LedgerEntry]:
    """The ledger entries that describe the current snapshot, newest (the one that counts) first.

    `ancestry` is the current snapshot and its ancestors, newest first, as far as expiry left the chain (read
    lazily: with `latest_only`, only up to the first entry); `sequence_number_of` gives a snapshot's sequence
    number, None when it is gone. Empty when no ledger applies.

    The table property speaks only when no ancestor has an entry, and only for a snapshot that was in the
    ancestry: one that is gone (expired), or one older than where expiry broke the chain (its tag kept it while
    the commits after it were expired). A snapshot still there and not below a break was rolled back past.
    """
    entries: list[LedgerEntry] = []
    oldest: Ancestor | None = None
    for ancestor in ancestry:
        oldest = ancestor
        entry = LedgerEntry.from_summary(ancestor.snapshot_id, ancestor.summary)
        if entry is not None:
            entries.append(entry)
            if latest_only:
                break
    if entries or not table_property:
        return entries
    stored = LedgerEntry.from_table_property(table_property)
    if stored is None:
        return []
    stored_sequence = sequence_number_of(stored.snapshot_id)
    if stored_sequence is None:
        return [stored]
    chain_broken = oldest is not None and oldest.parent_id is not None and sequence_number_of(oldest.parent_id) is None
    if chain_broken and oldest is not None and stored_sequence < oldest.sequence_number:
        return [stored]
    return []
