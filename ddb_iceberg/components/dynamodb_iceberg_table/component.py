"""`DynamoDBIcebergTable`: one DynamoDB table kept equal in one Iceberg table, from one block of YAML."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import dagster as dg
from dagster_pyspark import LazyPySparkResource
from pydantic import Field

from ddb_iceberg.assets.maintenance import DEFAULTS as UPKEEP_DEFAULTS
from ddb_iceberg.assets.maintenance import TableMaintenanceConfig
from ddb_iceberg.components.dynamodb_iceberg_table.scaffolder import DynamoDBIcebergTableScaffolder
from ddb_iceberg.definitions import Deployment, build_definitions, live_simulation_start
from ddb_iceberg.engine.spark_session import CATALOG_NAME
from ddb_iceberg.resources import (
    DynamoDBExporter,
    EmrServerlessMergeRunner,
    ExporterResource,
    GlueIcebergCatalog,
    IcebergCatalogResource,
    LocalIcebergCatalog,
    LocalSparkMergeRunner,
    MergeRunnerResource,
    SimulatedExporter,
    local_spark_config,
)
from ddb_iceberg.resources.emr_serverless import EMR_ICEBERG_JAR
from ddb_iceberg.table_names import TableNames

# Where a table's local files go unless its YAML says otherwise, relative to the project root.
DEFAULT_LOCAL_ROOT = ".ddb_iceberg/tables"
DEFAULT_PARTITIONS_START = "2026-01-01T00:00:00Z"


class SimulatedSource(dg.Model):
    """A simulated table under traffic, exported into a local directory: no AWS account needed."""

    kind: Literal["simulated"] = "simulated"
    seed: int = Field(default=7, description="Same seed, same table history.")
    initial_items: int = Field(default=500, description="Items in the table at the simulation's start.")
    writes_per_hour: int = Field(default=120, description="Mean write rate.")
    start: str = Field(default=DEFAULT_PARTITIONS_START, description="When the simulated traffic starts (UTC).")
    clock: Literal["fixed", "live"] = Field(
        default="fixed",
        description="`live`: the table is written in real time since a day before its first use (recorded in "
        "simulation.json beside its exports; `start` is then ignored), windows are exported once closed, and "
        "the schedule runs; `fixed`: the whole history from `start` at once.",
    )
    exports_dir: str | None = Field(
        default=None,
        description=f"Where the exports are written (default: {DEFAULT_LOCAL_ROOT}/<name>/exports); relative "
        "paths are relative to the project root. Each table needs a directory of its own.",
    )


class DynamoDBSource(dg.Model):
    """A real DynamoDB table (point-in-time recovery on), exported to an S3 bucket and prefix."""

    kind: Literal["dynamodb"] = "dynamodb"
    table_arn: str = Field(description="ARN of the DynamoDB table.")
    bucket: str = Field(description="Bucket the exports are written to.")
    prefix: str = Field(default="", description="Prefix in the bucket; each table needs a prefix of its own.")
    region: str | None = Field(default=None, description="AWS Region of the table (default: AWS's chain).")
    max_concurrent_exports: int = Field(default=8, description="Most exports a backfill has running at once.")
    export_price_per_gb_usd: float = Field(default=0.10, description="For the cost estimate in the metadata.")


class LocalMergeRunner(dg.Model):
    """Spark in the Dagster process (local[*]) and a local SQL catalog; tables may share one warehouse."""

    kind: Literal["local"] = "local"
    warehouse: str | None = Field(
        default=None,
        description=f"Local warehouse (default: {DEFAULT_LOCAL_ROOT}/warehouse); relative to the project root.",
    )
    catalog_name: str = Field(default=CATALOG_NAME, description="Iceberg catalog name (Spark and PyIceberg).")


class EmrServerlessRunner(dg.Model):
    """The merge run as a job on EMR Serverless; the table in the AWS Glue Data Catalog."""

    kind: Literal["emr_serverless"] = "emr_serverless"
    application_id: str = Field(description="EMR Serverless application id.")
    execution_role_arn: str = Field(description="Role the job runs as.")
    code_location: str = Field(description="s3:// prefix the job's entry point and package are uploaded to.")
    log_location: str = Field(description="s3:// prefix for the driver and executor logs.")
    log_group: str = Field(description="CloudWatch Logs group of the job runs.")
    warehouse: str = Field(description="s3:// warehouse of the Glue catalog's tables.")
    region: str | None = Field(default=None, description="AWS Region (default: AWS's chain).")
    python_dependencies: str | None = Field(default=None, description="s3:// zip of the job's dependencies.")
    python_environment: str | None = Field(default=None, description="s3:// archive of the job's Python.")
    python_executable: str = Field(default="python3.11", description="The job's Python interpreter.")
    iceberg_jar: str = Field(default=EMR_ICEBERG_JAR, description="Iceberg's Spark runtime jar.")
    driver_cores: int = 2
    driver_memory: str = "4g"
    executor_cores: int = 4
    executor_memory: str = "8g"
    executor_disk: str = "50g"
    min_executors: int = 1
    max_executors: int = 16


class Upkeep(dg.Model):
    """When upkeep runs, and what it keeps (the maintenance job's settings)."""

    cron: str = Field(default=Deployment.maintenance_cron, description="When maintain_table_daily ticks (UTC).")
    snapshot_retention_days: float = UPKEEP_DEFAULTS["snapshot_retention"]
    tag_retention_days: float = UPKEEP_DEFAULTS["tag_retention"]
    orphan_age_days: float = UPKEEP_DEFAULTS["orphan_age"]
    min_input_files: int = int(UPKEEP_DEFAULTS["min_input_files"])


@dg.scaffold_with(DynamoDBIcebergTableScaffolder)
class DynamoDBIcebergTable(dg.Component, dg.Resolvable, dg.Model):
    """Keeps one Iceberg table equal to one DynamoDB table, from its full and incremental exports.

    Builds the table's assets (`<name>/ddb_full_export`, `<name>/ddb_incremental_export`,
    `<name>/ddb_iceberg_table`, `<name>/ddb_iceberg_table_maintenance`), the checks on its Iceberg table, its
    jobs and schedules (`<name>__sync_window_job`, `<name>__sync_each_window`, ...) and its resources, bound
    under keys of its own (`<name>__exporter`, `<name>__merge_runner`, `<name>__catalog`).
    """

    name: str = Field(description="The table's name in Dagster: its asset key prefix, and its jobs' prefix.")
    source: SimulatedSource | DynamoDBSource = Field(
        default_factory=SimulatedSource, description="The DynamoDB table: `kind: simulated` or `kind: dynamodb`."
    )
    iceberg_table: str | None = Field(
        default=None, description="The Iceberg table, <namespace>.<table> (default: dynamodb.<name>)."
    )
    window_minutes: int = Field(default=60, description="Length of an export window: 15 minutes to 24 hours.")
    lag_minutes: int = Field(default=20, description="How long after a window closes its export starts.")
    partitions_start: str | None = Field(
        default=None,
        description="The first window's start (UTC; default: a simulated table's start, else 2026-01-01).",
    )
    key_attributes: list[str] = Field(
        default_factory=list, description="The table's key attributes (default: from the incremental exports)."
    )
    merge_runner: LocalMergeRunner | EmrServerlessRunner = Field(
        default_factory=LocalMergeRunner, description="Where the merge runs: `kind: local` or `kind: emr_serverless`."
    )
    upkeep: Upkeep = Field(default_factory=Upkeep, description="Table upkeep: its schedule and retentions.")

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        return build_definitions(
            self.deployment(context.project_root),
            TableNames(self.name),
            TableMaintenanceConfig(
                snapshot_retention_days=self.upkeep.snapshot_retention_days,
                tag_retention_days=self.upkeep.tag_retention_days,
                orphan_age_days=self.upkeep.orphan_age_days,
                min_input_files=self.upkeep.min_input_files,
            ),
        )

    def deployment(self, project_root: Path) -> Deployment:
        """The table's windows and its resources, keyed by role; relative local paths from `project_root`."""
        start = self.partitions_start or (
            self.source.start if isinstance(self.source, SimulatedSource) else DEFAULT_PARTITIONS_START
        )
        partitions_start = datetime.fromisoformat(start.replace("Z", "+00:00")).astimezone(UTC)
        live = isinstance(self.source, SimulatedSource) and self.source.clock == "live"
        if live:
            exports = Path(self._exports_dir(project_root))
            partitions_start = live_simulation_start(exports.parent, datetime.now(UTC), self.window_minutes)
        return Deployment(
            partitions_start=partitions_start,
            window_minutes=self.window_minutes,
            lag_minutes=self.lag_minutes,
            maintenance_cron=self.upkeep.cron,
            schedule_running=live,
            resources={
                "exporter": self._exporter(project_root, partitions_start if live else None),
                "merge_runner": self._merge_runner(project_root),
                "catalog": self._catalog(project_root),
            },
        )

    def _exports_dir(self, project_root: Path) -> str:
        assert isinstance(self.source, SimulatedSource)
        return _local_path(project_root, self.source.exports_dir or f"{DEFAULT_LOCAL_ROOT}/{self.name}/exports")

    def _exporter(self, project_root: Path, live_start: datetime | None) -> ExporterResource:
        source = self.source
        if isinstance(source, DynamoDBSource):
            return DynamoDBExporter(
                table_arn=source.table_arn,
                s3_bucket=source.bucket,
                s3_prefix=source.prefix,
                region=source.region,
                max_concurrent_exports=source.max_concurrent_exports,
                export_price_per_gb_usd=source.export_price_per_gb_usd,
            )
        return SimulatedExporter(
            output_dir=self._exports_dir(project_root),
            seed=source.seed,
            initial_items=source.initial_items,
            writes_per_hour=source.writes_per_hour,
            start=live_start.isoformat() if live_start else source.start,
            live=live_start is not None,
        )

    def _merge_runner(self, project_root: Path) -> MergeRunnerResource:
        runner, table = self.merge_runner, self.iceberg_table or f"dynamodb.{self.name}"
        if isinstance(runner, EmrServerlessRunner):
            return EmrServerlessMergeRunner(
                table=table,
                key_attributes=self.key_attributes,
                **runner.model_dump(exclude={"kind"}),
            )
        warehouse = self._local_warehouse(project_root)
        return LocalSparkMergeRunner(
            table=table,
            key_attributes=self.key_attributes,
            warehouse=warehouse,
            catalog_name=runner.catalog_name,
            spark=LazyPySparkResource(spark_config=local_spark_config(warehouse, runner.catalog_name)),
        )

    def _catalog(self, project_root: Path) -> IcebergCatalogResource:
        runner = self.merge_runner
        if isinstance(runner, EmrServerlessRunner):
            return GlueIcebergCatalog(region=runner.region)
        return LocalIcebergCatalog(warehouse=self._local_warehouse(project_root), catalog_name=runner.catalog_name)

    def _local_warehouse(self, project_root: Path) -> str:
        assert isinstance(self.merge_runner, LocalMergeRunner)
        return _local_path(project_root, self.merge_runner.warehouse or f"{DEFAULT_LOCAL_ROOT}/warehouse")


def _local_path(project_root: Path, path: str) -> str:
    # Absolute, so that Spark (whose JVM keeps the directory it started in) and PyIceberg agree on the place.
    return str((project_root / Path(path).expanduser()).resolve())
