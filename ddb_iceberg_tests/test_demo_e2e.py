"""`make demo` as a new user runs it: one command, a short story, a table equal to its simulator, every check
passing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_the_demo_tells_a_short_story_and_ends_with_an_exact_table_and_every_check_passing(tmp_path: Path) -> None:
    command = [str(Path(sys.executable).parent / "ddb-iceberg"), "demo", "--workdir", str(tmp_path / "demo")]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)

    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    lines = output.splitlines()
    assert len(lines) <= 40, output
    assert "The Iceberg table dynamodb.orders equals the simulated DynamoDB table" in output
    (checks,) = [line for line in lines if line.startswith("4/4 Checks:")]
    for check in ("no_duplicate_keys", "ledger_has_no_gap", "baseline_row_count_matches_full_export"):
        assert f"{check} passed" in checks
    assert "reflects_a_recent_time passed" in checks  # the live clock: the table is minutes behind, not months
    # Nothing of the libraries' own chatter: Dagster's run log, its warnings, Spark's launcher and log.
    for noise in ("DEBUG", "Warning", "WARN ", "Ivy", "incubator", "Telemetry"):
        assert noise not in output, noise
    assert (tmp_path / "demo" / "spark.log").stat().st_size > 0
