"""Table upkeep: compaction, expiry and orphan removal leave the table exact, the ledger found, the next sync right."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ddb_iceberg.catalog_access import UPKEEP_RESULT_WARNING, local_catalog, table_status, upkeep_result_from_table
from ddb_iceberg.engine.request import UpkeepRequest, UpkeepSettings
from ddb_iceberg.engine.sync import tag_name
from ddb_iceberg.engine.upkeep import maintain_table
from ddb_iceberg.errors import SettingError, SyncError
from ddb_iceberg.exports.manifest import format_timestamp
from ddb_iceberg_tests.engine.test_data_safety import _sync_held_before_its_commit
from ddb_iceberg_tests.helpers import History, LocalWarehouse

# Forty days on, every snapshot is past the 7-day retention and every tag past the 30-day one.
FORTY_DAYS_ON = timedelta(days=40)


def _synced_window_by_window(warehouse: LocalWarehouse, history: History, windows: int) -> None:
    warehouse.sync(history.source, key_attributes=history.table.key_attributes)
    for _ in range(windows):
        history.add_windows(1)
        warehouse.sync(history.source)


def test_upkeep_compacts_expires_and_the_next_window_applies_exactly(warehouse: LocalWarehouse, tmp_path: Path) -> None:
    history = History(tmp_path, seed=51)
    _synced_window_by_window(warehouse, history, 6)
    later = datetime.now(UTC) + FORTY_DAYS_ON
    result = maintain_table(warehouse.spark, warehouse.catalog, UpkeepRequest("dynamodb.orders"), now=later)

    assert result.before.delete_files > 0 and result.after.delete_files == 0, "the windows' delete files are gone"
    assert result.after.data_files < result.before.data_files
    assert result.data_files_rewritten == result.before.data_files
    assert result.snapshots_expired > 0 and result.after.snapshots < result.before.snapshots
    # The ledger's own tag stays; older tags go.
    assert set(warehouse.table().tags()) == {tag_name(history.time(6))}
    assert set(result.tags_dropped) == {tag_name(history.time(hour)) for hour in range(6)}
    assert warehouse.items() == history.truth(6)
    status = table_status(local_catalog(warehouse.path, warehouse.catalog), "dynamodb.orders")
    assert status.reflects == format_timestamp(history.time(6))

    history.add_windows(1)
    synced = warehouse.sync(history.source)
    assert synced.reflects == format_timestamp(history.time(7)) and warehouse.items() == history.truth(7)
    again = maintain_table(warehouse.spark, warehouse.catalog, UpkeepRequest("dynamodb.orders"), now=later)
    assert again.after.delete_files == 0 and warehouse.items() == history.truth(7)


def test_upkeep_keeps_recent_snapshots_and_tags(warehouse: LocalWarehouse, tmp_path: Path) -> None:
    history = History(tmp_path, seed=52)
    _synced_window_by_window(warehouse, history, 2)
    tags = warehouse.table().tags()
    request = UpkeepRequest("dynamodb.orders", request_id="upkeep-run-1")
    result = maintain_table(warehouse.spark, warehouse.catalog, request)
    assert result.snapshots_expired == 0 and not result.tags_dropped
    # The result is kept on the table under the request it served: a launcher whose job's result was lost reads it.
    catalog = local_catalog(warehouse.path, warehouse.catalog)
    recovered = upkeep_result_from_table(catalog, "dynamodb.orders", "upkeep-run-1")
    assert recovered is not None and recovered.to_json() == replace(result, warnings=[UPKEEP_RESULT_WARNING]).to_json()
    assert upkeep_result_from_table(catalog, "dynamodb.orders", "another-run") is None
    assert warehouse.table().tags() == tags
    for hour in range(3):  # time travel to every synced point still works
        assert warehouse.items(version=tag_name(history.time(hour))) == history.truth(hour)


def test_upkeep_settings_refuse_an_unsafe_orphan_age() -> None:
    with pytest.raises(SettingError, match="under 1 day"):
        UpkeepSettings(orphan_age=timedelta(hours=1))


def test_a_sync_that_loses_to_upkeep_plans_again_and_both_land(warehouse: LocalWarehouse, tmp_path: Path) -> None:
    history = History(tmp_path, seed=53)
    _synced_window_by_window(warehouse, history, 3)
    history.add_windows(2)
    thread, release, outcome = _sync_held_before_its_commit(warehouse, history.source)
    later = datetime.now(UTC) + FORTY_DAYS_ON
    upkeep = maintain_table(warehouse.spark, warehouse.catalog, UpkeepRequest("dynamodb.orders"), now=later)
    assert upkeep.data_files_rewritten > 0
    release.set()
    thread.join(timeout=600)
    assert "error" not in outcome, outcome.get("error")
    result = outcome["result"]
    assert "planned 2 times: another writer committed first" in result.warnings
    assert result.reflects == format_timestamp(history.time(5)) and warehouse.items() == history.truth(5)


def test_upkeep_of_a_missing_table_is_refused(warehouse: LocalWarehouse) -> None:
    with pytest.raises(SyncError, match="does not exist"):
        maintain_table(warehouse.spark, warehouse.catalog, UpkeepRequest("dynamodb.nothing"))
