"""The Dagster code location: assembles assets, checks, resources and schedules (and nothing else).

`DDB_ICEBERG_ENV` (read here, once, when the code location loads) picks the implementations: `local` (the
default: simulated exports, local Spark, the local SQL catalog, all under `DDB_ICEBERG_LOCAL_ROOT`, by default
`.ddb_iceberg/local`, on the live clock unless `DDB_ICEBERG_LOCAL_CLOCK=fixed`: see `local_deployment`) or
`aws` (DynamoDB exports, EMR Serverless, Glue), whose settings come from environment variables through
`dg.EnvVar` (see the README).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg

from ddb_iceberg.assets import build_full_export, build_iceberg_table, build_incremental_export, build_table_maintenance
from ddb_iceberg.assets.maintenance import TableMaintenanceConfig
from ddb_iceberg.checks import build_change_feed_checks, build_item_history_checks, build_table_checks
from ddb_iceberg.engine.request import utc_moment
from ddb_iceberg.engine.spark_session import CATALOG_NAME
from ddb_iceberg.errors import SettingError
from ddb_iceberg.partitions import DEFAULT_WINDOW_MINUTES, export_window_partitions
from ddb_iceberg.resources import (
    DynamoDBExporter,
    EmrServerlessMergeRunner,
    GlueIcebergTable,
    IcebergTableResource,
    LocalIcebergTable,
    LocalSparkMergeRunner,
    SimulatedExporter,
)
from ddb_iceberg.schedules import build_maintenance_schedule, build_window_schedule
from ddb_iceberg.simulator.workload import DEFAULT_START
from ddb_iceberg.table_names import DEFAULT_NAMES, ICEBERG_TABLE, TableNames

LOCAL_ROOT = ".ddb_iceberg/local"


@dataclass(frozen=True)
class Deployment:
    """What differs between deployments besides resources: the windows and the schedule's lag."""

    partitions_start: datetime = DEFAULT_START
    window_minutes: int = DEFAULT_WINDOW_MINUTES
    lag_minutes: int = 20
    # When upkeep runs (UTC): daily, at an hour of little traffic.
    maintenance_cron: str = "30 4 * * *"
    # Whether the window schedule runs as soon as the code location loads (the live local pipeline).
    schedule_running: bool = False
    resources: dict[str, object] = field(default_factory=dict)


# The live local pipeline: short windows, a lag just long enough for a window's last writes, one day of history.
LIVE_WINDOW_MINUTES = 15
LIVE_LAG_MINUTES = 2
LIVE_HISTORY = timedelta(days=1)
FIXED, LIVE = "fixed", "live"


def local_deployment(
    root: str = LOCAL_ROOT, catalog_name: str = CATALOG_NAME, *, clock: str = FIXED, now: datetime | None = None
) -> Deployment:
    """Everything on this machine: no AWS account needed.

    With the `fixed` clock the simulated table's history starts on 2026-01-01 and is all there at once, in
    hourly windows (tests, benchmarks). With the `live` clock (`make dev`, `make demo`) the table is written in
    real time: its history starts a day before the local root was first used (kept in `<root>/simulation.json`,
    so that partitions and history stay put across restarts), windows last 15 minutes, and the schedule runs."""
    if clock not in (FIXED, LIVE):
        raise SettingError(f"DDB_ICEBERG_LOCAL_CLOCK {clock!r} is not {FIXED!r} or {LIVE!r}")
    warehouse = f"{root}/warehouse"
    live = clock == LIVE
    exporter = SimulatedExporter(output_dir=f"{root}/exports")
    if live:
        start = live_simulation_start(Path(root), now or datetime.now(UTC))
        exporter = SimulatedExporter(output_dir=f"{root}/exports", start=start.isoformat(), live=True)
    return Deployment(
        partitions_start=exporter.simulation.start,
        window_minutes=LIVE_WINDOW_MINUTES if live else Deployment.window_minutes,
        lag_minutes=LIVE_LAG_MINUTES if live else Deployment.lag_minutes,
        schedule_running=live,
        resources={
            "exporter": exporter,
            "merge_runner": LocalSparkMergeRunner(),
            "table": LocalIcebergTable(warehouse=warehouse, catalog_name=catalog_name, change_feed=True, history=True),
        },
    )


def live_simulation_start(root: Path, now: datetime, window_minutes: int = LIVE_WINDOW_MINUTES) -> datetime:
    """When the live simulated table's history starts: a day before the local root's first use, on a window
    boundary, recorded there on first use."""
    record = root / "simulation.json"
    if record.is_file():
        return utc_moment(json.loads(record.read_text())["start"])
    start = now.astimezone(UTC).replace(second=0, microsecond=0) - LIVE_HISTORY
    start -= timedelta(minutes=(start.hour * 60 + start.minute) % window_minutes)
    root.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"start": start.isoformat()}) + "\n")
    return start


def aws_deployment(environment: Mapping[str, str]) -> Deployment:
    """DynamoDB exports to S3, the merge on EMR Serverless, the table in Glue (settings: see the README).

    Required settings are `dg.EnvVar`s, resolved when a run starts; the stack's outputs name them all. Optional
    ones are read here, when the code location loads: a value that cannot work is refused then, naming its
    variable, and an unset one leaves the resource's own default.
    """

    def optional(variable: str, field: str, parse: Callable[[str], Any] = str) -> dict[str, Any]:
        if not environment.get(variable):
            return {}
        try:
            return {field: parse(environment[variable])}
        except ValueError as error:
            raise SettingError(f"{variable}={environment[variable]!r}: {error}") from None

    region = environment.get("AWS_REGION") or environment.get("AWS_DEFAULT_REGION")
    windows = optional("DDB_ICEBERG_PARTITIONS_START", "partitions_start", utc_moment)
    windows |= optional("DDB_ICEBERG_WINDOW_MINUTES", "window_minutes", int)
    windows |= optional("DDB_ICEBERG_EXPORT_LAG_MINUTES", "lag_minutes", int)
    windows |= optional("DDB_ICEBERG_MAINTENANCE_CRON", "maintenance_cron")
    exporter = optional("DDB_ICEBERG_MAX_CONCURRENT_EXPORTS", "max_concurrent_exports", int)
    exporter |= optional("DDB_ICEBERG_EXPORT_PRICE_PER_GB_USD", "export_price_per_gb_usd", float)
    runner = optional("DDB_ICEBERG_EMR_PYTHON_ENVIRONMENT", "python_environment")
    runner |= optional("DDB_ICEBERG_EMR_PYTHON_DEPENDENCIES", "python_dependencies")
    runner |= optional("DDB_ICEBERG_EMR_PYTHON", "python_executable")
    runner |= optional("DDB_ICEBERG_EMR_IMAGE_HAS_PYTHON_DEPENDENCIES", "image_has_python_dependencies", _flag)
    runner |= optional("DDB_ICEBERG_EMR_ICEBERG_JAR", "iceberg_jar")
    return Deployment(
        **windows,
        resources={
            "exporter": DynamoDBExporter(
                table_arn=dg.EnvVar("DDB_ICEBERG_TABLE_ARN"),
                s3_bucket=dg.EnvVar("DDB_ICEBERG_EXPORT_BUCKET"),
                s3_prefix=dg.EnvVar("DDB_ICEBERG_EXPORT_PREFIX"),
                region=region,
                **exporter,
            ),
            "merge_runner": EmrServerlessMergeRunner(
                application_id=dg.EnvVar("DDB_ICEBERG_EMR_APPLICATION_ID"),
                execution_role_arn=dg.EnvVar("DDB_ICEBERG_EMR_ROLE_ARN"),
                code_location=dg.EnvVar("DDB_ICEBERG_CODE_LOCATION"),
                log_location=dg.EnvVar("DDB_ICEBERG_LOG_LOCATION"),
                log_group=dg.EnvVar("DDB_ICEBERG_EMR_LOG_GROUP"),
                region=region,
                **runner,
            ),
            "table": GlueIcebergTable(
                identifier=dg.EnvVar("DDB_ICEBERG_TABLE"), warehouse=dg.EnvVar("DDB_ICEBERG_WAREHOUSE"), region=region
            ),
        },
    )


def _flag(text: str) -> bool:
    if text.lower() not in ("true", "false"):
        raise ValueError("not true or false")
    return text.lower() == "true"


def build_definitions(
    deployment: Deployment,
    names: TableNames = DEFAULT_NAMES,
    maintenance_config: TableMaintenanceConfig | None = None,
) -> dg.Definitions:
    """One table's assets, checks, jobs, schedules and resources, named by `names` (see `table_names`).

    `deployment.resources` are keyed by role (`exporter`, `merge_runner`, `table`); they are bound under the
    table's own keys (`orders__exporter`), which its assets and checks ask for (`required_resource_keys`): the
    tables of one code location each bring their own exporter, merge runner and table, and never collide.
    Binding each table's resources to its assets under the plain role names would not do: Dagster wants one
    resource per key in a code location, bound or not. `maintenance_config` (default:
    `TableMaintenanceConfig`'s) is what the maintenance job and its schedule run with.
    """
    partitions = export_window_partitions(deployment.partitions_start, deployment.window_minutes)
    full_export = build_full_export(names)
    incremental_export = build_incremental_export(partitions, names)
    table = deployment.resources["table"]
    change_feed = isinstance(table, IcebergTableResource) and table.keeps_feed
    history = isinstance(table, IcebergTableResource) and table.history
    iceberg_table = build_iceberg_table(partitions, incremental_export, names, change_feed=change_feed, history=history)
    table_key = names.asset_key(ICEBERG_TABLE)
    sync_window_job = dg.define_asset_job(
        names.qualified("sync_window_job"), selection=[incremental_export, iceberg_table]
    )
    full_export_job = dg.define_asset_job(names.qualified("full_export_job"), selection=[full_export])
    rebaseline_job = dg.define_asset_job(
        names.qualified("rebaseline_job"),
        selection=[iceberg_table],
        config={"ops": {iceberg_table.op.name: {"config": {"rebaseline": True}}}},
        description=f"Replace the table's rows with the latest full export (run {full_export_job.name} first) and "
        "the windows after it, up to the chosen window, in one commit: the way out of a gap or a lost ledger.",
    )
    maintenance = build_table_maintenance(table_key, names.table_group, names)
    maintenance_job = dg.define_asset_job(
        names.qualified("maintenance_job"),
        selection=[maintenance],
        config={"ops": {maintenance.op.name: {"config": maintenance_config.model_dump()}}}
        if maintenance_config
        else None,
    )
    repartition = (maintenance_config or TableMaintenanceConfig()).model_copy(update={"repartition": True})
    repartition_job = dg.define_asset_job(
        names.qualified("repartition_job"),
        selection=[maintenance],
        config={"ops": {maintenance.op.name: {"config": repartition.model_dump()}}},
        description="Partition the table anew by the table resource's partition_by (a sync never changes an "
        "existing table's partitioning), then maintain it: the compaction rewrites the files written before into "
        "the new partitioning.",
    )
    window, lag = timedelta(minutes=deployment.window_minutes), timedelta(minutes=deployment.lag_minutes)
    return dg.Definitions(
        assets=[full_export, incremental_export, iceberg_table, maintenance],
        asset_checks=[
            *build_table_checks(window, lag, names),
            *(build_change_feed_checks(names) if change_feed else []),
            *(build_item_history_checks(names) if history else []),
        ],
        jobs=[full_export_job, sync_window_job, rebaseline_job, maintenance_job, repartition_job],
        schedules=[
            build_window_schedule(
                sync_window_job,
                partitions,
                deployment.window_minutes,
                deployment.lag_minutes,
                running=deployment.schedule_running,
                table_key=table_key,
                name=names.qualified("sync_each_window"),
            ),
            build_maintenance_schedule(
                maintenance_job, deployment.maintenance_cron, name=names.qualified("maintain_table_daily")
            ),
        ],
        resources={names.qualified(role): resource for role, resource in deployment.resources.items()},
    )


@dg.definitions
def defs() -> dg.Definitions:
    environment = os.environ.get("DDB_ICEBERG_ENV", "local")
    if environment == "local":
        root = os.environ.get("DDB_ICEBERG_LOCAL_ROOT", LOCAL_ROOT)
        return build_definitions(local_deployment(root, clock=os.environ.get("DDB_ICEBERG_LOCAL_CLOCK", LIVE)))
    if environment == "aws":
        return build_definitions(aws_deployment(os.environ))
    raise SettingError(f"DDB_ICEBERG_ENV must be 'local' or 'aws', not {environment!r}")
