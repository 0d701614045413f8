"""The export assets' metadata and backfills: DynamoDB through Stubber, the simulated exporter in a directory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from botocore.stub import Stubber

from ddb_iceberg.assets import build_incremental_export
from ddb_iceberg.partitions import export_window_partitions
from ddb_iceberg.resources import DynamoDBExporter, SimulatedExporter
from ddb_iceberg.resources.prices import export_cost_usd
from ddb_iceberg_tests.helpers import MOTO_REGION
from ddb_iceberg_tests.resources.test_exporters import (
    TABLE_ARN,
    _arn_started_at,
    _incremental,
    _listing,
    _pitr,
    _start_request,
)

RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
FIRST_WINDOW = datetime(2026, 2, 1, 10, tzinfo=UTC)
HOUR = timedelta(hours=1)


def _materializations(result: dg.ExecuteInProcessResult) -> list[dict[str, Any]]:
    return [dict(m.metadata) for m in result.asset_materializations_for_node("ddb_incremental_export")]


def test_a_backfill_run_exports_its_windows_together_and_reports_their_summed_size_and_cost(
    stubbed: Stubber,
) -> None:
    billed = [10_000_000, 25_000_000, 400_000_000]
    windows = [(FIRST_WINDOW + n * HOUR, FIRST_WINDOW + (n + 1) * HOUR) for n in range(len(billed))]
    arns = [_arn_started_at(end + timedelta(minutes=5), f"{n:08x}") for n, (_, end) in enumerate(windows)]
    _pitr(stubbed)
    _listing(stubbed)
    # The exports are started one after another before the first describe_export: Stubber holds them to it.
    for (start, end), export_arn in zip(windows, arns, strict=True):
        stubbed.add_response(
            "export_table_to_point_in_time",
            _incremental("IN_PROGRESS", start, end, export_arn),
            _start_request(start, end),
        )
    for (start, end), export_arn, size in zip(windows, arns, billed, strict=True):
        completed = _incremental("COMPLETED", start, end, export_arn, BilledSizeBytes=size)
        stubbed.add_response("describe_export", completed, {"ExportArn": export_arn})
    exporter = DynamoDBExporter(
        table_arn=TABLE_ARN, s3_bucket="exports", s3_prefix="ddb/orders", region=MOTO_REGION,
        poll_seconds=0.01, max_poll_seconds=0.02, export_price_per_gb_usd=0.25,
    )  # fmt: skip
    asset = build_incremental_export(export_window_partitions(FIRST_WINDOW))

    result = dg.materialize(
        [asset],
        resources={"exporter": exporter},
        tags={RANGE_START: "2026-02-01T10:00", RANGE_END: "2026-02-01T12:00"},
    )

    # One materialization per window, each with the run's sums (one run took them all).
    first, *others = _materializations(result)
    assert len(others) == 2 and all(metadata == first for metadata in others)
    metadata = first
    assert metadata["windows"] == dg.MetadataValue.int(3)
    assert metadata["billed_size_bytes"] == dg.MetadataValue.int(sum(billed))
    cost = metadata["estimated_cost_usd"]
    assert isinstance(cost, dg.FloatMetadataValue), "a float, so that Dagster plots it"
    assert cost.value == pytest.approx(sum(billed) / 1024**3 * 0.25, abs=1e-5)
    assert cost.value == pytest.approx(sum(export_cost_usd(size, 0.25) for size in billed))
    assert "0.25 USD per GB" in metadata["price_source"].value
    assert metadata["export_arns"].value == arns


def test_a_window_s_simulated_export_reports_its_cost(tmp_path: Path) -> None:
    exporter = SimulatedExporter(output_dir=str(tmp_path / "exports"))
    asset = build_incremental_export(export_window_partitions(exporter.simulation.start))

    result = dg.materialize([asset], resources={"exporter": exporter}, partition_key="2026-01-01T00:00")

    (metadata,) = _materializations(result)
    billed = metadata["billed_size_bytes"]
    assert isinstance(billed, dg.IntMetadataValue) and billed.value is not None and billed.value > 0
    cost = metadata["estimated_cost_usd"]
    assert isinstance(cost, dg.FloatMetadataValue)
    assert cost.value == export_cost_usd(billed.value, 0.10) and cost.value > 0
    assert "0.1 USD per GB" in metadata["price_source"].value
