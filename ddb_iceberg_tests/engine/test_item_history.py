"""The item history (`<table>__history`, SCD type 2) against the simulator's truth, window by window."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import functions as sql

from ddb_iceberg.engine.item_history import IS_CURRENT_COLUMN, VALID_FROM_COLUMN, VALID_TO_COLUMN, ItemHistory
from ddb_iceberg.engine.request import UpkeepRequest, UpkeepSettings, feed_identifier, history_identifier
from ddb_iceberg.engine.rows import item_reader
from ddb_iceberg.engine.upkeep import maintain_table
from ddb_iceberg.errors import SyncError
from ddb_iceberg.simulator import write_full_export
from ddb_iceberg_tests.helpers import (
    HOUR,
    History,
    LocalWarehouse,
    feed_by_window,
    history_as_of,
    last_plan,
    operators_between,
)

TABLE = "dynamodb.orders"
HISTORY = history_identifier(TABLE)
FEED = feed_identifier(TABLE)


def as_of(warehouse: LocalWarehouse, moment: datetime) -> dict[tuple[Any, ...], Any]:
    return history_as_of(warehouse, TABLE, moment)


def assert_well_formed(warehouse: LocalWarehouse) -> None:
    """Each key's versions follow one another (none overlaps, none is empty); one current version per item in the
    table, holding the table's item."""
    layout = warehouse.table(TABLE).layout()
    assert layout is not None
    spark, history = warehouse.spark, f"{warehouse.catalog}.{HISTORY}"
    overlapping = spark.sql(
        f"""SELECT count(*) FROM ({versions_in_order(warehouse)})
        WHERE valid_to <= valid_from OR next_from < valid_to OR (valid_to IS NULL AND next_from IS NOT NULL)
          OR (valid_to IS NULL) <> is_current"""
    ).first()
    assert overlapping is not None and overlapping[0] == 0
    current = spark.sql(f"SELECT * FROM {history} WHERE {IS_CURRENT_COLUMN}")
    read = item_reader(layout)
    items = {}
    for row in current.collect():
        item = read(row.asDict(recursive=True))
        items[tuple(item[c.attribute] for c in layout.key_columns)] = item
    assert items == warehouse.items(TABLE) and len(items) == current.count()


def versions_in_order(warehouse: LocalWarehouse) -> str:
    """A query of the history's versions, each with the start of its key's next version (`next_from`)."""
    layout = warehouse.table(TABLE).layout()
    assert layout is not None
    keys, valid_from = ", ".join(c.name for c in layout.key_columns), VALID_FROM_COLUMN
    return f"""SELECT {valid_from} AS valid_from, {VALID_TO_COLUMN} AS valid_to, {IS_CURRENT_COLUMN} AS is_current,
        lead({valid_from}) OVER (PARTITION BY {keys} ORDER BY {valid_from}) AS next_from
      FROM {warehouse.catalog}.{HISTORY}"""


def test_the_history_equals_the_table_as_of_every_window(warehouse: LocalWarehouse, tmp_path: Path) -> None:
    """Deletes, re-inserts and type drift over 12 windows applied by scheduled and catch-up syncs, a re-baseline and
    upkeep between them: the history as of each window's end is the table as it was then."""
    series = History(tmp_path, seed=61, items=80, writes_per_hour=250, type_drift=True)
    series.add_windows(2)
    first = warehouse.sync(series.source, TABLE, key_attributes=series.table.key_attributes, history=True)
    assert first.item_history == HISTORY and first.change_feed == FEED
    # The companions' writes ran at once with the table's: their time is shown inside the last phase, not after it.
    (times,) = [line for line in first.describe().splitlines() if line.startswith("  time: ")]
    at_once = r"collapse, write and commit [\d.]+s \(at once with the table's write: change feed [\d.]+s, item history"
    assert re.search(at_once + r" [\d.]+s\)$", times), times
    series.add_windows(1)  # one window, as the schedule runs it
    warehouse.sync(series.source, TABLE, history=True)
    # Its MERGE reads only the current versions (what a sync reads does not grow with the history), and joins them
    # where they lie: the sync's changes are shuffled to them, not they to the changes.
    merge = last_plan(warehouse.spark, "WriteDelta", f"{warehouse.catalog}.{HISTORY}")
    assert f"filters={IS_CURRENT_COLUMN} = true" in merge
    to_the_join = operators_between(merge, f"BatchScan {warehouse.catalog}.{HISTORY}", ("SortMergeJoin", "Broadcast"))
    assert not [name for name in to_the_join if name.startswith(("Exchange", "ShuffleQueryStage"))], merge
    # It reads the current versions' keys and what a closed version keeps of its own, not their items (a closed
    # version's item is its feed row's before-image): nested columns would make the read row by row.
    (scanned,) = re.findall(rf"\(\d+\) BatchScan {warehouse.catalog}.{HISTORY}\b.*\nOutput \[\d+\]: \[(.*)\]", merge)
    read = {name.split("#")[0] for name in scanned.split(", ")}
    layout = warehouse.table(TABLE).layout()
    assert layout is not None
    keys = {c.name for c in layout.key_columns}
    assert keys < read and not read & {c.name for c in layout.item_columns} - keys, scanned
    series.add_windows(4)  # a catch-up: four windows in one sync
    warehouse.sync(series.source, TABLE, history=True)
    later = datetime.now(UTC) + timedelta(days=40)
    upkeep = maintain_table(
        warehouse.spark, warehouse.catalog, UpkeepRequest(TABLE, UpkeepSettings(min_input_files=2)), now=later
    )
    assert upkeep.item_history["snapshots_after"] == 1, upkeep.item_history
    series.add_windows(2)  # hours 8 and 9 never reach the table: a re-baseline from hour 9 catches up
    write_full_export(series.table, series.target, series.time(9))
    rebaselined = warehouse.sync(series.source, TABLE, rebaseline=True, history=True)
    assert rebaselined.rebaseline_of is not None and not rebaselined.warnings
    series.add_windows(3)
    warehouse.sync(series.source, TABLE, history=True)
    assert warehouse.items(TABLE) == series.truth(12)

    for hours in range(13):
        shown = 7 if hours == 8 else hours  # the table never showed hour 8 (the re-baseline went from 7 to 9)
        assert as_of(warehouse, series.time(hours)) == series.truth(shown), f"as of hour {hours}"
    assert as_of(warehouse, series.time(0) - HOUR) == {}, "nothing before the full export"
    assert_well_formed(warehouse)
    re_inserted = warehouse.spark.sql(f"SELECT * FROM ({versions_in_order(warehouse)}) WHERE next_from > valid_to")
    assert re_inserted.count(), "the series deletes and re-inserts no item"

    # Synced again: nothing new, nothing twice.
    versions = warehouse.spark.table(f"{warehouse.catalog}.{HISTORY}").count()
    assert not warehouse.sync(series.source, TABLE, history=True).changed
    assert warehouse.spark.table(f"{warehouse.catalog}.{HISTORY}").count() == versions


def test_a_history_and_a_feed_started_on_an_existing_table_start_from_its_rows(
    warehouse: LocalWarehouse, tmp_path: Path
) -> None:
    series = History(tmp_path, seed=62, items=80, writes_per_hour=250)
    series.add_windows(2)
    warehouse.sync(series.source, TABLE, key_attributes=series.table.key_attributes)
    series.add_windows(2)
    warehouse.sync(series.source, TABLE, history=True)
    assert as_of(warehouse, series.time(1)) == {}, "the history starts when the table reflected hour 2"
    for hours in (2, 3, 4):
        assert as_of(warehouse, series.time(hours)) == series.truth(hours), f"as of hour {hours}"
    assert_well_formed(warehouse)
    # The feed takes its first changes' before-images from the table.
    feed = feed_by_window(warehouse, TABLE)
    assert sorted(feed) == [series.time(3), series.time(4)]
    assert feed[series.time(3)] == series.changes(3) and feed[series.time(4)] == series.changes(4)
    # The feed takes its first changes' before-images from the table.
    feed = feed_by_window(warehouse, TABLE)
    assert sorted(feed) == [series.time(3), series.time(4)]
    assert feed[series.time(3)] == series.changes(3) and feed[series.time(4)] == series.changes(4)


class _Killed(BaseException):
    """Stands for the process dying at that point."""


def test_a_write_that_fails_while_the_others_run_changes_none_of_the_three(
    warehouse: LocalWarehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The table's, the feed's and the history's writes run at once: the history's failure stops the others and is
    what the sync raises; no table is changed and no branch is left (what the next sync does then is what it does
    after any sync that died before the table's publish: test_change_feed.py)."""
    series = History(tmp_path, seed=64, items=80, writes_per_hour=250)
    series.add_windows(1)
    warehouse.sync(series.source, TABLE, key_attributes=series.table.key_attributes, history=True)
    snapshots = {name: warehouse.table(name).current_snapshot_id() for name in (TABLE, FEED, HISTORY)}
    series.add_windows(1)

    def fails(self: ItemHistory, *_: Any, **__: Any) -> None:
        raise RuntimeError("the history's MERGE failed")

    with monkeypatch.context() as patched:
        patched.setattr(ItemHistory, "write", fails)
        with pytest.raises(RuntimeError, match="the history's MERGE failed"):
            warehouse.sync(series.source, TABLE, history=True)
    for name, snapshot in snapshots.items():
        assert warehouse.table(name).current_snapshot_id() == snapshot, f"{name} was changed"
        assert not warehouse.table(name).branch_heads("ddb_sync_"), f"{name}'s branch was left"


def test_a_history_that_disagrees_with_the_table_fails_the_sync_naming_the_key(
    warehouse: LocalWarehouse, tmp_path: Path
) -> None:
    """A current version of a key the table does not hold (a history changed by hand, say), which the next window
    inserts: it cannot be closed with the item the table held, so the sync fails naming the key, and changes no
    table."""
    series = History(tmp_path, seed=65, items=80, writes_per_hour=250)
    series.add_windows(1)
    warehouse.sync(series.source, TABLE, key_attributes=series.table.key_attributes, history=True)
    series.add_windows(1)
    key = next(key for key, (operation, _, _) in sorted(series.changes(2).items()) if operation == "insert")
    layout = warehouse.table(TABLE).layout()
    assert layout is not None
    history = f"{warehouse.catalog}.{HISTORY}"
    stray = warehouse.spark.table(history).where(IS_CURRENT_COLUMN).limit(1)
    for column, value in zip(layout.key_columns, key, strict=True):
        stray = stray.withColumn(column.name, sql.lit(str(value)).cast(stray.schema[column.name].dataType))
    stray.writeTo(history).append()
    snapshots = {name: warehouse.table(name).current_snapshot_id() for name in (TABLE, FEED, HISTORY)}

    key_text = re.escape(", ".join(map(str, key)))
    said = f"the item history {HISTORY} holds a current version of a key the table did not hold .*: {key_text}\\. "
    with pytest.raises(SyncError, match=said + "It was changed other than by syncs"):
        warehouse.sync(series.source, TABLE, history=True)
    for name, snapshot in snapshots.items():
        assert warehouse.table(name).current_snapshot_id() == snapshot, f"{name} was changed"


def test_a_run_that_dies_before_the_historys_publish_is_caught_up_by_the_next(
    warehouse: LocalWarehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed after the table's publish, twice: once upkeep then compacts the history (its branch no longer starts
    from main), once its branch is lost; the next sync merges the sync's feed rows into main, exactly once."""
    series = History(tmp_path, seed=63, items=80, writes_per_hour=250)
    series.add_windows(1)
    warehouse.sync(series.source, TABLE, key_attributes=series.table.key_attributes, history=True)

    def dies(self: ItemHistory, *_: Any, **__: Any) -> None:
        raise _Killed

    for hours, interruption in ((2, "upkeep"), (3, "branch lost"), (4, "none")):
        series.add_windows(1)
        with monkeypatch.context() as patched:
            patched.setattr(ItemHistory, "publish", dies)
            with pytest.raises(_Killed):
                warehouse.sync(series.source, TABLE, history=True)
        assert warehouse.items(TABLE) == series.truth(hours), "the table's commit was published"
        assert as_of(warehouse, series.time(hours)) == series.truth(hours - 1), "the history's was not"
        history = warehouse.table(HISTORY)
        if interruption == "upkeep":
            warehouse.spark.sql(
                f"CALL {warehouse.catalog}.system.rewrite_data_files(table => '{HISTORY}', "
                "options => map('rewrite-all', 'true'))"
            ).collect()
        elif interruption == "branch lost":
            for branch in history.branch_heads("ddb_sync_"):
                history.drop_branch(branch)
        caught_up = warehouse.sync(series.source, TABLE, history=True)
        assert not caught_up.changed and not caught_up.warnings, caught_up.warnings
        for hour in range(hours + 1):
            assert as_of(warehouse, series.time(hour)) == series.truth(hour), f"{interruption}: hour {hour}"
        assert not history.branch_heads("ddb_sync_"), "the history's branch was published or dropped"
    assert_well_formed(warehouse)
