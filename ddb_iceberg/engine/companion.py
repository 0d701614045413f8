"""Companion tables: tables a sync keeps beside the one it syncs (the change feed, the item history).

A companion is written by the sync that changes the table, in the same protocol: to a branch of the sync's own, at
once with the table's write (engine.concurrent_writes), published after the table's. A run that dies before the
table's publish leaves every companion unchanged (the next sync plans the same exports again); one that dies after
it leaves the companion's branch, which the next sync publishes before anything else (`CompanionTable.catch_up`).
Which of the table's syncs a companion holds last is its table property `ddb-iceberg.synced-through`, set in the
commit that publishes it: its snapshots' summaries do not survive upkeep (a compaction's commit carries none, and
expiry removes the rest).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import ClassVar

from ddb_iceberg.engine.ledger import PROPERTY_PREFIX, SYNC_ID, LedgerEntry
from ddb_iceberg.engine.request import companion_identifier
from ddb_iceberg.engine.spark_table import BRANCH_PREFIX, SparkIcebergTable

SYNCED_THROUGH_PROPERTY = PROPERTY_PREFIX + "synced-through"
# The table a companion belongs to.
COMPANION_OF_PROPERTY = PROPERTY_PREFIX + "companion-of"


def synced_through(properties: Mapping[str, str], head_summary: Mapping[str, str] | None) -> str:
    """The table's sync whose changes a companion holds last: its property, or its head's sync when that commit is
    newer than the property (a run that died between a commit to main and setting the property; a compaction's
    commit names no sync)."""
    head_sync = (head_summary or {}).get(SYNC_ID)
    return str(head_sync) if head_sync else str(properties.get(SYNCED_THROUGH_PROPERTY) or "")


class CompanionTable:
    """A table kept beside `table` in the same catalog, named `<table><suffix>`."""

    suffix: ClassVar[str]
    # What the companion is called in messages ("change feed").
    what: ClassVar[str]

    def __init__(self, table: SparkIcebergTable) -> None:
        self.of = table
        self.table = SparkIcebergTable(
            table.spark, table.catalog, companion_identifier(f"{table.namespace}.{table.name}", self.suffix)
        )
        self.name = f"{self.table.namespace}.{self.table.name}"

    def creation_properties(self, ledger: LedgerEntry | None) -> dict[str, str]:
        """A new companion belongs to the table and starts after the table's last sync (none: a new table)."""
        return {
            COMPANION_OF_PROPERTY: f"{self.of.namespace}.{self.of.name}",
            SYNCED_THROUGH_PROPERTY: ledger.sync_id if ledger is not None else "",
        }

    def synced_through(self) -> str:
        """The table's sync whose changes the companion holds last (`synced_through`)."""
        table = self.table._java_table()
        head = table.currentSnapshot()
        return synced_through(dict(table.properties()), dict(head.summary()) if head is not None else None)

    def catch_up(self, ledger: LedgerEntry | None) -> str | None:
        """Publish the companion's branch of the table's last sync when a run died after the table's publish;
        otherwise `recover`. None, or a warning."""
        if ledger is None or not ledger.sync_id or not self.table.exists():
            return None
        if self.synced_through() == ledger.sync_id:
            return None
        for branch, sync_id in self.table.branch_heads(BRANCH_PREFIX).items():
            if sync_id == ledger.sync_id:
                self.publish(branch, ledger, stale_before=None)
                return None
        return self.recover(ledger)

    def start_branch(self) -> str:
        return self.table.start_branch(self.table.current_snapshot_id())

    def publish(self, branch: str, ledger: LedgerEntry, *, stale_before: datetime | None) -> None:
        """Put the branch's commit of the table's sync `ledger` on main."""
        raise NotImplementedError

    def recover(self, ledger: LedgerEntry) -> str | None:
        """The companion lacks the table's last sync and no branch holds it: what can be done, or a warning."""
        return (
            f"the {self.what} {self.name} lacks the changes of the table's sync {ledger.sync_id} (its branch is "
            "gone): its rows from then on miss them"
        )

    def drop_branch(self, branch: str) -> None:
        self.table.drop_branch(branch)

    @staticmethod
    def synced(ledger: LedgerEntry) -> dict[str, str]:
        """The table property a publish of the table's sync `ledger` sets."""
        return {SYNCED_THROUGH_PROPERTY: ledger.sync_id}
