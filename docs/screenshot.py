"""Makes the README's screenshots of the live local pipeline: starts `dagster dev` (live clock, a fresh local
root), runs what its schedule runs (the day's catch-up in one run, then a few windows one by one, so the plots
have points), and photographs the asset graph, the Iceberg table's partitions and a materialization's metadata
in headless Chromium (Debian's `chromium` package). Run with `make screenshot`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dagster_graphql import DagsterGraphQLClient

from ddb_iceberg.definitions import LIVE_LAG_MINUTES, LIVE_WINDOW_MINUTES
from ddb_iceberg.partitions import export_window_partitions
from ddb_iceberg.schedules import RANGE_END, RANGE_START

ROOT = Path(__file__).resolve().parent.parent
PORT = 3917
SINGLE_WINDOWS = 4  # the last windows, one run each: points on the plots
PAGES = {
    "asset-graph.png": "assets/ddb_iceberg_table?view=lineage&lineageScope=upstream",
    # The partitions tab with the latest window selected: the bar and that materialization's metadata.
    "table-partition.png": "assets/ddb_iceberg_table?view=partitions&partition={last}",
    # The Events tab: one materialization per window, each with its metadata.
    "table-events.png": "assets/ddb_iceberg_table?view=events",
}


def main() -> None:
    chromium = shutil.which("chromium") or sys.exit("install Debian's chromium package first")
    scratch = Path(tempfile.mkdtemp(prefix="ddb-iceberg-screenshot-"))
    local_root = scratch / "local"
    env = {**os.environ, "DAGSTER_HOME": str(scratch / "home"), "DDB_ICEBERG_LOCAL_ROOT": str(local_root)}
    (scratch / "home").mkdir()
    (scratch / "home" / "dagster.yaml").write_text("nux:\n  enabled: false\ntelemetry:\n  enabled: false\n")
    dagster = Path(sys.executable).parent / "dagster"
    server = subprocess.Popen(
        [str(dagster), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(PORT)],
        cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(120):
            if (local_root / "simulation.json").exists():
                break
            time.sleep(1)
        time.sleep(5)
        start = datetime.fromisoformat(json.loads((local_root / "simulation.json").read_text())["start"])
        partitions = export_window_partitions(start, LIVE_WINDOW_MINUTES)
        now = datetime.now(UTC) - timedelta(minutes=LIVE_LAG_MINUTES)
        closed = partitions.get_partition_keys(current_time=now)
        client = DagsterGraphQLClient("127.0.0.1", port_number=PORT)
        catch_up = closed[:-SINGLE_WINDOWS]
        runs = [{RANGE_START: catch_up[0], RANGE_END: catch_up[-1]}]
        runs += [{"dagster/partition": key} for key in closed[-SINGLE_WINDOWS:]]
        for tags in runs:
            run_id = client.submit_job_execution("sync_window_job", tags=tags)
            while client.get_run_status(run_id).value not in ("SUCCESS", "FAILURE", "CANCELED"):
                time.sleep(2)
        for name, page in PAGES.items():
            subprocess.run(
                [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={scratch / 'chromium'}", "--window-size=1600,1000", "--virtual-time-budget=20000",
                 f"--screenshot={ROOT / 'docs' / name}", f"http://127.0.0.1:{PORT}/{page.format(last=closed[-1])}"],
                check=True, timeout=180,
            )  # fmt: skip
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


if __name__ == "__main__":
    main()
