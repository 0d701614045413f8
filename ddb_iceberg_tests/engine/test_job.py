"""The Spark job's errors travel as one line each and come back as the same errors (what the EMR runner does)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pyspark.sql import SparkSession

from ddb_iceberg.engine.job import error_from_record, error_record
from ddb_iceberg.engine.plan import GapError, SyncError
from ddb_iceberg.engine.schema import KeyTypeError
from ddb_iceberg.engine.spark_session import ICEBERG_CLASSES, CatalogSettings, check_spark_classes
from ddb_iceberg.errors import DdbIcebergError, SettingError
from ddb_iceberg.exports import ExportError, Gap


@pytest.mark.parametrize(
    "error",
    [
        ExportError(export="01-x", file="AWSDynamoDB/data/a.json.gz", line=7, problem="is not valid JSON"),
        ExportError(export="01-x", problem="has no manifest-summary.json"),
        GapError([Gap(datetime(2026, 1, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 2, tzinfo=UTC))]),
        # A gap where an export is still running (or FAILED): the message names it.
        GapError([Gap(datetime(2026, 1, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 2, tzinfo=UTC))], ["017672-0badc0de"]),
        SyncError("table t exists but was not created by ddb_iceberg"),
        KeyTypeError("key attribute 'pk' must hold one scalar type"),
    ],
    ids=lambda error: type(error).__name__ + ("-incomplete" if getattr(error, "incomplete", ()) else ""),
)
def test_an_error_comes_back_as_itself(error: DdbIcebergError) -> None:
    line = error_record(error)
    assert "\n" not in line
    again = error_from_record(line)
    assert type(again) is type(error) and str(again) == str(error)
    assert vars(again) == vars(error)


def test_the_job_checks_at_start_that_iceberg_loads_and_names_the_setting_when_not(spark: SparkSession) -> None:
    local = CatalogSettings.local("/tmp/unused-warehouse")
    check_spark_classes(spark, local)  # the session's jars hold Iceberg's runtime

    (hint,) = ICEBERG_CLASSES.values()
    with pytest.raises(SettingError) as missing:
        check_spark_classes(spark, local, {"org.apache.iceberg.spark.NoSuchCatalog": hint})

    message = str(missing.value)
    assert "\n" not in message and "cannot load org.apache.iceberg.spark.NoSuchCatalog" in message
    assert "`iceberg_jar` (DDB_ICEBERG_EMR_ICEBERG_JAR)" in message and "spark.jars=" in message
