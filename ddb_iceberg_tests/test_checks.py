"""The item history's check against a real table and history: it passes on what a sync wrote, and fails when the
history no longer matches the table."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from ddb_iceberg.checks import build_item_history_checks
from ddb_iceberg.engine.request import history_identifier
from ddb_iceberg.resources import LocalIcebergTable
from ddb_iceberg_tests.helpers import History, LocalWarehouse

TABLE = "dynamodb.orders"


def test_the_item_history_check_fails_when_a_current_version_differs_from_the_table(
    warehouse: LocalWarehouse, tmp_path: Path
) -> None:
    series = History(tmp_path, seed=65, items=40, writes_per_hour=60)
    series.add_windows(1)
    warehouse.sync(series.source, TABLE, key_attributes=series.table.key_attributes, history=True)
    (check,) = build_item_history_checks()
    table = LocalIcebergTable(warehouse=str(warehouse.path), catalog_name=warehouse.catalog)

    def evaluate() -> dg.AssetCheckResult:
        result = check(dg.build_asset_check_context(resources={"table": table}))
        assert isinstance(result, dg.AssetCheckResult)
        return result

    passed = evaluate()
    assert passed.passed and passed.metadata["current_versions"].value == len(series.truth(1))
    history = f"{warehouse.catalog}.{history_identifier(TABLE)}"
    warehouse.spark.sql(f"UPDATE {history} SET status = 'LOST' WHERE _ddb_is_current AND status = 'PAID'")
    assert not evaluate().passed
    # A key with two current versions fails it too.
    warehouse.spark.sql(f"UPDATE {history} SET status = 'PAID' WHERE status = 'LOST'")
    warehouse.spark.sql(f"INSERT INTO {history} SELECT * FROM {history} WHERE _ddb_is_current LIMIT 1")
    failed = evaluate()
    assert not failed.passed and failed.metadata["keys_repeated"].value == 1
