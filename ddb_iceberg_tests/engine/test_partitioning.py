"""A table's layout chosen per table: its partition spec (and its evolution on request), and maps as JSON text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from ddb_iceberg.catalog_access import local_catalog
from ddb_iceberg.engine.partitioning import PartitionField, PartitionSpec, TimeEncoding, Transform, time_expression
from ddb_iceberg.engine.repartition import repartition_table
from ddb_iceberg.engine.schema import Kind
from ddb_iceberg.errors import Fix, SettingError, SyncError
from ddb_iceberg_tests.helpers import History, LocalWarehouse

TABLE = "dynamodb.orders"
EPOCH = datetime.fromtimestamp(0, UTC)


def test_partition_fields_are_read_as_written() -> None:
    assert PartitionField.parse("status") == PartitionField(Transform.IDENTITY, "status")
    assert PartitionField.parse(" identity(customer-name) ") == PartitionField(Transform.IDENTITY, "customer-name")
    assert PartitionField.parse("bucket(16, customer_id)") == PartitionField(Transform.BUCKET, "customer_id", 16)
    day = PartitionField.parse("DAY(created_at, epoch_millis)")
    assert day == PartitionField(Transform.DAY, "created_at", encoding=TimeEncoding.EPOCH_MILLIS)
    assert str(day) == "day(created_at, epoch_millis)" and PartitionField.parse(str(day)) == day
    # The encoding is the last argument: an attribute's name may hold a comma.
    assert PartitionField.parse("hour(a,b, iso)").attribute == "a,b"
    spec = PartitionSpec.parse(["day(created_at, epoch_seconds)", "bucket(4, customer_id)"])
    assert PartitionSpec.from_json(spec.to_json()) == spec and PartitionSpec.from_json(None) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("day(created_at)", "names how the attribute holds the time"),
        ("day(created_at, epoch_nanos)", "names how the attribute holds the time"),
        ("bucket(0, customer_id)", "N must be a whole number from 1"),
        ("bucket(x, customer_id)", "N must be a whole number from 1"),
        ("truncate(4, status)", "unknown transform 'truncate'"),
        ("bucket(4, )", "names no attribute"),
        ("  ", "is empty"),
    ],
)
def test_a_partition_field_written_wrong_is_refused_in_words(text: str, message: str) -> None:
    with pytest.raises(SettingError, match=message):
        PartitionField.parse(text)


def test_time_columns_are_computed_exactly_and_null_for_what_is_not_a_time(spark: SparkSession) -> None:
    row = spark.sql(
        "SELECT "
        + ", ".join(
            [
                time_expression("1767225600", Kind.LONG, TimeEncoding.EPOCH_SECONDS),
                time_expression("CAST(1767225600123 AS BIGINT)", Kind.LONG, TimeEncoding.EPOCH_MILLIS),
                time_expression("CAST(1767225600.5 AS DECIMAL(38, 1))", Kind.DECIMAL, TimeEncoding.EPOCH_SECONDS),
                time_expression("'1767225600'", Kind.STRING, TimeEncoding.EPOCH_SECONDS),
                time_expression("'2026-01-01T05:06:07Z'", Kind.STRING, TimeEncoding.ISO),
                time_expression("'2026-01-01T05:06:07+02:00'", Kind.STRING, TimeEncoding.ISO),
                time_expression("'soon'", Kind.STRING, TimeEncoding.ISO),
                time_expression("'soon'", Kind.STRING, TimeEncoding.EPOCH_MILLIS),
                time_expression("'9e99'", Kind.NUMBER_TEXT, TimeEncoding.EPOCH_SECONDS),
            ]
        )
    ).first()
    assert row is not None
    at = datetime(2026, 1, 1, tzinfo=UTC)
    found = [value.astimezone(UTC) if value is not None else None for value in row]
    assert found == [
        at,
        at.replace(microsecond=123_000),
        at.replace(microsecond=500_000),
        at,
        at.replace(hour=5, minute=6, second=7),
        at.replace(hour=3, minute=6, second=7),
        None,
        None,
        None,
    ]


def _spec_of(warehouse: LocalWarehouse) -> list[tuple[str, str]]:
    table = local_catalog(warehouse.path, warehouse.catalog).load_table(TABLE)
    return [(str(f.transform), str(table.schema().find_column_name(f.source_id))) for f in table.spec().fields]


def test_a_table_partitioned_by_day_of_an_epoch_attribute_with_maps_as_json_and_repartitioned_on_request(
    warehouse: LocalWarehouse, tmp_path: Path
) -> None:
    series = History(tmp_path, seed=71, items=80, writes_per_hour=250)
    series.add_windows(2)
    spec = ("day(created_at, epoch_millis)", "bucket(4, customer_id)")
    keys = series.table.key_attributes
    warehouse.sync(series.source, TABLE, key_attributes=keys, partition_by=spec, maps="json")
    assert _spec_of(warehouse) == [("day", "_ddb_created_at_time"), ("bucket[4]", "customer_id")]
    layout = warehouse.table(TABLE).layout()
    assert layout is not None and layout.columns_of("shipping")[0].type.kind is Kind.JSON
    series.add_windows(2)
    warehouse.sync(series.source, TABLE)
    assert warehouse.items(TABLE) == series.truth(4)
    times = warehouse.spark.sql(f"SELECT created_at, _ddb_created_at_time FROM {warehouse.catalog}.{TABLE}").collect()
    assert times and all(row[1].astimezone(UTC) == EPOCH + timedelta(milliseconds=row[0]) for row in times)
    days = warehouse.spark.sql(f"SELECT DISTINCT partition FROM {warehouse.catalog}.{TABLE}.files").count()
    assert days >= 2, "the files are not partitioned by day"

    # A sync never changes the spec: one that asks for another is refused before it writes anything.
    snapshot = warehouse.table(TABLE).current_snapshot_id()
    series.add_windows(1)
    with pytest.raises(SyncError, match="never changes a table's partitioning") as refused:
        warehouse.sync(series.source, TABLE, partition_by=("month(created_at, epoch_millis)",))
    assert refused.value.fixes == (Fix.REPARTITION,)  # worded by each surface: the CLI's command, Dagster's job
    with pytest.raises(SyncError, match="maps"):
        warehouse.sync(series.source, TABLE, maps="columns")
    assert warehouse.table(TABLE).current_snapshot_id() == snapshot

    result = repartition_table(warehouse.spark, warehouse.catalog, TABLE, ("status", "month(created_at, epoch_millis)"))
    assert result.before == "day(created_at, epoch_millis), bucket(4, customer_id)"
    assert _spec_of(warehouse) == [("identity", "status"), ("month", "_ddb_created_at_time")]
    again = repartition_table(warehouse.spark, warehouse.catalog, TABLE, ("status", "month(created_at, epoch_millis)"))
    assert "nothing changed" in again.describe()
    synced = warehouse.sync(series.source, TABLE)
    assert synced.changed and not synced.warnings and warehouse.items(TABLE) == series.truth(5)
    assert _spec_of(warehouse) == [("identity", "status"), ("month", "_ddb_created_at_time")]


def test_a_table_of_the_default_layout_repartitioned_by_day_gets_its_time_column_filled(
    warehouse: LocalWarehouse, tmp_path: Path
) -> None:
    series = History(tmp_path, seed=72, items=40, writes_per_hour=50)
    keys = series.table.key_attributes
    # A spec the table cannot have is refused before anything is made.
    with pytest.raises(SyncError, match="no item has had yet"):
        warehouse.sync(series.source, TABLE, key_attributes=keys, partition_by=("day(shipped_at, iso)",))
    with pytest.raises(SyncError, match="column shipping holds struct values"):
        warehouse.sync(series.source, TABLE, key_attributes=keys, partition_by=("shipping",))
    assert not warehouse.table(TABLE).exists()

    series.add_windows(1)
    warehouse.sync(series.source, TABLE, key_attributes=keys)
    assert _spec_of(warehouse) == [("bucket[1]", "customer_id")]
    result = repartition_table(warehouse.spark, warehouse.catalog, TABLE, ("day(created_at, epoch_millis)",))
    assert result.time_columns_added == ["_ddb_created_at_time"] and result.rows_given_times == len(series.truth(1))
    assert _spec_of(warehouse) == [("day", "_ddb_created_at_time")]
    series.add_windows(1)
    warehouse.sync(series.source, TABLE)
    assert warehouse.items(TABLE) == series.truth(2)
    times = warehouse.spark.sql(f"SELECT created_at, _ddb_created_at_time FROM {warehouse.catalog}.{TABLE}").collect()
    assert times and all(row[1].astimezone(UTC) == EPOCH + timedelta(milliseconds=row[0]) for row in times)
