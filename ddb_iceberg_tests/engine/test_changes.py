"""The rules that turn a plan's exports into changes, pinned scenario by scenario: the latest write per key wins
(then the later export, file and line), stale records are skipped, overlapping windows delete what they show
was created and deleted inside them, keys are checked."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession

from ddb_iceberg.engine import changes as changes_module
from ddb_iceberg.engine.changes import (
    SMALL_PLAN_ITEMS,
    SMALL_PLAN_ITEMS_CONF,
    TASK_ITEMS,
    collect_changes,
    plan_tasks,
    reads_on_driver,
)
from ddb_iceberg.engine.ledger import LedgerEntry
from ddb_iceberg.engine.plan import SyncPlan, plan_sync
from ddb_iceberg.engine.records import FileToRead, image_item, key_text, key_values, read_tasks_here
from ddb_iceberg.errors import ExportError
from ddb_iceberg.exports import ExportSource, discover_exports
from ddb_iceberg.exports.manifest import DataFileEntry, ExportView, to_micros
from ddb_iceberg.exports.reader import DataFile
from ddb_iceberg.simulator import ExportTarget, SimulatedTable, write_full_export, write_incremental_export

T0 = datetime(2026, 3, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
Key = tuple[Any, ...]


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def micros(minutes: float) -> int:
    return to_micros(at(minutes))


@dataclass
class Collected:
    """What collection gives, in a form that does not depend on how it is computed."""

    changes: dict[Key, tuple[int, dict[str, Any] | None]]
    records_read: int
    records_stale: int
    overlap_deletes: int


Collect = Callable[[SyncPlan, tuple[str, ...], Iterable[tuple[Key, int]]], Collected]


@pytest.fixture(params=["executors", "driver"])
def collect(spark: SparkSession, request: pytest.FixtureRequest) -> Collect:
    """Collection as a sync runs it: on Spark, the table's rows given as a DataFrame; the records read on the
    executors, or on the driver as a small plan's are (the same rules either way)."""
    on_driver = request.param == "driver"

    def run(plan: SyncPlan, keys: tuple[str, ...], table_rows: Iterable[tuple[Key, int]]) -> Collected:
        rows = [(key_text(key), written) for key, written in table_rows]

        def written_between(start: int, end: int) -> DataFrame:
            selected = [(key, written) for key, written in rows if start <= written < end]
            return spark.createDataFrame(selected, "key STRING, written BIGINT")

        changes = collect_changes(spark, plan, keys, None, written_between, on_driver)
        try:
            winners = {
                key_values(row["key"]): (
                    row["written"],
                    image_item(row["kind"], row["image"]),
                )
                for row in changes.frame.collect()
            }
        finally:
            changes.release()
        return Collected(winners, changes.records_read, changes.records_stale, changes.overlap_deletes)

    return run


class Exports:
    """A scripted table's exports in a directory, planned as a sync would."""

    def __init__(self, root: Path, writes: list[tuple[float, dict[str, Any] | None, str]]) -> None:
        self.table = SimulatedTable.scripted(("id",), [(at(m), item, (key,)) for m, item, key in writes])
        self.root = root
        self.target = ExportTarget.for_source(ExportSource.from_uri(str(root)), partitions=3)

    def full(self, minutes: float) -> None:
        write_full_export(self.table, self.target, at(minutes))

    def window(self, start: float, end: float, view: ExportView = ExportView.NEW_AND_OLD_IMAGES) -> None:
        write_incremental_export(self.table, self.target, at(start), at(end), view=view)

    def plan(self, reflects: float | None = None, baseline: float = 0) -> SyncPlan:
        listing = discover_exports(ExportSource.from_uri(str(self.root)))
        ledger = None
        if reflects is not None:
            ledger = LedgerEntry(1, at(reflects), (), "full", at(baseline), listing.exports[0].summary.table_arn)
        return plan_sync(listing, ledger, allow_gaps=True)


def _item(key: str, value: int) -> dict[str, Any]:
    return {"id": key, "v": value}


def test_the_baseline_gives_every_item_at_the_exports_time(tmp_path: Path, collect: Collect) -> None:
    exports = Exports(tmp_path, [(-5, _item("a", 1), "a"), (-3, _item("b", 2), "b"), (-1, None, "b")])
    exports.full(0)
    collected = collect(exports.plan(), ("id",), [])
    assert collected.changes == {("a",): (micros(0), {"id": "a", "v": 1})}
    assert (collected.records_read, collected.records_stale, collected.overlap_deletes) == (1, 0, 0)


def test_the_latest_write_wins_across_windows_and_deletes_count(tmp_path: Path, collect: Collect) -> None:
    exports = Exports(
        tmp_path,
        [
            (-5, _item("a", 1), "a"),
            (10, _item("a", 2), "a"),
            (20, _item("b", 1), "b"),
            (70, None, "a"),
            (80, _item("b", 3), "b"),
            (90, _item("c", 1), "c"),
            (100, None, "c"),  # created and deleted inside one window: in no export
        ],
    )
    exports.full(0)
    exports.window(0, 60)
    exports.window(60, 120)
    collected = collect(exports.plan(reflects=0), ("id",), [])
    assert collected.changes == {("a",): (micros(70), None), ("b",): (micros(80), {"id": "b", "v": 3})}
    assert (collected.records_read, collected.records_stale, collected.overlap_deletes) == (4, 0, 0)


def test_records_the_table_already_reflects_are_skipped(tmp_path: Path, collect: Collect) -> None:
    exports = Exports(tmp_path, [(-5, _item("a", 1), "a"), (10, _item("a", 2), "a"), (50, _item("b", 1), "b")])
    exports.full(0)
    exports.window(0, 60)
    # The table reflects 0:40 (say, from an earlier window [0, 40)): a change at 0:10 is already in it.
    collected = collect(exports.plan(reflects=40), ("id",), [(("a",), micros(10))])
    assert collected.changes == {("b",): (micros(50), {"id": "b", "v": 1})}
    assert (collected.records_read, collected.records_stale) == (2, 1)


@pytest.mark.parametrize(
    ("windows", "reflects", "stand_for_the_table"),
    [
        pytest.param([(0, 60), (60, 120)], 0, True, id="windows-tiling-on-from-the-table"),
        pytest.param([(0, 60), (60, 120)], None, False, id="a-baseline"),
        pytest.param([(0, 60), (60, 120)], 30, False, id="a-window-overlapping-the-table"),
        pytest.param([(0, 60), (50, 120)], 0, False, id="overlapping-windows"),
        pytest.param([(0, 60), (90, 120)], 0, False, id="a-gap"),
        pytest.param([(0, 60, ExportView.NEW_IMAGE), (60, 120)], 0, False, id="a-new-image-window"),
    ],
)
def test_old_images_stand_for_the_tables_rows_only_when_the_windows_tile_on_from_it(
    tmp_path: Path, windows: list[tuple[Any, ...]], reflects: float | None, stand_for_the_table: bool
) -> None:
    exports = Exports(tmp_path, [(-5, _item("a", 1), "a"), (10, _item("a", 2), "a"), (70, _item("a", 3), "a")])
    exports.full(0)
    for window in windows:
        exports.window(*window)
    assert exports.plan(reflects=reflects).old_images_are_the_tables is stand_for_the_table


def test_an_overlapping_window_deletes_what_it_shows_was_deleted_inside_it(tmp_path: Path, collect: Collect) -> None:
    exports = Exports(
        tmp_path,
        [
            (-5, _item("base", 1), "base"),
            (25, _item("y", 1), "y"),  # y is written at 0:25 and deleted at 0:40: the window [0, 60) omits it
            (40, None, "y"),
        ],
    )
    exports.full(0)
    exports.window(0, 60)
    # The table reflects 0:30 and holds y (written 0:25), which the window [0, 60) does not mention.
    table_rows = [(("base",), micros(0)), (("y",), micros(25))]
    collected = collect(exports.plan(reflects=30), ("id",), table_rows)
    assert collected.changes[("y",)] == (micros(25), None)
    assert collected.overlap_deletes == 1
    assert ("base",) not in collected.changes  # rows of the full export carry its time: never candidates


def test_an_overlapping_window_deletes_changes_of_earlier_windows_in_the_same_sync(
    tmp_path: Path, collect: Collect
) -> None:
    exports = Exports(tmp_path, [(-5, _item("a", 1), "a"), (30, _item("z", 1), "z"), (50, None, "z")])
    exports.full(0)
    exports.window(0, 40)  # z written at 0:30
    exports.window(20, 60)  # z written and deleted inside: compacted away, so not mentioned
    collected = collect(exports.plan(reflects=0), ("id",), [])
    assert collected.changes == {("z",): (micros(30), None)}
    assert collected.overlap_deletes == 1


def test_records_name_the_table_keys(tmp_path: Path, collect: Collect) -> None:
    exports = Exports(tmp_path, [(-5, _item("a", 1), "a"), (10, _item("b", 1), "b")])
    exports.full(0)
    exports.window(0, 60)
    with pytest.raises(ExportError, match=r"names the Keys \['id'\], not the table's keys \['other'\]"):
        collect(exports.plan(reflects=0), ("other",), [])


def test_a_plan_is_read_on_the_driver_only_while_it_is_small(
    tmp_path: Path, spark: SparkSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    exports = Exports(tmp_path, [(m, _item(f"k{m}", m), f"k{m}") for m in range(1, 40)])
    exports.full(0)
    exports.window(0, 60)
    plan = exports.plan(reflects=0)
    assert sum(entry.item_count for export in plan.exports for entry in export.data_files) == 39
    try:
        for limit, expected in [("39", True), ("38", False), ("0", False)]:
            spark.conf.set(SMALL_PLAN_ITEMS_CONF, limit)
            assert reads_on_driver(spark, plan) is expected, limit
    finally:
        spark.conf.set(SMALL_PLAN_ITEMS_CONF, "0")
    # However few its items, a plan whose records outgrow what the driver should hold goes to the executors.
    small = collect_changes(spark, plan, ("id",), on_driver=True)
    monkeypatch.setattr(changes_module, "SMALL_PLAN_BYTES", 2000)
    large = collect_changes(spark, plan, ("id",), on_driver=True)
    try:
        assert small.on_driver and not large.on_driver
        assert sorted(small.frame.collect()) == sorted(large.frame.collect())
        assert large.records_read == small.records_read == 39
    finally:
        small.release()
        large.release()


def _files(*item_counts: int) -> list[FileToRead]:
    def data_file(index: int, items: int) -> DataFile:
        entry = DataFileEntry(items, "md5", "etag", f"data/{index}.json.gz")
        return DataFile("export", entry, f"data/{index}.json.gz", None, False, None, 0, 1, "DYNAMODB_JSON")

    return [FileToRead(data_file(i, n), 1, i, 0, False) for i, n in enumerate(item_counts)]


def test_read_tasks_keep_every_core_busy_once_a_plan_is_too_large_for_the_driver() -> None:
    def task_items(item_counts: list[int], cores: int) -> list[int]:
        groups = changes_module._group(_files(*item_counts), cores)
        assert sorted(f.file_ord for group in groups for f in group) == list(range(len(item_counts)))
        return sorted(sum(f.data_file.entry.item_count for f in group) for group in groups)

    # Just too large for the driver: a catch-up of twelve 4,000-change windows is read by both cores.
    assert task_items([4_000] * 12, cores=2) == [24_000, 24_000]
    assert task_items([SMALL_PLAN_ITEMS + 2], cores=2) == [SMALL_PLAN_ITEMS + 2]  # a file is read by one task
    # Small files share a task (each task costs a Python worker's round trip) ...
    assert len(task_items([100] * 50, cores=8)) == 1
    # ... and a large export spreads over more tasks than there are cores, none above TASK_ITEMS.
    sizes = task_items([250_000] * 12, cores=2)
    assert len(sizes) >= 6 and max(sizes) <= TASK_ITEMS


def test_records_come_in_batches_of_bounded_size_however_large_the_items(tmp_path: Path) -> None:
    # What a small plan's reading holds beyond its bound, and an executor at once, is one batch: 60 items of
    # 390 KB (DynamoDB allows 400 KB), in 3 files, do not make batches of 6 MB or more.
    exports = Exports(tmp_path, [(m, {"id": f"k{m}", "blob": "x" * 390_000}, f"k{m}") for m in range(1, 61)])
    exports.full(120)
    tasks, _, _ = plan_tasks(exports.plan(), ("id",))
    records = read_tasks_here(tasks, max_bytes=2**40)
    assert records is not None and records.num_rows == 60 + len(tasks)  # and one summary row per task
    assert max(batch.nbytes for batch in records.to_batches()) < 5 * 2**20
