"""`dagster dev` as a user starts it: launch materializations through its GraphQL API and check the table."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError

from ddb_iceberg.catalog_access import local_catalog, table_items
from ddb_iceberg.engine.rows import canonical_item
from ddb_iceberg.exports.manifest import parse_timestamp
from ddb_iceberg.simulator import SimulatedTable, SimulationConfig

pytestmark = pytest.mark.slow
REPO_ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def dagster_dev(tmp_path: Path) -> Iterator[tuple[DagsterGraphQLClient, Path]]:
    port, home, local_root = _free_port(), tmp_path / "dagster_home", tmp_path / "local"
    home.mkdir()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "DDB_ICEBERG_LOCAL_ROOT": str(local_root),
        "DDB_ICEBERG_ENV": "local",
        # The reproducible history of 2026-01-01 (hourly windows, schedule off), so the test picks its partitions.
        "DDB_ICEBERG_LOCAL_CLOCK": "fixed",
    }
    dagster = str(Path(sys.executable).parent / "dagster")
    process = subprocess.Popen(
        [dagster, "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{port}/server_info", timeout=2).ok:
                    break
            except requests.ConnectionError:
                time.sleep(1)
        else:
            pytest.fail("dagster dev did not answer within 180 s")
        yield DagsterGraphQLClient("127.0.0.1", port_number=port), local_root
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def _run_to_completion(client: DagsterGraphQLClient, job: str, tags: dict[str, str] | None = None) -> str:
    deadline = time.monotonic() + 60
    while True:  # the code location may still be loading
        try:
            run_id = client.submit_job_execution(job, tags=tags)
            break
        except DagsterGraphQLClientError:
            if time.monotonic() > deadline:
                raise
            time.sleep(2)
    deadline = time.monotonic() + 420
    while time.monotonic() < deadline:
        status = client.get_run_status(run_id).value
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            return status
        time.sleep(2)
    pytest.fail(f"run {run_id} of {job} did not finish")


def test_materialize_through_the_webserver(dagster_dev: tuple[DagsterGraphQLClient, Path]) -> None:
    client, local_root = dagster_dev
    assert _run_to_completion(client, "full_export_job") == "SUCCESS"
    assert _run_to_completion(client, "sync_window_job", {"dagster/partition": "2026-01-01T00:00"}) == "SUCCESS"
    items = table_items(local_catalog(local_root / "warehouse"), "dynamodb.orders")
    truth = SimulatedTable(SimulationConfig()).state_at(parse_timestamp("2026-01-01T01:00:00.000Z"))
    assert items == {key: canonical_item(item) for key, item in truth.items()}
