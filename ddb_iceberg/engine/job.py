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
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime

from ddb_iceberg.engine.plan import GapError, SyncError
from ddb_iceberg.engine.schema import KeyTypeError
from ddb_iceberg.engine.spark_session import (
    CATALOG_NAME,
    ICEBERG_EXTENSIONS,
    CatalogSettings,
    build_spark_session,
    check_spark_classes,
    configure_catalog,
)
from ddb_iceberg.engine.sync import SyncResult, sync_table
from ddb_iceberg.engine.upkeep import UpkeepResult, UpkeepSettings, maintain_table
from ddb_iceberg.errors import DdbIcebergError, SettingError
from ddb_iceberg.exports import ExportError, ExportSource, Gap, S3Options
from ddb_iceberg.exports.manifest import format_timestamp, parse_timestamp

RESULT_MARKER = "DDB_ICEBERG_RESULT "
PIPES_CONTEXT_VARIABLE = "DAGSTER_PIPES_CONTEXT"
PIPES_RESULT_KEY = "ddb_iceberg_sync_result"
PIPES_UPKEEP_RESULT_KEY = "ddb_iceberg_upkeep_result"
SYNC, MAINTAIN = "sync", "maintain"
ERROR_PREFIX = "ddb_iceberg: "
# The same error as one JSON line, for the launcher to raise again as the error it is (see error_from_record).
ERROR_RECORD_PREFIX = "DDB_ICEBERG_ERROR "
_ERROR_TYPES: dict[str, type[DdbIcebergError]] = {
    cls.__name__: cls for cls in (DdbIcebergError, SettingError, SyncError, KeyTypeError, ExportError, GapError)
}


def error_record(error: DdbIcebergError) -> str:
    """One line that `error_from_record` turns back into the same error."""
    fields: dict[str, object] = {"type": type(error).__name__, "message": str(error)}
    if isinstance(error, ExportError):
        fields |= {"export": error.export, "problem": error.problem, "file": error.file, "line": error.line}
    elif isinstance(error, GapError):
        fields["gaps"] = [[format_timestamp(gap.start), format_timestamp(gap.end)] for gap in error.gaps]
        fields["incomplete"] = list(error.incomplete)
    return ERROR_RECORD_PREFIX + json.dumps(fields)


def error_from_record(line: str) -> DdbIcebergError:
    fields = json.loads(line.removeprefix(ERROR_RECORD_PREFIX))
    kind = _ERROR_TYPES.get(fields["type"], DdbIcebergError)
    if kind is ExportError:
        return ExportError(export=fields["export"], problem=fields["problem"], file=fields["file"], line=fields["line"])
    if kind is GapError:
        gaps = [Gap(parse_timestamp(start), parse_timestamp(end)) for start, end in fields["gaps"]]
        return GapError(gaps, fields.get("incomplete", ()))
    return kind(fields["message"])


def _utc_moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ddb_iceberg.engine.job", description=__doc__)
    parser.add_argument("--task", choices=[SYNC, MAINTAIN], default=SYNC)
    parser.add_argument("--source", help="Directory or s3://bucket/prefix holding AWSDynamoDB/ (sync)")
    parser.add_argument("--table", required=True, help="<namespace>.<table>")
    parser.add_argument("--warehouse", required=True, help="Local directory, or s3://bucket/prefix for Glue")
    parser.add_argument("--catalog-kind", choices=["local", "glue"], default="local")
    parser.add_argument("--catalog-name", default=CATALOG_NAME)
    parser.add_argument("--key", default=None, help="PARTITION_KEY[,SORT_KEY]")
    parser.add_argument("--allow-gaps", action="store_true")
    parser.add_argument("--rebaseline", action="store_true", help="Replace the rows with the latest full export")
    parser.add_argument(
        "--up-to", default=None, type=_utc_moment, help="Apply only exports that end by then (ISO 8601; UTC if naive)"
    )
    parser.add_argument(
        "--request-id", default=None, help="Recorded in the commit's ledger, so the launcher can find its commit"
    )
    parser.add_argument("--region", default=None)
    parser.add_argument("--s3-endpoint", default=None, help="Local stand-ins of S3 only")
    parser.add_argument("--glue-endpoint", default=None, help="Local stand-ins of Glue only")
    for name, default in UpkeepSettings().in_days().items():
        parser.add_argument(_UPKEEP_OPTIONS[name], dest=name, type=type(default), default=default)
    args = parser.parse_args(argv)
    if args.task == SYNC and not args.source:
        parser.error("--source is required to sync")
    return args


# The job's options for `UpkeepSettings.from_days`.
_UPKEEP_OPTIONS = {
    "snapshot_retention": "--snapshot-retention-days",
    "tag_retention": "--tag-retention-days",
    "orphan_age": "--orphan-age-days",
    "min_input_files": "--min-input-files",
}


def upkeep_arguments(settings: UpkeepSettings) -> list[str]:
    """The job's arguments that `upkeep_settings` reads back as `settings`."""
    return [text for name, value in settings.in_days().items() for text in (_UPKEEP_OPTIONS[name], str(value))]


def upkeep_settings(args: argparse.Namespace) -> UpkeepSettings:
    return UpkeepSettings.from_days(**{name: getattr(args, name) for name in _UPKEEP_OPTIONS})


def run(args: argparse.Namespace, log: Callable[[str], None]) -> SyncResult | UpkeepResult:
    from pyspark.sql import SparkSession

    catalog = CatalogSettings(
        warehouse=args.warehouse,
        kind=args.catalog_kind,
        name=args.catalog_name,
        region=args.region,
        s3_endpoint=args.s3_endpoint,
        glue_endpoint=args.glue_endpoint,
    )
    if os.environ.get("PYSPARK_GATEWAY_PORT"):
        # Launched by spark-submit (locally or on EMR): its configuration rules; only the catalog is added.
        spark = SparkSession.builder.getOrCreate()
        if ICEBERG_EXTENSIONS not in (spark.conf.get("spark.sql.extensions", "") or ""):
            raise SyncError(f"the Spark session lacks spark.sql.extensions={ICEBERG_EXTENSIONS} (set it at submit)")
        configure_catalog(spark, catalog)
    else:
        spark = build_spark_session(catalog)
    check_spark_classes(spark, catalog)
    if args.task == MAINTAIN:
        return maintain_table(
            spark, catalog.name, args.table, upkeep_settings(args), request_id=args.request_id, log=log
        )
    source = ExportSource.from_uri(args.source, S3Options(region=args.region, endpoint_url=args.s3_endpoint))
    return sync_table(
        spark,
        catalog.name,
        args.table,
        source,
        key_attributes=tuple(args.key.split(",")) if args.key else None,
        allow_gaps=args.allow_gaps,
        up_to=args.up_to,
        rebaseline=args.rebaseline,
        request_id=args.request_id,
        log=log,
    )


def _print_to_stderr(message: str) -> None:
    print(message, file=sys.stderr)


def _report_error(error: DdbIcebergError) -> None:
    print(ERROR_PREFIX + str(error), file=sys.stderr)
    print(error_record(error), file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if PIPES_CONTEXT_VARIABLE in os.environ:
        return _main_under_pipes(args)
    try:
        result = run(args, _print_to_stderr)
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


def _main_under_pipes(args: argparse.Namespace) -> int:
    from dagster_pipes import open_dagster_pipes

    with open_dagster_pipes() as pipes:

        def log(message: str) -> None:
            _print_to_stderr(message)
            pipes.log.info(message)

        try:
            result = run(args, log)
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
