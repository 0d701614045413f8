"""The Iceberg table as a resource: its identifier, its catalog and warehouse, and how a new one is laid out.

It is the table's one home: assets build their requests from it, merge runners write the catalog it names,
checks read it through PyIceberg (no JVM). Settings are checked when the resource is made, before any run
(values from `dg.EnvVar` when a run starts, before Spark does).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime
from typing import Any

import dagster as dg
from pydantic import Field, field_validator

from ddb_iceberg.catalog_access import TableStatus, ledger_history, local_catalog, table_status
from ddb_iceberg.engine.ledger import LedgerEntry
from ddb_iceberg.engine.partitioning import PartitionSpec
from ddb_iceberg.engine.request import (
    SyncRequest,
    UpkeepRequest,
    UpkeepSettings,
    check_buckets,
    check_key_attributes,
    check_maps,
    feed_identifier,
    history_identifier,
    parse_table_identifier,
)
from ddb_iceberg.engine.spark_session import CATALOG_NAME, CatalogKind, CatalogSettings, check_glue_warehouse
from ddb_iceberg.errors import SettingError
from ddb_iceberg.exports import ExportSource

DEFAULT_TABLE = "dynamodb.orders"
DEFAULT_LOCAL_WAREHOUSE = ".ddb_iceberg/local/warehouse"


class IcebergTableResource(dg.ConfigurableResource, ABC):  # type: ignore[type-arg]
    """The Iceberg table kept equal to the DynamoDB table: where it lives and how a new one is laid out."""

    identifier: str = Field(default=DEFAULT_TABLE, description="The Iceberg table, <namespace>.<table>.")
    key_attributes: list[str] = Field(
        default_factory=list,
        description="The DynamoDB table's key attributes, partition key first (default: from the incremental "
        "exports' Keys).",
    )
    buckets: int | None = Field(
        default=None,
        description="For a new table: buckets of the partition key (0: not partitioned; default: one per 512 MB "
        "of the full export).",
    )
    table_properties: dict[str, str] = Field(
        default_factory=dict, description="For a new table: Iceberg table properties over the defaults."
    )
    catalog_name: str = Field(default=CATALOG_NAME, description="The catalog's name in Spark and PyIceberg.")
    change_feed: bool = Field(
        default=False,
        description="Also keep the change feed <identifier>__changes: one row per key per applied export, with the "
        "operation and the item before and after (the asset ddb_change_feed).",
    )
    partition_by: list[str] = Field(
        default_factory=list,
        description="For a new table: its partition fields, each ATTRIBUTE, bucket(N, ATTRIBUTE) or "
        "year|month|day|hour(ATTRIBUTE, epoch_seconds|epoch_millis|iso) (default: buckets of the partition key). "
        "A sync never changes an existing table's: the repartition job does (upkeep that partitions the table anew "
        "by these fields first), or `ddb-iceberg repartition`.",
    )
    maps: str | None = Field(
        default=None,
        description="For a new table: each map attribute as a struct column (columns, the default) or as one "
        "DynamoDB JSON text column (json).",
    )
    history: bool = Field(
        default=False,
        description="Also keep the item history <identifier>__history (SCD type 2): one row per version of each "
        "item, valid from the end of the window that made it to the end of the one that changed it (the asset "
        "ddb_item_history). Built from the change feed, which it turns on.",
    )

    # `before`: pydantic turns a `dg.EnvVar` into a plain string, and the variable's value is checked when the
    # resource is made again for a run (before Spark starts).
    @field_validator("identifier", mode="before")
    @classmethod
    def _identifier(cls, value: object) -> object:
        if isinstance(value, str) and not isinstance(value, dg.EnvVar):
            parse_table_identifier(value, "identifier")
        return value

    @field_validator("key_attributes")
    @classmethod
    def _key_attributes(cls, value: list[str]) -> list[str]:
        check_key_attributes(value)
        return value

    @field_validator("partition_by")
    @classmethod
    def _partition_by(cls, value: list[str]) -> list[str]:
        PartitionSpec.parse(value)
        return value

    @field_validator("maps")
    @classmethod
    def _maps(cls, value: str | None) -> str | None:
        check_maps(value)
        return value

    @field_validator("buckets")
    @classmethod
    def _buckets(cls, value: int | None) -> int | None:
        check_buckets(value)
        return value

    @abstractmethod
    def catalog_settings(self) -> CatalogSettings:
        """The catalog as the Spark job registers it."""

    @abstractmethod
    def load_catalog(self) -> Any:
        """The catalog as PyIceberg reads it."""

    def sync_request(
        self, source: ExportSource, *, up_to: datetime | None, allow_gaps: bool = False, rebaseline: bool = False
    ) -> SyncRequest:
        """A sync of this table from the exports under `source`."""
        s3 = source.s3
        return SyncRequest(
            table=self.identifier,
            source=source.uri,
            key_attributes=tuple(self.key_attributes),
            allow_gaps=allow_gaps,
            rebaseline=rebaseline,
            change_feed=self.change_feed,
            history=self.history,
            partition_by=tuple(self.partition_by),
            maps=self.maps,
            up_to=up_to,
            buckets=self.buckets,
            table_properties=tuple(sorted(self.table_properties.items())),
            s3_region=s3.region if s3 else None,
            s3_endpoint_url=s3.endpoint_url if s3 else None,
        )

    def upkeep_request(self, settings: UpkeepSettings, *, repartition: bool = False) -> UpkeepRequest:
        """Upkeep of this table; with `repartition`, partitioning it anew by `partition_by` first."""
        if repartition and not self.partition_by:
            raise SettingError(
                f"a repartition of {self.identifier} needs the fields to partition it by: set the table resource's "
                "partition_by"
            )
        return UpkeepRequest(
            table=self.identifier, settings=settings, partition_by=tuple(self.partition_by) if repartition else ()
        )

    def load(self) -> Any:
        """The table as PyIceberg reads it."""
        return self.load_catalog().load_table(self.identifier)

    def load_change_feed(self) -> Any:
        """The table's change feed as PyIceberg reads it."""
        return self.load_catalog().load_table(feed_identifier(self.identifier))

    def load_history(self) -> Any:
        """The table's item history as PyIceberg reads it."""
        return self.load_catalog().load_table(history_identifier(self.identifier))

    @property
    def keeps_feed(self) -> bool:
        """Whether its syncs write the change feed (asked for, or needed by the item history)."""
        return self.change_feed or self.history

    def status(self) -> TableStatus:
        return table_status(self.load_catalog(), self.identifier)

    def ledger_history(self) -> list[LedgerEntry]:
        """The ledger entries that describe the table's current snapshot, newest first (as far as expiry left them)."""
        return ledger_history(self.load())

    def ledger(self) -> LedgerEntry | None:
        """The ledger entry that says what the table reflects (None for a table with no sync yet)."""
        history = self.ledger_history()
        return history[0] if history else None

    def exists(self) -> bool:
        try:
            return bool(self.load_catalog().table_exists(self.identifier))
        except FileNotFoundError:
            return False


class LocalIcebergTable(IcebergTableResource):
    """The table in the local SQL catalog, <warehouse>/catalog.db (the embedded default)."""

    warehouse: str = Field(default=DEFAULT_LOCAL_WAREHOUSE, description="Local warehouse directory.")

    def catalog_settings(self) -> CatalogSettings:
        return CatalogSettings(warehouse=self.warehouse, kind=CatalogKind.LOCAL, name=self.catalog_name)

    def load_catalog(self) -> Any:
        return local_catalog(self.warehouse, self.catalog_name)


class GlueIcebergTable(IcebergTableResource):
    """The table in the AWS Glue Data Catalog (what Athena queries), its files under an s3:// warehouse."""

    warehouse: str = Field(description="s3:// warehouse of the Glue catalog's tables.")
    region: str | None = Field(default=None, description="AWS Region (default: AWS's chain).")
    glue_endpoint: str | None = Field(default=None, description="Endpoint override (local stand-ins only).")
    s3_endpoint: str | None = Field(default=None, description="Endpoint override (local stand-ins only).")

    @field_validator("warehouse", mode="before")
    @classmethod
    def _warehouse(cls, value: object) -> object:
        if isinstance(value, str) and not isinstance(value, dg.EnvVar):
            check_glue_warehouse(value)
        return value

    def catalog_settings(self) -> CatalogSettings:
        return CatalogSettings(
            warehouse=self.warehouse,
            kind=CatalogKind.GLUE,
            name=self.catalog_name,
            region=self.region,
            s3_endpoint=self.s3_endpoint,
            glue_endpoint=self.glue_endpoint,
        )

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
        return GlueCatalog(self.catalog_name, **properties)  # type: ignore[arg-type]
