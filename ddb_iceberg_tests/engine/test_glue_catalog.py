"""The production catalog path: the merge writes an Iceberg table through Glue and S3 (moto on loopback)."""

from __future__ import annotations

import itertools
from datetime import timedelta
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from ddb_iceberg.catalog_access import table_items
from ddb_iceberg.engine.rows import canonical_item
from ddb_iceberg.engine.spark_session import CatalogSettings, configure_catalog
from ddb_iceberg.engine.sync import sync_table
from ddb_iceberg.exports import ExportSource
from ddb_iceberg.resources import GlueIcebergCatalog
from ddb_iceberg.simulator import ExportTarget, SimulatedTable, SimulationConfig, write_series
from ddb_iceberg_tests.helpers import MOTO_CREDENTIALS, MOTO_REGION, MotoServer

_names = itertools.count()


def test_sync_into_glue_and_s3_then_read_back_through_glue(
    spark: SparkSession, moto_server: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    number = next(_names)
    database, bucket = f"glue_db_{number}", f"glue-warehouse-{number}"
    moto_server.client("s3").create_bucket(Bucket=bucket)
    moto_server.client("glue").create_database(DatabaseInput={"Name": database})
    catalog = CatalogSettings(
        warehouse=f"s3://{bucket}/warehouse",
        kind="glue",
        name=f"glue_catalog_{number}",
        region=MOTO_REGION,
        s3_endpoint=moto_server.endpoint_url,
        glue_endpoint=moto_server.endpoint_url,
    )
    configure_catalog(spark, catalog)
    table = SimulatedTable(SimulationConfig(seed=21, initial_items=80))
    write_series(table, ExportTarget.for_source(ExportSource.from_uri(str(tmp_path / "exports"))), windows=2)

    result = sync_table(spark, catalog.name, f"{database}.orders", ExportSource.from_uri(str(tmp_path / "exports")))
    assert result.reflects == "2026-01-01T02:00:00.000Z"
    glue_table = moto_server.client("glue").get_table(DatabaseName=database, Name="orders")["Table"]
    assert glue_table["Parameters"]["table_type"].upper() == "ICEBERG"
    assert glue_table["Parameters"]["metadata_location"].startswith(f"s3://{bucket}/warehouse/{database}.db/orders/")

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", MOTO_CREDENTIALS["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", MOTO_CREDENTIALS["aws_secret_access_key"])
    monkeypatch.setenv("AWS_REGION", MOTO_REGION)
    reader = GlueIcebergCatalog(
        region=MOTO_REGION, glue_endpoint=moto_server.endpoint_url, s3_endpoint=moto_server.endpoint_url
    )
    truth = table.state_at(table.config.start + timedelta(hours=2))
    assert table_items(reader.load_catalog(), f"{database}.orders") == {k: canonical_item(v) for k, v in truth.items()}
    assert reader.status(f"{database}.orders").tags == ["ddb-20260101T020000Z"]
