"""The merge on Amazon EMR Serverless: the job package goes to S3, Dagster Pipes starts and watches the run."""

import hashlib
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import boto3
import dagster as dg
from botocore.exceptions import BotoCoreError, ClientError
from dagster_aws.pipes import PipesCloudWatchMessageReader, PipesEMRServerlessClient
from pydantic import Field, model_validator

from ddb_iceberg.catalog_access import result_from_ledger, upkeep_result_from_table
from ddb_iceberg.engine.job import (
    PIPES_RESULT_KEY,
    PIPES_UPKEEP_RESULT_KEY,
    job_arguments,
)
from ddb_iceberg.engine.request import SyncRequest, UpkeepRequest
from ddb_iceberg.engine.spark_session import ICEBERG_EXTENSIONS, CatalogKind, CatalogSettings
from ddb_iceberg.engine.sync import SyncResult
from ddb_iceberg.engine.upkeep import UpkeepResult
from ddb_iceberg.errors import ERROR_RECORD_PREFIX, DdbIcebergError, SettingError, from_record
from ddb_iceberg.resources.job_package import ARCHIVE_NAME, ENTRY_POINT_NAME, JobPackage, build_job_package
from ddb_iceberg.resources.merge_runners import MergeRunnerResource
from ddb_iceberg.resources.prices import EmrServerlessPrices, job_run_costs
from ddb_iceberg.resources.table import IcebergTableResource

# Where EMR's images keep the Iceberg runtime (with the Glue catalog and S3FileIO beside it in the AWS SDK).
EMR_ICEBERG_JAR = "/usr/share/aws/iceberg/lib/iceberg-spark3-runtime.jar"
DEFAULT_LOG_GROUP = "/aws/emr-serverless"
CLIENT_TOKEN_LENGTH = 64  # EMR Serverless's limit
APPLICATION_START_TIMEOUT_SECONDS = 600.0
# Where `spark.archives` unpacks the job's Python dependencies in the driver's and executors' working directories.
PYTHON_DEPENDENCIES_ALIAS = "pydeps"
# Job run states (the API's JobRunState) in which a job run holds or waits for the application's workers: EMR
# refuses StopApplication while any job run is in one of them.
ACTIVE_JOB_RUN_STATES = ("SUBMITTED", "PENDING", "SCHEDULED", "RUNNING", "QUEUED", "CANCELLING")

# How EMR Serverless sizes a job run's workers, from "Supported worker configurations" and "Maximum capacity" of
# https://docs.aws.amazon.com/emr/latest/EMR-Serverless-UserGuide/app-behavior.html and the Spark defaults of
# https://docs.aws.amazon.com/emr/latest/EMR-Serverless-UserGuide/jobs-spark.html: a driver or an executor is one
# worker, of one of these vCPU counts, whose memory holds the JVM heap plus Spark's memory overhead, rounded up to
# the memory sizes that vCPU count allows; its disk is 20 GB at least. An application's maximum capacity counts
# every worker of every job run against its vCPU, memory and disk.
WORKER_MEMORY_SIZES_GB: dict[int, tuple[int, ...]] = {
    1: tuple(range(2, 8 + 1, 1)),
    2: tuple(range(4, 16 + 1, 1)),
    4: tuple(range(8, 30 + 1, 1)),
    8: tuple(range(16, 60 + 1, 4)),
    16: tuple(range(32, 120 + 1, 8)),
    32: (60, 120, 244),
}
MIN_WORKER_DISK_GB = 20
DEFAULT_MEMORY_OVERHEAD_FACTOR = 0.1  # of the heap, when no memoryOverhead is set (Spark's and EMR's default)
MIN_MEMORY_OVERHEAD_MIB = 384
DEFAULT_DRIVER_DISK = "20g"  # EMR's default spark.emr-serverless.driver.disk
# The runner's fields behind each sizing setting, for messages (spark_conf may set any of them too).
SIZING_FIELDS = {
    "spark.driver.cores": "driver_cores",
    "spark.driver.memory": "driver_memory",
    "spark.emr-serverless.driver.disk": "driver_disk",
    "spark.executor.cores": "executor_cores",
    "spark.executor.memory": "executor_memory",
    "spark.executor.memoryOverhead": "executor_memory_overhead",
    "spark.emr-serverless.executor.disk": "executor_disk",
    "spark.dynamicAllocation.maxExecutors": "max_executors",
}
_MIB_PER_UNIT = {"k": 1 / 1024, "m": 1.0, "g": 1024.0, "t": 1024.0**2}


@dataclass(frozen=True)
class Capacity:
    """vCPU, memory and disk (GB) of EMR Serverless workers: one worker, or all the workers of a job run."""

    vcpu: int
    memory_gb: int
    disk_gb: int

    def __add__(self, other: "Capacity") -> "Capacity":
        return Capacity(self.vcpu + other.vcpu, self.memory_gb + other.memory_gb, self.disk_gb + other.disk_gb)

    def __mul__(self, workers: int) -> "Capacity":
        return Capacity(self.vcpu * workers, self.memory_gb * workers, self.disk_gb * workers)

    def __str__(self) -> str:
        return f"{self.vcpu} vCPU, {self.memory_gb} GB memory, {self.disk_gb} GB disk"


@dataclass(frozen=True)
class MaximumCapacity:
    """An application's `maximumCapacity`; None where it sets no limit (disk is optional)."""

    vcpu: int | None
    memory_gb: int | None
    disk_gb: int | None

    @classmethod
    def from_application(cls, application: Mapping[str, Any]) -> "MaximumCapacity | None":
        """From GetApplication's answer ("16 vCPU", "64 GB"); None for an application without a maximum."""
        maximum = application.get("maximumCapacity")
        if not maximum:
            return None

        def amount(name: str) -> int | None:
            found = re.match(r"\s*(\d+)", str(maximum.get(name) or ""))
            return int(found.group(1)) if found else None

        return cls(amount("cpu"), amount("memory"), amount("disk"))

    def __str__(self) -> str:
        parts = [f"{self.vcpu} vCPU" if self.vcpu is not None else "no vCPU limit"]
        parts.append(f"{self.memory_gb} GB memory" if self.memory_gb is not None else "no memory limit")
        parts.append(f"{self.disk_gb} GB disk" if self.disk_gb is not None else "no disk limit")
        return ", ".join(parts)


@dataclass(frozen=True)
class JobRunSizing:
    """The workers a job run asks EMR Serverless for: its driver, each executor, and at most how many executors."""

    driver: Capacity
    executor: Capacity
    max_executors: int

    def need(self, executors: int | None = None) -> Capacity:
        """What the driver and `executors` executors (default: the most the job run may have) hold at once."""
        return self.driver + self.executor * (self.max_executors if executors is None else executors)

    def executors_within(self, maximum: MaximumCapacity) -> int:
        """The most executors (up to max_executors) that fit beside the driver under an application's maximum."""
        fits = self.max_executors
        for limit, driver, each in (
            (maximum.vcpu, self.driver.vcpu, self.executor.vcpu),
            (maximum.memory_gb, self.driver.memory_gb, self.executor.memory_gb),
            (maximum.disk_gb, self.driver.disk_gb, self.executor.disk_gb),
        ):
            if limit is not None:
                fits = min(fits, (limit - driver) // each)
        return max(fits, 0)


def job_run_sizing(conf: Mapping[str, str]) -> JobRunSizing:
    """The workers a job run with these Spark settings needs on EMR Serverless (see WORKER_MEMORY_SIZES_GB).

    Raises ValueError, naming the setting, for settings EMR Serverless has no worker for."""
    count_setting = executor_count_setting(conf)
    count = conf.get(count_setting, "3").strip()  # EMR's default spark.executor.instances
    if not count.isdigit():
        raise ValueError(f"{_named(count_setting, count)} is not a whole number of executors")
    return JobRunSizing(
        driver=_worker(conf, "driver", default_disk=DEFAULT_DRIVER_DISK),
        executor=_worker(conf, "executor", default_disk=f"{MIN_WORKER_DISK_GB}g"),
        max_executors=int(count),
    )


def executor_count_setting(conf: Mapping[str, str]) -> str:
    """The setting that bounds a job run's executors: maxExecutors under dynamic allocation, else instances."""
    dynamic = conf.get("spark.dynamicAllocation.enabled", "true").strip().lower() == "true"
    return "spark.dynamicAllocation.maxExecutors" if dynamic else "spark.executor.instances"


def _worker(conf: Mapping[str, str], role: str, *, default_disk: str) -> Capacity:
    """One driver or executor as an EMR Serverless worker (EMR's defaults where the settings say nothing)."""
    cores_setting = f"spark.{role}.cores"
    cores = conf.get(cores_setting, "4").strip()
    if not cores.isdigit() or int(cores) not in WORKER_MEMORY_SIZES_GB:
        counts = ", ".join(str(vcpu) for vcpu in WORKER_MEMORY_SIZES_GB)
        raise ValueError(f"{_named(cores_setting, cores)}: an EMR Serverless worker has {counts} vCPU")
    memory_setting, overhead_setting = f"spark.{role}.memory", f"spark.{role}.memoryOverhead"
    memory = conf.get(memory_setting, "14g")  # EMR's default
    heap = _mebibytes(memory_setting, memory, default_unit="m")
    if overhead_setting in conf:
        overhead_named = _named(overhead_setting, conf[overhead_setting])
        overhead = _mebibytes(overhead_setting, conf[overhead_setting], default_unit="m")
    else:
        factor_setting = f"spark.{role}.memoryOverheadFactor"
        try:
            factor = float(conf.get(factor_setting, DEFAULT_MEMORY_OVERHEAD_FACTOR))
        except ValueError:
            raise ValueError(f"{factor_setting}={conf[factor_setting]!r} is not a fraction such as 0.1") from None
        overhead = max(heap * factor, MIN_MEMORY_OVERHEAD_MIB)
        overhead_named = f"{overhead_setting}'s default {overhead:.0f}m ({factor:g} of the heap, 384m at least)"
    # Spark's g and EMR's GB are the same unit: EMR's default 14g heap and 10% overhead make a 16 GB worker.
    memory_gb = (heap + overhead) / 1024
    sizes = WORKER_MEMORY_SIZES_GB[int(cores)]
    fitting = [size for size in sizes if size >= memory_gb - 1e-9]
    if not fitting:
        raise ValueError(
            f"{_named(memory_setting, memory)} plus {overhead_named} is "
            f"{memory_gb:.1f} GB, more than the {sizes[-1]} GB an EMR Serverless worker of {cores} vCPU holds"
        )
    disk_setting = f"spark.emr-serverless.{role}.disk"
    disk_gb = _mebibytes(disk_setting, conf.get(disk_setting, default_disk), default_unit="g") / 1024
    return Capacity(int(cores), fitting[0], max(math.ceil(disk_gb - 1e-9), MIN_WORKER_DISK_GB))


def _mebibytes(setting: str, value: str, *, default_unit: str) -> float:
    found = re.fullmatch(r"\s*(\d+)\s*(?:([kmgt])b?)?\s*", value.lower())
    if not found:
        raise ValueError(f"{_named(setting, value)} is not a size Spark reads (a whole number and a unit: 512m, 8g)")
    return int(found.group(1)) * _MIB_PER_UNIT[found.group(2) or default_unit]


def _named(setting: str, value: str) -> str:
    """A sizing setting, its value and the runner's field behind it: `spark.executor.memory=8g (executor_memory)`."""
    return f"{setting}={value}" + (f" ({SIZING_FIELDS[setting]})" if setting in SIZING_FIELDS else "")


@dataclass
class _Prepared:
    """A job run's ground, checked before it starts: the job's code in S3, the application's architecture, and
    the executors the application's maximum capacity lets it have (with what to tell the user if it cut them)."""

    code: dict[str, str]
    architecture: str
    max_executors: int
    warnings: list[str] = field(default_factory=list)

    def annotate(self, result: SyncResult | UpkeepResult) -> None:
        """The result's metadata says how many executors the job run could have, and why if it was capped."""
        result.job_run["max_executors"] = str(self.max_executors)
        result.warnings += self.warnings


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
    driver_disk: str = Field(
        default=DEFAULT_DRIVER_DISK, description="Disk of the driver (EMR's default: a worker's free 20 GB)."
    )
    min_executors: int = Field(default=1, description="Lower bound of dynamic allocation.")
    initial_executors: int | None = Field(
        default=None,
        description="Executors a job run starts with (default: min_executors; EMR's own default would be 3).",
    )
    max_executors: int = Field(
        default=16,
        description="Upper bound of dynamic allocation; lowered, with a warning, to what the application's maximum "
        "capacity holds beside the driver.",
    )
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
    image_has_python_dependencies: bool = Field(
        default=False,
        description="The application runs a custom image whose Python already has pyarrow and pandas, so neither "
        "`python_dependencies` nor `python_environment` is needed (EMR's own images lack them).",
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
        default=False,
        description="Stop the application after each job run unless other job runs are active on it (for apps "
        "without auto-stop).",
    )
    job_timeout_minutes: int = Field(default=180, description="EMR cancels a job run that runs longer.")
    poll_seconds: float = Field(default=10.0, description="Wait between get_job_run calls.")
    endpoint_url: str | None = Field(
        default=None, description="One endpoint for every AWS API (local stand-ins such as moto only)."
    )

    @model_validator(mode="after")
    def _settings_that_can_work(self) -> "EmrServerlessMergeRunner":
        """Refused when the resource is made (the code location loads), not when a job run would start."""
        if self.python_environment and self.python_dependencies:
            raise SettingError(
                "set python_dependencies or python_environment, not both: they are alternatives "
                f"(python_dependencies={self.python_dependencies}, python_environment={self.python_environment})"
            )
        self.sizing()
        return self

    def sync(self, context: dg.AssetExecutionContext, table: IcebergTableResource, request: SyncRequest) -> SyncResult:
        catalog = self._catalog(table)
        prepared = self._prepare(context)
        params = self.start_job_run_params(
            context.run.run_id, prepared.code, catalog, request, max_executors=prepared.max_executors
        )
        job_run = self._run_job(context, params, PIPES_RESULT_KEY)
        if job_run.result is not None:
            result = SyncResult.from_dict(job_run.result)
        else:
            result = self._result_from_ledger(context, table, params["clientToken"], request.up_to, job_run.job_run_id)
        result.job_run = self._billing(job_run.job_run_id, prepared.architecture)
        prepared.annotate(result)
        return result

    def maintain(
        self, context: dg.AssetExecutionContext, table: IcebergTableResource, request: UpkeepRequest
    ) -> UpkeepResult:
        catalog = self._catalog(table)
        prepared = self._prepare(context)
        token = self.client_token(context.run.run_id, request)
        # The job keeps its result on the table under this request, in case its message is lost.
        arguments = job_arguments(catalog, replace(request, request_id=token))
        name = f"ddb-iceberg {request.table} upkeep"
        params = self._job_run_params(
            prepared.code, arguments, token, name, request.table, catalog, prepared.max_executors
        )
        job_run = self._run_job(context, params, PIPES_UPKEEP_RESULT_KEY)
        if job_run.result is not None:
            result = UpkeepResult.from_dict(job_run.result)
        else:
            result = self._upkeep_result_from_table(context, table, token, job_run.job_run_id)
        result.job_run = self._billing(job_run.job_run_id, prepared.architecture)
        prepared.annotate(result)
        return result

    def _catalog(self, table: IcebergTableResource) -> CatalogSettings:
        """The table's catalog as the job registers it: Glue, reached through this runner's endpoint if any."""
        catalog = table.catalog_settings()
        if catalog.kind is not CatalogKind.GLUE:
            raise SettingError(
                f"table {table.identifier} is in a {catalog.kind} catalog: a job on EMR Serverless writes tables "
                "in the AWS Glue Data Catalog (use GlueIcebergTable)"
            )
        if self.endpoint_url:
            catalog = replace(catalog, s3_endpoint=self.endpoint_url, glue_endpoint=self.endpoint_url)
        return catalog

    def _prepare(self, context: dg.AssetExecutionContext) -> _Prepared:
        """The job's Python settled, the application checked (release, capacity) and ready, the job's code in S3;
        a refusal before anything is uploaded or started when one of them cannot work."""
        self._check_python()
        prepared = self._prepare_application(self._client("emr-serverless"), context)
        prepared.code = self.upload_job_package(build_job_package(), context)
        return prepared

    def _check_python(self) -> None:
        """The job imports pyarrow and pandas, which EMR's images lack: without them it would die deep in Spark."""
        if not (self.python_dependencies or self.python_environment or self.image_has_python_dependencies):
            raise SettingError(
                "The merge job needs pyarrow and pandas on EMR Serverless, which the EMR image's Python lacks: set "
                "the runner's python_dependencies (DDB_ICEBERG_EMR_PYTHON_DEPENDENCIES) to the s3:// URI of the zip "
                "that `make emr-python-deps` (`ddb-iceberg emr-python-deps --arch <the application's architecture>`) "
                "builds, or python_environment (DDB_ICEBERG_EMR_PYTHON_ENVIRONMENT) to a venv-pack archive."
            )

    def sizing(self) -> JobRunSizing:
        """The workers this runner's job runs ask EMR Serverless for, before any application's cap."""
        try:
            return job_run_sizing(self._spark_conf())
        except ValueError as error:
            raise SettingError(f"EMR Serverless has no worker for this runner's settings: {error}") from None

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
                self._stop_application_unless_busy(emr, context, recorder.job_run_id)
        assert recorder.job_run_id is not None, "the Pipes client returned without starting a job run"
        for message in reversed(invocation.get_custom_messages()):
            if isinstance(message, dict) and result_key in message:
                return _JobRunEnd(recorder.job_run_id, dict(message[result_key]))
        return _JobRunEnd(recorder.job_run_id, None)

    def _stop_application_unless_busy(
        self, emr: Any, context: dg.AssetExecutionContext, job_run_id: str | None
    ) -> None:
        """Stop the application unless other job runs are active on it: EMR refuses to stop an application while
        job runs are active, and stopping it would end theirs. Never raises: the job run's own outcome, a result
        or an error, is what the step reports."""
        try:
            pages = emr.get_paginator("list_job_runs").paginate(
                applicationId=self.application_id, states=list(ACTIVE_JOB_RUN_STATES)
            )
            others = [run["id"] for page in pages for run in page["jobRuns"] if run["id"] != job_run_id]
            if others:
                context.log.info(
                    f"EMR Serverless application {self.application_id} stays started because {len(others)} other "
                    f"job run(s) are active on it: {', '.join(others)}"
                )
                return
            emr.stop_application(applicationId=self.application_id)
            context.log.info(f"Stopped EMR Serverless application {self.application_id}")
        except (ClientError, BotoCoreError) as error:
            context.log.warning(
                f"Could not stop EMR Serverless application {self.application_id} after job run {job_run_id} "
                f"(stop_application=True): {error}. It stays started until stopped or idle long enough to auto-stop."
            )

    def _result_from_ledger(
        self,
        context: dg.AssetExecutionContext,
        table: IcebergTableResource,
        request_id: str,
        up_to: datetime | None,
        job_run_id: str,
    ) -> SyncResult:
        """The result of a job run whose message did not arrive, read from the table's ledger (the commit the
        job made carries its request id); a failure only if the ledger does not show the run's work."""
        context.log.warning(
            f"EMR Serverless job run {job_run_id} succeeded, but its result did not arrive through CloudWatch Logs "
            f"({self.log_group}); reading what it did from the table's ledger"
        )
        result = result_from_ledger(table.load_catalog(), table.identifier, request_id, up_to)
        if result is None:
            reflects = f" and does not reflect {up_to.isoformat()}" if up_to else ""
            raise self._result_lost(
                job_run_id,
                "",
                request_id,
                f"the ledger of {table.identifier} shows no commit of this run (request {request_id}){reflects}",
            )
        return result

    def _upkeep_result_from_table(
        self, context: dg.AssetExecutionContext, table: IcebergTableResource, request_id: str, job_run_id: str
    ) -> UpkeepResult:
        """The result of an upkeep job run whose message did not arrive, as the job kept it on the table (the
        `ddb-iceberg.upkeep` property, under the run's request id); a failure only if the table does not have it."""
        context.log.warning(
            f"EMR Serverless job run {job_run_id} (table upkeep) succeeded, but its result did not arrive through "
            f"CloudWatch Logs ({self.log_group}); reading it from the table's properties"
        )
        result = upkeep_result_from_table(table.load_catalog(), table.identifier, request_id)
        if result is None:
            raise self._result_lost(
                job_run_id,
                " (table upkeep)",
                request_id,
                f"{table.identifier} does not hold the result of this run (request {request_id})",
            )
        return result

    def _result_lost(self, job_run_id: str, task: str, request_id: str, not_on_the_table: str) -> dg.Failure:
        """A job run that succeeded, whose result came neither through Pipes nor from the table."""
        return dg.Failure(
            description=(
                f"EMR Serverless job run {job_run_id}{task} succeeded, but its result did not arrive through "
                f"CloudWatch Logs ({self.log_group}), and {not_on_the_table}. Check the driver's logs; the job role "
                "must be allowed to write to the log group."
            ),
            metadata={"driver_logs": self.driver_log_uri(job_run_id), "request_id": request_id},
        )

    def _billing(self, job_run_id: str, architecture: str) -> dict[str, float | str]:
        """The job run's id, billed resource utilization and estimated cost (EMR reports the bill once the run
        has ended)."""
        job_run = self._client("emr-serverless").get_job_run(applicationId=self.application_id, jobRunId=job_run_id)
        billed = job_run["jobRun"].get("billedResourceUtilization") or {}
        return {"job_run_id": job_run_id, **job_run_costs(billed, architecture, self.prices)}

    def _client(self, service: str) -> Any:
        return boto3.client(service, region_name=self.region, endpoint_url=self.endpoint_url)  # type: ignore[call-overload]

    def _prepare_application(self, emr: Any, context: dg.AssetExecutionContext) -> _Prepared:
        """Check the application's release and maximum capacity, and start it if asked to: its architecture and
        the executors a job run may have on it (the code is not uploaded yet)."""
        application = emr.get_application(applicationId=self.application_id)["application"]
        if application["releaseLabel"] != self.release_label:
            raise SettingError(
                f"EMR Serverless application {self.application_id} runs {application['releaseLabel']}, but the "
                f"job needs {self.release_label} (Spark and Iceberg versions must match the job's)."
            )
        sizing = self.sizing()
        architecture = str(application.get("architecture") or "X86_64")
        prepared = _Prepared(code={}, architecture=architecture, max_executors=sizing.max_executors)
        maximum = MaximumCapacity.from_application(application)
        fits = sizing.executors_within(maximum) if maximum else sizing.max_executors
        if maximum and fits < min(1, sizing.max_executors):
            raise SettingError(
                f"EMR Serverless application {self.application_id} has a maximum capacity of {maximum}, too little "
                f"for this runner's driver ({sizing.driver}) and one executor ({sizing.executor}), "
                f"{sizing.need(1)} together ({sizing.need()} with max_executors={sizing.max_executors}): raise the "
                "application's maximum capacity (the stack's MaximumVcpu and MaximumMemoryGb) or make the workers "
                "smaller (driver_cores, driver_memory, executor_cores, executor_memory, executor_memory_overhead)."
            )
        if maximum and fits < sizing.max_executors:
            prepared.max_executors = fits
            prepared.warnings.append(
                f"EMR Serverless application {self.application_id} has a maximum capacity of {maximum}: the driver "
                f"and max_executors={sizing.max_executors} executors need {sizing.need()}, so job runs have at most "
                f"{fits} executors ({sizing.need(fits)}). Raise the application's maximum capacity (the stack's "
                f"MaximumVcpu and MaximumMemoryGb) to {sizing.need()} for all of them, or set max_executors={fits}."
            )
            context.log.warning(prepared.warnings[-1])
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
        return prepared

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

    def client_token(self, run_id: str, request: SyncRequest | UpkeepRequest) -> str:
        """Same Dagster run, same request: a retried step finds the job run it already started."""
        return f"{run_id}-{hashlib.sha256(repr(request).encode()).hexdigest()}"[:CLIENT_TOKEN_LENGTH]

    def start_job_run_params(
        self,
        run_id: str,
        code: dict[str, str],
        catalog: CatalogSettings,
        request: SyncRequest,
        *,
        max_executors: int | None = None,
    ) -> dict[str, Any]:
        """The StartJobRun request of a sync (with at most `max_executors` executors when the application's
        maximum capacity holds fewer than the runner's settings ask for)."""
        token = self.client_token(run_id, request)
        # The commit records the request, so that its result can be read from the ledger if its message is lost.
        arguments = job_arguments(catalog, replace(request, request_id=token))
        up_to = request.up_to
        name = f"ddb-iceberg {request.table}" + (f" up to {up_to.isoformat()}" if up_to else "")
        return self._job_run_params(code, arguments, token, name, request.table, catalog, max_executors)

    def _job_run_params(
        self,
        code: dict[str, str],
        arguments: list[str],
        token: str,
        name: str,
        table: str,
        catalog: CatalogSettings,
        max_executors: int | None = None,
    ) -> dict[str, Any]:
        conf = self._spark_conf(catalog, max_executors)
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
            "tags": {"ddb-iceberg/table": table},
        }

    def _spark_conf(self, catalog: CatalogSettings | None = None, max_executors: int | None = None) -> dict[str, str]:
        """The job run's Spark settings, `spark_conf` last; with fewer executors when `max_executors` says so."""
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
            "spark.emr-serverless.driver.disk": self.driver_disk,
            "spark.dynamicAllocation.enabled": "true",
            "spark.dynamicAllocation.minExecutors": str(self.min_executors),
            # Explicit: EMR's default starts every job run with 3 executors, whatever the window's size.
            "spark.dynamicAllocation.initialExecutors": str(max(self.initial_executors or 0, self.min_executors)),
            "spark.dynamicAllocation.maxExecutors": str(self.max_executors),
            **(catalog.spark_conf() if catalog else {}),
            **self._python_environment_conf(),
            **self.spark_conf,
        }
        count_setting = executor_count_setting(conf)
        if max_executors is not None and int(conf.get(count_setting, "0")) > max_executors:
            # Spark refuses a lower bound above the upper one: every bound comes down to what fits.
            for setting in (
                count_setting,
                "spark.dynamicAllocation.minExecutors",
                "spark.dynamicAllocation.initialExecutors",
            ):
                if setting in conf and int(conf[setting]) > max_executors:
                    conf[setting] = str(max_executors)
        return conf

    def _python_environment_conf(self) -> dict[str, str]:
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
        return from_record(records[-1]) if records else None


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
