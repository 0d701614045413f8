"""The merge on EMR Serverless, for real: moto's S3, Glue, CloudWatch Logs and EMR Serverless API on loopback,
and job runs that execute the uploaded entry point with local spark-submit (see emr_serverless_standin); what
happens around a job run (capacity, stopping the application, refusals at start) with job runs that run no Spark."""

from __future__ import annotations

import itertools
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from cfnlint.decode import decode
from dagster_pipes import PIPES_PROTOCOL_VERSION, PIPES_PROTOCOL_VERSION_FIELD
from moto.core.exceptions import JsonRESTError
from moto.emrserverless.models import EMRServerlessBackend
from pyspark.sql import SparkSession

from ddb_iceberg.catalog_access import table_items
from ddb_iceberg.definitions import Deployment, aws_deployment, build_definitions
from ddb_iceberg.engine.job import PIPES_UPKEEP_RESULT_KEY
from ddb_iceberg.engine.request import SyncRequest
from ddb_iceberg.engine.rows import canonical_item
from ddb_iceberg.engine.spark_session import configure_catalog
from ddb_iceberg.engine.sync import sync_table
from ddb_iceberg.engine.upkeep import UpkeepResult
from ddb_iceberg.exports import ExportSource
from ddb_iceberg.resources import DynamoDBExporter, EmrServerlessMergeRunner, GlueIcebergTable
from ddb_iceberg.resources.emr_serverless import Capacity, MaximumCapacity, job_run_sizing
from ddb_iceberg.resources.job_package import build_job_package, build_python_dependencies
from ddb_iceberg.simulator import ExportTarget, SimulatedTable, SimulationConfig, write_series
from ddb_iceberg_tests.emr_serverless_standin import HOLD_TAG, DriverOutput, EmrServerlessStandIn
from ddb_iceberg_tests.helpers import MOTO_CREDENTIALS, MOTO_REGION, MotoServer

pytestmark = pytest.mark.slow

RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
ROLE_ARN = "arn:aws:iam::123456789012:role/ddb-iceberg-job"
LOG_GROUP = "/aws/emr-serverless/ddb-iceberg"
TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "deploy" / "ddb-iceberg.yaml"
# Upkeep by job runs that run no Spark: no table behind them, so no export housekeeping (it reads the table's ledger).
NO_TABLE: dict[str, Any] = {"export_retention_days": None}
_numbers = itertools.count()


@dataclass
class AwsStack:
    """What the CloudFormation stack creates, made in moto: buckets, a Glue database, an EMR application."""

    moto: MotoServer
    standin: EmrServerlessStandIn
    exports: str
    artifacts: str
    database: str
    application_id: str
    warehouse: str
    # Each materialization's instance, by run id: what the run logged.
    instances: dict[str, dg.DagsterInstance] = field(default_factory=dict)

    @property
    def table(self) -> str:
        return f"{self.database}.orders"

    def application(self, maximum_capacity: dict[str, str]) -> str:
        """Another application on the same release, with a maximum capacity."""
        emr = self.moto.client("emr-serverless")
        return str(
            emr.create_application(
                name=f"capped-{next(_numbers)}",
                releaseLabel="emr-spark-8.1.0",
                type="SPARK",
                maximumCapacity=maximum_capacity,
            )["applicationId"]
        )

    def runner(self, **overrides: Any) -> EmrServerlessMergeRunner:
        settings: dict[str, Any] = {
            "application_id": self.application_id,
            "execution_role_arn": ROLE_ARN,
            "code_location": f"s3://{self.artifacts}/code",
            "log_location": f"s3://{self.artifacts}/emr-logs",
            "log_group": LOG_GROUP,
            "region": MOTO_REGION,
            "endpoint_url": self.moto.endpoint_url,
            "poll_seconds": 1.0,
            # The stand-in runs jobs with this virtualenv's Python, which has pyarrow and pandas: a custom image's.
            "image_has_python_dependencies": True,
        }
        return EmrServerlessMergeRunner(**(settings | overrides))

    def glue_table(self, partition_by: tuple[str, ...] = ()) -> GlueIcebergTable:
        return GlueIcebergTable(
            identifier=self.table,
            warehouse=self.warehouse,
            region=MOTO_REGION,
            glue_endpoint=self.moto.endpoint_url,
            s3_endpoint=self.moto.endpoint_url,
            partition_by=list(partition_by),
        )

    def definitions(self, runner: EmrServerlessMergeRunner, partition_by: tuple[str, ...] = ()) -> dg.Definitions:
        exporter = DynamoDBExporter(
            table_arn="arn:aws:dynamodb:us-east-1:123456789012:table/orders",
            s3_bucket=self.exports,
            s3_prefix="ddb",
            region=MOTO_REGION,
            endpoint_url=self.moto.endpoint_url,
        )
        table = self.glue_table(partition_by)
        resources: dict[str, object] = {"exporter": exporter, "merge_runner": runner, "table": table}
        return build_definitions(Deployment(partitions_start=datetime(2026, 1, 1, tzinfo=UTC), resources=resources))

    def materialize(
        self, runner: EmrServerlessMergeRunner, first: str, last: str, *, checks: bool = False
    ) -> dg.ExecuteInProcessResult:
        """The table asset for the windows `first` to `last` (and, with `checks`, its asset checks)."""
        definitions = self.definitions(runner)
        (table_asset,) = [
            a
            for a in definitions.assets or []
            if isinstance(a, dg.AssetsDefinition) and a.key.to_user_string() == "ddb_iceberg_table"
        ]
        instance = dg.DagsterInstance.ephemeral()
        result = dg.materialize(
            [table_asset, *(definitions.asset_checks or [] if checks else [])],
            resources=definitions.resources,
            tags={RANGE_START: first, RANGE_END: last},
            raise_on_error=False,
            instance=instance,
        )
        self.instances[result.run_id] = instance
        return result

    def maintain(
        self, runner: EmrServerlessMergeRunner, partition_by: tuple[str, ...] = (), **config: Any
    ) -> dg.ExecuteInProcessResult:
        """The maintenance asset, with the table resource's `partition_by` (what its `repartition` config uses)."""
        definitions = self.definitions(runner, partition_by)
        (maintenance,) = [
            a
            for a in definitions.assets or []
            if isinstance(a, dg.AssetsDefinition) and a.key.to_user_string() == "ddb_iceberg_table_maintenance"
        ]
        instance = dg.DagsterInstance.ephemeral()
        result = dg.materialize(
            [maintenance],
            resources=definitions.resources,
            run_config={"ops": {"ddb_iceberg_table_maintenance": {"config": config}}},
            raise_on_error=False,
            instance=instance,
        )
        self.instances[result.run_id] = instance
        return result

    def logs(self, result: dg.ExecuteInProcessResult, level: int = logging.INFO) -> list[str]:
        """What the run logged at `level` or above (context.log)."""
        entries = self.instances[result.run_id].all_logs(result.run_id)
        levels = logging.getLevelNamesMapping()
        return [
            entry.user_message
            for entry in entries
            if not entry.is_dagster_event
            and (levels.get(entry.level, 0) if isinstance(entry.level, str) else entry.level) >= level
        ]

    def sync_in_this_session(self, spark: SparkSession, up_to: datetime) -> None:
        """A sync of the Glue table in the suite's Spark session (where a test needs a table, not a job run)."""
        catalog = replace(self.glue_table().catalog_settings(), name=f"emr_setup_{next(_numbers)}")
        configure_catalog(spark, catalog)
        source = ExportSource.from_uri(f"s3://{self.exports}/ddb", self.moto.s3_options)
        sync_table(spark, catalog.name, self.glue_table().sync_request(source, up_to=up_to))

    def write_exports(self, table: SimulatedTable, windows: int) -> None:
        source = ExportSource.from_uri(f"s3://{self.exports}/ddb", self.moto.s3_options)
        write_series(table, ExportTarget.for_source(source), windows=windows)

    def job_runs(self, application_id: str | None = None) -> list[dict[str, Any]]:
        emr = self.moto.client("emr-serverless")
        try:
            return list(emr.list_job_runs(applicationId=application_id or self.application_id)["jobRuns"])
        except emr.exceptions.ResourceNotFoundException:  # moto: before the application's first job run
            return []

    def spark_submit_parameters(self, job_run_id: str, application_id: str | None = None) -> str:
        emr = self.moto.client("emr-serverless")
        job_run = emr.get_job_run(applicationId=application_id or self.application_id, jobRunId=job_run_id)
        return str(job_run["jobRun"]["jobDriver"]["sparkSubmit"]["sparkSubmitParameters"])

    def uploads(self) -> list[str]:
        return [obj["Key"] for obj in self.moto.client("s3").list_objects_v2(Bucket=self.artifacts).get("Contents", [])]


@pytest.fixture
def aws(moto_server: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AwsStack:
    number = next(_numbers)
    standin = EmrServerlessStandIn(moto_server, tmp_path / "emr")
    standin.install(monkeypatch)
    for variable, value in {
        "AWS_ACCESS_KEY_ID": MOTO_CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": MOTO_CREDENTIALS["aws_secret_access_key"],
        "AWS_REGION": MOTO_REGION,
        "AWS_DEFAULT_REGION": MOTO_REGION,
    }.items():
        monkeypatch.setenv(variable, value)
    s3 = moto_server.client("s3")
    names = {kind: f"emr-{kind}-{number}" for kind in ("exports", "artifacts", "warehouse")}
    for bucket in names.values():
        s3.create_bucket(Bucket=bucket)
    # The stack lets the job role and Dagster list the export bucket only under its prefix (an `s3:prefix`
    # condition a GET or HEAD does not carry): S3 answers them 403 for a missing key there, as moto then does too.
    moto_server.buckets_without_list_permission.buckets.add(names["exports"])
    database = f"emr_db_{number}"
    moto_server.client("glue").create_database(DatabaseInput={"Name": database})
    application = moto_server.client("emr-serverless").create_application(
        name=f"ddb-iceberg-{number}", releaseLabel="emr-spark-8.1.0", type="SPARK"
    )
    return AwsStack(
        moto=moto_server,
        standin=standin,
        exports=names["exports"],
        artifacts=names["artifacts"],
        database=database,
        application_id=application["applicationId"],
        warehouse=f"s3://{names['warehouse']}/warehouse",
    )


def _truth(table: SimulatedTable, hours: int) -> dict[Any, Any]:
    state = table.state_at(table.config.start + timedelta(hours=hours))
    return {key: canonical_item(item) for key, item in state.items()}


def _table_metadata(result: dg.ExecuteInProcessResult) -> dict[str, Any]:
    # One materialization per partition of the range, with the same metadata.
    event = result.get_asset_materialization_events()[-1]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def test_the_table_asset_merges_on_emr_serverless_into_glue(aws: AwsStack) -> None:
    table = SimulatedTable(SimulationConfig(seed=31, initial_items=120))
    aws.write_exports(table, windows=3)
    # An application without auto-start, stopped: the runner starts it, and stops it when done.
    emr = aws.moto.client("emr-serverless")
    emr.stop_application(applicationId=aws.application_id)
    emr.update_application(applicationId=aws.application_id, autoStartConfiguration={"enabled": False})

    # Versioning shows how often each piece of code was uploaded.
    s3 = aws.moto.client("s3")
    s3.put_bucket_versioning(Bucket=aws.artifacts, VersioningConfiguration={"Status": "Enabled"})

    # An export that never completed (a FAILED one's folder stays): reported, not read, and no crash although
    # S3 answers 403 for its missing manifest-summary.json.
    s3.put_object(Bucket=aws.exports, Key="ddb/AWSDynamoDB/01767300000000-0badc0de/_started", Body=b"")

    runner = aws.runner(start_application=True, stop_application=True)
    result = aws.materialize(runner, "2026-01-01T00:00", "2026-01-01T02:00", checks=True)

    assert result.success
    assert "01767300000000-0badc0de: no manifest-summary.json yet" in _table_metadata(result)["warnings"]
    # The checks read the table through Glue and the baseline export (by its id, through listings) from S3.
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert evaluations["baseline_row_count_matches_full_export"].passed
    assert evaluations["no_duplicate_keys"].passed and evaluations["ledger_has_no_gap"].passed
    assert emr.get_application(applicationId=aws.application_id)["application"]["state"] == "STOPPED"
    assert table_items(aws.glue_table().load_catalog(), aws.table) == _truth(table, 3)
    # The job's result came back through Pipes (CloudWatch Logs) and became the asset's metadata.
    metadata = _table_metadata(result)
    status = aws.glue_table().status()
    assert metadata["reflects"] == "2026-01-01T03:00:00.000Z" and metadata["exports_applied"] == 4
    assert metadata["snapshot_id"] == str(status.current_snapshot_id)
    assert metadata["rows_inserted"] == len(_truth(table, 0)) + _inserted_after_baseline(table)
    # The baseline and the windows: two job runs, both finished, started with the Glue and Iceberg settings.
    runs = aws.job_runs()
    assert [run["state"] for run in runs] == ["SUCCESS", "SUCCESS"]
    (command, *_) = aws.standin.commands.values()
    assert "spark.sql.catalog.ddb_iceberg.catalog-impl=org.apache.iceberg.aws.glue.GlueCatalog" in command
    assert "spark.sql.catalog.ddb_iceberg.io-impl=org.apache.iceberg.aws.s3.S3FileIO" in command
    # Two job runs, one upload: the code is in S3 under its digest, each file in one version.
    digest = build_job_package().digest
    code = s3.list_object_versions(Bucket=aws.artifacts, Prefix="code/")["Versions"]
    assert sorted(obj["Key"] for obj in code) == [f"code/{digest}/ddb_iceberg.zip", f"code/{digest}/job.py"]
    # EMR keeps the driver's logs where the resource says.
    logs = s3.list_objects_v2(Bucket=aws.artifacts, Prefix="emr-logs/")["Contents"]
    assert any(obj["Key"].endswith("/SPARK_DRIVER/stderr.gz") for obj in logs)


def test_the_maintenance_asset_runs_upkeep_as_an_emr_serverless_job(aws: AwsStack, spark: SparkSession) -> None:
    table = SimulatedTable(SimulationConfig(seed=35, initial_items=80))
    aws.write_exports(table, windows=3)
    runner = aws.runner()
    aws.sync_in_this_session(spark, up_to=table.config.start)  # the baseline, then a merge, as the asset makes them
    aws.sync_in_this_session(spark, up_to=table.config.start + timedelta(hours=3))

    # The upkeep job's result is lost on the way (CloudWatch Logs delivers the driver's output after dagster
    # stopped reading): the job kept it on the table under the run's request, and the asset reads it there.
    # It also partitions the table anew (the repartition job's config; the CLI's `repartition` cannot reach Glue):
    # the table resource now asks for days of `created_at`.
    aws.standin.drop_results = True
    by_day = ("day(created_at, epoch_millis)",)
    config = {"snapshot_retention_days": 0, "tag_retention_days": 0, "min_input_files": 2, "repartition": True}
    result = aws.maintain(runner, partition_by=by_day, **config)
    assert result.success
    metadata = _table_metadata(result)
    assert metadata["partitioned_by"] == by_day[0]
    glue = aws.glue_table().load()
    assert [str(f.transform) for f in glue.spec().fields] == ["day"]
    assert {row["spec_id"] for row in glue.inspect.files().to_pylist()} == {glue.spec().spec_id}
    assert metadata["delete_files_before"] > 0 and metadata["delete_files_after"] == 0
    # Every file written before was rewritten into the new spec (by day, so not fewer files), old snapshots went.
    assert metadata["data_files_rewritten"] >= metadata["data_files_before"] and metadata["snapshots_expired"] > 0
    assert "read from the table's properties" in metadata["warnings"]
    assert metadata["billed_vcpu_hours"] > 0
    assert "--task" in aws.standin.commands[list(aws.standin.commands)[-1]]
    assert table_items(aws.glue_table().load_catalog(), aws.table) == _truth(table, 3)
    assert aws.glue_table().status().reflects == "2026-01-01T03:00:00.000Z"
    # Export housekeeping, from the Dagster side against S3: the three windows of January 2026 the table applied
    # are past the 40-day retention and go (DeleteObjects); the full export the table stands on stays.
    assert metadata["exports_removed"] == 3 and metadata["export_bytes_removed"] > 0
    listed = aws.moto.client("s3").list_objects_v2(Bucket=aws.exports, Prefix="ddb/AWSDynamoDB/", Delimiter="/")
    assert len(listed["CommonPrefixes"]) == 1  # the full export's folder (the shared data/ folder is empty)


def test_a_result_lost_on_the_way_is_read_from_the_ledger(aws: AwsStack) -> None:
    table = SimulatedTable(SimulationConfig(seed=36, initial_items=60))
    aws.write_exports(table, windows=2)
    aws.standin.drop_results = True  # CloudWatch Logs delivers the driver's output after dagster stopped reading
    runner = aws.runner()

    result = aws.materialize(runner, "2026-01-01T00:00", "2026-01-01T01:00")

    # The commits happened, and the ledger says what they did: the asset succeeds with the same account.
    assert result.success
    assert table_items(aws.glue_table().load_catalog(), aws.table) == _truth(table, 2)
    metadata, status = _table_metadata(result), aws.glue_table().status()
    assert metadata["reflects"] == status.reflects == "2026-01-01T02:00:00.000Z"
    assert metadata["snapshot_id"] == str(status.current_snapshot_id)
    assert metadata["exports_applied"] == 3 and metadata["tag"] == "ddb-20260101T020000Z"
    assert metadata["rows_inserted"] == len(_truth(table, 0)) + len(set(_truth(table, 2)) - set(_truth(table, 0)))
    assert "read from the table's ledger" in metadata["warnings"]
    # Cost per job run even so: two job runs (the baseline, then the windows), billed by EMR, priced (x86_64).
    runs = aws.job_runs()
    emr = aws.moto.client("emr-serverless")
    billed = [emr.get_job_run(applicationId=aws.application_id, jobRunId=r["id"])["jobRun"] for r in runs]
    vcpu = sum(run["billedResourceUtilization"]["vCPUHour"] for run in billed)
    memory = sum(run["billedResourceUtilization"]["memoryGBHour"] for run in billed)
    assert vcpu > 0 and metadata["billed_vcpu_hours"] == pytest.approx(vcpu)
    assert metadata["estimated_cost_usd"] == pytest.approx(vcpu * 0.052624 + memory * 0.0057785, abs=1e-5)

    # A new run of the same windows commits nothing: the ledger shows the table already reflects them.
    assert aws.materialize(runner, "2026-01-01T00:00", "2026-01-01T01:00").success
    assert aws.glue_table().status().current_snapshot_id == status.current_snapshot_id

    # A window whose exports are not there: the job succeeds without a commit, and the ledger cannot confirm
    # that the table reflects it: the asset fails rather than claim it.
    late = aws.materialize(runner, "2026-01-01T05:00", "2026-01-01T05:00")
    assert not late.success
    (failure,) = [e for e in late.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert "shows no commit of this run" in str(failure.step_failure_data.error)
    assert "does not reflect 2026-01-01T06:00:00+00:00" in str(failure.step_failure_data.error)


def test_the_job_runs_on_a_bare_python_with_dependencies_built_without_docker(aws: AwsStack, tmp_path: Path) -> None:
    # The EMR image's own Python: an interpreter without site-packages, so it has only the archive's wheels.
    bare = tmp_path / "python3.11"
    bare.write_text(f'#!/bin/sh\nexec {sys._base_executable} -S "$@"\n')  # type: ignore[attr-defined]
    bare.chmod(0o755)
    lacks = subprocess.run([str(bare), "-c", "import pyarrow"], capture_output=True, text=True, check=False)
    assert lacks.returncode != 0 and "No module named 'pyarrow'" in lacks.stderr
    archive = build_python_dependencies("x86_64", tmp_path / "ddb-iceberg-python-deps.zip")
    aws.moto.client("s3").upload_file(str(archive), aws.artifacts, "python/deps.zip")
    table = SimulatedTable(SimulationConfig(seed=37, initial_items=50))
    aws.write_exports(table, windows=1)
    runner = aws.runner(
        python_dependencies=f"s3://{aws.artifacts}/python/deps.zip",
        python_executable=str(bare),
        image_has_python_dependencies=False,
    )

    result = aws.materialize(runner, "2026-01-01T00:00", "2026-01-01T00:00")

    assert result.success, "\n".join(output[-3000:] for output in aws.standin.output.values())
    assert table_items(aws.glue_table().load_catalog(), aws.table) == _truth(table, 1)
    for environment in aws.standin.environments.values():
        assert environment["PYSPARK_PYTHON"] == environment["PYSPARK_DRIVER_PYTHON"] == str(bare)
        assert environment["PYTHONPATH"] == "./pydeps"


def _inserted_after_baseline(table: SimulatedTable) -> int:
    baseline, final = _truth(table, 0), _truth(table, 3)
    return len(set(final) - set(baseline))


def test_a_job_run_that_fails_fails_the_asset_with_emr_details_and_the_refusal(aws: AwsStack) -> None:
    table = SimulatedTable(SimulationConfig(seed=32, initial_items=40))
    aws.write_exports(table, windows=2)
    s3 = aws.moto.client("s3")
    keys = sorted(obj["Key"] for obj in s3.list_objects_v2(Bucket=aws.exports, Prefix="ddb/")["Contents"])
    # Export folders are named by their start time: the first manifest is the full export's.
    manifest = next(key for key in keys if key.endswith("/manifest-files.json"))
    first_entry = json.loads(s3.get_object(Bucket=aws.exports, Key=manifest)["Body"].read().splitlines()[0])
    bad_key = first_entry["dataFileS3Key"]
    s3.put_object(Bucket=aws.exports, Key=bad_key, Body=b"not gzip")  # the key includes the prefix

    result = aws.materialize(aws.runner(), "2026-01-01T00:00", "2026-01-01T01:00")

    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    message = str(failure.step_failure_data.error)
    (run,) = aws.job_runs()
    assert f"EMR Serverless job run {run['id']} ended FAILED" in message
    assert "ExitCode: 1" in message
    assert bad_key.rsplit("/", 1)[-1] in message  # the job's own account of what is wrong
    assert f"s3://{aws.artifacts}/emr-logs/applications/{aws.application_id}/jobs/{run['id']}/SPARK_DRIVER/" in message
    assert not aws.glue_table().exists()


def test_terminating_the_dagster_run_cancels_the_job_run(aws: AwsStack) -> None:
    table = SimulatedTable(SimulationConfig(seed=33, initial_items=40))
    aws.write_exports(table, windows=1)

    def interrupt_once_running() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if any(run["state"] == "RUNNING" for run in aws.job_runs()):
                os.kill(os.getpid(), signal.SIGINT)  # what `dagster` does to a run it terminates
                return
            time.sleep(0.5)

    interrupter = threading.Thread(target=interrupt_once_running, daemon=True)
    interrupter.start()
    result = aws.materialize(aws.runner(), "2026-01-01T00:00", "2026-01-01T00:00")
    interrupter.join()

    assert not result.success
    assert [run["state"] for run in aws.job_runs()] == ["CANCELLED"]
    assert all(process.poll() is not None for process in aws.standin.processes.values())


def test_an_application_on_another_release_is_refused_before_anything_runs(aws: AwsStack) -> None:
    emr = aws.moto.client("emr-serverless")
    other = emr.create_application(name="older", releaseLabel="emr-7.9.0", type="SPARK")["applicationId"]

    result = aws.materialize(aws.runner(application_id=other), "2026-01-01T00:00", "2026-01-01T00:00")

    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert f"application {other} runs emr-7.9.0, but the job needs emr-spark-8.1.0" in str(
        failure.step_failure_data.error
    )
    assert aws.job_runs() == [] and "Contents" not in aws.moto.client("s3").list_objects_v2(Bucket=aws.artifacts)


def test_job_run_parameters_are_idempotent_per_dagster_run_and_request() -> None:
    runner = EmrServerlessMergeRunner(
        application_id="app",
        execution_role_arn=ROLE_ARN,
        code_location="s3://artifacts/code",
        log_location="s3://artifacts/emr-logs",
    )
    catalog = GlueIcebergTable(identifier="dynamodb.orders", warehouse="s3://warehouse/warehouse").catalog_settings()
    code = {"job.py": "s3://artifacts/code/d/job.py", "ddb_iceberg.zip": "s3://artifacts/code/d/ddb_iceberg.zip"}
    up_to = datetime(2026, 1, 1, 3, tzinfo=UTC)
    run_id = "0f4a3c1e-2d8b-4c53-9a4e-6f3e2b1d7c90"

    def params(run: str, moment: datetime, allow_gaps: bool = False) -> dict[str, Any]:
        request = SyncRequest(table="dynamodb.orders", source="s3://exports/ddb", up_to=moment, allow_gaps=allow_gaps)
        return runner.start_job_run_params(run, code, catalog, request)

    token = params(run_id, up_to)["clientToken"]
    assert token == params(run_id, up_to)["clientToken"] and len(token) <= 64 and token.startswith(run_id)
    assert token != params(run_id, up_to - timedelta(hours=1))["clientToken"]  # baseline and windows differ
    assert token != params(run_id, up_to, allow_gaps=True)["clientToken"]
    assert token != params("another-run", up_to)["clientToken"]
    driver = params(run_id, up_to)["jobDriver"]["sparkSubmit"]
    assert driver["entryPoint"] == code["job.py"]
    arguments = driver["entryPointArguments"]
    assert arguments[arguments.index("--up-to") + 1] == "2026-01-01T03:00:00+00:00"
    assert arguments[arguments.index("--request-id") + 1] == token
    assert "--py-files s3://artifacts/code/d/ddb_iceberg.zip" in driver["sparkSubmitParameters"]
    monitoring = params(run_id, up_to)["configurationOverrides"]["monitoringConfiguration"]
    assert monitoring["cloudWatchLoggingConfiguration"]["enabled"] is True


def _runner(**overrides: Any) -> EmrServerlessMergeRunner:
    """A runner for its parameters only (no AWS behind it)."""
    settings: dict[str, Any] = {
        "application_id": "app",
        "execution_role_arn": ROLE_ARN,
        "code_location": "s3://artifacts/code",
        "log_location": "s3://artifacts/emr-logs",
    }
    return EmrServerlessMergeRunner(**(settings | overrides))


def _driver(exit_code: int, *messages: tuple[str, dict[str, Any]]) -> DriverOutput:
    """A driver that opens Dagster Pipes, reports `messages` and closes it, as the job's own driver does, and
    exits with `exit_code`."""
    session = [("opened", {"extras": {}}), *messages, ("closed", {})]
    lines = [
        json.dumps({PIPES_PROTOCOL_VERSION_FIELD: PIPES_PROTOCOL_VERSION, "method": method, "params": params})
        for method, params in session
    ]
    return DriverOutput(exit_code=exit_code, stdout="\n".join(lines) + "\n")


def _upkeep_reported(table: str) -> DriverOutput:
    """A driver that ends well and reports an upkeep result."""
    result = asdict(UpkeepResult(table=table, snapshots_expired=2))
    return _driver(0, ("report_custom_message", {"payload": {PIPES_UPKEEP_RESULT_KEY: result}}))


def _failure(result: dg.ExecuteInProcessResult) -> str:
    (failure,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    return str(failure.step_failure_data.error)


def _conf(params: dict[str, Any]) -> dict[str, str]:
    tokens = params["jobDriver"]["sparkSubmit"]["sparkSubmitParameters"].split(" --conf ")[1:]
    return dict(token.partition("=")[::2] for token in tokens)


def test_workers_are_sized_as_emr_serverless_sizes_them() -> None:
    # AWS's own figures: EMR's default worker (4 vCPU, a 14g heap, 10% overhead) is a 16 GB one, with 20 GB of disk;
    # a 27g heap and its 2.7 GB overhead fill a 30 GB worker, the most 4 vCPU have.
    defaults = job_run_sizing({})
    assert defaults.driver == defaults.executor == Capacity(vcpu=4, memory_gb=16, disk_gb=20)
    assert job_run_sizing({"spark.executor.memory": "27g"}).executor.memory_gb == 30
    # Memory rounds up to the worker sizes of the vCPU count: 1 GB steps up to 4 vCPU, 4 GB at 8, 8 GB at 16; a
    # small heap still takes the least memory of its vCPU count.
    assert job_run_sizing({"spark.executor.cores": "8", "spark.executor.memory": "16g"}).executor.memory_gb == 20
    sixteen = {"spark.executor.cores": "16", "spark.executor.memory": "40g", "spark.executor.memoryOverhead": "2g"}
    assert job_run_sizing(sixteen).executor.memory_gb == 48
    assert job_run_sizing({"spark.executor.memory": "2g"}).executor.memory_gb == 8
    # The runner's defaults: a 2-vCPU driver of 4g (+ 0.4 GB overhead: a 5 GB worker) and 16 executors of 4 vCPU
    # with 8g + 6g and 50 GB of disk.
    sizing = _runner().sizing()
    assert sizing.driver == Capacity(vcpu=2, memory_gb=5, disk_gb=20)
    assert sizing.executor == Capacity(vcpu=4, memory_gb=14, disk_gb=50)
    assert sizing.need() == Capacity(vcpu=66, memory_gb=229, disk_gb=820)
    # Under a maximum capacity, each of vCPU, memory and disk bounds the executors beside the driver.
    assert sizing.executors_within(MaximumCapacity(vcpu=16, memory_gb=64, disk_gb=None)) == 3
    assert sizing.executors_within(MaximumCapacity(vcpu=400, memory_gb=3000, disk_gb=200)) == 3
    assert sizing.executors_within(MaximumCapacity(vcpu=66, memory_gb=229, disk_gb=None)) == 16
    # Settings EMR Serverless has no worker for are named, with their value and the rule.
    too_big = r"spark.executor.memory=28g \(executor_memory\) plus spark.executor.memoryOverhead=6g.* is 34.0 GB, more "
    with pytest.raises(ValueError, match=too_big + r"than the 30 GB an EMR Serverless worker of 4 vCPU holds"):
        job_run_sizing({"spark.executor.memory": "28g", "spark.executor.memoryOverhead": "6g"})
    with pytest.raises(ValueError, match=r"spark.executor.cores=3 \(executor_cores\): .* has 1, 2, 4, 8, 16, 32 vCPU"):
        job_run_sizing({"spark.executor.cores": "3"})


def test_the_stack_caps_the_application_at_what_the_runners_defaults_need() -> None:
    """The stack's MaximumVcpu / MaximumMemoryGb defaults hold the driver and every executor the aws deployment's
    runner may start, so a full load scales out as far as the README's Cost section says."""
    template, matches = decode(str(TEMPLATE_PATH))
    assert not matches and isinstance(template, dict)
    runner = aws_deployment({}).resources["merge_runner"]
    assert isinstance(runner, EmrServerlessMergeRunner)
    need = runner.sizing().need()
    parameters = template["Parameters"]
    assert (parameters["MaximumVcpu"]["Default"], parameters["MaximumMemoryGb"]["Default"]) == (
        need.vcpu,
        need.memory_gb,
    )
    # The application's maximum as CloudFormation deploys it with the defaults, read as the runner reads it.
    (application,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::EMRServerless::Application"]
    deployed = {
        name.lower(): value["Fn::Sub"]
        .replace("${MaximumVcpu}", str(parameters["MaximumVcpu"]["Default"]))
        .replace("${MaximumMemoryGb}", str(parameters["MaximumMemoryGb"]["Default"]))
        for name, value in application["Properties"]["MaximumCapacity"].items()
    }
    maximum = MaximumCapacity.from_application({"maximumCapacity": deployed})
    assert maximum is not None and maximum.disk_gb in (None, *range(need.disk_gb, need.disk_gb * 100))
    assert runner.sizing().executors_within(maximum) == runner.max_executors


def test_job_runs_start_with_min_executors_and_a_cap_lowers_every_bound() -> None:
    code = {"job.py": "s3://artifacts/code/d/job.py", "ddb_iceberg.zip": "s3://artifacts/code/d/ddb_iceberg.zip"}

    def conf(runner: EmrServerlessMergeRunner, max_executors: int | None = None) -> dict[str, str]:
        catalog = GlueIcebergTable(identifier="a.b", warehouse="s3://warehouse/warehouse").catalog_settings()
        request = SyncRequest(table="a.b", source="s3://exports/ddb")
        params = runner.start_job_run_params("run", code, catalog, request, max_executors=max_executors)
        return _conf(params)

    executors = ("minExecutors", "initialExecutors", "maxExecutors")

    def bounds(settings: dict[str, str]) -> tuple[str, ...]:
        return tuple(settings[f"spark.dynamicAllocation.{name}"] for name in executors)

    # Not EMR's default of 3 executors at start: a small window's job run starts with one.
    assert bounds(conf(_runner())) == ("1", "1", "16")
    assert bounds(conf(_runner(initial_executors=4))) == ("1", "4", "16")
    assert conf(_runner())["spark.emr-serverless.driver.disk"] == "20g"
    # Capped to what the application holds: Spark refuses lower bounds above the upper one.
    assert bounds(conf(_runner(min_executors=4, initial_executors=6), max_executors=3)) == ("3", "3", "3")
    assert bounds(conf(_runner(min_executors=1), max_executors=3)) == ("1", "1", "3")


def test_a_small_application_caps_the_executors_and_says_so(aws: AwsStack) -> None:
    application = aws.application({"cpu": "16 vCPU", "memory": "64 GB"})
    aws.standin.driver_output = _upkeep_reported(aws.table)

    result = aws.maintain(aws.runner(application_id=application), **NO_TABLE)

    assert result.success
    (run,) = aws.job_runs(application)
    submitted = aws.spark_submit_parameters(run["id"], application)
    # A 2-vCPU driver and 4-vCPU executors: 3 of them fit in 16 vCPU (and 5 + 3 x 14 GB in 64 GB).
    assert "--conf spark.dynamicAllocation.maxExecutors=3 " in submitted
    assert "--conf spark.dynamicAllocation.initialExecutors=1 " in submitted
    warning = (
        f"EMR Serverless application {application} has a maximum capacity of 16 vCPU, 64 GB memory, no disk limit: "
        "the driver and max_executors=16 executors need 66 vCPU, 229 GB memory, 820 GB disk, so job runs have at "
        "most 3 executors"
    )
    assert any(warning in message for message in aws.logs(result, logging.WARNING))
    metadata = _table_metadata(result)
    assert metadata["max_executors"] == "3"
    assert warning in metadata["warnings"] and "MaximumVcpu" in metadata["warnings"]


def test_an_application_too_small_for_the_driver_and_one_executor_is_refused_before_anything_runs(
    aws: AwsStack,
) -> None:
    application = aws.application({"cpu": "4 vCPU", "memory": "32 GB"})

    result = aws.maintain(aws.runner(application_id=application), **NO_TABLE)

    assert not result.success
    message = _failure(result)
    assert (
        f"EMR Serverless application {application} has a maximum capacity of 4 vCPU, 32 GB memory, no disk limit, "
        "too little for this runner's driver (2 vCPU, 5 GB memory, 20 GB disk) and one executor (4 vCPU, 14 GB "
        "memory, 50 GB disk), 6 vCPU, 19 GB memory, 70 GB disk together" in message
    )
    assert "MaximumVcpu" in message and "executor_cores" in message
    assert aws.job_runs(application) == [] and aws.uploads() == []


def test_the_application_is_stopped_only_when_no_other_job_run_is_active(aws: AwsStack) -> None:
    emr = aws.moto.client("emr-serverless")
    other = emr.start_job_run(
        applicationId=aws.application_id,
        executionRoleArn=ROLE_ARN,
        clientToken="another-job",
        jobDriver={"sparkSubmit": {"entryPoint": "s3://elsewhere/another_job.py"}},
        tags={HOLD_TAG: "true"},
    )["jobRunId"]
    aws.standin.driver_output = _upkeep_reported(aws.table)
    runner = aws.runner(stop_application=True)

    busy = aws.maintain(runner, **NO_TABLE)

    # Stopping would end the other job run (and EMR refuses it anyway): the application stays started, and says why.
    assert busy.success
    assert emr.get_application(applicationId=aws.application_id)["application"]["state"] == "STARTED"
    stays = f"EMR Serverless application {aws.application_id} stays started because 1 other job run(s) are active"
    assert f"{stays} on it: {other}" in aws.logs(busy)

    aws.standin.release(other)
    idle = aws.maintain(runner, **NO_TABLE)

    assert idle.success
    assert emr.get_application(applicationId=aws.application_id)["application"]["state"] == "STOPPED"
    assert f"Stopped EMR Serverless application {aws.application_id}" in aws.logs(idle)


def test_a_stop_application_that_fails_does_not_hide_the_job_runs_own_error(
    aws: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(backend: EMRServerlessBackend, application_id: str) -> None:
        raise JsonRESTError("AccessDeniedException", "not authorized to perform: emr-serverless:StopApplication")

    monkeypatch.setattr(EMRServerlessBackend, "stop_application", refuse)
    aws.standin.driver_output = _driver(1)

    result = aws.maintain(aws.runner(stop_application=True), **NO_TABLE)

    assert not result.success
    (run,) = aws.job_runs()
    assert f"EMR Serverless job run {run['id']} ended FAILED" in _failure(result)
    assert "StopApplication" not in _failure(result)
    (warning,) = [m for m in aws.logs(result, logging.WARNING) if "Could not stop" in m]
    assert f"Could not stop EMR Serverless application {aws.application_id} after job run {run['id']}" in warning
    assert "AccessDeniedException" in warning


def test_without_python_dependencies_the_runner_refuses_before_anything_runs(aws: AwsStack) -> None:
    # EMR's images have no pyarrow or pandas: without them the job would die deep inside Spark.
    result = aws.maintain(aws.runner(image_has_python_dependencies=False), **NO_TABLE)

    assert not result.success
    message = _failure(result)
    assert "The merge job needs pyarrow and pandas on EMR Serverless" in message
    assert "python_dependencies (DDB_ICEBERG_EMR_PYTHON_DEPENDENCIES)" in message
    assert "python_environment (DDB_ICEBERG_EMR_PYTHON_ENVIRONMENT)" in message
    assert "`make emr-python-deps`" in message and "`ddb-iceberg emr-python-deps" in message
    assert aws.job_runs() == [] and aws.uploads() == []
