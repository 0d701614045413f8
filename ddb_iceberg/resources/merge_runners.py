"""Merge runners: run the Spark merge locally (`LocalSparkMergeRunner`) or on EMR Serverless."""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime
from typing import Any

import dagster as dg
from dagster_pyspark import LazyPySparkResource
from pydantic import Field

from ddb_iceberg.engine.spark_session import CATALOG_NAME, CatalogSettings, SparkSettings, check_java
from ddb_iceberg.engine.sync import SyncResult, sync_table
from ddb_iceberg.exports import ExportSource


class MergeRunnerResource(dg.ConfigurableResource, ABC):  # type: ignore[type-arg]
    """Brings the Iceberg table up to date with the exports under a source, in one Spark job and one commit."""

    table: str = Field(default="dynamodb.orders", description="The Iceberg table, <namespace>.<table>.")
    key_attributes: list[str] = Field(
        default_factory=list, description="Key attributes (default: from the incremental exports' Keys)."
    )

    @abstractmethod
    def sync(self, source_uri: str, *, up_to: datetime | None, allow_gaps: bool, log: Any) -> SyncResult:
        """Apply what the table lacks of the exports under `source_uri` that end no later than `up_to`."""


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

    def sync(self, source_uri: str, *, up_to: datetime | None, allow_gaps: bool, log: Any) -> SyncResult:
        check_java()
        session = self.spark.spark_session
        # A session that already existed keeps its static settings; the catalog is a runtime setting.
        for key, value in CatalogSettings(warehouse=self.warehouse, name=self.catalog_name).spark_conf().items():
            session.conf.set(key, value)
        return sync_table(
            session,
            self.catalog_name,
            self.table,
            ExportSource.from_uri(source_uri),
            key_attributes=tuple(self.key_attributes) or None,
            allow_gaps=allow_gaps,
            up_to=up_to,
            log=log.info,
        )


class EmrServerlessMergeRunner(MergeRunnerResource):
    """Runs the same Spark job on Amazon EMR Serverless, writing the table in the AWS Glue Data Catalog."""

    application_id: str = Field(description="EMR Serverless application id.")
    execution_role_arn: str = Field(description="Role the job runs as.")
    code_location: str = Field(description="s3:// prefix the job's entry point and package are uploaded to.")
    log_location: str = Field(description="s3:// prefix for the driver and executor logs.")
    warehouse: str = Field(description="s3:// warehouse of the Glue catalog's tables.")
    region: str | None = Field(default=None, description="AWS Region.")
    release_label: str = Field(default="emr-spark-8.1.0", description="EMR release (Spark 4.1, Iceberg 1.11).")
    driver_cores: int = Field(default=2)
    driver_memory: str = Field(default="4g")
    executor_cores: int = Field(default=2)
    executor_memory: str = Field(default="4g")

    def sync(self, source_uri: str, *, up_to: datetime | None, allow_gaps: bool, log: Any) -> SyncResult:
        raise dg.Failure(
            "EmrServerlessMergeRunner cannot run jobs yet: its submission through PipesEMRServerlessClient is the "
            "next step of the AWS path. Use LocalSparkMergeRunner (DDB_ICEBERG_ENV=local)."
        )
