"""`ddb-iceberg demo` (`make demo`): the pipeline end to end on the embedded local default, live clock.

A simulated table written in real time since a day ago; its full export; the day's closed 15-minute windows
exported and merged by one single-run backfill; the latest window as the schedule's tick picks it, with every
asset check; the Iceberg table compared with the simulator's true state; a sample query with DuckDB.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg

from ddb_iceberg.catalog_access import duckdb_with_tables, local_catalog, table_items, table_status
from ddb_iceberg.console import spark_output_to
from ddb_iceberg.definitions import LIVE, build_definitions, local_deployment
from ddb_iceberg.engine.request import Log
from ddb_iceberg.engine.rows import canonical_item
from ddb_iceberg.engine.spark_session import CatalogSettings, build_spark_session
from ddb_iceberg.exports.manifest import parse_timestamp
from ddb_iceberg.resources import SimulatedExporter
from ddb_iceberg.schedules import RANGE_END, RANGE_START

TABLE = "dynamodb.orders"
SAMPLE_QUERY = (
    "SELECT status, count(*) AS orders, sum(total) AS revenue FROM dynamodb.orders GROUP BY 1 ORDER BY 2 DESC"
)
# Dagster's own run log says what happens step by step; the demo tells its story instead (--verbose: both).
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


@dataclass
class DemoSummary:
    rows: int
    reflects: str
    exports: int
    commits: int
    matches_truth: bool
    seconds: float
    query: str
    checks: dict[str, bool] = field(default_factory=dict)

    @property
    def every_check_passed(self) -> bool:
        return bool(self.checks) and all(self.checks.values())


def run_demo(workdir: Path, *, verbose: bool = False, now: datetime | None = None, log: Log = print) -> DemoSummary:
    started = time.monotonic()
    now = now or datetime.now(UTC)
    if workdir.exists():
        shutil.rmtree(workdir)
    with spark_output_to(workdir / "spark.log", enabled=not verbose):
        # The session the merge runner's lazy resource then finds: started here, so its output goes to the log.
        build_spark_session(CatalogSettings.local(workdir / "warehouse"))
    deployment = local_deployment(root=str(workdir), clock=LIVE, now=now)
    definitions = build_definitions(deployment)
    resources = deployment.resources
    exporter = resources["exporter"]
    assert isinstance(exporter, SimulatedExporter)
    assets = {
        key.to_user_string(): a
        for a in definitions.assets or []
        if isinstance(a, dg.AssetsDefinition)
        for key in a.keys
    }
    full_export, incremental_export = assets["ddb_full_export"], assets["ddb_incremental_export"]
    iceberg_table = assets["ddb_iceberg_table"]
    checks = list(definitions.asset_checks or [])
    # The schedule reads what is materialized from the instance, so the demo's runs go to one it can query.
    (workdir / "dagster").mkdir()
    instance = dg.DagsterInstance.local_temp(str(workdir / "dagster"), overrides={"telemetry": {"enabled": False}})
    run_config = {} if verbose else QUIET_RUN_CONFIG

    def materialize(selection: list[object], **kwargs: object) -> dg.ExecuteInProcessResult:
        return dg.materialize(
            selection,  # type: ignore[arg-type]
            resources=resources,
            instance=instance,
            run_config=run_config,
            **kwargs,  # type: ignore[arg-type]
        )

    simulation = exporter.simulation
    log(
        f"A simulated DynamoDB table, {simulation.table_name}: {simulation.initial_items} items, about "
        f"{simulation.writes_per_hour} writes an hour since {simulation.start:%Y-%m-%d %H:%M} UTC (a day ago)"
    )
    phase = time.monotonic()
    materialize([full_export])
    log(f"1/4 Full export as of {simulation.start:%H:%M} UTC: {simulation.initial_items} items ({_since(phase)})")

    job = definitions.resolve_job_def("sync_window_job")
    partitions = job.partitions_def
    assert isinstance(partitions, dg.TimeWindowPartitionsDefinition)
    lag = timedelta(minutes=deployment.lag_minutes)
    closed = partitions.get_partition_keys(current_time=now - lag)
    backfill = closed[:-1]
    phase = time.monotonic()
    materialize([incremental_export, iceberg_table, *checks], tags={RANGE_START: backfill[0], RANGE_END: backfill[-1]})
    log(
        f"2/4 Backfill: {len(backfill)} windows of {deployment.window_minutes} minutes, {backfill[0]} .. "
        f"{backfill[-1]}, exported and merged in one run, one commit ({_since(phase)})"
    )

    schedule = definitions.resolve_schedule_def("sync_each_window")
    request = schedule(dg.build_schedule_context(instance=instance, scheduled_execution_time=now))
    assert isinstance(request, dg.RunRequest) and request.partition_key, request
    phase = time.monotonic()
    result = materialize([incremental_export, iceberg_table, *checks], partition_key=request.partition_key)
    log(f"3/4 The schedule's tick at {now:%H:%M} UTC ran window {request.partition_key} ({_since(phase)})")

    outcomes = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    log("4/4 Checks: " + ", ".join(f"{name} {'passed' if ok else 'FAILED'}" for name, ok in outcomes.items()))
    catalog = local_catalog(workdir / "warehouse")
    status = table_status(catalog, TABLE)
    assert status.reflects is not None
    truth = exporter.table.state_at(parse_timestamp(status.reflects))
    matches = table_items(catalog, TABLE) == {key: canonical_item(item) for key, item in truth.items()}
    query = str(duckdb_with_tables(catalog).sql(SAMPLE_QUERY))
    return DemoSummary(
        rows=status.rows or 0,
        reflects=status.reflects,
        exports=len(status.exports_applied),
        commits=len(status.commits),
        matches_truth=matches,
        seconds=time.monotonic() - started,
        query=query,
        checks=outcomes,
    )


def _since(started: float) -> str:
    return f"{time.monotonic() - started:.0f} s"
