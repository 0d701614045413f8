"""The `ddb-iceberg` command as a user runs it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from ddb_iceberg.cli import cli


def _ddb_iceberg(*args: str) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("ddb-iceberg", path=str(Path(sys.executable).parent))
    assert executable, "the ddb-iceberg console script is installed with the package"
    return subprocess.run([executable, *args], capture_output=True, text=True, timeout=300, check=False)


def test_simulate_then_inspect_and_verify(tmp_path: Path) -> None:
    out = tmp_path / "exports"
    simulated = _ddb_iceberg("simulate", "--out", str(out), "--windows", "4", "--window-minutes", "30", "--json")
    assert simulated.returncode == 0, simulated.stderr
    written = json.loads(simulated.stdout)["exports"]
    assert [row["type"] for row in written] == ["FULL_EXPORT"] + ["INCREMENTAL_EXPORT"] * 4

    inspected = _ddb_iceberg("inspect", "--source", str(out), "--verify", "--json")
    assert inspected.returncode == 0, inspected.stderr
    listing = json.loads(inspected.stdout)
    assert [row["export_id"] for row in listing["exports"]] == [row["export_id"] for row in written]
    assert [row["verified_records"] for row in listing["exports"]] == [row["item_count"] for row in written]
    assert listing["gaps"] == []


def test_inspect_reports_the_real_gap_and_redacted_checksum(test_table_source: Path) -> None:
    result = CliRunner().invoke(cli, ["inspect", "--source", str(test_table_source)])
    assert result.exit_code == 0, result.output
    assert "gap after the latest full export: [2026-01-14T10:18:50.622Z, 2026-01-14T10:20:00.000Z)" in result.output
    assert "warning: manifest-summary.md5 does not match" in result.output


def test_verification_failure_exits_non_zero_naming_export_and_file(airline_source: Path) -> None:
    result = CliRunner().invoke(cli, ["inspect", "--source", str(airline_source), "--verify"])
    assert result.exit_code == 1
    assert "export 01693467621041-039fcf72, file public-s3-files/Output_Airline.csv/AWSDynamoDB/" in result.output
    assert "is listed in manifest-files.json but missing" in result.output


def test_simulate_refuses_a_window_dynamodb_would_refuse(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["simulate", "--out", str(tmp_path), "--window-minutes", "10"])
    assert result.exit_code == 2
    assert "15 minutes to 24 hours" in result.output
    assert not any(tmp_path.iterdir()), "nothing is written for a series that cannot be written whole"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["sync", "--table", "g.bad name"], "table 'g.bad name' is not <namespace>.<table>"),
        (["sync", "--table", "g.'quoted'"], "table \"g.'quoted'\" is not <namespace>.<table>"),
        (["sync", "--table", "g.`ticks`"], "table 'g.`ticks`' is not <namespace>.<table>"),
        (["sync", "--table", "orders"], "table 'orders' is not <namespace>.<table>"),
        (["sync", "--table", "g.t", "--key", "a,b,c"], "key 'a,b,c' is not PARTITION_KEY[,SORT_KEY]"),
        (["sync", "--table", "g.t", "--table-property", "novalue"], "--table-property 'novalue' is not KEY=VALUE"),
        (["maintain", "--snapshot-retention-days", "-1"], "snapshot_retention -1 day"),
        (["maintain", "--orphan-age-days", "0.5"], "orphan_age 0.5 days is under 1 day"),
        (["maintain", "--table", "a b.c"], "table 'a b.c' is not <namespace>.<table>"),
        (["status", "--table", "a.b.c"], "table 'a.b.c' is not <namespace>.<table>"),
        (["simulate", "--start", "tomorrow"], "'tomorrow' is not an ISO 8601 time"),
    ],
)
def test_a_setting_that_cannot_work_is_one_line_before_spark_starts(
    tmp_path: Path, arguments: list[str], message: str
) -> None:
    command, *rest = arguments
    defaults = {
        "sync": ["--source", str(tmp_path), "--warehouse", str(tmp_path / "w")],
        "maintain": ["--warehouse", str(tmp_path / "w")] + ([] if "--table" in rest else ["--table", "a.b"]),
        "status": ["--warehouse", str(tmp_path / "w")],
        "simulate": ["--out", str(tmp_path / "out")],
    }[command]
    result = CliRunner().invoke(cli, [command, *rest, *defaults])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    (line,) = result.output.splitlines()  # one line: no traceback, and Spark never started
    assert line.startswith("Error: ") and message in line


def test_a_refusal_says_how_to_fix_it_with_the_command_s_own_flags(tmp_path: Path) -> None:
    # A full export alone names no key, and the table needs one: the engine says what is wrong, the CLI how.
    simulated = _ddb_iceberg("simulate", "--out", str(tmp_path / "exports"), "--windows", "0")
    assert simulated.returncode == 0, simulated.stderr
    synced = _ddb_iceberg(
        "sync", "--source", str(tmp_path / "exports"), "--table", "a.b", "--warehouse", str(tmp_path / "w")
    )
    assert synced.returncode == 1 and "Traceback" not in synced.stderr
    assert "the table's key attributes are needed" in synced.stderr
    assert "To fix it: pass --key PARTITION_KEY[,SORT_KEY]" in synced.stderr
