"""The merge engine against real Spark and a real Iceberg catalog, checked against the simulator's truth."""

from __future__ import annotations

import gzip
import random
import re
from datetime import timedelta
from pathlib import Path

import pytest

from ddb_iceberg.engine.rows import canonical_item
from ddb_iceberg.engine.sync import tag_name
from ddb_iceberg.errors import ExportError, Fix, GapError, SyncError
from ddb_iceberg.exports import ExportSource, ExportView
from ddb_iceberg.simulator import (
    ExportTarget,
    KeyShape,
    SimulatedTable,
    SimulationConfig,
    write_full_export,
    write_incremental_export,
)
from ddb_iceberg_tests.helpers import LocalWarehouse

HOUR = timedelta(hours=1)


def _truth(table: SimulatedTable, moment: object) -> dict[object, object]:
    return {key: canonical_item(item) for key, item in table.state_at(moment).items()}  # type: ignore[arg-type]


def _target(path: Path) -> ExportTarget:
    return ExportTarget.for_source(ExportSource.from_uri(str(path)))


@pytest.mark.parametrize(
    ("seed", "read_on"), [(1, "executors"), (2, "executors"), (3, "executors"), (2, "driver"), (3, "driver")]
)
def test_oracle_table_equals_the_truth_at_every_tag(
    warehouse: LocalWarehouse, tmp_path: Path, seed: int, read_on: str, request: pytest.FixtureRequest
) -> None:
    if read_on == "driver":
        request.getfixturevalue("small_plans_on_driver")
    rng = random.Random(seed)
    config = SimulationConfig(
        seed=seed,
        initial_items=120,
        writes_per_hour=240,
        key_shape=rng.choice(list(KeyShape)),
        type_drift=seed == 2,
    )
    view = rng.choice(list(ExportView))
    table = SimulatedTable(config)
    target = _target(tmp_path / "exports")
    write_full_export(table, target, config.start)
    window_start = config.start
    tags: dict[str, object] = {}
    # Syncs that catch up one window, several windows at once, or nothing new.
    for windows_before_sync in [0, 1, 3, 1, 0, 2]:
        for _ in range(windows_before_sync):
            length = timedelta(minutes=rng.choice([15, 30, 45, 60]))
            write_incremental_export(table, target, window_start, window_start + length, view)
            window_start += length
        result = warehouse.sync(tmp_path / "exports", key_attributes=table.key_attributes)
        assert result.reflects is not None and result.tag == tag_name(window_start)
        assert result.read_on == (read_on if result.changed else "")
        tags[result.tag] = window_start
    assert len(tags) == 5
    for tag, moment in tags.items():
        assert warehouse.items(version=tag) == _truth(table, moment), f"table at tag {tag}"
    assert warehouse.items() == _truth(table, window_start)


def test_rerun_with_nothing_new_creates_no_snapshot(warehouse: LocalWarehouse, tmp_path: Path) -> None:
    table = SimulatedTable(SimulationConfig(seed=4, initial_items=50))
    target = _target(tmp_path / "exports")
    write_full_export(table, target, table.config.start)
    write_incremental_export(table, target, table.config.start, table.config.start + HOUR)
    first = warehouse.sync(tmp_path / "exports")
    files = warehouse.files()
    again = warehouse.sync(tmp_path / "exports")
    assert not again.changed and again.snapshot_id == first.snapshot_id
    assert warehouse.files() == files, "a no-op sync writes nothing"


def test_overlapping_and_reapplied_windows_change_nothing(warehouse: LocalWarehouse, tmp_path: Path) -> None:
    table = SimulatedTable(SimulationConfig(seed=5, initial_items=80, writes_per_hour=300))
    start = table.config.start
    first = _target(tmp_path / "first")
    write_full_export(table, first, start)
    write_incremental_export(table, first, start, start + HOUR)
    warehouse.sync(tmp_path / "first")
    # A second series with a window overlapping the first by 45 minutes, then the next one.
    write_incremental_export(table, first, start + timedelta(minutes=15), start + 2 * HOUR)
    result = warehouse.sync(tmp_path / "first")
    assert result.records_already_reflected > 0
    assert warehouse.items() == _truth(table, start + 2 * HOUR)


def test_gap_is_refused_before_anything_is_written(warehouse: LocalWarehouse, tmp_path: Path) -> None:
    table = SimulatedTable(SimulationConfig(seed=6, initial_items=40))
    start = table.config.start
    target = _target(tmp_path / "exports")
    write_full_export(table, target, start)
    write_incremental_export(table, target, start, start + HOUR)
    warehouse.sync(tmp_path / "exports")
    files = warehouse.files()
    write_incremental_export(table, target, start + 2 * HOUR, start + 3 * HOUR)
    with pytest.raises(GapError, match=r"\[2026-01-01T01:00:00.000Z, 2026-01-01T02:00:00.000Z\)"):
        warehouse.sync(tmp_path / "exports")
    assert warehouse.files() == files
    accepted = warehouse.sync(tmp_path / "exports", allow_gaps=True)
    assert accepted.accepted_gaps == ["[2026-01-01T01:00:00.000Z, 2026-01-01T02:00:00.000Z) (1:00:00 uncovered)"]
    assert accepted.reflects == "2026-01-01T03:00:00.000Z"


def test_real_exports_need_allow_gaps_for_their_69_second_gap(
    warehouse: LocalWarehouse, test_table_source: Path
) -> None:
    with pytest.raises(GapError, match=re.escape("(0:01:09.378000 uncovered)")):
        warehouse.sync(test_table_source, "real.test")
    assert not warehouse.table("real.test").exists()
    result = warehouse.sync(test_table_source, "real.test", allow_gaps=True)
    assert result.reflects == "2026-01-14T10:50:00.000Z"
    assert (result.rows_inserted, result.rows_updated, result.rows_deleted) == (8, 0, 0)
    items = warehouse.items("real.test")
    assert sorted(items) == [
        ("1", "2"),
        ("1", "3"),
        ("2", "1"),
        ("2", "2"),
        ("3", "1"),
        ("3", "2"),
        ("3", "3"),
        ("4", "2"),
    ]
    assert "number" not in items[("3", "2")] and items[("3", "1")]["number"] == 12
    assert items[("1", "3")]["bin_update"] == frozenset({b"\xd3M4", b"\xd3M5"})
    assert items[("3", "1")]["mapp"] == {"test": b"\xb5\xeb-"}


@pytest.mark.parametrize(
    ("corruption", "problem", "read_on"),
    [
        ("checksum", "md5Checksum mismatch", "executors"),
        ("missing", "is listed in manifest-files.json but missing", "executors"),
        ("truncated", "truncated or corrupt gzip", "executors"),
        ("checksum", "md5Checksum mismatch", "driver"),
        ("truncated", "truncated or corrupt gzip", "driver"),
    ],
)
def test_a_corrupt_export_leaves_the_table_exactly_as_it_was(
    warehouse: LocalWarehouse,
    tmp_path: Path,
    corruption: str,
    problem: str,
    read_on: str,
    request: pytest.FixtureRequest,
) -> None:
    if read_on == "driver":
        request.getfixturevalue("small_plans_on_driver")
    table = SimulatedTable(SimulationConfig(seed=7, initial_items=60, writes_per_hour=200))
    start = table.config.start
    target = _target(tmp_path / "exports")
    write_full_export(table, target, start)
    warehouse.sync(tmp_path / "exports", key_attributes=table.key_attributes)
    before_items, before_files = warehouse.items(), warehouse.files()
    write_incremental_export(table, target, start, start + HOUR)
    summary = write_incremental_export(table, target, start + HOUR, start + 2 * HOUR)
    manifest = (tmp_path / "exports" / summary.manifest_files_s3_key).read_text().splitlines()
    key = next(line.split('"dataFileS3Key":"')[1].rstrip('"}') for line in manifest if '"itemCount":0' not in line)
    data_file = tmp_path / "exports" / key
    if corruption == "checksum":
        # Same lines, other bytes: only the checksum can tell.
        data_file.write_bytes(gzip.compress(gzip.decompress(data_file.read_bytes()), compresslevel=1))
    elif corruption == "missing":
        data_file.unlink()
    else:
        data_file.write_bytes(data_file.read_bytes()[:-20])
    with pytest.raises(ExportError, match=problem) as caught:
        warehouse.sync(tmp_path / "exports")
    assert summary.export_id in str(caught.value) and key in str(caught.value)
    assert warehouse.items() == before_items
    assert warehouse.files() == before_files


def test_keys_are_needed_when_no_export_names_them(warehouse: LocalWarehouse, tmp_path: Path) -> None:
    table = SimulatedTable(SimulationConfig(seed=8, initial_items=10))
    write_full_export(table, _target(tmp_path / "exports"), table.config.start)
    with pytest.raises(SyncError, match="the table's key attributes are needed") as refused:
        warehouse.sync(tmp_path / "exports")
    assert refused.value.fixes == (Fix.NAME_KEY,)
    result = warehouse.sync(tmp_path / "exports", key_attributes=("customer_id", "order_id"))
    assert result.rows_inserted == 10
