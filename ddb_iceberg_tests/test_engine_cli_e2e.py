"""What a user runs: `ddb-iceberg sync / status / query`, spark-submit of the job, and a sync killed midway."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

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
from ddb_iceberg_tests.helpers import spark_submit_jars

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

    # Partition evolution, on request: the table keeps its rows, and gets the time column its new spec needs.
    repartitioned = _run(
        "repartition", "--table", "dynamodb.orders", "--warehouse", str(warehouse), "--json",
        "--partition", "day(created_at, epoch_millis)",
    )  # fmt: skip
    assert repartitioned.returncode == 0, repartitioned.stderr
    spec = json.loads(repartitioned.stdout)
    assert spec["after"] == "day(created_at, epoch_millis)" and spec["time_columns_added"] == ["_ddb_created_at_time"]
    assert spec["rows_given_times"] == len(_truth(table, 3))
    assert table_items(local_catalog(warehouse), "dynamodb.orders") == _truth(table, 3)


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
        *spark_submit_jars(SparkSettings().packages),
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


class _Sync:
    """A `ddb-iceberg sync` in a process group of its own (with its Spark JVM), whose output is read as it comes:
    the test acts at the moments the sync announces, and the sync never blocks on a full pipe."""

    def __init__(self, command: list[str]) -> None:
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
        )
        self.output: list[str] = []
        self._ended = False
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.output.append(line)
                self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    def said(self, marker: re.Pattern[str]) -> bool:
        with self._changed:
            return any(marker.match(line) for line in self.output)

    def announces(self, marker: re.Pattern[str], timeout: float = 300) -> bool:
        """Whether the sync prints a line that `marker` matches (False once its output ends without one)."""
        with self._changed:
            self._changed.wait_for(lambda: self._ended or any(marker.match(line) for line in self.output), timeout)
        return self.said(marker)

    def writes_a_file_in(self, folder: Path, besides: set[Path], timeout: float = 300) -> bool:
        """Whether the sync adds a file under `folder` (that holds `besides` before) while it runs."""
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            if any(path not in besides for path in folder.rglob("*")):
                return True
            time.sleep(0.02)
        return False

    def kill(self) -> bool:
        """SIGKILL the sync and its JVM, as a lost machine would end them; whether the sync was still running."""
        with contextlib.suppress(ProcessLookupError):  # the whole group had exited
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=60)
        self._reader.join(timeout=60)
        return self.process.returncode == -signal.SIGKILL

    def text(self) -> str:
        with self._changed:
            return "".join(self.output)[-3000:]


READING = re.compile(r"Reading and verifying \d+ export\(s\)")
WRITING = re.compile(r"Writing \d+ change record\(s\) to \S+ in one commit")


def test_a_sync_killed_at_any_moment_leaves_the_previous_or_the_new_table(tmp_path: Path) -> None:
    exports, warehouse = tmp_path / "exports", tmp_path / "warehouse"
    table = SimulatedTable(SimulationConfig(seed=5, initial_items=3000, writes_per_hour=3000))
    target = ExportTarget.for_source(ExportSource.from_uri(str(exports)))
    write_full_export(table, target, table.config.start)
    # Four buckets: a commit writes several data files, so the write goes on for a while after its first one lands.
    synced = _run("sync", "--source", str(exports), "--table", "k.orders", "--warehouse", str(warehouse), "--key",
                  ",".join(table.key_attributes), "--buckets", "4")  # fmt: skip
    assert synced.returncode == 0, synced.stderr
    for hour in range(3):
        write_incremental_export(
            table, target, table.config.start + hour * HOUR, table.config.start + (hour + 1) * HOUR
        )
    before, after = _truth(table, 0), _truth(table, 3)
    data = Path(urlparse(local_catalog(warehouse).load_table("k.orders").location()).path) / "data"
    command = [str(BIN / "ddb-iceberg"), "sync", "--source", str(exports), "--table", "k.orders", "--warehouse",
               str(warehouse)]  # fmt: skip
    # The moments to kill a sync at, each in a run of its own, in the order a sync reaches them: once it says it
    # reads the exports, once it says it writes (the commit window opens), once the first file of its write lands.
    moments: dict[str, Callable[[_Sync, set[Path]], bool]] = {
        "reading the exports": lambda sync, _files: sync.announces(READING),
        "starting its commit": lambda sync, _files: sync.announces(WRITING),
        "writing the table's files": lambda sync, files: sync.announces(WRITING) and sync.writes_a_file_in(data, files),
    }
    in_commit_window = []
    for moment, reached in moments.items():
        files = set(data.rglob("*"))  # the table's, and those runs killed before left
        sync = _Sync(command)
        try:
            assert reached(sync, files), f"the sync did not get to {moment}:\n{sync.text()}"
        finally:
            was_running = sync.kill()
        state = table_items(local_catalog(warehouse), "k.orders")
        assert state in (before, after), f"killed {moment}: the table is neither before nor after"
        if was_running and sync.said(WRITING):
            in_commit_window.append(moment)
        if state == after:
            break  # committed: a sync killed later has nothing left to write
    # The kills were not all too early to matter: at least one hit a sync between the start of its commit and its end.
    assert in_commit_window, "no kill landed inside a sync's commit window"
    final = _run("sync", "--source", str(exports), "--table", "k.orders", "--warehouse", str(warehouse))
    assert final.returncode == 0, final.stderr
    assert table_items(local_catalog(warehouse), "k.orders") == after
