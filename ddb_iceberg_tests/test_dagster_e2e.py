"""`dagster dev` as a user starts it, on the live local pipeline: launch the catch-up its schedule's first tick
makes through the GraphQL API, then check what the UI shows (partitions, checks) and the table itself."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError

from ddb_iceberg.catalog_access import local_catalog, table_items, table_status
from ddb_iceberg.definitions import LIVE_LAG_MINUTES, LIVE_WINDOW_MINUTES
from ddb_iceberg.engine.rows import canonical_item
from ddb_iceberg.exports.manifest import parse_timestamp
from ddb_iceberg.partitions import export_window_partitions
from ddb_iceberg.resources import SimulatedExporter
from ddb_iceberg.schedules import RANGE_END, RANGE_START

pytestmark = pytest.mark.slow
REPO_ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class DagsterDev:
    client: DagsterGraphQLClient
    port: int
    local_root: Path

    def query(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        """A query of the UI's own GraphQL API."""
        response = requests.post(
            f"http://127.0.0.1:{self.port}/graphql", json={"query": query, "variables": variables}, timeout=60
        )
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        assert "errors" not in body, body
        return dict(body["data"])


@pytest.fixture
def dagster_dev(tmp_path: Path) -> Iterator[DagsterDev]:
    port, home, local_root = _free_port(), tmp_path / "dagster_home", tmp_path / "local"
    home.mkdir()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "DDB_ICEBERG_LOCAL_ROOT": str(local_root),
        "DDB_ICEBERG_ENV": "local",
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
                pass
            time.sleep(1)  # not up yet, or up but not ready
        else:
            pytest.fail("dagster dev did not answer within 180 s")
        yield DagsterDev(DagsterGraphQLClient("127.0.0.1", port_number=port), port, local_root)
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


# What a person sees on the Iceberg table's page: its partitions and the latest result of each check.
TABLE_STATE = """
query TableState($path: [String!]!) {
  assetNodeOrError(assetKey: {path: $path}) {
    ... on AssetNode {
      partitionStats { numMaterialized numPartitions numFailed }
      assetChecksOrError { ... on AssetChecks { checks { name executionForLatestMaterialization { status } } } }
    }
  }
}
"""


def test_the_live_pipeline_through_the_webserver(dagster_dev: DagsterDev) -> None:
    # The code location, as it loads, starts the simulated table a day back (and records when).
    record = dagster_dev.local_root / "simulation.json"
    deadline = time.monotonic() + 120
    while not record.exists() and time.monotonic() < deadline:
        time.sleep(1)
    assert record.exists(), f"the code location did not record the simulation's start in {record} within 120 s"
    start = datetime.fromisoformat(json.loads(record.read_text())["start"])
    partitions = export_window_partitions(start, LIVE_WINDOW_MINUTES)
    closed = partitions.get_partition_keys(current_time=datetime.now(UTC) - timedelta(minutes=LIVE_LAG_MINUTES))
    assert len(closed) >= 4 * 23  # about a day of 15-minute windows

    # What the schedule's first tick launches: every closed window in one run, the full export taken on the way.
    tags = {RANGE_START: closed[0], RANGE_END: closed[-1]}
    assert _run_to_completion(dagster_dev.client, "sync_window_job", tags) == "SUCCESS"

    node = dagster_dev.query(TABLE_STATE, {"path": ["ddb_iceberg_table"]})["assetNodeOrError"]
    stats = node["partitionStats"]
    # (The schedule, on by default, may have added the window that closed meanwhile.)
    assert len(closed) <= stats["numMaterialized"] <= len(closed) + 1 and stats["numFailed"] == 0
    assert stats["numPartitions"] >= stats["numMaterialized"]
    checks = {c["name"]: c["executionForLatestMaterialization"]["status"] for c in node["assetChecksOrError"]["checks"]}
    expected = ("no_duplicate_keys", "ledger_has_no_gap", "baseline_row_count_matches_full_export")
    assert checks == {name: "SUCCEEDED" for name in (*expected, "reflects_a_recent_time")}
    catalog = local_catalog(dagster_dev.local_root / "warehouse")
    status = table_status(catalog, "dynamodb.orders")
    assert status.reflects is not None
    truth = SimulatedExporter(start=start.isoformat(), live=True).table.state_at(parse_timestamp(status.reflects))
    assert table_items(catalog, "dynamodb.orders") == {key: canonical_item(item) for key, item in truth.items()}
