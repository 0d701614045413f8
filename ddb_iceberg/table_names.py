"""How one table's Dagster definitions are named, so that many tables can live side by side in one code location.

The single-table default has no prefix: its asset keys (`ddb_iceberg_table`), resource keys (`exporter`), jobs
(`sync_window_job`) and schedules (`sync_each_window`) keep the names users and schedules already rely on. A
table named `orders` gets `orders/ddb_iceberg_table`, `orders__exporter`, `orders__sync_window_job` and
`orders__sync_each_window`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import dagster as dg

from ddb_iceberg.errors import SettingError
from ddb_iceberg.resources import ExporterResource, IcebergTableResource, MergeRunnerResource

FULL_EXPORT = "ddb_full_export"
INCREMENTAL_EXPORT = "ddb_incremental_export"
ICEBERG_TABLE = "ddb_iceberg_table"
CHANGE_FEED = "ddb_change_feed"
ITEM_HISTORY = "ddb_item_history"
TABLE_MAINTENANCE = "ddb_iceberg_table_maintenance"

EXPORTER, MERGE_RUNNER, TABLE = "exporter", "merge_runner", "table"
ROLES = (EXPORTER, MERGE_RUNNER, TABLE)

EXPORTS_GROUP = "dynamodb_exports"
TABLE_GROUP = "iceberg"

# Dagster's own rule for resource keys, job names and op names, which the prefix becomes part of.
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class TableNames:
    """The names of one table's assets, resources, jobs and schedules; no prefix for the single-table default."""

    prefix: str = ""

    def __post_init__(self) -> None:
        if self.prefix and not _NAME.match(self.prefix):
            raise SettingError(
                f"name {self.prefix!r} is not letters, digits and underscores starting with a letter or underscore "
                "(it prefixes the table's asset keys, jobs and resource keys)"
            )

    def asset_key(self, name: str) -> dg.AssetKey:
        return dg.AssetKey([self.prefix, name] if self.prefix else [name])

    @property
    def key_prefix(self) -> list[str] | None:
        return [self.prefix] if self.prefix else None

    def qualified(self, name: str) -> str:
        """A resource key, job name or schedule name of this table."""
        return f"{self.prefix}__{name}" if self.prefix else name

    @property
    def exports_group(self) -> str:
        return f"{self.prefix}_{EXPORTS_GROUP}" if self.prefix else EXPORTS_GROUP

    @property
    def table_group(self) -> str:
        return f"{self.prefix}_{TABLE_GROUP}" if self.prefix else TABLE_GROUP

    @property
    def resource_keys(self) -> dict[str, str]:
        """The resource key of each role (exporter, merge_runner, table)."""
        return {role: self.qualified(role) for role in ROLES}

    # `context` is an asset's or a check's execution context: both hold the resources they declared. Dagster
    # injects a typed resource by its parameter's name, one name per code location; a table's resources have
    # keys of their own (`orders__table`), so they are looked up here, once, by key and checked by type.
    def exporter(self, context: Any) -> ExporterResource:
        resource = self._resource(context, EXPORTER)
        if isinstance(resource, ExporterResource):
            return resource
        raise self._not_a(ExporterResource, EXPORTER, resource)

    def merge_runner(self, context: Any) -> MergeRunnerResource:
        resource = self._resource(context, MERGE_RUNNER)
        if isinstance(resource, MergeRunnerResource):
            return resource
        raise self._not_a(MergeRunnerResource, MERGE_RUNNER, resource)

    def table(self, context: Any) -> IcebergTableResource:
        resource = self._resource(context, TABLE)
        if isinstance(resource, IcebergTableResource):
            return resource
        raise self._not_a(IcebergTableResource, TABLE, resource)

    def _resource(self, context: Any, role: str) -> object:
        return getattr(context.resources, self.qualified(role))

    def _not_a(self, kind: type, role: str, resource: object) -> SettingError:
        return SettingError(f"resource {self.qualified(role)!r} is a {type(resource).__name__}, not a {kind.__name__}")


DEFAULT_NAMES = TableNames()
