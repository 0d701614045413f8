"""The code location loads, and holds what users and schedules rely on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from ddb_iceberg.definitions import aws_deployment, build_definitions, defs, local_deployment

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_local_definitions_hold_the_assets_checks_jobs_and_schedules() -> None:
    definitions = build_definitions(local_deployment())
    specs = {spec.key.to_user_string() for spec in definitions.resolve_all_asset_specs()}
    assert specs == {
        "ddb_full_export",
        "ddb_incremental_export",
        "ddb_iceberg_table",
        "ddb_change_feed",
        "ddb_item_history",
        "ddb_iceberg_table_maintenance",
    }
    checks = {key.name for check in definitions.asset_checks or [] for key in check.check_keys}
    assert checks == {
        "no_duplicate_keys",
        "ledger_has_no_gap",
        "baseline_row_count_matches_full_export",
        "reflects_a_recent_time",
        "change_feed_accounts_for_the_table",
        "item_history_matches_the_table",
    }
    assert definitions.resolve_job_def("sync_window_job").partitions_def is not None
    assert definitions.resolve_schedule_def("sync_each_window").cron_schedule == "20 * * * *"
    assert definitions.resolve_schedule_def("maintain_table_daily").cron_schedule == "30 4 * * *"
    assert definitions.resolve_job_def("rebaseline_job").partitions_def is not None
    assert definitions.resolve_job_def("repartition_job").partitions_def is None  # the table, not a window
    table = definitions.resolve_assets_def("ddb_iceberg_table")
    assert table.backfill_policy == dg.BackfillPolicy.single_run()
    assert {key.to_user_string() for key in table.asset_deps[dg.AssetKey("ddb_iceberg_table")]} == {
        "ddb_full_export",
        "ddb_incremental_export",
    }
    # The change feed and the item history are written by the table's run, downstream of the table (so lineage
    # shows them); the history is built from the feed.
    assert table.asset_deps[dg.AssetKey("ddb_change_feed")] == {dg.AssetKey("ddb_iceberg_table")}
    assert table.asset_deps[dg.AssetKey("ddb_item_history")] == {dg.AssetKey("ddb_change_feed")}


def test_the_environment_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DDB_ICEBERG_ENV", "aws")
    monkeypatch.setenv("DDB_ICEBERG_WINDOW_MINUTES", "15")
    aws = defs()
    assert type(aws.resources["merge_runner"]).__name__ == "EmrServerlessMergeRunner"  # type: ignore[index]
    assert aws.resolve_schedule_def("sync_each_window").cron_schedule == "5,20,35,50 * * * *"
    monkeypatch.setenv("DDB_ICEBERG_ENV", "mars")
    with pytest.raises(ValueError, match="DDB_ICEBERG_ENV must be 'local' or 'aws'"):
        defs()
    assert aws_deployment({}).window_minutes == 60


def test_dagster_cli_validates_and_lists_the_assets(tmp_path: Path) -> None:
    dagster = Path(sys.executable).parent / "dagster"
    env = {
        "DAGSTER_HOME": str(tmp_path),
        "PATH": str(Path(sys.executable).parent),
        "DDB_ICEBERG_LOCAL_ROOT": str(tmp_path / "local"),
    }
    validate = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, env=env, check=False,
    )  # fmt: skip
    assert validate.returncode == 0, validate.stderr
    listed = subprocess.run(
        [str(dagster), "asset", "list", "-m", "ddb_iceberg.definitions"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, env=env, check=False,
    )  # fmt: skip
    assert listed.stdout.split() == [
        "ddb_change_feed",
        "ddb_full_export",
        "ddb_iceberg_table",
        "ddb_iceberg_table_maintenance",
        "ddb_incremental_export",
        "ddb_item_history",
    ]
