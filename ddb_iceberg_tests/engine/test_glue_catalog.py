"""The production catalog path: the merge writes an Iceberg table through Glue and S3 (moto on loopback)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from ddb_iceberg.catalog_access import table_items
from ddb_iceberg.engine.ledger import LAYOUT_PROPERTY
from ddb_iceberg.engine.naming import MAX_NAME_LENGTH
from ddb_iceberg.engine.request import SyncRequest
from ddb_iceberg.engine.rows import canonical_item
from ddb_iceberg.engine.schema import GLUE_TYPE_MAX_LENGTH, Kind, Layout, glue_type_string
from ddb_iceberg.engine.spark_session import CatalogKind, CatalogSettings, configure_catalog
from ddb_iceberg.engine.spark_types import doc
from ddb_iceberg.engine.sync import sync_table
from ddb_iceberg.exports import ExportSource, ExportView
from ddb_iceberg.resources import GlueIcebergTable
from ddb_iceberg.simulator import (
    ExportTarget,
    SimulatedTable,
    SimulationConfig,
    write_full_export,
    write_incremental_export,
    write_series,
)
from ddb_iceberg_tests.helpers import MOTO_CREDENTIALS, MOTO_REGION, MotoServer

_names = itertools.count()


def _glue_catalog(spark: SparkSession, moto_server: MotoServer) -> tuple[CatalogSettings, str]:
    """A Glue catalog of its own (database and warehouse bucket) on the suite's moto server, registered in Spark."""
    number = next(_names)
    database, bucket = f"glue_db_{number}", f"glue-warehouse-{number}"
    moto_server.client("s3").create_bucket(Bucket=bucket)
    moto_server.client("glue").create_database(DatabaseInput={"Name": database})
    catalog = CatalogSettings(
        warehouse=f"s3://{bucket}/warehouse",
        kind=CatalogKind.GLUE,
        name=f"glue_catalog_{number}",
        region=MOTO_REGION,
        s3_endpoint=moto_server.endpoint_url,
        glue_endpoint=moto_server.endpoint_url,
    )
    configure_catalog(spark, catalog)
    return catalog, database


def _reader(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch, identifier: str) -> GlueIcebergTable:
    """The Glue table as the checks and `status` read it, through PyIceberg."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", MOTO_CREDENTIALS["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", MOTO_CREDENTIALS["aws_secret_access_key"])
    monkeypatch.setenv("AWS_REGION", MOTO_REGION)
    return GlueIcebergTable(
        identifier=identifier,
        warehouse="s3://unused",
        region=MOTO_REGION,
        glue_endpoint=moto_server.endpoint_url,
        s3_endpoint=moto_server.endpoint_url,
    )


def test_sync_into_glue_and_s3_then_read_back_through_glue(
    spark: SparkSession, moto_server: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog, database = _glue_catalog(spark, moto_server)
    bucket = catalog.warehouse.split("/")[2]
    table = SimulatedTable(SimulationConfig(seed=21, initial_items=80))
    write_series(table, ExportTarget.for_source(ExportSource.from_uri(str(tmp_path / "exports"))), windows=2)

    result = sync_table(spark, catalog.name, SyncRequest(table=f"{database}.orders", source=str(tmp_path / "exports")))
    assert result.reflects == "2026-01-01T02:00:00.000Z"
    glue_table = moto_server.client("glue").get_table(DatabaseName=database, Name="orders")["Table"]
    assert glue_table["Parameters"]["table_type"].upper() == "ICEBERG"
    assert glue_table["Parameters"]["metadata_location"].startswith(f"s3://{bucket}/warehouse/{database}.db/orders/")

    reader = _reader(moto_server, monkeypatch, f"{database}.orders")
    truth = table.state_at(table.config.start + timedelta(hours=2))
    assert table_items(reader.load_catalog(), f"{database}.orders") == {k: canonical_item(v) for k, v in truth.items()}
    assert reader.status().tags == ["ddb-20260101T020000Z"]
    # Every kind of column (decimal, nested struct, array of struct, timestamp, binary...) has in Glue exactly the
    # type string the engine computes to keep within Glue's limit.
    layout = Layout.from_json(reader.load_catalog().load_table(f"{database}.orders").properties[LAYOUT_PROPERTY])
    assert {c.type.kind for c in layout.columns} >= {Kind.DECIMAL, Kind.STRUCT, Kind.LIST, Kind.TIMESTAMP, Kind.BINARY}
    _assert_glue_holds_the_layout(moto_server, database, layout)


# Attribute names DynamoDB allows (up to 64 KB) that no Glue column name or comment can hold as they are.
LONG = "attribute " + "n" * 300
LONG_TOO = LONG + " too"  # the same first 255 characters of column name: one of them takes a suffix
MULTILINE = "first line\nsecond line\t" + "m" * 300
EMOJI = "😀" * 100  # 100 characters, 200 UTF-16 units, 400 bytes
T0 = datetime(2026, 4, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
# Map keys of 240-odd characters: a struct field costs about 250 characters of its column's Glue type string,
# so some 525 keys fill the 131,072 characters.
KEYS_PER_ITEM = 30
_Write = tuple[datetime, dict[str, Any] | None, tuple[Any, ...]]  # a scripted write: time, item, key


def _map_key(number: int) -> str:
    return f"key {number:05d} " + "k" * 230


def _wide_map(item: int, value: Any) -> dict[str, Any]:
    return {_map_key(n): value for n in range(item * KEYS_PER_ITEM, (item + 1) * KEYS_PER_ITEM)}


def _glue_columns(moto_server: MotoServer, database: str) -> dict[str, dict[str, Any]]:
    table = moto_server.client("glue").get_table(DatabaseName=database, Name="orders")["Table"]
    return {column["Name"]: column for column in table["StorageDescriptor"]["Columns"]}


def _assert_glue_holds_the_layout(moto_server: MotoServer, database: str, layout: Layout) -> None:
    """Glue has each column with the type string computed here and a comment within its limits."""
    columns = _glue_columns(moto_server, database)
    assert list(columns) == [column.name for column in layout.columns]
    for column in layout.columns:
        assert 1 <= len(column.name) <= MAX_NAME_LENGTH
        assert columns[column.name]["Type"] == glue_type_string(column.type)
        assert columns[column.name]["Comment"] == doc(column)
        assert len(doc(column).encode()) <= 255 and "\n" not in doc(column)


def test_long_attribute_names_and_wide_maps_stay_within_glues_limits(
    spark: SparkSession, moto_server: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Glue refuses a column comment over 255 and a type string over 131,072 (the suite's moto server enforces
    both, `GlueTableLimits`): long attribute names get cut docs, a map too wide for a struct is JSON text, and a
    struct grows up to the limit and no further, the rest of its values in its fallback column."""
    catalog, database = _glue_catalog(spark, moto_server)
    identifier = f"{database}.orders"
    items = [
        {
            "pk": f"item-{n:02d}",
            LONG: "long" if n else Decimal(7),  # one N among S values: a fallback column of the 255-character name
            LONG_TOO: "too",
            MULTILINE: "multi",
            EMOJI: "emoji",
            "wide": _wide_map(n, "v"),  # 600 keys in all: its struct would pass the limit
            "grows": {"first": "1"},
        }
        for n in range(20)
    ]
    before: list[_Write] = [(T0 - timedelta(minutes=30 - n), item, (item["pk"],)) for n, item in enumerate(items)]
    # Then 600 new keys for `grows`: about 525 fit its struct, the values of items with the others go to grows__m.
    after: list[_Write] = [
        (T0 + timedelta(minutes=n + 1), item | {"grows": {"first": "2", **_wide_map(n, Decimal(n))}}, (item["pk"],))
        for n, item in enumerate(items)
    ]
    table = SimulatedTable.scripted(("pk",), before + after)
    exports = tmp_path / "exports"
    target = ExportTarget.for_source(ExportSource.from_uri(str(exports)), partitions=2)
    write_full_export(table, target, T0)
    first = sync_table(spark, catalog.name, SyncRequest(table=identifier, source=str(exports), key_attributes=("pk",)))
    reader = _reader(moto_server, monkeypatch, identifier).load_catalog()
    layout = Layout.from_json(reader.load_table(identifier).properties[LAYOUT_PROPERTY])
    _assert_glue_holds_the_layout(moto_server, database, layout)
    wide = layout.columns_of("wide")[0]
    assert wide.type.kind is Kind.JSON and len(layout.columns_of("wide")) == 1  # the whole map as DynamoDB JSON
    long_names = [c.name for attribute in (LONG, LONG_TOO) for c in layout.columns_of(attribute)]
    assert [len(name) for name in long_names] == [255, 255, 255]  # LONG, its fallback for the N value, LONG_TOO
    assert long_names[1].endswith("__n") and long_names[2].endswith("_2")
    assert {c.attribute for c in layout.columns} >= {LONG, LONG_TOO, MULTILINE, EMOJI}  # the names, uncut
    assert doc(layout.columns_of(MULTILINE)[0]).startswith("first line\\nsecond line\t")
    assert first.type_drift and not any("grows" in line for line in first.type_drift)
    assert table_items(reader, identifier) == {key: canonical_item(item) for key, item in table.state_at(T0).items()}

    write_incremental_export(table, target, T0, T0 + HOUR, ExportView.NEW_IMAGE)
    second = sync_table(spark, catalog.name, SyncRequest(table=identifier, source=str(exports)))
    assert second.reflects == "2026-04-01T01:00:00.000Z"
    layout = Layout.from_json(reader.load_table(identifier).properties[LAYOUT_PROPERTY])
    _assert_glue_holds_the_layout(moto_server, database, layout)
    grows, grows_fallback = layout.columns_of("grows")
    type_length = len(glue_type_string(grows.type))
    # Filled up: one more field (a comma, its name, a colon, `bigint`) would not fit.
    assert GLUE_TYPE_MAX_LENGTH - len(",:bigint") - len(grows.type.fields[-1].name) < type_length
    assert type_length <= GLUE_TYPE_MAX_LENGTH and 500 < len(grows.type.fields) < 600
    assert grows_fallback.name == "grows__m" and grows_fallback.type.kind is Kind.JSON
    assert any("grows__m" in line for line in second.type_drift)

    truth = {key: canonical_item(item) for key, item in table.state_at(T0 + HOUR).items()}
    assert table_items(reader, identifier) == truth
