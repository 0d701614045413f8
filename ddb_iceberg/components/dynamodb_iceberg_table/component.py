"""`DynamoDBIcebergTable`: one DynamoDB table kept equal in one Iceberg table, from one block of YAML.

The YAML resolves into the resources themselves (as dagster-sling's component resolves into `SlingResource`):
each `kind` below is the resource with a `kind` tag, so every setting, default, description and rule is the
resource's own, written once, and a value that cannot work is refused at its YAML attribute when the project
loads.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, TypeVar

import dagster as dg
from pydantic import Field, field_validator

from ddb_iceberg.assets.maintenance import TableMaintenanceConfig
from ddb_iceberg.components.dynamodb_iceberg_table.scaffolder import DynamoDBIcebergTableScaffolder
from ddb_iceberg.definitions import Deployment, build_definitions, live_simulation_start
from ddb_iceberg.engine.request import utc_moment
from ddb_iceberg.partitions import DEFAULT_WINDOW_MINUTES, window_cron
from ddb_iceberg.resources import (
    DynamoDBExporter,
    EmrServerlessMergeRunner,
    GlueIcebergTable,
    LocalIcebergTable,
    LocalSparkMergeRunner,
    SimulatedExporter,
)
from ddb_iceberg.table_names import TableNames

_Resource = TypeVar("_Resource", bound=dg.ConfigurableResource)  # type: ignore[type-arg]

# Where a table's local files go unless its YAML says otherwise, relative to the project root.
DEFAULT_LOCAL_ROOT = ".ddb_iceberg/tables"


class SimulatedSource(SimulatedExporter):
    """`kind: simulated`: a simulated table under traffic, exported into a local directory (no AWS account).
    `output_dir` defaults to .ddb_iceberg/tables/<name>/exports (each table needs a directory of its own); with
    `live: true` the table is written in real time since a day before its first use (recorded in
    simulation.json beside its exports; `start` is then ignored) and the schedule runs."""

    kind: Literal["simulated"] = "simulated"


class DynamoDBSource(DynamoDBExporter):
    """`kind: dynamodb`: a real DynamoDB table (point-in-time recovery on), exported to S3; each table needs a
    prefix of its own."""

    kind: Literal["dynamodb"] = "dynamodb"


class LocalTable(LocalIcebergTable):
    """`kind: local`: the table in a local SQL catalog (`warehouse` defaults to .ddb_iceberg/tables/warehouse;
    tables may share it)."""

    kind: Literal["local"] = "local"


class GlueTable(GlueIcebergTable):
    """`kind: glue`: the table in the AWS Glue Data Catalog, its files under an s3:// warehouse."""

    kind: Literal["glue"] = "glue"


class LocalMergeRunner(LocalSparkMergeRunner):
    """`kind: local`: Spark in the Dagster process (local[*])."""

    kind: Literal["local"] = "local"


class EmrServerlessRunner(EmrServerlessMergeRunner):
    """`kind: emr_serverless`: the merge as a job run on EMR Serverless (the table must be `kind: glue`)."""

    kind: Literal["emr_serverless"] = "emr_serverless"


class Upkeep(TableMaintenanceConfig):
    """When upkeep runs, and what it keeps: the maintenance job's settings."""

    cron: str = Field(default=Deployment.maintenance_cron, description="When maintain_table_daily ticks (UTC).")


@dg.scaffold_with(DynamoDBIcebergTableScaffolder)
class DynamoDBIcebergTable(dg.Component, dg.Resolvable, dg.Model):
    """Keeps one Iceberg table equal to one DynamoDB table, from its full and incremental exports.

    Builds the table's assets (`<name>/ddb_full_export`, `<name>/ddb_incremental_export`,
    `<name>/ddb_iceberg_table`, `<name>/ddb_iceberg_table_maintenance`), the checks on its Iceberg table, its
    jobs and schedules (`<name>__sync_window_job`, `<name>__sync_each_window`, ...) and its resources, bound
    under keys of its own (`<name>__exporter`, `<name>__merge_runner`, `<name>__table`).
    """

    name: str = Field(description="The table's name in Dagster: its asset key prefix, and its jobs' prefix.")
    source: SimulatedSource | DynamoDBSource = Field(
        default_factory=SimulatedSource, description="The DynamoDB table: `kind: simulated` or `kind: dynamodb`."
    )
    table: LocalTable | GlueTable = Field(
        default_factory=LocalTable,
        description="The Iceberg table: `kind: local` or `kind: glue`; its identifier defaults to dynamodb.<name>.",
    )
    merge_runner: LocalMergeRunner | EmrServerlessRunner = Field(
        default_factory=LocalMergeRunner, description="Where the merge runs: `kind: local` or `kind: emr_serverless`."
    )
    window_minutes: int = Field(
        default=DEFAULT_WINDOW_MINUTES, description="Length of an export window: 15 minutes to 24 hours."
    )
    lag_minutes: int = Field(
        default=Deployment.lag_minutes, ge=0, description="How long after a window closes its export starts."
    )
    partitions_start: str | None = Field(
        default=None,
        description="The first window's start (UTC; default: a simulated table's start, else 2026-01-01).",
    )
    upkeep: Upkeep = Field(default_factory=Upkeep, description="Table upkeep: its schedule and retentions.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        TableNames(value)
        return value

    @field_validator("window_minutes")
    @classmethod
    def _window(cls, value: int) -> int:
        window_cron(value)
        return value

    @field_validator("partitions_start")
    @classmethod
    def _start(cls, value: str | None) -> str | None:
        if value is not None:
            utc_moment(value)
        return value

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        upkeep = TableMaintenanceConfig(**self.upkeep.model_dump(exclude={"cron"}))
        return build_definitions(self.deployment(context.project_root), TableNames(self.name), upkeep)

    def deployment(self, project_root: Path) -> Deployment:
        """The table's windows and its resources, keyed by role; relative local paths from `project_root`."""
        source, live = self.source, isinstance(self.source, SimulatedSource) and self.source.live
        if isinstance(source, SimulatedSource):
            source = _with(source, output_dir=self._local(project_root, source, "output_dir", f"{self.name}/exports"))
        start = self.partitions_start or (
            source.start if isinstance(source, SimulatedSource) else Deployment.partitions_start.isoformat()
        )
        partitions_start = utc_moment(start)
        if isinstance(source, SimulatedSource) and live:
            partitions_start = live_simulation_start(
                Path(source.output_dir).parent, datetime.now(UTC), self.window_minutes
            )
            source = _with(source, start=partitions_start.isoformat())
        table = self.table
        if "identifier" not in table.model_fields_set:
            table = _with(table, identifier=f"dynamodb.{self.name}")
        if isinstance(table, LocalTable):
            table = _with(table, warehouse=self._local(project_root, table, "warehouse", "warehouse"))
        return Deployment(
            partitions_start=partitions_start,
            window_minutes=self.window_minutes,
            lag_minutes=self.lag_minutes,
            maintenance_cron=self.upkeep.cron,
            schedule_running=live,
            resources={"exporter": source, "merge_runner": self.merge_runner, "table": table},
        )

    @staticmethod
    def _local(project_root: Path, resource: dg.ConfigurableResource, field: str, default: str) -> str:  # type: ignore[type-arg]
        """A local path setting, absolute: Spark (whose JVM keeps the directory it started in) and PyIceberg agree
        on the place. Unset, it is the table's own place under the project's .ddb_iceberg/tables."""
        path = getattr(resource, field) if field in resource.model_fields_set else f"{DEFAULT_LOCAL_ROOT}/{default}"
        return str((project_root / Path(path).expanduser()).resolve())


def _with(resource: _Resource, **changes: object) -> _Resource:
    """The resource with `changes`, validated again (and the fields the YAML set still known as set)."""
    values = {name: getattr(resource, name) for name in resource.model_fields_set} | changes
    return type(resource)(**values)
