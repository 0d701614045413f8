"""Merge runners: run the Spark merge locally (`LocalSparkMergeRunner`) or on EMR Serverless (its own module)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

import dagster as dg
from dagster_pyspark import LazyPySparkResource
from pydantic import Field

from ddb_iceberg.engine.request import SyncRequest, UpkeepRequest
from ddb_iceberg.engine.spark_session import (
    CatalogSettings,
    SparkSettings,
    check_java,
    prepare_local_environment,
)
from ddb_iceberg.engine.sync import SyncResult, sync_table
from ddb_iceberg.engine.upkeep import UpkeepResult, maintain_table
from ddb_iceberg.resources.table import IcebergTableResource

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


class MergeRunnerResource(dg.ConfigurableResource, ABC):  # type: ignore[type-arg]
    """Runs the Spark job that syncs or maintains a table, in the catalog the table resource names."""

    @abstractmethod
    def sync(self, context: dg.AssetExecutionContext, table: IcebergTableResource, request: SyncRequest) -> SyncResult:
        """Apply what `table` lacks of the exports the request names, in one commit (see `engine.sync`)."""

    @abstractmethod
    def maintain(
        self, context: dg.AssetExecutionContext, table: IcebergTableResource, request: UpkeepRequest
    ) -> UpkeepResult:
        """Compact the table, expire old snapshots and tags, remove orphan files (see `engine.upkeep`)."""


def local_spark_config(**overrides: str) -> dict[str, str]:
    """The Spark configuration of a local session (each table's catalog is registered when it is synced)."""
    settings = SparkSettings()
    return {"spark.master": settings.master, "spark.app.name": "ddb-iceberg"} | settings.spark_conf() | overrides


class LocalSparkMergeRunner(MergeRunnerResource):
    """The embedded default: PySpark in this process (local[*]), writing the catalog the table resource names."""

    spark: LazyPySparkResource = Field(
        default_factory=lambda: LazyPySparkResource(spark_config=local_spark_config()),
        description="dagster-pyspark's session resource (default: local_spark_config's local session).",
    )

    def sync(self, context: dg.AssetExecutionContext, table: IcebergTableResource, request: SyncRequest) -> SyncResult:
        catalog = table.catalog_settings()
        return sync_table(self._session(catalog), catalog.name, request, log=context.log.info)

    def maintain(
        self, context: dg.AssetExecutionContext, table: IcebergTableResource, request: UpkeepRequest
    ) -> UpkeepResult:
        catalog = table.catalog_settings()
        return maintain_table(self._session(catalog), catalog.name, request, log=context.log.info)

    def _session(self, catalog: CatalogSettings) -> SparkSession:
        check_java()
        prepare_local_environment()
        session: SparkSession = self.spark.spark_session
        # A session that already existed keeps its static settings; the catalog is a runtime setting.
        for key, value in catalog.spark_conf().items():
            session.conf.set(key, value)
        return session
