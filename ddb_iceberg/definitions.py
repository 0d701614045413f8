"""The Dagster code location: assembles assets, checks, resources and schedules (and nothing else).

`DDB_ICEBERG_ENV` (read here, once, when the code location loads) picks the implementations: `local` (the
default: simulated exports, local Spark, the local SQL catalog, all under `DDB_ICEBERG_LOCAL_ROOT`, by default
`.ddb_iceberg/local`) or `aws` (DynamoDB exports, EMR Serverless,
Glue), whose settings come from environment variables through `dg.EnvVar` (see the README).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import dagster as dg
from dagster_pyspark import LazyPySparkResource

from ddb_iceberg.assets import (
    TABLE_GROUP,
    build_iceberg_table,
    build_incremental_export,
    build_table_maintenance,
    ddb_full_export,
)
from ddb_iceberg.checks import (
    baseline_row_count_matches_full_export,
    build_freshness_check,
    ledger_has_no_gap,
    no_duplicate_keys,
)
from ddb_iceberg.engine.spark_session import CATALOG_NAME
from ddb_iceberg.partitions import export_window_partitions
from ddb_iceberg.resources import (
    DynamoDBExporter,
    EmrServerlessMergeRunner,
    GlueIcebergCatalog,
    LocalIcebergCatalog,
    LocalSparkMergeRunner,
    SimulatedExporter,
    local_spark_config,
)
from ddb_iceberg.resources.emr_serverless import EMR_ICEBERG_JAR
from ddb_iceberg.schedules import build_maintenance_schedule, build_window_schedule

LOCAL_ROOT = ".ddb_iceberg/local"


@dataclass(frozen=True)
class Deployment:
    """What differs between deployments besides resources: the windows and the schedule's lag."""

    partitions_start: datetime = datetime(2026, 1, 1, tzinfo=UTC)
    window_minutes: int = 60
    lag_minutes: int = 20
    # When upkeep runs (UTC): daily, at an hour of little traffic.
    maintenance_cron: str = "30 4 * * *"
    resources: dict[str, object] = field(default_factory=dict)


def local_deployment(root: str = LOCAL_ROOT, catalog_name: str = CATALOG_NAME) -> Deployment:
    """Everything on this machine: no AWS account needed."""
    warehouse = f"{root}/warehouse"
    exporter = SimulatedExporter(output_dir=f"{root}/exports")
    spark = LazyPySparkResource(spark_config=local_spark_config(warehouse, catalog_name))
    return Deployment(
        partitions_start=exporter.simulation.start,
        resources={
            "exporter": exporter,
            "merge_runner": LocalSparkMergeRunner(warehouse=warehouse, catalog_name=catalog_name, spark=spark),
            "catalog": LocalIcebergCatalog(warehouse=warehouse, catalog_name=catalog_name),
        },
    )


def aws_deployment(environment: dict[str, str]) -> Deployment:
    """DynamoDB exports to S3, the merge on EMR Serverless, the table in Glue (settings: see the README).

    Required settings are `dg.EnvVar`s, resolved when a run starts; the stack's outputs name them all.
    """
    region = environment.get("AWS_REGION") or environment.get("AWS_DEFAULT_REGION")
    return Deployment(
        partitions_start=datetime.fromisoformat(
            environment.get("DDB_ICEBERG_PARTITIONS_START", "2026-01-01T00:00")
        ).replace(tzinfo=UTC),
        window_minutes=int(environment.get("DDB_ICEBERG_WINDOW_MINUTES", "60")),
        lag_minutes=int(environment.get("DDB_ICEBERG_EXPORT_LAG_MINUTES", "20")),
        maintenance_cron=environment.get("DDB_ICEBERG_MAINTENANCE_CRON", Deployment.maintenance_cron),
        resources={
            "exporter": DynamoDBExporter(
                table_arn=dg.EnvVar("DDB_ICEBERG_TABLE_ARN"),
                s3_bucket=dg.EnvVar("DDB_ICEBERG_EXPORT_BUCKET"),
                s3_prefix=dg.EnvVar("DDB_ICEBERG_EXPORT_PREFIX"),
                region=region,
                max_concurrent_exports=int(environment.get("DDB_ICEBERG_MAX_CONCURRENT_EXPORTS", "8")),
                export_price_per_gb_usd=float(environment.get("DDB_ICEBERG_EXPORT_PRICE_PER_GB_USD", "0.10")),
            ),
            "merge_runner": EmrServerlessMergeRunner(
                table=dg.EnvVar("DDB_ICEBERG_TABLE"),
                application_id=dg.EnvVar("DDB_ICEBERG_EMR_APPLICATION_ID"),
                execution_role_arn=dg.EnvVar("DDB_ICEBERG_EMR_ROLE_ARN"),
                code_location=dg.EnvVar("DDB_ICEBERG_CODE_LOCATION"),
                log_location=dg.EnvVar("DDB_ICEBERG_LOG_LOCATION"),
                log_group=dg.EnvVar("DDB_ICEBERG_EMR_LOG_GROUP"),
                warehouse=dg.EnvVar("DDB_ICEBERG_WAREHOUSE"),
                region=region,
                python_environment=environment.get("DDB_ICEBERG_EMR_PYTHON_ENVIRONMENT") or None,
                python_dependencies=environment.get("DDB_ICEBERG_EMR_PYTHON_DEPENDENCIES") or None,
                python_executable=environment.get("DDB_ICEBERG_EMR_PYTHON", "python3.11"),
                iceberg_jar=environment.get("DDB_ICEBERG_EMR_ICEBERG_JAR", EMR_ICEBERG_JAR),
            ),
            "catalog": GlueIcebergCatalog(region=region),
        },
    )


def build_definitions(deployment: Deployment) -> dg.Definitions:
    partitions = export_window_partitions(deployment.partitions_start, deployment.window_minutes)
    incremental_export = build_incremental_export(partitions)
    iceberg_table = build_iceberg_table(partitions, incremental_export)
    sync_window_job = dg.define_asset_job("sync_window_job", selection=[incremental_export, iceberg_table])
    full_export_job = dg.define_asset_job("full_export_job", selection=[ddb_full_export])
    rebaseline_job = dg.define_asset_job(
        "rebaseline_job",
        selection=[iceberg_table],
        config={"ops": {"ddb_iceberg_table": {"config": {"rebaseline": True}}}},
        description="Replace the table's rows with the latest full export (run full_export_job first) and the "
        "windows after it, up to the chosen window, in one commit: the way out of a gap or a lost ledger.",
    )
    maintenance = build_table_maintenance(iceberg_table, TABLE_GROUP)
    maintenance_job = dg.define_asset_job("maintenance_job", selection=[maintenance])
    return dg.Definitions(
        assets=[ddb_full_export, incremental_export, iceberg_table, maintenance],
        asset_checks=[
            no_duplicate_keys,
            ledger_has_no_gap,
            baseline_row_count_matches_full_export,
            build_freshness_check(
                timedelta(minutes=deployment.window_minutes), timedelta(minutes=deployment.lag_minutes)
            ),
        ],
        jobs=[full_export_job, sync_window_job, rebaseline_job, maintenance_job],
        schedules=[
            build_window_schedule(sync_window_job, partitions, deployment.window_minutes, deployment.lag_minutes),
            build_maintenance_schedule(maintenance_job, deployment.maintenance_cron),
        ],
        resources=deployment.resources,
    )


@dg.definitions
def defs() -> dg.Definitions:
    environment = os.environ.get("DDB_ICEBERG_ENV", "local")
    if environment == "local":
        return build_definitions(local_deployment(os.environ.get("DDB_ICEBERG_LOCAL_ROOT", LOCAL_ROOT)))
    if environment == "aws":
        return build_definitions(aws_deployment(dict(os.environ)))
    raise ValueError(f"DDB_ICEBERG_ENV must be 'local' or 'aws', not {environment!r}")
