"""What a user runs: `ddb-iceberg sync / status / query`, spark-submit of the job, and a sync killed midway."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from ddb_iceberg.catalog_access import local_catalog, table_items
from ddb_iceberg.engine.rows import canonical_item
from ddb_iceberg.engine.spark_session import ICEBERG_EXTENSIONS, SparkSettings
from ddb_iceberg.exports import ExportSource
from ddb_iceberg.simulator import (
    ExportTarget,
    SimulatedTable,
    SimulationConfig,
    write_full_export,
    write_incremental_export,
)

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
HOUR = timedelta(hours=1)


def _run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "ddb-iceberg"), *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def _truth(table: SimulatedTable, hours: int) -> dict[object, object]:
    return {k: canonical_item(v) for k, v in table.state_at(table.config.start + hours * HOUR).items()}


def test_sync_status_and_query(tmp_path: Path) -> None:
    exports, warehouse = tmp_path / "exports", tmp_path / "warehouse"
    simulated = _run("simulate", "--out", str(exports), "--items", "200", "--windows", "3", "--json")
    assert simulated.returncode == 0, simulated.stderr
    synced = _run(
        "sync", "--source", str(exports), "--table", "dynamodb.orders", "--warehouse", str(warehouse), "--json"
    )
    assert synced.returncode == 0, synced.stderr
    result = json.loads(synced.stdout)
    assert len(result["applied_exports"]) == 4 and result["reflects"] == "2026-01-01T03:00:00.000Z"
    assert result["tag"] == "ddb-20260101T030000Z" and result["snapshot_id"]

    table = SimulatedTable(SimulationConfig(initial_items=200))
    assert table_items(local_catalog(warehouse), "dynamodb.orders") == _truth(table, 3)

    again = _run("sync", "--source", str(exports), "--table", "dynamodb.orders", "--warehouse", str(warehouse))
    assert again.returncode == 0 and "is up to date" in again.stdout

    status = _run("status", "--table", "dynamodb.orders", "--warehouse", str(warehouse), "--json")
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["reflects"] == "2026-01-01T03:00:00.000Z" and len(report["exports_applied"]) == 4
    assert report["rows"] == len(_truth(table, 3)) and report["tags"] == ["ddb-20260101T030000Z"]

    query = _run("query", "--warehouse", str(warehouse), "--json", "SELECT count(*) AS n FROM dynamodb.orders")
    assert query.returncode == 0, query.stderr
    assert json.loads(query.stdout) == {"n": len(_truth(table, 3))}

    maintained = _run(
        "maintain", "--table", "dynamodb.orders", "--warehouse", str(warehouse), "--json",
        "--min-input-files", "1", "--snapshot-retention-days", "0", "--source", str(exports),
    )  # fmt: skip
    assert maintained.returncode == 0, maintained.stderr
    upkeep = json.loads(maintained.stdout)
    # One commit applied all four exports: one data file, nothing to compact, the one snapshot kept.
    assert upkeep["before"]["data_files"] == upkeep["after"]["data_files"] == 1
    assert upkeep["after"]["snapshots"] == 1 and upkeep["tags_dropped"] == []
    assert table_items(local_catalog(warehouse), "dynamodb.orders") == _truth(table, 3)
    # Export housekeeping: the three applied windows of January 2026 are past the 40-day retention; the baseline
    # full export stays, and the next sync still knows the table is up to date.
    housekeeping = upkeep["export_housekeeping"]
    assert len(housekeeping["exports_removed"]) == 3 and housekeeping["bytes_removed"] > 0
    assert len(list((exports / "AWSDynamoDB").iterdir())) == 2  # the full export's folder and the shared data/
    again = _run("sync", "--source", str(exports), "--table", "dynamodb.orders", "--warehouse", str(warehouse))
    assert again.returncode == 0 and "is up to date" in again.stdout


def test_gap_exits_non_zero_naming_the_interval(test_table_source: Path, tmp_path: Path) -> None:
    result = _run("sync", "--source", str(test_table_source), "--table", "t.t", "--warehouse", str(tmp_path))
    assert result.returncode == 1
    assert "[2026-01-14T10:18:50.622Z, 2026-01-14T10:20:00.000Z)" in result.stderr


def test_the_job_runs_under_spark_submit(tmp_path: Path) -> None:
    exports, warehouse = tmp_path / "exports", tmp_path / "warehouse"
    table = SimulatedTable(SimulationConfig(seed=3, initial_items=60))
    target = ExportTarget.for_source(ExportSource.from_uri(str(exports)))
    write_full_export(table, target, table.config.start)
    write_incremental_export(table, target, table.config.start, table.config.start + HOUR)
    package = shutil.make_archive(str(tmp_path / "ddb_iceberg"), "zip", Path(__file__).parent.parent, "ddb_iceberg")
    entry_point = Path(__file__).parent.parent / "ddb_iceberg" / "engine" / "job.py"
    submit = [
        str(BIN / "spark-submit"),
        "--master", "local[2]",
        "--packages", ",".join(SparkSettings().packages),
        "--conf", f"spark.sql.extensions={ICEBERG_EXTENSIONS}",
        "--py-files", package,
        str(entry_point),
        "--source", str(exports), "--table", "jobs.orders", "--warehouse", str(warehouse),
    ]  # fmt: skip
    import pyspark

    env = {**os.environ, "SPARK_HOME": str(Path(pyspark.__file__).parent), "PYSPARK_PYTHON": sys.executable}
    completed = subprocess.run(submit, capture_output=True, text=True, timeout=600, env=env, check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]
    (line,) = [line for line in completed.stdout.splitlines() if line.startswith("DDB_ICEBERG_RESULT ")]
    assert json.loads(line.removeprefix("DDB_ICEBERG_RESULT "))["reflects"] == "2026-01-01T01:00:00.000Z"
    assert table_items(local_catalog(warehouse), "jobs.orders") == _truth(table, 1)


def test_a_sync_killed_at_any_moment_leaves_the_previous_or_the_new_table(tmp_path: Path) -> None:
    exports, warehouse = tmp_path / "exports", tmp_path / "warehouse"
    table = SimulatedTable(SimulationConfig(seed=5, initial_items=3000, writes_per_hour=3000))
    target = ExportTarget.for_source(ExportSource.from_uri(str(exports)))
    write_full_export(table, target, table.config.start)
    synced = _run("sync", "--source", str(exports), "--table", "k.orders", "--warehouse", str(warehouse), "--key",
                  ",".join(table.key_attributes))  # fmt: skip
    assert synced.returncode == 0, synced.stderr
    for hour in range(3):
        write_incremental_export(
            table, target, table.config.start + hour * HOUR, table.config.start + (hour + 1) * HOUR
        )
    before, after = _truth(table, 0), _truth(table, 3)
    command = [str(BIN / "ddb-iceberg"), "sync", "--source", str(exports), "--table", "k.orders", "--warehouse",
               str(warehouse)]  # fmt: skip
    for delay in (6.0, 9.0, 12.0):
        process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        time.sleep(delay)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        state = table_items(local_catalog(warehouse), "k.orders")
        assert state in (before, after), f"killed after {delay}s: the table is neither before nor after"
        if state == after:
            break
    final = _run("sync", "--source", str(exports), "--table", "k.orders", "--warehouse", str(warehouse))
    assert final.returncode == 0, final.stderr
    assert table_items(local_catalog(warehouse), "k.orders") == after
