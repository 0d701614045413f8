"""Where a sync finds the ledger: the current snapshot's ancestry first, the table property after expiry."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ddb_iceberg.engine.ledger import REFLECTS_TIME, Ancestor, LedgerEntry, find_ledger

FOREIGN: dict[str, str] = {"added-data-files": "3"}  # a commit of compaction or of another writer
# The time each sync's commit reflects, by snapshot id.
T = {n: f"2026-01-01T0{n}:00:00.000Z" for n in range(1, 8)}


def _ledger(reflects: str) -> dict[str, str]:
    return {REFLECTS_TIME: reflects, "ddb-iceberg.baseline-export": "full", "ddb-iceberg.applied-exports": "w"}


def _stored(snapshot_id: int, reflects: str) -> str:
    entry = LedgerEntry.from_summary(snapshot_id, _ledger(reflects))
    assert entry is not None
    return entry.table_property()


def _find(
    chain: Sequence[tuple[int, Mapping[str, str]]],
    stored: str | None,
    existing: set[int],
    *,
    expired_parent: int | None = None,
    **options: bool,
) -> list[tuple[int, str]]:
    """Snapshot ids stand for their sequence numbers (commit order); each snapshot's parent is the next in
    `chain`, the last one's is `expired_parent` (None: the table's first snapshot)."""
    parents = [snapshot_id for snapshot_id, _ in chain[1:]] + [expired_parent]
    ancestry = [
        Ancestor(i, summary, i, parent) for (i, summary), parent in zip(chain, parents[: len(chain)], strict=True)
    ]
    found = find_ledger(
        ancestry, stored, lambda snapshot_id: snapshot_id if snapshot_id in existing else None, **options
    )
    return [(entry.snapshot_id, entry.properties[REFLECTS_TIME]) for entry in found]


def test_the_newest_ancestor_with_a_ledger_counts_even_after_foreign_commits() -> None:
    ancestry = [(4, FOREIGN), (3, _ledger(T[3])), (2, FOREIGN), (1, _ledger(T[1]))]
    stored = _stored(3, T[3])
    assert _find(ancestry, stored, {1, 2, 3, 4}) == [(3, T[3]), (1, T[1])]
    assert _find(ancestry, stored, {1, 2, 3, 4}, latest_only=True) == [(3, T[3])]


def test_after_expiry_the_table_property_speaks_for_the_expired_snapshot() -> None:
    # Compaction (5) after sync 3, then every older snapshot expired and every tag dropped.
    assert _find([(5, FOREIGN)], _stored(3, T[3]), {5}, expired_parent=4) == [(3, T[3])]


def test_after_expiry_that_kept_the_tagged_sync_but_not_the_commits_after_it_the_property_speaks() -> None:
    # Sync 3 (tagged, so kept), compactions 4 and 5, then 4 expired: the chain from 5 breaks above 3.
    assert _find([(5, FOREIGN)], _stored(3, T[3]), {3, 5}, expired_parent=4) == [(3, T[3])]


def test_the_ancestry_beats_a_property_left_behind_by_a_run_that_died_before_writing_it() -> None:
    # Sync 4 committed, then died before updating the property, which still names sync 2.
    ancestry = [(4, _ledger(T[4])), (3, FOREIGN), (2, _ledger(T[2]))]
    assert _find(ancestry, _stored(2, T[2]), {2, 3, 4}, latest_only=True) == [(4, T[4])]


def test_a_rollback_to_an_older_sync_uses_that_syncs_ledger_not_the_property() -> None:
    # Syncs 1 and 2, then the table was rolled back to 1: 2 still exists, but is no ancestor.
    assert _find([(1, _ledger(T[1]))], _stored(2, T[2]), {1, 2}) == [(1, T[1])]


def test_no_ledger_when_the_property_names_a_snapshot_that_is_still_there_but_not_an_ancestor() -> None:
    # Rolled back to a foreign snapshot: the property describes a state the table no longer has.
    assert _find([(7, FOREIGN)], _stored(2, T[2]), {2, 7}) == []


def test_no_ledger_at_all() -> None:
    assert _find([(7, FOREIGN)], None, {7}) == []
    assert _find([(7, FOREIGN)], "not json", {7}) == []
    assert _find([], None, set()) == []
