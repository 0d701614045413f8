"""Many tables in one project: the example's two `DynamoDBIcebergTable`s load, validate and run side by side."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pydantic
import pytest
from pyspark.sql import SparkSession

from ddb_iceberg.catalog_access import local_catalog, table_items
from ddb_iceberg.components import DynamoDBIcebergTable
from ddb_iceberg.components.dynamodb_iceberg_table.component import LocalTable, SimulatedSource
from ddb_iceberg.engine.rows import canonical_item
from ddb_iceberg.exports.manifest import parse_timestamp
from ddb_iceberg.resources import SimulatedExporter

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = REPO_ROOT / "examples" / "two_tables"
TABLES = ("orders", "customers")
ASSETS = ("ddb_full_export", "ddb_incremental_export", "ddb_iceberg_table", "ddb_iceberg_table_maintenance")
CHECKS = ("no_duplicate_keys", "ledger_has_no_gap", "baseline_row_count_matches_full_export", "reflects_a_recent_time")
# The example's orders table keeps a change feed and an item history (its defs.yaml: `change_feed: true`,
# `history: true`), customers neither.
FEED_ASSET, FEED_CHECK = "ddb_change_feed", "change_feed_accounts_for_the_table"
HISTORY_ASSET, HISTORY_CHECK = "ddb_item_history", "item_history_matches_the_table"
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
BIN = Path(sys.executable).parent


@pytest.fixture
def example_defs(monkeypatch: pytest.MonkeyPatch) -> dg.Definitions:
    """The example project as Dagster loads it: every defs.yaml under its defs folder."""
    monkeypatch.syspath_prepend(str(EXAMPLE))  # the example is a project of its own, not installed
    return dg.load_from_defs_folder(path_within_project=EXAMPLE)


def test_each_table_gets_its_own_assets_checks_jobs_schedules_and_resources(example_defs: dg.Definitions) -> None:
    dg.Definitions.validate_loadable(example_defs)
    keys = {key.to_user_string() for key in example_defs.resolve_asset_graph().get_all_asset_keys()}
    orders_only = {f"orders/{FEED_ASSET}", f"orders/{HISTORY_ASSET}"}
    assert keys == {f"{table}/{asset}" for table in TABLES for asset in ASSETS} | orders_only
    checks = {
        (key.asset_key.to_user_string(), key.name)
        for check in example_defs.asset_checks or []
        for key in check.check_keys
    }
    expected = {(f"{table}/ddb_iceberg_table", check) for table in TABLES for check in CHECKS}
    assert checks == expected | {(f"orders/{FEED_ASSET}", FEED_CHECK), (f"orders/{HISTORY_ASSET}", HISTORY_CHECK)}
    for table in TABLES:
        table_key = dg.AssetKey([table, "ddb_iceberg_table"])
        iceberg_table = example_defs.resolve_assets_def(table_key)
        assert {key.to_user_string() for key in iceberg_table.asset_deps[table_key]} == {
            f"{table}/ddb_full_export",
            f"{table}/ddb_incremental_export",
        }
        assert example_defs.resolve_job_def(f"{table}__sync_window_job").partitions_def is not None
        assert example_defs.resolve_job_def(f"{table}__repartition_job").partitions_def is None
        assert example_defs.resolve_schedule_def(f"{table}__sync_each_window").cron_schedule == "20 * * * *"
    assert example_defs.resolve_schedule_def("orders__maintain_table_daily").cron_schedule == "30 4 * * *"
    assert example_defs.resolve_schedule_def("customers__maintain_table_daily").cron_schedule == "45 4 * * *"
    # Each table reads its own simulated history and writes its own Iceberg table, in one shared warehouse.
    resources: dict[str, Any] = dict(example_defs.resources or {})
    assert sorted(resources) == sorted(f"{t}__{role}" for t in TABLES for role in ("table", "exporter", "merge_runner"))
    assert (resources["orders__exporter"].seed, resources["customers__exporter"].seed) == (7, 11)
    assert resources["orders__exporter"].source_uri != resources["customers__exporter"].source_uri
    assert (resources["orders__table"].identifier, resources["customers__table"].identifier) == (
        "dynamodb.orders",
        "dynamodb.customers",
    )
    assert resources["orders__table"].warehouse == resources["customers__table"].warehouse
    assert resources["orders__table"].warehouse == str(REPO_ROOT / ".ddb_iceberg" / "two_tables" / "warehouse")


@pytest.mark.parametrize(
    ("attributes", "where", "message"),
    [
        ({"window_minute": 60}, "window_minute", "Extra inputs are not permitted"),
        ({"source": {"kind": "postgres"}}, "source", "kind"),
        ({"name": "order-lines"}, "name", "name 'order-lines' is not letters, digits and underscores"),
        ({"window_minutes": 7}, "window_minutes", "window_minutes 7: an incremental export window lasts 15 minutes"),
        ({"window_minutes": 45}, "window_minutes", "the window does not divide the day evenly"),
        ({"partitions_start": "yesterday"}, "partitions_start", "'yesterday' is not an ISO 8601 time"),
        (
            {"table": {"kind": "local", "identifier": "dynamodb.cust omers; drop"}},
            "table",
            "identifier 'dynamodb.cust omers; drop' is not <namespace>.<table>",
        ),
        ({"table": {"kind": "local", "identifier": "db.`orders`"}}, "table", "identifier 'db.`orders`' is not"),
        ({"table": {"kind": "local", "identifier": "db.'o'"}}, "table", "identifier \"db.'o'\" is not"),
        ({"table": {"kind": "glue", "warehouse": "/tmp/w"}}, "table", "warehouse '/tmp/w' is not an s3:// prefix"),
        ({"table": {"kind": "local", "buckets": 5000}}, "table", "buckets 5000 is outside 0 to 1024"),
        ({"upkeep": {"snapshot_retention_days": -1}}, "upkeep", "snapshot_retention -1 day"),
        ({"upkeep": {"export_retention_days": -3}}, "upkeep", "export retention -3 days is negative"),
        ({"upkeep": {"orphan_age_days": 0.5}}, "upkeep", "orphan_age 0.5 days is under 1 day"),
        (
            {
                "merge_runner": {
                    "kind": "emr_serverless",
                    "application_id": "a",
                    "execution_role_arn": "r",
                    "code_location": "s3://c",
                    "log_location": "s3://l",
                    "python_dependencies": "s3://d",
                    "python_environment": "s3://e",
                }
            },
            "merge_runner",
            "set python_dependencies or python_environment, not both",
        ),
        ({"merge_runner": {"kind": "emr_serverless"}}, "merge_runner", "application_id"),
    ],
)
def test_a_setting_that_cannot_work_is_refused_at_its_attribute_when_the_project_loads(
    attributes: dict[str, Any], where: str, message: str
) -> None:
    with pytest.raises(pydantic.ValidationError) as refused:
        DynamoDBIcebergTable.from_attributes_dict(attributes={"name": "orders"} | attributes)
    errors = refused.value.errors()
    assert any(str(error["loc"][0]) == where for error in errors), errors
    assert message in str(refused.value)


def _cli(*arguments: str, cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {"DAGSTER_HOME": str(home), "PATH": str(BIN), "HOME": str(home)}
    return subprocess.run(
        [str(BIN / arguments[0]), *arguments[1:]],
        cwd=cwd, capture_output=True, text=True, timeout=300, env=env, check=False,
    )  # fmt: skip


def test_dagster_validates_the_example_and_dg_lists_a_table_scaffolded_beside_it(tmp_path: Path) -> None:
    validate = _cli(
        "dagster", "definitions", "validate", "-w", "examples/two_tables/workspace.yaml", cwd=REPO_ROOT, home=tmp_path
    )
    assert validate.returncode == 0, validate.stderr
    # Adding a table is one folder and one defs.yaml: scaffold a third one in a copy of the project. The copy sits
    # two folders down, as the example does, so that its `../../.ddb_iceberg` stays inside tmp_path.
    project = shutil.copytree(EXAMPLE, tmp_path / "examples" / "two_tables")
    scaffold = _cli(
        "dg", "scaffold", "defs", "ddb_iceberg.components.DynamoDBIcebergTable", "inventory", cwd=project, home=tmp_path
    )
    assert scaffold.returncode == 0, scaffold.stderr
    assert "name: inventory" in (project / "two_tables" / "defs" / "inventory" / "defs.yaml").read_text()
    listed = _cli("dg", "list", "defs", "--json", cwd=project, home=tmp_path)
    assert listed.returncode == 0, listed.stderr
    listing = json.loads(listed.stdout)
    assert {asset["asset_key"] for asset in listing["assets"]} == {
        f"{table}/{asset}" for table in (*TABLES, "inventory") for asset in ASSETS
    } | {f"orders/{FEED_ASSET}", f"orders/{HISTORY_ASSET}"}
    assert "inventory__sync_each_window" in {schedule["name"] for schedule in listing["schedules"]}


def _example_table(tree: dg.ComponentTree, name: str, root: Path, catalog_name: str) -> DynamoDBIcebergTable:
    """The example's table `name` as its defs.yaml declares it, its local files moved under `root` and its catalog
    renamed (the test session's Spark keeps each catalog name's first warehouse)."""
    table = tree.load_component(name, DynamoDBIcebergTable)
    assert isinstance(table.source, SimulatedSource) and isinstance(table.table, LocalTable)
    source = table.source.model_copy(update={"output_dir": str(root / name / "exports")})
    iceberg = table.table.model_copy(update={"warehouse": str(root / "warehouse"), "catalog_name": catalog_name})
    return table.model_copy(update={"source": source, "table": iceberg})


@pytest.mark.slow
def test_two_tables_run_side_by_side_each_equal_to_its_own_simulator(
    spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLE))
    tree = dg.ComponentTree.for_project(EXAMPLE)
    catalog_name = "two_tables_side_by_side"
    definitions = dg.Definitions.merge(
        *(dg.build_defs_for_component(_example_table(tree, name, tmp_path, catalog_name)) for name in TABLES)
    )
    resources = dict(definitions.resources or {})
    assets = {
        key.to_user_string(): a
        for a in definitions.assets or []
        if isinstance(a, dg.AssetsDefinition)
        for key in a.keys
    }
    instance = dg.DagsterInstance.ephemeral()

    full_exports = [assets[f"{table}/ddb_full_export"] for table in TABLES]
    assert dg.materialize(full_exports, resources=resources, instance=instance).success
    # Both tables' first three windows, one backfill: one run.
    windows = [
        assets[f"{table}/{asset}"] for table in TABLES for asset in ("ddb_incremental_export", "ddb_iceberg_table")
    ]
    result = dg.materialize(
        [*windows, *(definitions.asset_checks or [])],
        resources=resources,
        instance=instance,
        tags={RANGE_START: "2026-01-01T00:00", RANGE_END: "2026-01-01T02:00"},
    )
    assert result.success
    checks = {(e.asset_key.to_user_string(), e.check_name): e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {
        (f"{table}/ddb_iceberg_table", check): check != "reflects_a_recent_time"  # the simulated clock is old
        for table in TABLES
        for check in CHECKS
    } | {(f"orders/{FEED_ASSET}", FEED_CHECK): True, (f"orders/{HISTORY_ASSET}", HISTORY_CHECK): True}

    catalog = local_catalog(tmp_path / "warehouse", catalog_name)
    contents = {}
    for table in TABLES:
        exporter = resources[f"{table}__exporter"]
        assert isinstance(exporter, SimulatedExporter)
        truth = exporter.table.state_at(parse_timestamp("2026-01-01T03:00:00.000Z"))
        contents[table] = table_items(catalog, f"dynamodb.{table}")
        assert contents[table] == {key: canonical_item(item) for key, item in truth.items()}
    assert len(contents["orders"]) >= 40 and contents["orders"] != contents["customers"]

    # Upkeep runs with the table's own settings (customers' defs.yaml keeps snapshots 3 days, orders' 7).
    upkeep = definitions.resolve_job_def("customers__maintenance_job").execute_in_process(instance=instance)
    (materialization,) = upkeep.asset_materializations_for_node("customers__ddb_iceberg_table_maintenance")
    settings = materialization.metadata["settings"].value
    assert isinstance(settings, dict) and settings["snapshot_retention_days"] == 3
    assert table_items(catalog, "dynamodb.customers") == contents["customers"]


def test_a_simulated_table_on_the_live_clock_starts_a_day_back_with_its_schedule_on(tmp_path: Path) -> None:
    exports = tmp_path / "orders" / "exports"
    component = DynamoDBIcebergTable.from_attributes_dict(
        attributes={
            "name": "orders",
            "window_minutes": 15,
            "lag_minutes": 2,
            "source": {"kind": "simulated", "live": True, "output_dir": str(exports)},
        }
    )
    deployment = component.deployment(tmp_path)
    age = datetime.now(UTC) - deployment.partitions_start
    assert timedelta(days=1) <= age < timedelta(days=1, minutes=15) and deployment.schedule_running
    exporter = deployment.resources["exporter"]
    assert isinstance(exporter, SimulatedExporter) and exporter.live
    assert exporter.simulation.start == deployment.partitions_start
    # Recorded beside the exports: a reload keeps the same history and partitions.
    assert (exports.parent / "simulation.json").is_file()
    assert component.deployment(tmp_path).partitions_start == deployment.partitions_start
