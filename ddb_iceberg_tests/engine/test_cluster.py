"""The Spark job on a real standalone cluster (a master, two workers, their executors: separate JVMs and Python
workers), as spark-submit runs it in production: exact, and exact again when an executor dies mid-job.

(That a bad data file read by an executor comes back as the same ExportError, export, file and line, is tested
in every local session too: there as well the files are read in Python workers, not in the driver.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from ddb_iceberg.catalog_access import local_catalog, table_items
from ddb_iceberg.engine.changes import SMALL_PLAN_ITEMS_CONF
from ddb_iceberg.engine.rows import canonical_item
from ddb_iceberg.engine.spark_session import ICEBERG_EXTENSIONS, SparkSettings
from ddb_iceberg.exports import ExportSource
from ddb_iceberg.resources.job_package import build_job_package
from ddb_iceberg.simulator import (
    ExportTarget,
    SimulatedTable,
    SimulationConfig,
    write_full_export,
    write_incremental_export,
)
from ddb_iceberg_tests.helpers import LocalWarehouse, spark_submit_jars
from ddb_iceberg_tests.spark_cluster import SPARK_HOME, StandaloneCluster, busy_executor, free_port

pytestmark = pytest.mark.slow
HOUR = timedelta(hours=1)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandaloneCluster]:
    running = StandaloneCluster(tmp_path_factory.mktemp("cluster")).start(workers=2, cores=1, memory="1g")
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The job's entry point and zip, exactly as the EMR runner uploads them."""
    folder = tmp_path_factory.mktemp("package")
    built = build_job_package()
    for name, data in built.files().items():
        (folder / name).write_bytes(data)
    return folder / "job.py", folder / "ddb_iceberg.zip"


def _submit(
    cluster: StandaloneCluster, package: tuple[Path, Path], *args: str, driver_ui: int | None = None
) -> subprocess.Popen[str]:
    entry_point, archive = package
    command = [
        str(SPARK_HOME / "bin" / "spark-submit"),
        "--master", cluster.master_url,
        *spark_submit_jars(SparkSettings().packages),
        "--conf", f"spark.sql.extensions={ICEBERG_EXTENSIONS}",
        "--conf", "spark.executor.cores=1",
        "--conf", "spark.executor.memory=1g",
        "--conf", "spark.cores.max=2",
        "--conf", "spark.driver.host=127.0.0.1",
        "--conf", "spark.sql.shuffle.partitions=4",
        *(["--conf", f"spark.ui.port={driver_ui}"] if driver_ui else []),  # where a test asks the driver
        # These exports are small plans, which a sync reads on the driver: read them on the executors here.
        "--conf", f"{SMALL_PLAN_ITEMS_CONF}=0",
        "--py-files", str(archive),
        str(entry_point),
        *args,
    ]  # fmt: skip
    # The driver's output (spark-submit passes the Python driver's stderr on to its stdout) and the JVMs' log
    # (stderr) stay apart: merged, a log line can land inside the result line, which the JVM relays in pieces.
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cluster.env, start_new_session=True
    )


def _result(process: subprocess.Popen[str]) -> dict[str, Any]:
    stdout, stderr = process.communicate(timeout=900)
    assert process.returncode == 0, stderr[-4000:]
    return _result_in(stdout.splitlines())


def _result_in(output: list[str]) -> dict[str, Any]:
    (line,) = [line for line in output if line.startswith("DDB_ICEBERG_RESULT ")]
    result: dict[str, Any] = json.loads(line.removeprefix("DDB_ICEBERG_RESULT "))
    return result


class History:
    def __init__(self, root: Path, seed: int) -> None:
        self.table = SimulatedTable(SimulationConfig(seed=seed, initial_items=4000, writes_per_hour=3000))
        self.source = root / "exports"
        self.target = ExportTarget.for_source(ExportSource.from_uri(str(self.source)), partitions=4)
        write_full_export(self.table, self.target, self.table.config.start)

    def add_windows(self, first: int, last: int) -> None:
        start = self.table.config.start
        for hour in range(first, last):
            write_incremental_export(self.table, self.target, start + hour * HOUR, start + (hour + 1) * HOUR)

    def truth(self, hours: int) -> dict[Any, Any]:
        state = self.table.state_at(self.table.config.start + hours * HOUR)
        return {key: canonical_item(item) for key, item in state.items()}


def _sync_args(history: History, warehouse: Path) -> list[str]:
    keys = ",".join(history.table.key_attributes)
    return ["--source", str(history.source), "--table", "cluster.orders", "--warehouse", str(warehouse), "--key", keys]


def _kill_an_executor_once_reading(
    process: subprocess.Popen[str], driver_ui: int, output: list[str], killed: list[int]
) -> None:
    """Read the driver's output; once it reads the exports, kill an executor JVM running its tasks (as a lost node
    would end it)."""
    assert process.stdout is not None
    for line in process.stdout:
        output.append(line)
        if "Reading and verifying" in line and not killed:
            pid = busy_executor(process, driver_ui)
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)


def test_a_full_load_and_a_catch_up_on_executors_in_other_processes_exact_even_when_one_dies(
    cluster: StandaloneCluster, package: tuple[Path, Path], tmp_path: Path, warehouse: LocalWarehouse
) -> None:
    history, cluster_warehouse = History(tmp_path, seed=41), tmp_path / "cluster-warehouse"
    loaded = _result(_submit(cluster, package, *_sync_args(history, cluster_warehouse)))
    assert loaded["rows_inserted"] == 4000 and loaded["read_on"] == "executors"
    assert table_items(local_catalog(cluster_warehouse), "cluster.orders") == history.truth(0)
    # Both workers ran executors: the tasks ran in JVMs (and Python workers) other than the driver's.
    assert all(executors for executors in cluster.executors_by_worker())

    # Catching up four windows, one executor is killed while the exports are read: Spark runs its tasks again
    # elsewhere (and recomputes what it had cached), and the result is the same, to the row and the count.
    history.add_windows(0, 4)
    driver_ui = free_port()
    process = _submit(cluster, package, *_sync_args(history, cluster_warehouse), driver_ui=driver_ui)
    output: list[str] = []
    log: list[str] = []
    killed: list[int] = []
    reader = threading.Thread(target=_kill_an_executor_once_reading, args=(process, driver_ui, output, killed))
    assert process.stderr is not None
    log_reader = threading.Thread(target=log.extend, args=(process.stderr,))
    reader.start()
    log_reader.start()
    process.wait(timeout=900)
    reader.join(timeout=60)
    log_reader.join(timeout=60)
    assert process.returncode == 0, "".join(output + log)[-4000:]
    assert killed and any("Lost executor" in line for line in log), "no executor was lost mid-job"
    caught_up = _result_in(output)
    assert caught_up["reflects"] == "2026-01-01T04:00:00.000Z" and len(caught_up["applied_exports"]) == 4
    assert caught_up["read_on"] == "executors"
    assert table_items(local_catalog(cluster_warehouse), "cluster.orders") == history.truth(4)

    # The same syncs in one local session, undisturbed, count the same.
    keys = history.table.key_attributes
    warehouse.sync(history.source, "cluster.orders", key_attributes=keys, up_to=history.table.config.start)
    reference = warehouse.sync(history.source, "cluster.orders")
    counts = ("rows_inserted", "rows_updated", "rows_deleted", "records_read", "records_already_reflected")
    assert {name: caught_up[name] for name in counts} == {name: getattr(reference, name) for name in counts}
