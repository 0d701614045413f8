"""EMR Serverless on loopback: moto's API, with job runs that really run.

moto answers EMR Serverless's API but marks every job run SUCCESS without running anything. The stand-in
makes a job run do what EMR does with it: fetch the `sparkSubmit` entry point and `--py-files` from (moto's)
S3, run them with local `spark-submit` and the driver environment from `spark.emr-serverless.driverEnv.*`,
ship the driver's stdout and stderr to (moto's) CloudWatch Logs and S3 where EMR puts them, and move the job
run through SUBMITTED, RUNNING and SUCCESS or FAILED (or CANCELLED), billing its resources as EMR does (the
workers' vCPU and memory for the run's time, one minute at least). Like EMR, it honours `clientToken` (the
same token starts nothing new), refuses job runs on a stopped application without auto-start, refuses to stop an
application while job runs are active on it, and unpacks `spark.archives` into the driver's working directory
under their `#alias`; it accepts the `emr-spark-*` release labels moto's check predates (moto keeps an
application's `maximumCapacity` as given). `drop_results` stands for CloudWatch Logs delivering the driver's output
after dagster stopped reading it: the job's Pipes result messages never arrive. For tests of what happens around a
job run, without Spark's minute: `driver_output` makes job runs end with a given exit code and driver stdout instead
of running spark-submit, and a job run tagged `standin/hold` (another job on the application) stays RUNNING,
running nothing, until `release`d. The EMR image's Iceberg jar
(`spark.jars=/usr/share/aws/...`) is stood in for by the same Iceberg release from Maven, with the AWS bundle
that EMR's image carries.
"""

from __future__ import annotations

import gzip
import os
import re
import shlex
import subprocess
import sys
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyspark
import pytest
from moto.emrserverless.exceptions import ValidationException
from moto.emrserverless.models import EMRServerlessBackend, JobRun

from ddb_iceberg.engine.spark_session import ICEBERG_AWS_BUNDLE, ICEBERG_SPARK_RUNTIME, class_data_sharing_options
from ddb_iceberg.resources.emr_serverless import EMR_ICEBERG_JAR
from ddb_iceberg_tests.helpers import MOTO_CREDENTIALS, MOTO_REGION, MotoServer, spark_submit_jars

DRIVER_ENV_PREFIX = "spark.emr-serverless.driverEnv."
LOCAL_PACKAGES = (ICEBERG_SPARK_RUNTIME, ICEBERG_AWS_BUNDLE)
MOTO_RELEASE_LABEL = "emr-7.9.0"  # one moto accepts
FAILED_DETAILS = "Job failed, please check complete logs in configured logging destination. ExitCode: {code}."
HOLD_TAG = "standin/hold"
ACTIVE_STATES = ("SUBMITTED", "PENDING", "SCHEDULED", "RUNNING", "QUEUED", "CANCELLING")


@dataclass(frozen=True)
class DriverOutput:
    """How a job run ends when it runs no Spark: the driver's exit code and stdout (Pipes messages included)."""

    exit_code: int
    stdout: str = ""


class EmrServerlessStandIn:
    """Installs itself into moto's EMR Serverless backend (moto runs in this process) for one test."""

    def __init__(self, moto: MotoServer, work_dir: Path) -> None:
        self.moto = moto
        self.work_dir = work_dir
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.commands: dict[str, list[str]] = {}
        self.environments: dict[str, dict[str, str]] = {}
        self.output: dict[str, str] = {}
        self.drop_results = False
        self.driver_output: DriverOutput | None = None
        self.held: dict[str, JobRun] = {}

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        original_create = EMRServerlessBackend.create_application
        original_start = EMRServerlessBackend.start_job_run
        original_cancel = EMRServerlessBackend.cancel_job_run
        original_stop = EMRServerlessBackend.stop_application
        standin = self

        def create_application(backend: EMRServerlessBackend, **kwargs: Any) -> Any:
            release_label = kwargs["release_label"]
            application = original_create(backend, **(kwargs | {"release_label": MOTO_RELEASE_LABEL}))
            application.release_label = release_label
            return application

        def start_job_run(backend: EMRServerlessBackend, **kwargs: Any) -> JobRun:
            application = backend.get_application(kwargs["application_id"])
            auto_start: dict[str, bool] = application.auto_start_configuration  # type: ignore[assignment]
            if application.state != "STARTED" and not auto_start.get("enabled", True):
                raise ValidationException(f"Application {application.id} is {application.state} and auto-start is off")
            token = kwargs.get("client_token")
            for existing in backend.job_runs.get(kwargs["application_id"], []):
                if token and existing.client_token == token:
                    return existing
            job_run = original_start(backend, **kwargs)
            if HOLD_TAG in (kwargs.get("tags") or {}):
                job_run.state = "RUNNING"
                standin.held[job_run.id] = job_run
                return job_run
            job_run.state = "SUBMITTED"
            threading.Thread(target=standin._run, args=(job_run,), daemon=True).start()
            return job_run

        def stop_application(backend: EMRServerlessBackend, application_id: str) -> None:
            # EMR: "All scheduled and running jobs must be completed or cancelled before stopping an application."
            active = [run.id for run in backend.job_runs.get(application_id, []) if run.state in ACTIVE_STATES]
            if active:
                raise ValidationException(
                    f"Application {application_id} cannot be stopped while job runs are active: {', '.join(active)}"
                )
            original_stop(backend, application_id)

        def cancel_job_run(backend: EMRServerlessBackend, application_id: str, job_run_id: str) -> Any:
            result = original_cancel(backend, application_id, job_run_id)
            process = standin.processes.get(job_run_id)
            if process is not None:
                process.kill()
            return result

        monkeypatch.setattr(EMRServerlessBackend, "create_application", create_application)
        monkeypatch.setattr(EMRServerlessBackend, "start_job_run", start_job_run)
        monkeypatch.setattr(EMRServerlessBackend, "cancel_job_run", cancel_job_run)
        monkeypatch.setattr(EMRServerlessBackend, "stop_application", stop_application)

    def release(self, job_run_id: str, state: str = "SUCCESS") -> None:
        """A held job run ends."""
        self.held.pop(job_run_id).state = state

    def _run(self, job_run: JobRun) -> None:
        started = time.monotonic()
        try:
            if self.driver_output is not None:
                job_run.state = "RUNNING"
                code, stdout, stderr = self.driver_output.exit_code, self.driver_output.stdout.encode(), b""
            else:
                code, stdout, stderr = self._spark_submit(job_run)
        except Exception as error:  # a stand-in that breaks must fail the job run, not hang it
            code, stdout, stderr = 1, b"", f"stand-in error: {error!r}".encode()
        if job_run.state == "CANCELLED":
            return
        job_run.billed_resource_utilization = _billed(job_run, time.monotonic() - started)
        self.output[job_run.id] = (stdout + stderr).decode(errors="replace")
        if self.drop_results:
            stdout = b"".join(line for line in stdout.splitlines(keepends=True) if b"report_custom_message" not in line)
        self._ship_logs(job_run, stdout, stderr)
        if code == 0:
            job_run.state = "SUCCESS"
        else:
            job_run.state, job_run.state_details = "FAILED", FAILED_DETAILS.format(code=code)

    def _spark_submit(self, job_run: JobRun) -> tuple[int, bytes, bytes]:
        work = self.work_dir / job_run.id
        work.mkdir(parents=True)
        driver: dict[str, Any] = job_run.job_driver["sparkSubmit"]  # type: ignore[index]
        options, driver_env = self._translate(shlex.split(driver.get("sparkSubmitParameters", "")), work)
        # The driver JVM starts as local sessions do: from a class data sharing archive, with the quick compiler
        # only, and the jars from Ivy's cache without resolving them (a test speed-up only: EMR's image has its own).
        java_options = " ".join(
            ["-XX:TieredStopAtLevel=1", *class_data_sharing_options(("emr-serverless-standin", *LOCAL_PACKAGES))]
        )
        command = [
            str(Path(sys.executable).parent / "spark-submit"),
            "--master", "local[2]",
            *spark_submit_jars(LOCAL_PACKAGES),
            "--conf", "spark.driver.host=127.0.0.1",
            "--conf", "spark.driver.bindAddress=127.0.0.1",
            "--conf", "spark.ui.enabled=false",
            "--conf", f"spark.driver.extraJavaOptions={java_options}",
            *options,
            self._download(driver["entryPoint"], work),
            *driver.get("entryPointArguments", []),
        ]  # fmt: skip
        # Nothing of this process's import path leaks into the job: only what the job run's settings give it.
        env = {
            **{name: value for name, value in os.environ.items() if name != "PYTHONPATH"},
            "SPARK_HOME": str(Path(pyspark.__file__).parent),
            "PYSPARK_PYTHON": sys.executable,
            "AWS_ACCESS_KEY_ID": MOTO_CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": MOTO_CREDENTIALS["aws_secret_access_key"],
            "AWS_REGION": MOTO_REGION,
            **driver_env,
        }
        self.commands[job_run.id] = command
        self.environments[job_run.id] = driver_env
        job_run.state = "RUNNING"
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=work)
        self.processes[job_run.id] = process
        stdout, stderr = process.communicate(timeout=900)
        return process.returncode, stdout, stderr

    def _translate(self, tokens: list[str], work: Path) -> tuple[list[str], dict[str, str]]:
        """spark-submit options as EMR reads them: driver environment out, S3 files fetched, image jars local."""
        options: list[str] = []
        driver_env: dict[str, str] = {}
        pairs = iter(tokens)
        for option in pairs:
            value = next(pairs)
            if option == "--conf":
                key, _, setting = value.partition("=")
                if key.startswith(DRIVER_ENV_PREFIX):
                    driver_env[key.removeprefix(DRIVER_ENV_PREFIX)] = setting
                    continue
                if key == "spark.jars" and setting == EMR_ICEBERG_JAR:
                    continue  # the image's jar: LOCAL_PACKAGES stand in for it
                if key == "spark.archives":
                    for archive in setting.split(","):
                        self._unpack(archive, work)
                    continue
                if key == "spark.submit.pyFiles":
                    raise NotImplementedError(f"the stand-in does not fetch {key}")
                if key.startswith(("spark.driver.memory", "spark.executor.")):
                    continue  # sized for EMR workers, not for this machine
                options += ["--conf", value]
            elif option == "--py-files":
                options += ["--py-files", ",".join(self._download(uri, work) for uri in value.split(","))]
            else:
                options += [option, value]
        return options, driver_env

    def _unpack(self, archive: str, work: Path) -> None:
        """What EMR does with `spark.archives=<uri>#<alias>`: the archive unpacked in the working directory."""
        uri, _, alias = archive.partition("#")
        with zipfile.ZipFile(self._download(uri, work)) as unpacked:
            for member in unpacked.infolist():
                path = Path(unpacked.extract(member, work / (alias or Path(uri).stem)))
                path.chmod((member.external_attr >> 16) & 0o777 or 0o644)

    def _download(self, uri: str, work: Path) -> str:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        path = work / key.rsplit("/", 1)[-1]
        path.write_bytes(self.moto.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
        return str(path)

    def _ship_logs(self, job_run: JobRun, stdout: bytes, stderr: bytes) -> None:
        monitoring: dict[str, Any] = (job_run.configuration_overrides or {}).get("monitoringConfiguration", {})  # type: ignore[assignment]
        driver_prefix = f"/applications/{job_run.application_id}/jobs/{job_run.id}/SPARK_DRIVER"
        cloudwatch = monitoring.get("cloudWatchLoggingConfiguration", {})
        if cloudwatch.get("enabled"):
            logs = self.moto.client("logs")
            group = cloudwatch.get("logGroupName", "/aws/emr-serverless")
            if not logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]:
                logs.create_log_group(logGroupName=group)
            for name, output in (("stdout", stdout), ("stderr", stderr)):
                stream = f"{driver_prefix}/{name}"
                logs.create_log_stream(logGroupName=group, logStreamName=stream)
                now = int(time.time() * 1000)
                events = [{"timestamp": now, "message": line} for line in output.decode().splitlines() if line]
                for start in range(0, len(events), 1000):
                    logs.put_log_events(
                        logGroupName=group, logStreamName=stream, logEvents=events[start : start + 1000]
                    )
        if log_uri := monitoring.get("s3MonitoringConfiguration", {}).get("logUri"):
            bucket, _, prefix = log_uri.removeprefix("s3://").partition("/")
            s3 = self.moto.client("s3")
            for name, output in (("stdout", stdout), ("stderr", stderr)):
                key = f"{prefix.rstrip('/')}{driver_prefix}/{name}.gz".lstrip("/")
                s3.put_object(Bucket=bucket, Key=key, Body=gzip.compress(output))


def _billed(job_run: JobRun, seconds: float) -> dict[str, float]:
    """EMR's bill of a run: its driver's and initial executors' vCPU and memory for the run's time (at least a
    minute), and no storage (each worker's first 20 GB are free)."""
    submit = str(job_run.job_driver["sparkSubmit"].get("sparkSubmitParameters", ""))  # type: ignore[index]

    def setting(name: str, default: str) -> str:
        found = re.search(rf"--conf {re.escape(name)}=(\S+)", submit)
        return found.group(1) if found else default

    def gigabytes(text: str) -> float:
        return float(text.rstrip("gG"))

    executors = int(setting("spark.dynamicAllocation.minExecutors", "1"))
    vcpu = int(setting("spark.driver.cores", "4")) + executors * int(setting("spark.executor.cores", "4"))
    memory = gigabytes(setting("spark.driver.memory", "16g")) + executors * (
        gigabytes(setting("spark.executor.memory", "16g")) + gigabytes(setting("spark.executor.memoryOverhead", "0g"))
    )
    hours = max(seconds, 60.0) / 3600
    return {"vCPUHour": round(vcpu * hours, 6), "memoryGBHour": round(memory * hours, 6), "storageGBHour": 0.0}
