"""Reading the Iceberg table without Spark, through PyIceberg: for checks and metadata."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import dagster as dg
from pydantic import Field

from ddb_iceberg.catalog_access import TableStatus, ledger_history, local_catalog, table_status
from ddb_iceberg.engine.ledger import LedgerEntry
from ddb_iceberg.engine.spark_session import CATALOG_NAME


class IcebergCatalogResource(dg.ConfigurableResource, ABC):  # type: ignore[type-arg]
    """The catalog that holds the table, as PyIceberg sees it."""

    @abstractmethod
    def load_catalog(self) -> Any:
        """A PyIceberg catalog."""

    def status(self, table: str) -> TableStatus:
        return table_status(self.load_catalog(), table)

    def ledger(self, table: str) -> LedgerEntry | None:
        """The ledger entry that says what the table reflects (None for a table with no sync yet)."""
        history = ledger_history(self.load_catalog().load_table(table))
        return history[0] if history else None

    def table_exists(self, table: str) -> bool:
        try:
            return bool(self.load_catalog().table_exists(table))
        except FileNotFoundError:
            return False


class LocalIcebergCatalog(IcebergCatalogResource):
    """The local SQL catalog in <warehouse>/catalog.db."""

    warehouse: str = Field(default=".ddb_iceberg/local/warehouse", description="Local warehouse directory.")
    catalog_name: str = Field(default=CATALOG_NAME, description="Catalog name the tables were written under.")

    def load_catalog(self) -> Any:
        return local_catalog(self.warehouse, self.catalog_name)


class GlueIcebergCatalog(IcebergCatalogResource):
    """The AWS Glue Data Catalog (what Athena queries)."""

    region: str | None = Field(default=None, description="AWS Region.")
    glue_endpoint: str | None = Field(default=None, description="Endpoint override (local stand-ins only).")
    s3_endpoint: str | None = Field(default=None, description="Endpoint override (local stand-ins only).")

    def load_catalog(self) -> Any:
        from pyiceberg.catalog.glue import GlueCatalog

        properties = {
            key: value
            for key, value in {
                "glue.region": self.region,
                "client.region": self.region,
                "glue.endpoint": self.glue_endpoint,
                "s3.endpoint": self.s3_endpoint,
            }.items()
            if value
        }
        return GlueCatalog(CATALOG_NAME, **properties)  # type: ignore[arg-type]
