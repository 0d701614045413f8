"""Edge cases of applying exports: empty and delete-only windows, absent keys, S3 sources, leftovers."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ddb_iceberg.engine.rows import canonical_item
from ddb_iceberg.exports import ExportSource, ExportView
from ddb_iceberg.simulator import (
    ExportTarget,
    SimulatedTable,
    SimulationConfig,
    write_full_export,
    write_incremental_export,
    write_series,
)
from ddb_iceberg_tests.helpers import LocalWarehouse, MotoServer, add_incomplete_export, copy_tree

T0 = datetime(2026, 5, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def _scripted(*writes: tuple[float, dict[str, Any] | None, str]) -> SimulatedTable:
    return SimulatedTable.scripted(("id",), [(T0 + timedelta(minutes=m), item, (key,)) for m, item, key in writes])


def _target(path: Path) -> ExportTarget:
    return ExportTarget.for_source(ExportSource.from_uri(str(path)), partitions=4)


def test_empty_delete_only_and_ghost_deletes(warehouse: LocalWarehouse, tmp_path: Path) -> None:
    table = _scripted(
        (-5, {"id": "a", "v": "1"}, "a"),
        (-4, {"id": "b", "v": "2"}, "b"),
        # window 1 [T0, T0+1h): nothing. window 2: only deletes, one of a key never in the table.
        (70, None, "a"),
        (80, {"id": "tmp", "v": "x"}, "tmp"),
        (90, None, "tmp"),
    )
    exports = tmp_path / "exports"
    target = _target(exports)
    write_full_export(table, target, T0)
    empty = write_incremental_export(table, target, T0, T0 + HOUR, ExportView.NEW_IMAGE)
    assert empty.item_count == 0  # every data file, the first included, is the empty 20-byte gzip
    first = warehouse.sync(exports, key_attributes=("id",))
    assert first.reflects == "2026-05-01T01:00:00.000Z"
    deletes = write_incremental_export(table, target, T0 + HOUR, T0 + 2 * HOUR, ExportView.NEW_IMAGE)
    assert deletes.item_count == 1  # `tmp` was created and deleted inside the window: not exported
    second = warehouse.sync(exports)
    assert (second.rows_inserted, second.rows_updated, second.rows_deleted) == (0, 0, 1)
    assert warehouse.items() == {("b",): {"id": "b", "v": "2"}}


def test_a_window_with_nothing_to_apply_still_advances_the_ledger(warehouse: LocalWarehouse, tmp_path: Path) -> None:
    table = _scripted((-5, {"id": "a", "v": "1"}, "a"), (30, None, "ghost"))
    exports = tmp_path / "exports"
    write_full_export(table, _target(exports), T0)
    warehouse.sync(exports, key_attributes=("id",))
    write_incremental_export(table, _target(exports), T0, T0 + HOUR)  # a delete of a key never in the table
    result = warehouse.sync(exports)
    assert result.changed and result.reflects == "2026-05-01T01:00:00.000Z"
    assert (result.rows_inserted, result.rows_updated, result.rows_deleted) == (0, 0, 0)
    assert warehouse.table().ledger() is not None and warehouse.items() == {("a",): {"id": "a", "v": "1"}}
    assert set(warehouse.table().tags()) == {"ddb-20260501T000000Z", "ddb-20260501T010000Z"}


def test_nothing_is_left_behind(warehouse: LocalWarehouse, tmp_path: Path) -> None:
    table = SimulatedTable(SimulationConfig(seed=12, initial_items=30))
    write_series(table, _target(tmp_path / "exports"), windows=2)
    warehouse.sync(tmp_path / "exports")
    spark = warehouse.spark
    assert [t.name for t in spark.catalog.listTables(f"{warehouse.catalog}.dynamodb")] == ["orders"]
    assert not [v for v in spark.catalog.listTables() if v.isTemporary and v.name.startswith("ddb_iceberg")]


def test_files_of_a_run_that_died_are_swept_later(warehouse: LocalWarehouse, tmp_path: Path) -> None:
    table = SimulatedTable(SimulationConfig(seed=13, initial_items=30))
    exports = tmp_path / "exports"
    write_full_export(table, _target(exports), table.config.start)
    warehouse.sync(exports, key_attributes=table.key_attributes)
    data_dir = next(p for p in warehouse.path.rglob("data") if p.is_dir())
    orphan = data_dir / "00000-0-died-before-commit.parquet"
    orphan.write_bytes(b"PAR1 not referenced by any snapshot")
    two_days_ago = time.time() - 2 * 86_400
    os.utime(orphan, (two_days_ago, two_days_ago))
    write_incremental_export(table, _target(exports), table.config.start, table.config.start + HOUR)
    result = warehouse.sync(exports, orphan_sweep_interval=timedelta(0))
    assert not orphan.exists()
    assert "removed 1 orphan file(s) left by runs that died before committing" in result.warnings
    assert warehouse.items() == {k: canonical_item(v) for k, v in table.state_at(table.config.start + HOUR).items()}


def test_syncs_from_an_s3_prefix(warehouse: LocalWarehouse, moto_server: MotoServer) -> None:
    moto_server.client("s3").create_bucket(Bucket="sync-source")
    source = ExportSource.from_uri("s3://sync-source/exports/orders", moto_server.s3_options)
    table = SimulatedTable(SimulationConfig(seed=14, initial_items=40))
    write_series(table, ExportTarget.for_source(source), windows=3, view=ExportView.NEW_IMAGE)
    result = warehouse.sync(source)
    assert result.reflects == "2026-01-01T03:00:00.000Z"
    truth = table.state_at(table.config.start + 3 * HOUR)
    assert warehouse.items() == {key: canonical_item(item) for key, item in truth.items()}


def test_a_sync_opens_the_exports_it_applies_not_the_history_under_its_source(
    warehouse: LocalWarehouse, tmp_path: Path
) -> None:
    table = SimulatedTable(SimulationConfig(seed=5, initial_items=30, writes_per_hour=40))
    target = ExportTarget(ExportSource.from_uri(str(tmp_path / "exports")), "simulated-exports", None, partitions=1)
    summaries = write_series(table, target, windows=40, window_length=timedelta(minutes=15))

    first = warehouse.sync(tmp_path / "exports", up_to=summaries[-2].covers_to)
    assert first.exports_read == 41  # a new table: the full export and every window after it
    last = warehouse.sync(tmp_path / "exports")
    # One window to apply: it and those requested within the id clock margin before the table's point are opened,
    # not the 40 exports of history.
    assert [e["export_id"] for e in last.applied_exports] == [summaries[-1].export_id]
    assert (last.exports_listed, last.exports_read) == (41, 1)
    assert warehouse.items() == {k: canonical_item(v) for k, v in table.state_at(summaries[-1].covers_to).items()}


def test_a_sync_without_list_permission_reports_an_export_still_running_instead_of_failing(
    warehouse: LocalWarehouse, moto_server: MotoServer, test_table_source: Path, tmp_path: Path
) -> None:
    # S3 answers 403 for a missing key without s3:ListBucket (ddb_iceberg.loopback_aws.s3_rules): a HEAD of an
    # export's manifest-summary.json would fail the sync on an export that is still running.
    root = copy_tree(test_table_source, tmp_path / "table")
    add_incomplete_export(root, "01768390000000-0badc0de")
    source = moto_server.source_without_list_permission(root, "sync-without-list")

    result = warehouse.sync(source, allow_gaps=True)  # the real exports' 69-second gap
    assert result.reflects == "2026-01-14T10:50:00.000Z"
    assert any("01768390000000-0badc0de: no manifest-summary.json yet" in w for w in result.warnings)
    assert len(warehouse.items()) == 8
