"""The change feed (`<table>__changes`) against the simulator's truth: one row per key per applied export."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ddb_iceberg.engine.change_feed import (
    BEFORE_COLUMN,
    EXPORT_ID_COLUMN,
    OPERATION_COLUMN,
    REBASELINE_COLUMN,
    WINDOW_START_COLUMN,
    check_before_fits_glue,
)
from ddb_iceberg.engine.request import UpkeepRequest, UpkeepSettings, feed_identifier, history_identifier
from ddb_iceberg.engine.rows import item_reader
from ddb_iceberg.engine.schema import Column, ColumnType, Kind, Layout
from ddb_iceberg.engine.spark_table import SparkIcebergTable
from ddb_iceberg.engine.upkeep import maintain_table
from ddb_iceberg.errors import SettingError, SyncError
from ddb_iceberg.exports.manifest import ExportView
from ddb_iceberg.simulator import write_full_export
from ddb_iceberg_tests.helpers import (
    HOUR,
    History,
    LocalWarehouse,
    WindowChanges,
    feed_by_window,
    history_as_of,
    last_plan,
)

TABLE = "dynamodb.orders"
FEED = feed_identifier(TABLE)


def test_the_feed_equals_each_windows_changes(warehouse: LocalWarehouse, tmp_path: Path) -> None:
    series = History(tmp_path, seed=41, items=120, writes_per_hour=300, type_drift=True)
    series.add_windows(3)
    first = warehouse.sync(series.source, TABLE, key_attributes=series.table.key_attributes, change_feed=True)
    assert first.change_feed == FEED
    series.add_windows(4)  # applied by one sync: still one row per key per window
    later = warehouse.sync(series.source, TABLE, change_feed=True)
    assert later.change_feed_rows == sum(len(series.changes(h)) for h in range(4, 8))

    feed = feed_by_window(warehouse, TABLE)
    baseline = feed.pop(series.start)
    assert {key: change[0] for key, change in baseline.items()} == dict.fromkeys(series.truth(0), "insert")
    assert sorted(feed) == [series.start + h * HOUR for h in range(1, 8)]
    for hours in range(1, 8):
        assert feed[series.start + hours * HOUR] == series.changes(hours), f"window {hours}"
    operations = Counter(op for window in feed.values() for op, _, _ in window.values())
    assert operations["insert"] and operations["update"] and operations["delete"], operations
    layout = warehouse.table(TABLE).layout()
    assert layout is not None and any(c.name.startswith("quantity__") for c in layout.columns), "no type drift"

    # Synced again: nothing new, nothing twice.
    rows = warehouse.spark.table(f"{warehouse.catalog}.{FEED}").count()
    assert not warehouse.sync(series.source, TABLE, change_feed=True).changed
    assert warehouse.spark.table(f"{warehouse.catalog}.{FEED}").count() == rows

    # The README's point-in-time query of the feed gives the table as it was.
    read, keys = item_reader(layout), ", ".join(c.name for c in layout.key_columns)
    for hours in (0, 3, 7):
        moment = (series.start + hours * HOUR).strftime("%Y-%m-%d %H:%M:%S")
        found = warehouse.spark.sql(
            f"""SELECT * FROM (
              SELECT *, row_number() OVER (PARTITION BY {keys} ORDER BY _ddb_window_end DESC) AS latest
              FROM {warehouse.catalog}.{FEED} WHERE _ddb_window_end <= TIMESTAMP '{moment}'
            ) WHERE latest = 1 AND _ddb_operation <> 'delete'"""
        ).collect()
        items = [read(row.asDict(recursive=True)) for row in found]
        by_key = {tuple(item[c.attribute] for c in layout.key_columns): item for item in items}
        assert by_key == series.truth(hours), f"as of hour {hours}"


def test_a_rebaseline_writes_the_differences_it_made(warehouse: LocalWarehouse, tmp_path: Path) -> None:
    series = History(tmp_path, seed=44, items=120, writes_per_hour=300)
    series.add_windows(2)
    warehouse.sync(series.source, TABLE, key_attributes=series.table.key_attributes, change_feed=True)
    table_before = warehouse.items(TABLE)
    series.add_windows(3)  # hours 3 to 5 never reach the table: a re-baseline from hour 5 catches up
    write_full_export(series.table, series.target, series.start + 5 * HOUR)
    result = warehouse.sync(series.source, TABLE, rebaseline=True, change_feed=True)
    assert result.rebaseline_of is not None and warehouse.items(TABLE) == series.truth(5)

    rows = warehouse.spark.table(f"{warehouse.catalog}.{FEED}").where(f"{REBASELINE_COLUMN}").collect()
    layout = warehouse.table(TABLE).layout()
    assert layout is not None
    read = item_reader(layout)
    keys = [c.attribute for c in layout.key_columns]
    seen: WindowChanges = {}
    for row in rows:
        cells = row.asDict(recursive=True)
        after = read(cells) if cells[OPERATION_COLUMN] != "delete" else None
        before = read(cells[BEFORE_COLUMN]) if cells[BEFORE_COLUMN] is not None else None
        seen[tuple(read(cells)[k] for k in keys)] = (cells[OPERATION_COLUMN], before, after)
        assert cells[EXPORT_ID_COLUMN] == result.applied_exports[0]["export_id"]
        assert cells[WINDOW_START_COLUMN].astimezone(UTC) == series.start + 5 * HOUR
    truth_after = series.truth(5)
    expected: WindowChanges = {}
    for key in table_before.keys() | truth_after.keys():
        old, new = table_before.get(key), truth_after.get(key)
        if old != new:
            expected[key] = ("insert" if old is None else "delete" if new is None else "update", old, new)
    assert seen == expected and expected


def test_real_exports_before_images_from_their_old_images_are_the_tables_rows(
    warehouse: LocalWarehouse, test_table_source: Path
) -> None:
    """DynamoDB's own NEW_AND_OLD_IMAGES window (2 deletes, 2 updates, one of which removes an attribute, and an
    insert), synced onto the table as the window before it left it: the feed's before-images come from the
    records' OldImage (no read of the table) and are the table's rows as they were."""
    warehouse.sync(test_table_source, "real.test", allow_gaps=True, up_to=datetime(2026, 1, 14, 10, 35, tzinfo=UTC))
    before = warehouse.items("real.test")
    warehouse.sync(test_table_source, "real.test", change_feed=True)
    after = warehouse.items("real.test")
    expected: WindowChanges = {}
    for key in before.keys() | after.keys():
        old, new = before.get(key), after.get(key)
        if old != new:
            expected[key] = ("insert" if old is None else "delete" if new is None else "update", old, new)
    assert Counter(change[0] for change in expected.values()) == {"delete": 2, "update": 2, "insert": 1}
    assert feed_by_window(warehouse, "real.test") == {datetime(2026, 1, 14, 10, 50, tzinfo=UTC): expected}
    feed_write = last_plan(warehouse.spark, "AppendData", f"{warehouse.catalog}.{feed_identifier('real.test')}")
    assert "BatchScan" not in feed_write, feed_write


def test_a_feed_name_too_long_is_refused_before_anything_runs(tmp_path: Path) -> None:
    from ddb_iceberg.engine.request import SyncRequest

    with pytest.raises(SettingError, match="change feed"):
        SyncRequest(table="dynamodb." + "t" * 250, source=str(tmp_path), change_feed=True)


class _Killed(BaseException):
    """Stands for the process dying at that point (a BaseException, as a KeyboardInterrupt or SystemExit is)."""


@pytest.mark.usefixtures("small_plans_on_driver")  # the feed's rows, OldImages included, built on the driver
def test_a_run_that_dies_between_the_two_publishes_is_caught_up_by_the_next(
    warehouse: LocalWarehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    series = History(tmp_path, seed=45, items=120, writes_per_hour=300)
    series.add_windows(1)
    warehouse.sync(series.source, TABLE, key_attributes=series.table.key_attributes, change_feed=True)
    series.add_windows(1)

    def dies(self: SparkIcebergTable, *_: Any, **__: Any) -> None:
        raise _Killed

    with monkeypatch.context() as patched:
        patched.setattr(SparkIcebergTable, "publish_appends", dies)
        with pytest.raises(_Killed):
            warehouse.sync(series.source, TABLE, change_feed=True)
    assert warehouse.items(TABLE) == series.truth(2), "the table's commit was published"
    assert series.start + 2 * HOUR not in feed_by_window(warehouse, TABLE), "the feed's was not"
    # Upkeep compacts the feed meanwhile: its main moves on, and the branch no longer starts from it.
    warehouse.spark.sql(
        f"CALL {warehouse.catalog}.system.rewrite_data_files(table => '{FEED}', options => map('rewrite-all', 'true'))"
    ).collect()

    caught_up = warehouse.sync(series.source, TABLE, change_feed=True)
    assert not caught_up.changed and not caught_up.warnings
    feed = feed_by_window(warehouse, TABLE)
    assert feed[series.start + 2 * HOUR] == series.changes(2)
    assert not [b for b in warehouse.table(FEED).branch_heads("ddb_sync_")], "the feed's branch was published"


def test_a_run_that_dies_before_the_tables_publish_changes_none_of_the_three(
    warehouse: LocalWarehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # NEW_IMAGE exports carry no OldImage: the feed's before-images come from the table's rows.
    series = History(tmp_path, seed=46, items=120, writes_per_hour=300, view=ExportView.NEW_IMAGE)
    series.add_windows(1)
    warehouse.sync(series.source, TABLE, key_attributes=series.table.key_attributes, history=True)
    feed_rows = warehouse.spark.table(f"{warehouse.catalog}.{FEED}").count()
    versions = warehouse.spark.table(f"{warehouse.catalog}.{history_identifier(TABLE)}").count()
    series.add_windows(2)

    def dies(self: SparkIcebergTable, *_: Any, **__: Any) -> None:
        raise _Killed

    with monkeypatch.context() as patched:
        patched.setattr(SparkIcebergTable, "publish", dies)
        with pytest.raises(_Killed):
            warehouse.sync(series.source, TABLE, history=True)
    assert warehouse.items(TABLE) == series.truth(1)
    assert warehouse.spark.table(f"{warehouse.catalog}.{FEED}").count() == feed_rows
    assert warehouse.spark.table(f"{warehouse.catalog}.{history_identifier(TABLE)}").count() == versions

    warehouse.sync(series.source, TABLE, history=True)
    feed = feed_by_window(warehouse, TABLE)
    for hours in (2, 3):  # a key's first change before-imaged by the table, a later one by the change before it
        assert feed[series.start + hours * HOUR] == series.changes(hours), f"window {hours}"
        assert history_as_of(warehouse, TABLE, series.time(hours)) == series.truth(hours)


def test_upkeep_compacts_the_feed_and_expires_its_snapshots_keeping_every_row(
    warehouse: LocalWarehouse, tmp_path: Path
) -> None:
    series = History(tmp_path, seed=47, items=120, writes_per_hour=300)
    warehouse.sync(series.source, TABLE, key_attributes=series.table.key_attributes, change_feed=True)
    for _ in range(3):  # one window at a time, as the schedule runs them: one small feed file each
        series.add_windows(1)
        warehouse.sync(series.source, TABLE, change_feed=True)
    before = feed_by_window(warehouse, TABLE)
    forty_days_on = datetime.now(UTC) + timedelta(days=40)
    request = UpkeepRequest(TABLE, UpkeepSettings(min_input_files=2))
    result = maintain_table(warehouse.spark, warehouse.catalog, request, now=forty_days_on)

    feed = result.change_feed
    assert feed["snapshots_before"] > 4 and feed["snapshots_after"] == 1, feed
    assert feed["data_files_after"] < feed["data_files_before"], feed
    assert feed_by_window(warehouse, TABLE) == before
    series.add_windows(1)
    synced = warehouse.sync(series.source, TABLE, change_feed=True)
    assert not synced.warnings, "the feed after upkeep is taken for one that lost a sync"
    assert feed_by_window(warehouse, TABLE)[series.start + 4 * HOUR] == series.changes(4)


def test_a_feed_whose_before_struct_glue_cannot_store_is_refused_before_anything_is_written() -> None:
    # 1,200 attributes of about 120 characters each: every column fits Glue on its own, their struct does not.
    columns = tuple(
        Column(name=f"attribute_{n:04d}_" + "x" * 100, attribute=f"a{n}", tag="S", type=ColumnType(Kind.STRING))
        for n in range(1_200)
    )
    with pytest.raises(SyncError, match="Glue stores at most 131,072"):
        check_before_fits_glue(Layout(key_attributes=("a0",), columns=columns), FEED)
    check_before_fits_glue(Layout(key_attributes=("a0",), columns=columns[:100]), FEED)
