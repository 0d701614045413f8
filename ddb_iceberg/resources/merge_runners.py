"""Merge runners: run the Spark merge locally (`LocalSparkMergeRunner`) or on EMR Serverless (its own module)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime
from typing import TYPE_CHECKING

import dagster as dg
from dagster_pyspark import LazyPySparkResource
from pydantic import Field

from ddb_iceberg.engine.spark_session import (
    CATALOG_NAME,
    CatalogSettings,
    SparkSettings,
    check_java,
    prepare_local_environment,
)
from ddb_iceberg.engine.sync import SyncResult, sync_table
from ddb_iceberg.engine.upkeep import UpkeepResult, UpkeepSettings, maintain_table
from ddb_iceberg.exports import ExportSource

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


class MergeRunnerResource(dg.ConfigurableResource, ABC):  # type: ignore[type-arg]
    """Brings the Iceberg table up to date with the exports under a source, in one Spark job and one commit."""

    table: str = Field(default="dynamodb.orders", description="The Iceberg table, <namespace>.<table>.")
    key_attributes: list[str] = Field(
        default_factory=list, description="Key attributes (default: from the incremental exports' Keys)."
    )

    @abstractmethod
    def sync(
        self,
        context: dg.AssetExecutionContext,
        source_uri: str,
        *,
        up_to: datetime | None,
        allow_gaps: bool,
        rebaseline: bool = False,
    ) -> SyncResult:
        """Apply what the table lacks of the exports under `source_uri` that end no later than `up_to`
        (`rebaseline`: replace the table's rows with the latest full export first, see `engine.sync`)."""

    @abstractmethod
    def maintain(self, context: dg.AssetExecutionContext, settings: UpkeepSettings) -> UpkeepResult:
        """Compact the table, expire old snapshots and tags, remove orphan files (see `engine.upkeep`)."""


def local_spark_config(warehouse: str, catalog_name: str = CATALOG_NAME, **overrides: str) -> dict[str, str]:
    """The Spark configuration of a local session with the local Iceberg catalog."""
    settings = SparkSettings()
    catalog = CatalogSettings(warehouse=warehouse, name=catalog_name)
    return {"spark.master": settings.master, "spark.app.name": "ddb-iceberg"} | settings.spark_conf(catalog) | overrides


class LocalSparkMergeRunner(MergeRunnerResource):
    """The embedded default: PySpark in this process (local[*]) and the local SQL catalog."""

    warehouse: str = Field(default=".ddb_iceberg/local/warehouse", description="Local warehouse directory.")
    catalog_name: str = Field(default=CATALOG_NAME, description="Iceberg catalog name (Spark and PyIceberg).")
    spark: LazyPySparkResource = Field(description="dagster-pyspark's session resource; see local_spark_config.")

    def sync(
        self,
        context: dg.AssetExecutionContext,
        source_uri: str,
        *,
        up_to: datetime | None,
        allow_gaps: bool,
        rebaseline: bool = False,
    ) -> SyncResult:
        return sync_table(
            self._session(),
            self.catalog_name,
            self.table,
            ExportSource.from_uri(source_uri),
            key_attributes=tuple(self.key_attributes) or None,
            allow_gaps=allow_gaps,
            up_to=up_to,
            rebaseline=rebaseline,
            log=context.log.info,
        )

    def _session(self) -> SparkSession:
        check_java()
        prepare_local_environment()
        session: SparkSession = self.spark.spark_session
        # A session that already existed keeps its static settings; the catalog is a runtime setting.
        for key, value in CatalogSettings(warehouse=self.warehouse, name=self.catalog_name).spark_conf().items():
            session.conf.set(key, value)
        return session

    def maintain(self, context: dg.AssetExecutionContext, settings: UpkeepSettings) -> UpkeepResult:
        return maintain_table(self._session(), self.catalog_name, self.table, settings, log=context.log.info)
