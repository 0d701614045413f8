"""Makes docs/asset-graph.png: starts `dagster dev`, materializes one window, and photographs the asset graph
in headless Chromium (Debian's `chromium` package). Run with `make screenshot`."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from dagster_graphql import DagsterGraphQLClient

ROOT = Path(__file__).resolve().parent.parent
PORT = 3917


def main() -> None:
    chromium = shutil.which("chromium") or sys.exit("install Debian's chromium package first")
    scratch = Path(tempfile.mkdtemp(prefix="ddb-iceberg-screenshot-"))
    env = {**os.environ, "DAGSTER_HOME": str(scratch / "home"), "DDB_ICEBERG_LOCAL_ROOT": str(scratch / "local")}
    (scratch / "home").mkdir()
    (scratch / "home" / "dagster.yaml").write_text("nux:\n  enabled: false\ntelemetry:\n  enabled: false\n")
    dagster = Path(sys.executable).parent / "dagster"
    server = subprocess.Popen(
        [str(dagster), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(PORT)],
        cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(120):
            try:
                if requests.get(f"http://127.0.0.1:{PORT}/server_info", timeout=2).ok:
                    break
            except requests.ConnectionError:
                time.sleep(1)
        time.sleep(10)  # the code location loads after the server answers
        client = DagsterGraphQLClient("127.0.0.1", port_number=PORT)
        for job, tags in [("full_export_job", {}), ("sync_window_job", {"dagster/partition": "2026-01-01T00:00"})]:
            run_id = client.submit_job_execution(job, tags=tags)
            while client.get_run_status(run_id).value not in ("SUCCESS", "FAILURE", "CANCELED"):
                time.sleep(2)
        subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={scratch / 'chromium'}", "--window-size=1600,1000", "--virtual-time-budget=20000",
             f"--screenshot={ROOT / 'docs' / 'asset-graph.png'}", f"http://127.0.0.1:{PORT}/assets/ddb_iceberg_table?view=lineage&lineageScope=upstream"],
            check=True, timeout=120,
        )  # fmt: skip
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


if __name__ == "__main__":
    main()
