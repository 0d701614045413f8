"""Re-baseline: the rows replaced by a new full export (and the windows after it) in one commit, history kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from ddb_iceberg.engine.ledger import LEDGER_PROPERTY, REBASELINE_OF
from ddb_iceberg.errors import Fix, GapError
from ddb_iceberg.exports.manifest import format_timestamp
from ddb_iceberg.simulator import write_full_export, write_incremental_export
from ddb_iceberg_tests.engine.test_data_safety import _snapshots, lose_the_ledger
from ddb_iceberg_tests.helpers import HOUR, History, LocalWarehouse


def test_a_rebaseline_after_a_gap_gives_the_exact_table_and_keeps_history(
    warehouse: LocalWarehouse, tmp_path: Path
) -> None:
    history = History(tmp_path, seed=41)
    history.add_windows(2)
    before = warehouse.sync(history.source, key_attributes=history.table.key_attributes)
    # The window of hour 2 is lost (export failed, PITR off for a while); a new full export is taken at hour 4.
    for hour in (3, 4):
        write_incremental_export(history.table, history.target, history.time(hour), history.time(hour) + HOUR)
    write_full_export(history.table, history.target, history.time(4))
    with pytest.raises(GapError, match="re-baseline the table from a new full export") as refused:
        warehouse.sync(history.source)
    assert Fix.REBASELINE in refused.value.fixes

    result = warehouse.sync(history.source, rebaseline=True)
    assert result.rebaseline_of == before.reflects == format_timestamp(history.time(2))
    assert [e["type"] for e in result.applied_exports] == ["FULL_EXPORT", "INCREMENTAL_EXPORT"]
    assert result.reflects == format_timestamp(history.time(5))
    assert warehouse.items() == history.truth(5)
    assert result.rows_deleted > 0, "rows DynamoDB deleted during the gap are gone"
    # History stays: the tag of the old point in time still shows the table as it was.
    assert before.tag is not None and warehouse.items(version=before.tag) == history.truth(2)
    assert _snapshots(warehouse)[-1][REBASELINE_OF] == before.reflects
    assert f'"{REBASELINE_OF}":"{before.reflects}"' in warehouse.table().properties()[LEDGER_PROPERTY]

    again = warehouse.sync(history.source, rebaseline=True)
    assert not again.changed and again.snapshot_id == result.snapshot_id, "a re-run makes no new snapshot"

    # Windows after the new baseline apply as usual.
    write_incremental_export(history.table, history.target, history.time(5), history.time(6))
    later = warehouse.sync(history.source)
    assert later.reflects == format_timestamp(history.time(6)) and warehouse.items() == history.truth(6)


def test_a_rebaseline_removes_rows_deleted_between_two_full_exports(warehouse: LocalWarehouse, tmp_path: Path) -> None:
    history = History(tmp_path, seed=42, items=120, writes_per_hour=300)
    warehouse.sync(history.source, key_attributes=history.table.key_attributes)
    write_full_export(history.table, history.target, history.time(3))
    deleted = set(history.truth(0)) - set(history.truth(3))
    assert deleted, "the simulation deletes items between the two full exports"

    result = warehouse.sync(history.source, rebaseline=True)
    assert warehouse.items() == history.truth(3)
    assert result.rows_deleted == len(deleted)
    assert result.rows_inserted == len(set(history.truth(3)) - set(history.truth(0)))


def test_a_table_whose_ledger_was_lost_is_recovered_by_a_rebaseline(warehouse: LocalWarehouse, tmp_path: Path) -> None:
    history = History(tmp_path, seed=43)
    lose_the_ledger(warehouse, history)
    history.add_windows(1)

    result = warehouse.sync(history.source, rebaseline=True)
    assert result.rebaseline_of == "unknown" and result.reflects == format_timestamp(history.time(3))
    assert warehouse.items() == history.truth(3)
    assert not warehouse.sync(history.source).changed
