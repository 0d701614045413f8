"""The assets, materialized in-process against real local Spark, a real catalog and simulated exports."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from pyspark.sql import SparkSession

from ddb_iceberg.catalog_access import local_catalog, table_items, table_status
from ddb_iceberg.definitions import build_definitions, local_deployment
from ddb_iceberg.engine.rows import canonical_item
from ddb_iceberg.errors import ExportFailedError
from ddb_iceberg.exports import ExportSource, discover_exports
from ddb_iceberg.exports.manifest import parse_timestamp
from ddb_iceberg.resources import LocalIcebergTable, SimulatedExporter

_names = itertools.count()
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


class Pipeline:
    """The local deployment in a temporary directory, with a catalog name of its own in the shared session."""

    def __init__(self, root: Path, clock: str = "fixed") -> None:
        self.catalog_name = f"assets_{next(_names)}"
        self.deployment = local_deployment(str(root), self.catalog_name, clock=clock)
        # The table with its change feed and without the item history, whose Dagster side the definitions, the
        # two-table component and the demo tests cover: the suite's time.
        self.deployment.resources["table"] = LocalIcebergTable(
            warehouse=str(root / "warehouse"), catalog_name=self.catalog_name, change_feed=True
        )
        self.definitions = build_definitions(self.deployment)
        self.root = root
        self.instance = dg.DagsterInstance.ephemeral()
        assets = {
            key.to_user_string(): a
            for a in self.definitions.assets or []
            if isinstance(a, dg.AssetsDefinition)
            for key in a.keys
        }
        self.full, self.incremental, self.table = (
            assets["ddb_full_export"], assets["ddb_incremental_export"], assets["ddb_iceberg_table"]
        )  # fmt: skip
        self.checks = list(self.definitions.asset_checks or [])

    @property
    def exporter(self) -> SimulatedExporter:
        exporter = self.deployment.resources["exporter"]
        assert isinstance(exporter, SimulatedExporter)
        return exporter

    def materialize(self, assets: list[Any], **kwargs: Any) -> dg.ExecuteInProcessResult:
        return dg.materialize(assets, resources=self.deployment.resources, instance=self.instance, **kwargs)

    def windows(self, first: int, last: int, **kwargs: Any) -> dg.ExecuteInProcessResult:
        keys = [f"2026-01-01T{hour:02d}:00" for hour in (first, last)]
        return self.materialize(
            [self.incremental, self.table, *self.checks], tags={RANGE_START: keys[0], RANGE_END: keys[1]}, **kwargs
        )

    def items(self) -> dict[Any, Any]:
        return table_items(local_catalog(self.root / "warehouse", self.catalog_name), "dynamodb.orders")

    def truth(self, moment: str) -> dict[Any, Any]:
        state = self.exporter.table.state_at(parse_timestamp(moment))
        return {key: canonical_item(item) for key, item in state.items()}


@pytest.fixture
def pipeline(spark: SparkSession, tmp_path: Path) -> Pipeline:
    return Pipeline(tmp_path)


def _metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, Any]:
    (event,) = [
        e for e in result.get_asset_materialization_events() if e.asset_key and e.asset_key.to_user_string() == asset
    ][-1:]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def test_full_export_records_its_metadata(pipeline: Pipeline) -> None:
    result = pipeline.materialize([pipeline.full])
    metadata = _metadata(result, "ddb_full_export")
    assert metadata["export_type"] == "FULL_EXPORT" and metadata["item_count"] == 500
    assert metadata["export_time"] == "2026-01-01T00:00:00.000Z"
    assert metadata["export_arn"].startswith("arn:aws:dynamodb:us-east-1:123456789012:table/orders/export/")
    assert Path(metadata["manifest_location"]).exists()


def test_backfill_is_one_run_one_spark_merge_and_equals_the_truth(pipeline: Pipeline) -> None:
    pipeline.materialize([pipeline.full])
    result = pipeline.windows(0, 5)
    assert result.success
    metadata = _metadata(result, "ddb_iceberg_table")
    assert metadata["reflects"] == "2026-01-01T06:00:00.000Z" and metadata["exports_applied"] == 7
    assert pipeline.items() == pipeline.truth("2026-01-01T06:00:00.000Z")
    status = table_status(local_catalog(pipeline.root / "warehouse", pipeline.catalog_name), "dynamodb.orders")
    # The baseline in a commit of its own, then the six windows in one commit.
    assert [len(commit["exports"]) for commit in status.commits] == [1, 6]
    checks = {e.asset_check_key.name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {
        "no_duplicate_keys": True,
        "ledger_has_no_gap": True,
        "baseline_row_count_matches_full_export": True,
        "reflects_a_recent_time": False,  # the simulated clock is months behind this machine's
        "change_feed_accounts_for_the_table": True,
    }
    assert "| customer_id |" in metadata["preview"]
    # The same run wrote the change feed: the baseline's inserts, then each window's changes.
    feed = _metadata(result, "ddb_change_feed")
    assert feed["table"] == "dynamodb.orders__changes"
    rows = local_catalog(pipeline.root / "warehouse", pipeline.catalog_name).load_table(feed["table"]).scan()
    assert feed["rows_added"] == rows.to_arrow().num_rows > len(pipeline.items())


def test_next_window_as_the_schedule_runs_it_and_retries_never_export_twice(pipeline: Pipeline) -> None:
    pipeline.materialize([pipeline.full])
    pipeline.windows(0, 1)
    for _ in range(2):  # a retry of the same partition
        result = pipeline.materialize([pipeline.incremental, pipeline.table], partition_key="2026-01-01T02:00")
        assert result.success
    listing = discover_exports(ExportSource.from_uri(pipeline.exporter.source_uri))
    windows = [(e.summary.covers_from, e.summary.covers_to) for e in listing.incremental_exports]
    assert len(windows) == len(set(windows)) == 3
    assert pipeline.items() == pipeline.truth("2026-01-01T03:00:00.000Z")


def test_a_window_whose_predecessor_is_missing_is_refused(pipeline: Pipeline) -> None:
    pipeline.materialize([pipeline.full])
    pipeline.windows(0, 0)
    result = pipeline.materialize(
        [pipeline.incremental, pipeline.table], partition_key="2026-01-01T02:00", raise_on_error=False
    )
    assert not result.success
    failure = result.failure_data_for_node("ddb_iceberg_table")
    assert failure is not None and "A window before this one is missing" in str(failure.error)
    assert "[2026-01-01T01:00:00.000Z, 2026-01-01T02:00:00.000Z)" in str(failure.error)
    allowed = pipeline.materialize(
        [pipeline.table],
        partition_key="2026-01-01T02:00",
        run_config={"ops": {"ddb_iceberg_table": {"config": {"allow_gaps": True}}}},
    )
    assert _metadata(allowed, "ddb_iceberg_table")["reflects"] == "2026-01-01T03:00:00.000Z"


def test_the_rebaseline_job_recovers_from_a_gap_with_a_new_full_export(pipeline: Pipeline) -> None:
    pipeline.materialize([pipeline.full])
    pipeline.windows(0, 0)
    refused = pipeline.materialize(
        [pipeline.incremental, pipeline.table], partition_key="2026-01-01T02:00", raise_on_error=False
    )
    failure = refused.failure_data_for_node("ddb_iceberg_table")
    assert failure is not None and "rebaseline_job" in str(failure.error)

    pipeline.materialize(
        [pipeline.full], run_config={"ops": {"ddb_full_export": {"config": {"export_time": "2026-01-01T02:00:00Z"}}}}
    )
    job = pipeline.definitions.resolve_job_def("rebaseline_job")
    result = job.execute_in_process(partition_key="2026-01-01T02:00", instance=pipeline.instance)
    assert result.success
    metadata = _metadata(result, "ddb_iceberg_table")
    assert metadata["rebaseline_of"] == "2026-01-01T01:00:00.000Z"
    assert metadata["reflects"] == "2026-01-01T03:00:00.000Z"
    assert pipeline.items() == pipeline.truth("2026-01-01T03:00:00.000Z")


def test_the_maintenance_asset_compacts_reports_and_the_next_window_applies(pipeline: Pipeline) -> None:
    pipeline.materialize([pipeline.full])
    for hour in range(4):  # one window at a time, as the schedule runs them: delete files pile up
        pipeline.windows(hour, hour)
    (maintenance,) = [
        a
        for a in pipeline.definitions.assets or []
        if isinstance(a, dg.AssetsDefinition) and dg.AssetKey("ddb_iceberg_table_maintenance") in a.keys
    ]
    config = {"snapshot_retention_days": 0, "tag_retention_days": 0, "min_input_files": 2}
    result = pipeline.materialize(
        [maintenance], run_config={"ops": {"ddb_iceberg_table_maintenance": {"config": config}}}
    )
    metadata = _metadata(result, "ddb_iceberg_table_maintenance")
    assert metadata["delete_files_before"] > 0 and metadata["delete_files_after"] == 0
    assert metadata["data_files_after"] < metadata["data_files_before"]
    assert metadata["snapshots_expired"] > 0 and metadata["tags_dropped"] == 4
    # The four windows the table applied were exported in January 2026, past the 40-day retention: they go, the
    # full export the table stands on stays.
    assert metadata["exports_removed"] == 4 and metadata["export_bytes_removed"] > 0
    source = pipeline.exporter.export_source()
    assert [e.summary.is_full for e in discover_exports(source).exports] == [True]
    assert pipeline.items() == pipeline.truth("2026-01-01T04:00:00.000Z")
    assert pipeline.windows(4, 4).success  # the checks read the baseline export, which stayed
    assert pipeline.items() == pipeline.truth("2026-01-01T05:00:00.000Z")


def test_the_repartition_job_partitions_the_table_anew_and_the_syncs_go_on(pipeline: Pipeline) -> None:
    pipeline.materialize([pipeline.full])
    assert pipeline.windows(0, 1).success  # the default layout: buckets of the partition key
    # The table resource now asks for days of `created_at`: the next sync refuses, naming the job that does it.
    pipeline.deployment.resources["table"] = LocalIcebergTable(
        warehouse=str(pipeline.root / "warehouse"),
        catalog_name=pipeline.catalog_name,
        change_feed=True,
        partition_by=["day(created_at, epoch_millis)"],
    )
    pipeline.definitions = build_definitions(pipeline.deployment)
    refused = pipeline.windows(2, 2, raise_on_error=False)
    failure = refused.failure_data_for_node("ddb_iceberg_table")
    assert failure is not None and "never changes a table's partitioning" in str(failure.error)
    assert "run repartition_job" in str(failure.error) and "ddb-iceberg repartition" not in str(failure.error)
    assert pipeline.items() == pipeline.truth("2026-01-01T02:00:00.000Z")

    result = pipeline.definitions.resolve_job_def("repartition_job").execute_in_process(instance=pipeline.instance)
    assert result.success
    metadata = _metadata(result, "ddb_iceberg_table_maintenance")
    assert metadata["partitioned_by"] == "day(created_at, epoch_millis)"
    table = local_catalog(pipeline.root / "warehouse", pipeline.catalog_name).load_table("dynamodb.orders")
    assert [(str(f.transform), f.name) for f in table.spec().fields] == [("day", "_ddb_created_at_time_day")]
    # The compaction that followed rewrote the files written before into the new spec.
    assert {row["spec_id"] for row in table.inspect.files().to_pylist()} == {table.spec().spec_id}
    assert pipeline.items() == pipeline.truth("2026-01-01T02:00:00.000Z")
    assert pipeline.windows(2, 2).success
    assert pipeline.items() == pipeline.truth("2026-01-01T03:00:00.000Z")
    days = {row["partition"]["_ddb_created_at_time_day"] for row in table.refresh().inspect.files().to_pylist()}
    assert len(days) > 1, "the window's rows were not written by day"


def test_the_live_pipeline_starts_with_a_catch_up_that_takes_its_own_baseline(
    spark: SparkSession, tmp_path: Path
) -> None:
    # What the schedule's first tick runs in `make dev`: the day's closed windows, no full export taken yet.
    pipeline = Pipeline(tmp_path, clock="live")
    partitions = pipeline.definitions.resolve_job_def("sync_window_job").partitions_def
    assert isinstance(partitions, dg.TimeWindowPartitionsDefinition)
    closed = partitions.get_partition_keys()
    first, last = closed[0], closed[3]

    result = pipeline.materialize(
        [pipeline.incremental, pipeline.table, *pipeline.checks], tags={RANGE_START: first, RANGE_END: last}
    )

    assert result.success
    status = table_status(local_catalog(tmp_path / "warehouse", pipeline.catalog_name), "dynamodb.orders")
    assert status.baseline_export and len(status.exports_applied) == 5  # the full export and four windows
    assert status.reflects is not None and pipeline.items() == pipeline.truth(status.reflects)
    # The full export the run took on the way shows on its own asset, as if materialized there.
    taken = pipeline.instance.get_latest_materialization_event(dg.AssetKey("ddb_full_export"))
    assert taken is not None and taken.asset_materialization is not None
    assert taken.asset_materialization.metadata["item_count"].value == 500
    # A window that has not closed cannot be exported, as with DynamoDB (Dagster shows no such partition yet).
    now = datetime.now(UTC)
    with pytest.raises(ExportFailedError, match="has not closed yet"):
        pipeline.exporter.export_incremental(
            now - timedelta(minutes=10), now + timedelta(minutes=5), dg.get_dagster_logger()
        )
