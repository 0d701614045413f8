"""The Spark job's command line and errors: a request and its catalog travel as arguments, an error as one line,
and both come back as themselves (what the EMR runner relies on)."""

from __future__ import annotations

import dataclasses
import pickle
from datetime import UTC, datetime, timedelta

import pytest
from pyspark.sql import SparkSession

from ddb_iceberg.engine.job import job_arguments, parse_args
from ddb_iceberg.engine.request import SyncRequest, UpkeepRequest, UpkeepSettings
from ddb_iceberg.engine.spark_session import ICEBERG_CLASSES, CatalogKind, CatalogSettings, check_spark_classes
from ddb_iceberg.errors import (
    DdbIcebergError,
    ExportError,
    ExportFailedError,
    Fix,
    GapError,
    JavaMissingError,
    KeyTypeError,
    SettingError,
    SyncError,
    error_types,
    from_record,
    to_record,
)
from ddb_iceberg.exports import Gap

GAP = Gap(datetime(2026, 1, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 2, tzinfo=UTC))
ERRORS = [
    ExportError(export="01-x", file="AWSDynamoDB/data/a.json.gz", line=7, problem="is not valid JSON"),
    ExportError(export="01-x", problem="has no manifest-summary.json"),
    GapError([GAP]),
    # A gap where an export is still running (or FAILED): the message names it.
    GapError([GAP], ["017672-0badc0de"]),
    SyncError("table t exists but was not created by ddb_iceberg"),
    SyncError("the table's key attributes are needed", fixes=[Fix.NAME_KEY]),
    KeyTypeError("key attribute 'pk' must hold one scalar type"),
    SettingError("table 'a b' is not <namespace>.<table>"),
    JavaMissingError("no Java 17"),
    ExportFailedError("DynamoDB refused the export"),
    DdbIcebergError("something a user can act on"),
]


def test_every_error_class_is_covered_here() -> None:
    # A new error class must be added to ERRORS, so that it is known to travel.
    assert set(error_types()) == {type(error).__name__ for error in ERRORS}


@pytest.mark.parametrize(
    "error",
    ERRORS,
    ids=lambda error: type(error).__name__ + ("-incomplete" if getattr(error, "incomplete", ()) else ""),
)
def test_an_error_comes_back_as_itself(error: DdbIcebergError) -> None:
    line = to_record(error)
    assert "\n" not in line
    for again in (from_record(line), pickle.loads(pickle.dumps(error))):  # the job's log; an executor's pickle
        assert type(again) is type(error) and str(again) == str(error)
        assert vars(again) == vars(error) and again.fixes == error.fixes


def test_an_error_of_a_newer_job_comes_back_as_the_base_with_its_message() -> None:
    again = from_record('DDB_ICEBERG_ERROR {"type": "ErrorOfTomorrow", "message": "m", "fixes": []}')
    assert type(again) is DdbIcebergError and str(again) == "m"


def _all_fields_set(request: object) -> None:
    for field in dataclasses.fields(request):  # type: ignore[arg-type]
        default = field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default
        value = getattr(request, field.name)
        if dataclasses.is_dataclass(value):
            _all_fields_set(value)
        else:
            assert value != default, f"{type(request).__name__}.{field.name} is at its default: set it here"


def test_every_field_of_a_request_and_its_catalog_survives_the_command_line() -> None:
    catalog = CatalogSettings(
        warehouse="s3://warehouse/prefix",
        kind=CatalogKind.GLUE,
        name="glue",
        region="eu-north-1",
        s3_endpoint="http://127.0.0.1:1",
        glue_endpoint="http://127.0.0.1:2",
    )
    sync = SyncRequest(
        table="dynamodb.orders",
        source="s3://exports/ddb",
        key_attributes=("pk", "sk"),
        allow_gaps=True,
        rebaseline=True,
        change_feed=True,
        history=True,
        partition_by=("day(created_at, epoch_millis)", "bucket(4, customer_id)"),
        maps="json",
        up_to=datetime(2026, 1, 1, 2, 0, 0, 123456, tzinfo=UTC),
        buckets=8,
        table_properties=(("write.target-file-size-bytes", "1048576"), ("comment", "a=b, c")),
        request_id="run-1",
        s3_region="eu-north-1",
        s3_endpoint_url="http://127.0.0.1:3",
        orphan_sweep_interval=timedelta(hours=1, seconds=1),
    )
    upkeep = UpkeepRequest(
        table="dynamodb.orders",
        settings=UpkeepSettings(timedelta(days=1.5), timedelta(days=2), timedelta(days=4), 6, 2),
        partition_by=("status", "month(created_at, iso)"),  # a repartition on EMR Serverless goes this way
        request_id="run-2",
    )
    for request in (sync, upkeep):
        _all_fields_set(request)
        assert parse_args(job_arguments(catalog, request)) == (catalog, request)
        assert type(request).from_argv(request.to_argv()) == request


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: SyncRequest(table="g.bad name", source="x"), "table 'g.bad name' is not <namespace>.<table>"),
        (lambda: SyncRequest(table="a.b`c", source="x"), "table 'a.b`c' is not"),
        (lambda: SyncRequest(table="orders", source="x"), "table 'orders' is not"),
        (lambda: SyncRequest(table="a.b", source="ftp://x"), "only local directories and s3:// URIs"),
        (lambda: SyncRequest(table="a.b", source="x", key_attributes=("a", "b", "c")), "one or two attributes"),
        (lambda: SyncRequest(table="a.b", source="x", buckets=-1), "buckets -1 is outside 0 to 1024"),
        (lambda: UpkeepSettings(snapshot_retention=timedelta(days=-1)), "snapshot_retention -1 day"),
        (lambda: UpkeepSettings(min_input_files=0), "min_input_files 0 is under 1"),
        (
            lambda: CatalogSettings(warehouse="/tmp/w", kind="hive"),  # type: ignore[arg-type]
            "catalog kind 'hive' is not one of",
        ),
        (
            lambda: CatalogSettings(warehouse="/tmp/w", kind="glue"),  # type: ignore[arg-type]
            "is not an s3:// prefix",
        ),
    ],
)
def test_a_setting_that_cannot_work_is_one_clear_line(build: object, message: str) -> None:
    with pytest.raises(SettingError) as refused:
        build()  # type: ignore[operator]
    assert message in str(refused.value) and "\n" not in str(refused.value)


def test_the_job_checks_at_start_that_iceberg_loads_and_names_the_setting_when_not(spark: SparkSession) -> None:
    local = CatalogSettings.local("/tmp/unused-warehouse")
    check_spark_classes(spark, local)  # the session's jars hold Iceberg's runtime

    (hint,) = ICEBERG_CLASSES.values()
    with pytest.raises(SettingError) as missing:
        check_spark_classes(spark, local, {"org.apache.iceberg.spark.NoSuchCatalog": hint})

    message = str(missing.value)
    assert "\n" not in message and "cannot load org.apache.iceberg.spark.NoSuchCatalog" in message
    assert "`iceberg_jar` (DDB_ICEBERG_EMR_ICEBERG_JAR)" in message and "spark.jars=" in message
