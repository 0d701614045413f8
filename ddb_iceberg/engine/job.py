"""The Spark job's entry point: `spark-submit [--py-files ddb_iceberg.zip] ddb_iceberg/engine/job.py ARGS`.

It syncs the table (the default `--task sync`) or maintains it (`--task maintain`: compaction, expiry, orphan
removal, see `engine.upkeep`).

It runs unchanged on local Spark and on EMR Serverless: the session comes from spark-submit (or is built
locally when run with plain Python), the catalog is registered from the arguments, and the result is printed
as one JSON line after `RESULT_MARKER` so whoever launched the job can read it from the driver's log.
When Dagster launched it through Pipes (`DAGSTER_PIPES_CONTEXT` is set), the result also goes back as a Pipes
message and the progress as Pipes logs; `dagster_pipes` ships in the job package, and nothing else of Dagster.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict

from ddb_iceberg.engine.request import Log, SyncRequest, UpkeepRequest, add_arguments, from_namespace
from ddb_iceberg.engine.spark_session import (
    ICEBERG_EXTENSIONS,
    CatalogSettings,
    build_spark_session,
    check_spark_classes,
    configure_catalog,
)
from ddb_iceberg.engine.sync import SyncResult, sync_table
from ddb_iceberg.engine.upkeep import UpkeepResult, maintain_table
from ddb_iceberg.errors import DdbIcebergError, SyncError, to_record

RESULT_MARKER = "DDB_ICEBERG_RESULT "
PIPES_CONTEXT_VARIABLE = "DAGSTER_PIPES_CONTEXT"
PIPES_RESULT_KEY = "ddb_iceberg_sync_result"
PIPES_UPKEEP_RESULT_KEY = "ddb_iceberg_upkeep_result"
SYNC, MAINTAIN = "sync", "maintain"
ERROR_PREFIX = "ddb_iceberg: "
JobRequest = SyncRequest | UpkeepRequest


def job_arguments(catalog: CatalogSettings, request: JobRequest) -> list[str]:
    """The job's command line: what `parse_args` reads back as the same catalog and request."""
    task = SYNC if isinstance(request, SyncRequest) else MAINTAIN
    return ["--task", task, *catalog.to_argv(), *request.to_argv()]


def parse_args(argv: Sequence[str] | None = None) -> tuple[CatalogSettings, JobRequest]:
    tasks = argparse.ArgumentParser(add_help=False)
    tasks.add_argument("--task", choices=[SYNC, MAINTAIN], default=SYNC)
    known, rest = tasks.parse_known_args(argv)
    request_type: type[JobRequest] = SyncRequest if known.task == SYNC else UpkeepRequest
    parser = argparse.ArgumentParser(prog="ddb_iceberg.engine.job", description=__doc__)
    add_arguments(parser, CatalogSettings)
    add_arguments(parser, request_type)
    namespace = parser.parse_args(rest)
    return from_namespace(CatalogSettings, namespace), from_namespace(request_type, namespace)


def run(catalog: CatalogSettings, request: JobRequest, log: Log) -> SyncResult | UpkeepResult:
    from pyspark.sql import SparkSession

    if os.environ.get("PYSPARK_GATEWAY_PORT"):
        # Launched by spark-submit (locally or on EMR): its configuration rules; only the catalog is added.
        spark = SparkSession.builder.getOrCreate()
        if ICEBERG_EXTENSIONS not in (spark.conf.get("spark.sql.extensions", "") or ""):
            raise SyncError(f"the Spark session lacks spark.sql.extensions={ICEBERG_EXTENSIONS} (set it at submit)")
        configure_catalog(spark, catalog)
    else:
        spark = build_spark_session(catalog)
    check_spark_classes(spark, catalog)
    if isinstance(request, UpkeepRequest):
        return maintain_table(spark, catalog.name, request, log=log)
    return sync_table(spark, catalog.name, request, log=log)


def _print_to_stderr(message: str) -> None:
    print(message, file=sys.stderr)


def _report_error(error: DdbIcebergError) -> None:
    print(ERROR_PREFIX + str(error), file=sys.stderr)
    print(to_record(error), file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        catalog, request = parse_args(argv)
    except DdbIcebergError as error:
        _report_error(error)
        return 2
    if PIPES_CONTEXT_VARIABLE in os.environ:
        return _main_under_pipes(catalog, request)
    try:
        result = run(catalog, request, _print_to_stderr)
    except DdbIcebergError as error:
        _report_error(error)
        return 1
    _print_result(result)
    return 0


def _print_result(result: SyncResult | UpkeepResult) -> None:
    # One write of the whole line: Spark runs the driver's Python unbuffered, and print() writes the text and its
    # newline apart, between which the driver's other output could land. (Whoever parses it must still keep the
    # JVM's log, stderr, apart from this stdout: spark-submit relays the Python driver's output in 1 KB pieces.)
    sys.stdout.write(RESULT_MARKER + result.to_json().replace("\n", "") + "\n")
    sys.stdout.flush()


def _main_under_pipes(catalog: CatalogSettings, request: JobRequest) -> int:
    from dagster_pipes import open_dagster_pipes

    with open_dagster_pipes() as pipes:

        def log(message: str) -> None:
            _print_to_stderr(message)
            pipes.log.info(message)

        try:
            result = run(catalog, request, log)
        except DdbIcebergError as error:
            # A refusal, not a crash: the launcher finds it in the driver's log (Pipes messages of a failed EMR
            # job run are not read back).
            _report_error(error)
            pipes.log.error(str(error))
            return 1
        key = PIPES_UPKEEP_RESULT_KEY if isinstance(result, UpkeepResult) else PIPES_RESULT_KEY
        pipes.report_custom_message({key: asdict(result)})
    _print_result(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
