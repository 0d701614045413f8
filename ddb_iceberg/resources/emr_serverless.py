"""The merge on Amazon EMR Serverless: the job package goes to S3, Dagster Pipes starts and watches the run."""

import hashlib
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import boto3
import dagster as dg
from botocore.exceptions import ClientError
from dagster_aws.pipes import PipesCloudWatchMessageReader, PipesEMRServerlessClient
from pydantic import Field

from ddb_iceberg.catalog_access import result_from_ledger
from ddb_iceberg.engine.job import (
    ERROR_RECORD_PREFIX,
    PIPES_RESULT_KEY,
    PIPES_UPKEEP_RESULT_KEY,
    error_from_record,
    upkeep_arguments,
)
from ddb_iceberg.engine.spark_session import CATALOG_NAME, ICEBERG_EXTENSIONS, CatalogSettings
from ddb_iceberg.engine.sync import SyncResult
from ddb_iceberg.engine.upkeep import UpkeepResult, UpkeepSettings
from ddb_iceberg.errors import DdbIcebergError
from ddb_iceberg.resources.catalog import GlueIcebergCatalog
from ddb_iceberg.resources.job_package import ARCHIVE_NAME, ENTRY_POINT_NAME, JobPackage, build_job_package
from ddb_iceberg.resources.merge_runners import MergeRunnerResource
from ddb_iceberg.resources.prices import EmrServerlessPrices, job_run_costs

# Where EMR's images keep the Iceberg runtime (with the Glue catalog and S3FileIO beside it in the AWS SDK).
EMR_ICEBERG_JAR = "/usr/share/aws/iceberg/lib/iceberg-spark3-runtime.jar"
DEFAULT_LOG_GROUP = "/aws/emr-serverless"
CLIENT_TOKEN_LENGTH = 64  # EMR Serverless's limit
APPLICATION_START_TIMEOUT_SECONDS = 600.0
# Where `spark.archives` unpacks the job's Python dependencies in the driver's and executors' working directories.
PYTHON_DEPENDENCIES_ALIAS = "pydeps"


@dataclass(frozen=True)
class _JobRunEnd:
    """A job run that succeeded, and the result it reported (None if its message did not arrive)."""

    job_run_id: str
    result: dict[str, Any] | None


class EmrServerlessMergeRunner(MergeRunnerResource):
    """Runs the same Spark job on Amazon EMR Serverless, writing the table in the AWS Glue Data Catalog."""

    application_id: str = Field(description="EMR Serverless application id.")
    execution_role_arn: str = Field(description="Role the job runs as.")
    code_location: str = Field(description="s3:// prefix the job's entry point and package are uploaded to.")
    log_location: str = Field(description="s3:// prefix for the driver and executor logs.")
    log_group: str = Field(
        default=DEFAULT_LOG_GROUP, description="CloudWatch log group of the driver's output (Pipes reads it)."
    )
    warehouse: str = Field(description="s3:// warehouse of the Glue catalog's tables.")
    catalog_name: str = Field(default=CATALOG_NAME, description="Spark's name for the Glue catalog in the job.")
    region: str | None = Field(default=None, description="AWS Region (default: AWS's chain).")
    release_label: str = Field(
        default="emr-spark-8.1.0", description="EMR release the application must run (Spark 4.1, Iceberg 1.11)."
    )
    # Sized for the distributed engine (README, Cost): the driver only plans; executors read, decode and build
    # rows in Python workers (one per core), which live in the memory overhead, and cache the records on disk.
    driver_cores: int = Field(default=2)
    driver_memory: str = Field(default="4g")
    executor_cores: int = Field(default=4)
    executor_memory: str = Field(default="8g", description="JVM heap of an executor.")
    executor_memory_overhead: str = Field(
        default="6g", description="Beyond the heap: the executor's Python workers (about 1 GB each) and buffers."
    )
    executor_disk: str = Field(default="50g", description="Disk of an executor (shuffles, cached records).")
    min_executors: int = Field(default=1, description="Lower bound of dynamic allocation.")
    max_executors: int = Field(default=16, description="Upper bound of dynamic allocation.")
    iceberg_jar: str = Field(
        default=EMR_ICEBERG_JAR,
        description="Iceberg's Spark runtime jar: the EMR image's (the default), or an s3:// URI of your own "
        "iceberg-spark-runtime-4.1_2.13 jar. The job checks at start that it loads.",
    )
    python_dependencies: str | None = Field(
        default=None,
        description="s3:// URI of the archive `ddb-iceberg emr-python-deps` builds (pyarrow and pandas wheels for "
        "the application's architecture, no Docker), run with the image's own `python_executable`.",
    )
    python_executable: str = Field(
        default="python3.11",
        description="The image's Python 3.11 that runs the job with `python_dependencies`.",
    )
    python_environment: str | None = Field(
        default=None,
        description="s3:// URI of a venv-pack archive with its own interpreter (built with Docker, see the README); "
        "an alternative to `python_dependencies`.",
    )
    prices: EmrServerlessPrices = Field(
        default_factory=EmrServerlessPrices,
        description="Prices that turn each job run's billed resource utilization into an estimated cost.",
    )
    spark_conf: dict[str, str] = Field(default_factory=dict, description="More Spark settings for the job run.")
    start_application: bool = Field(
        default=False, description="Start a stopped application and wait for it (for apps without auto-start)."
    )
    stop_application: bool = Field(
        default=False, description="Stop the application after each job run (for apps without auto-stop)."
    )
    job_timeout_minutes: int = Field(default=180, description="EMR cancels a job run that runs longer.")
    poll_seconds: float = Field(default=10.0, description="Wait between get_job_run calls.")
    endpoint_url: str | None = Field(
        default=None, description="One endpoint for every AWS API (local stand-ins such as moto only)."
    )

    def sync(
        self,
        context: dg.AssetExecutionContext,
        source_uri: str,
        *,
        up_to: datetime | None,
        allow_gaps: bool,
        rebaseline: bool = False,
    ) -> SyncResult:
        code, architecture = self._prepare(context)
        params = self.start_job_run_params(
            context.run.run_id, code, source_uri, up_to=up_to, allow_gaps=allow_gaps, rebaseline=rebaseline
        )
        job_run = self._run_job(context, params, PIPES_RESULT_KEY)
        if job_run.result is not None:
            result = SyncResult.from_dict(job_run.result)
        else:
            result = self._result_from_ledger(context, params["clientToken"], up_to, job_run.job_run_id)
        result.job_run = self._billing(job_run.job_run_id, architecture)
        return result

    def maintain(self, context: dg.AssetExecutionContext, settings: UpkeepSettings) -> UpkeepResult:
        code, architecture = self._prepare(context)
        arguments = ["--task", "maintain", *self._catalog_arguments(), *upkeep_arguments(settings)]
        token = self._token(context.run.run_id, f"{self.table}|maintain|{arguments}")
        params = self._job_run_params(code, arguments, token, f"ddb-iceberg {self.table} upkeep")
        job_run = self._run_job(context, params, PIPES_UPKEEP_RESULT_KEY)
        if job_run.result is None:
            raise dg.Failure(
                description=(
                    f"EMR Serverless job run {job_run.job_run_id} (table upkeep) succeeded, but its result did not "
                    f"arrive through CloudWatch Logs ({self.log_group}): check that the job role may write there."
                ),
                metadata={"driver_logs": self.driver_log_uri(job_run.job_run_id)},
            )
        result = UpkeepResult.from_dict(job_run.result)
        result.job_run = self._billing(job_run.job_run_id, architecture)
        return result

    def _prepare(self, context: dg.AssetExecutionContext) -> tuple[dict[str, str], str]:
        """The application ready and the job's code in S3: the code's URIs and the application's architecture."""
        architecture = self._prepare_application(self._client("emr-serverless"), context)
        return self.upload_job_package(build_job_package(), context), architecture

    def _run_job(self, context: dg.AssetExecutionContext, params: dict[str, Any], result_key: str) -> _JobRunEnd:
        """Start the job run through Pipes and wait for it: the run and the result it reported (None when the
        Pipes message did not arrive: dagster reads CloudWatch Logs for only a few seconds after the run ends)."""
        emr = self._client("emr-serverless")
        recorder = _JobRunRecorder(emr)
        pipes = PipesEMRServerlessClient(
            client=recorder,  # type: ignore[arg-type]
            message_reader=PipesCloudWatchMessageReader(client=self._client("logs")),
            poll_interval=self.poll_seconds,
        )
        try:
            invocation = pipes.run(context=context, start_job_run_params=params)  # type: ignore[arg-type]
        except RuntimeError as error:
            # The Pipes client ends a FAILED or CANCELLED run with a bare RuntimeError; say what EMR said.
            if recorder.job_run_id is None:
                raise
            raise self._job_run_failure(emr, recorder.job_run_id) from error
        finally:
            if self.stop_application:
                emr.stop_application(applicationId=self.application_id)
        assert recorder.job_run_id is not None, "the Pipes client returned without starting a job run"
        for message in reversed(invocation.get_custom_messages()):
            if isinstance(message, dict) and result_key in message:
                return _JobRunEnd(recorder.job_run_id, dict(message[result_key]))
        return _JobRunEnd(recorder.job_run_id, None)

    def _result_from_ledger(
        self, context: dg.AssetExecutionContext, request_id: str, up_to: datetime | None, job_run_id: str
    ) -> SyncResult:
        """The result of a job run whose message did not arrive, read from the table's ledger (the commit the
        job made carries its request id); a failure only if the ledger does not show the run's work."""
        context.log.warning(
            f"EMR Serverless job run {job_run_id} succeeded, but its result did not arrive through CloudWatch Logs "
            f"({self.log_group}); reading what it did from the table's ledger"
        )
        catalog = GlueIcebergCatalog(region=self.region, glue_endpoint=self.endpoint_url, s3_endpoint=self.endpoint_url)
        result = result_from_ledger(catalog.load_catalog(), self.table, request_id, up_to)
        if result is None:
            raise dg.Failure(
                description=(
                    f"EMR Serverless job run {job_run_id} succeeded, but its result did not arrive through "
                    f"CloudWatch Logs ({self.log_group}), and the ledger of {self.table} shows no commit of this "
                    f"run (request {request_id}){f' and does not reflect {up_to.isoformat()}' if up_to else ''}. "
                    "Check the driver's logs; the job role must be allowed to write to the log group."
                ),
                metadata={"driver_logs": self.driver_log_uri(job_run_id), "request_id": request_id},
            )
        return result

    def _billing(self, job_run_id: str, architecture: str) -> dict[str, float | str]:
        """The job run's id, billed resource utilization and estimated cost (EMR reports the bill once the run
        has ended)."""
        job_run = self._client("emr-serverless").get_job_run(applicationId=self.application_id, jobRunId=job_run_id)
        billed = job_run["jobRun"].get("billedResourceUtilization") or {}
        return {"job_run_id": job_run_id, **job_run_costs(billed, architecture, self.prices)}

    def _client(self, service: str) -> Any:
        return boto3.client(service, region_name=self.region, endpoint_url=self.endpoint_url)  # type: ignore[call-overload]

    def _prepare_application(self, emr: Any, context: dg.AssetExecutionContext) -> str:
        """Check the application's release and start it if asked to; returns its architecture."""
        application = emr.get_application(applicationId=self.application_id)["application"]
        if application["releaseLabel"] != self.release_label:
            raise dg.Failure(
                f"EMR Serverless application {self.application_id} runs {application['releaseLabel']}, but the "
                f"job needs {self.release_label} (Spark and Iceberg versions must match the job's)."
            )
        if self.start_application and application["state"] in ("CREATED", "STOPPED"):
            context.log.info(f"Starting EMR Serverless application {self.application_id}")
            emr.start_application(applicationId=self.application_id)
            deadline = time.monotonic() + APPLICATION_START_TIMEOUT_SECONDS
            while (
                state := emr.get_application(applicationId=self.application_id)["application"]["state"]
            ) != "STARTED":
                if state not in ("CREATED", "STARTING", "STOPPED") or time.monotonic() > deadline:
                    raise dg.Failure(f"EMR Serverless application {self.application_id} did not start: it is {state}")
                time.sleep(self.poll_seconds)
        return str(application.get("architecture") or "X86_64")

    def upload_job_package(self, package: JobPackage, context: dg.AssetExecutionContext) -> dict[str, str]:
        """Upload the entry point and archive under `<code_location>/<digest>/`, unless that version is there."""
        bucket, prefix = _split_s3_uri(self.code_location)
        s3 = self._client("s3")
        uris = {}
        for name, body in package.files().items():
            key = "/".join(filter(None, [prefix, package.digest, name]))
            uris[name] = f"s3://{bucket}/{key}"
            try:
                s3.head_object(Bucket=bucket, Key=key)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                    raise
                s3.put_object(Bucket=bucket, Key=key, Body=body)
                context.log.info(f"Uploaded the job's {name} to {uris[name]}")
        return uris

    def client_token(
        self, run_id: str, source_uri: str, up_to: datetime | None, allow_gaps: bool, rebaseline: bool = False
    ) -> str:
        """Same Dagster run, same request: a retried step finds the job run it already started."""
        request = f"{self.table}|{source_uri}|{up_to.isoformat() if up_to else ''}|{allow_gaps}"
        return self._token(run_id, request + ("|rebaseline" if rebaseline else ""))

    def _token(self, run_id: str, request: str) -> str:
        return f"{run_id}-{hashlib.sha256(request.encode()).hexdigest()}"[:CLIENT_TOKEN_LENGTH]

    def start_job_run_params(
        self,
        run_id: str,
        code: dict[str, str],
        source_uri: str,
        *,
        up_to: datetime | None,
        allow_gaps: bool,
        rebaseline: bool = False,
    ) -> dict[str, Any]:
        """The StartJobRun request of a sync."""
        token = self.client_token(run_id, source_uri, up_to, allow_gaps, rebaseline)
        # The commit records the request, so that its result can be read from the ledger if its message is lost.
        arguments = ["--source", source_uri, *self._catalog_arguments(), "--request-id", token]
        if up_to:
            arguments += ["--up-to", up_to.isoformat()]
        if allow_gaps:
            arguments.append("--allow-gaps")
        if rebaseline:
            arguments.append("--rebaseline")
        if self.key_attributes:
            arguments += ["--key", ",".join(self.key_attributes)]
        name = f"ddb-iceberg {self.table}" + (f" up to {up_to.isoformat()}" if up_to else "")
        return self._job_run_params(code, arguments, token, name)

    def _catalog_arguments(self) -> list[str]:
        arguments = ["--table", self.table, "--warehouse", self.warehouse]
        arguments += ["--catalog-kind", "glue", "--catalog-name", self.catalog_name]
        if self.region:
            arguments += ["--region", self.region]
        if self.endpoint_url:
            arguments += ["--s3-endpoint", self.endpoint_url, "--glue-endpoint", self.endpoint_url]
        return arguments

    def _job_run_params(self, code: dict[str, str], arguments: list[str], token: str, name: str) -> dict[str, Any]:
        catalog = CatalogSettings(
            warehouse=self.warehouse,
            kind="glue",
            name=self.catalog_name,
            region=self.region,
            s3_endpoint=self.endpoint_url,
            glue_endpoint=self.endpoint_url,
        )
        conf = {
            "spark.sql.extensions": ICEBERG_EXTENSIONS,
            "spark.sql.session.timeZone": "UTC",
            "spark.jars": self.iceberg_jar,
            "spark.driver.cores": str(self.driver_cores),
            "spark.driver.memory": self.driver_memory,
            "spark.executor.cores": str(self.executor_cores),
            "spark.executor.memory": self.executor_memory,
            "spark.executor.memoryOverhead": self.executor_memory_overhead,
            "spark.emr-serverless.executor.disk": self.executor_disk,
            "spark.dynamicAllocation.enabled": "true",
            "spark.dynamicAllocation.minExecutors": str(self.min_executors),
            "spark.dynamicAllocation.maxExecutors": str(self.max_executors),
            **catalog.spark_conf(),
            **self._python_environment_conf(),
            **self.spark_conf,
        }
        submit_parameters = " ".join(
            [f"--py-files {code[ARCHIVE_NAME]}"] + [f"--conf {k}={v}" for k, v in conf.items()]
        )
        return {
            "applicationId": self.application_id,
            "executionRoleArn": self.execution_role_arn,
            "clientToken": token,
            "name": name,
            "executionTimeoutMinutes": self.job_timeout_minutes,
            "jobDriver": {
                "sparkSubmit": {
                    "entryPoint": code[ENTRY_POINT_NAME],
                    "entryPointArguments": arguments,
                    "sparkSubmitParameters": submit_parameters,
                }
            },
            "configurationOverrides": {
                "monitoringConfiguration": {
                    "s3MonitoringConfiguration": {"logUri": self.log_location.rstrip("/") + "/"},
                    # Pipes reads the job's messages from the driver's stdout in CloudWatch.
                    "cloudWatchLoggingConfiguration": {
                        "enabled": True,
                        "logGroupName": self.log_group,
                        "logTypes": {"SPARK_DRIVER": ["STDOUT", "STDERR"]},
                    },
                }
            },
            "tags": {"ddb-iceberg/table": self.table},
        }

    def _python_environment_conf(self) -> dict[str, str]:
        if self.python_environment and self.python_dependencies:
            raise dg.Failure("set python_dependencies or python_environment, not both: they are alternatives")
        if self.python_dependencies:
            # The image's interpreter, with the wheels unpacked beside the job: PySpark adds PYTHONPATH to its own.
            path = f"./{PYTHON_DEPENDENCIES_ALIAS}"
            return {
                "spark.archives": f"{self.python_dependencies}#{PYTHON_DEPENDENCIES_ALIAS}",
                "spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON": self.python_executable,
                "spark.emr-serverless.driverEnv.PYSPARK_PYTHON": self.python_executable,
                "spark.emr-serverless.driverEnv.PYTHONPATH": path,
                "spark.executorEnv.PYSPARK_PYTHON": self.python_executable,
                "spark.executorEnv.PYTHONPATH": path,
            }
        if not self.python_environment:
            return {}
        python = "./environment/bin/python"
        return {
            "spark.archives": f"{self.python_environment}#environment",
            "spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON": python,
            "spark.emr-serverless.driverEnv.PYSPARK_PYTHON": python,
            "spark.executorEnv.PYSPARK_PYTHON": python,
        }

    def _driver_log_path(self, job_run_id: str, attempt: int | None) -> str:
        """The driver's place in EMR Serverless's log layout: under the S3 log location, and as the CloudWatch
        stream name (`<path>/stdout`, `<path>/stderr`)."""
        attempt_part = f"/attempts/{attempt}" if attempt and attempt > 1 else ""
        return f"/applications/{self.application_id}/jobs/{job_run_id}{attempt_part}/SPARK_DRIVER"

    def driver_log_uri(self, job_run_id: str, attempt: int | None = None) -> str:
        """Where EMR Serverless puts the driver's stdout.gz and stderr.gz of a job run."""
        return self.log_location.rstrip("/") + self._driver_log_path(job_run_id, attempt) + "/"

    def _job_run_failure(self, emr: Any, job_run_id: str) -> DdbIcebergError | dg.Failure:
        """What a FAILED or CANCELLED job run means: the job's own error (a refusal: a gap, bad export data),
        raised again as the local runner would raise it, with EMR's account attached; else EMR's account."""
        job_run = emr.get_job_run(applicationId=self.application_id, jobRunId=job_run_id)["jobRun"]
        state, details, attempt = job_run["state"], job_run.get("stateDetails") or "", job_run.get("attempt")
        driver_logs = self.driver_log_uri(job_run_id, attempt)
        account = f"EMR Serverless job run {job_run_id} ended {state}: {details}".rstrip(": ")
        account += f"\nDriver logs: {driver_logs} (and CloudWatch log group {self.log_group})"
        refusal = self._refusal_from_driver_log(job_run_id, attempt)
        if refusal is not None:
            refusal.add_note(account)
            return refusal
        return dg.Failure(
            description=account,
            metadata={
                "job_run_id": job_run_id,
                "state": state,
                "state_details": details,
                "driver_logs": driver_logs,
                "log_group": self.log_group,
            },
        )

    def _refusal_from_driver_log(self, job_run_id: str, attempt: int | None) -> DdbIcebergError | None:
        """The job's own error, when it refused the sync (a gap, bad export data); best effort.

        spark-submit sends the Python driver's stderr to the driver's stdout, so both streams are searched."""
        driver = self._driver_log_path(job_run_id, attempt)
        logs = self._client("logs")
        records = []
        for stream in (f"{driver}/stdout", f"{driver}/stderr"):
            try:
                # The latest events: a refusal is among the last lines the driver prints.
                events = logs.get_log_events(logGroupName=self.log_group, logStreamName=stream)
            except ClientError:
                continue
            records += [e["message"] for e in events["events"] if e["message"].startswith(ERROR_RECORD_PREFIX)]
        return error_from_record(records[-1]) if records else None


class _JobRunRecorder:
    """The EMR Serverless client, remembering the job run it started (the Pipes client does not expose it)
    and treating the dashboard link as optional (a role without GetDashboardForJobRun still runs jobs)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.job_run_id: str | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def start_job_run(self, **params: Any) -> Any:
        response = self._client.start_job_run(**params)
        self.job_run_id = response["jobRunId"]
        return response

    def get_dashboard_for_job_run(self, **params: Any) -> Any:
        try:
            return self._client.get_dashboard_for_job_run(**params)
        except ClientError as error:
            return {"url": f"(no dashboard: {error.response.get('Error', {}).get('Code', 'error')})"}


def _split_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ValueError(f"expected an s3:// URI, not {uri!r}")
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    return bucket, prefix.strip("/")
