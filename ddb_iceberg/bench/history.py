"""Benchmark 7: a scheduled sync costs what it applies, not the history under its source.

Two sources end in the same quarter-hour window of the same simulated table: one holds a full export and 2,000
windows (three weeks of a 15-minute schedule), the other a full export taken 12 windows before the end and those
12 windows. Each table reflects all but the last window; the figure is the sync of that last window:
- as a user waits for it: a whole `ddb-iceberg sync` process, interleaved runs, the warehouse restored each time;
- what it opens (`exports_read` of `sync --json`) and the requests it makes to S3, the sources uploaded to moto on
  loopback (`ddb_iceberg.loopback_aws`, every request recorded);
- the Dagster side of one scheduled run: the exporter's lookup for an earlier export of the window (ListExports
  and DescribeExport, served in DynamoDB's documented order and pages by an in-process stand-in: moto's
  ListExports has neither) and the asset checks' reading of the baseline export on S3.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

from ddb_iceberg.engine.request import Log
from ddb_iceberg.exports import ExportSource, load_export
from ddb_iceberg.exports.manifest import ExportType, ManifestSummary
from ddb_iceberg.simulator import ExportTarget, SimulatedTable, SimulationConfig, write_full_export
from ddb_iceberg.simulator.writer import write_incremental_export

QUARTER = timedelta(minutes=15)
ITEMS, WRITES_PER_HOUR, PARTITIONS = 2_000, 80, 4
MOTO_KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def history_figures(
    workdir: Path,
    sync: Callable[..., Any],
    *,
    long_windows: int = 2_000,
    short_windows: int = 12,
    runs: int = 3,
    log: Log = print,
) -> tuple[dict[str, str], dict[str, str]]:
    """Figures and checks of the scenario (module docstring); `sync(source, warehouse, *options, env=...)` runs
    one `ddb-iceberg sync --json` process and returns its `bench.Synced`."""
    from ddb_iceberg.bench import Timing, _restore

    table = SimulatedTable(SimulationConfig(seed=17, initial_items=ITEMS, writes_per_hour=WRITES_PER_HOUR))
    log(f"7. History: writing a full export and {long_windows:,} quarter-hour windows ...")
    everything = workdir / "all"
    target = ExportTarget(ExportSource.from_uri(str(everything)), "simulated-exports", None, PARTITIONS)
    full = write_full_export(table, target, table.config.start)
    windows = [
        write_incremental_export(
            table, target, table.config.start + n * QUARTER, table.config.start + (n + 1) * QUARTER
        )
        for n in range(long_windows)
    ]
    short_full = write_full_export(table, target, windows[-short_windows - 1].covers_to)
    sources = {
        long_windows: (full, windows),
        short_windows: (short_full, windows[-short_windows:]),
    }
    figures: dict[str, str] = {}
    timings: dict[int, Timing] = {}
    prepared: dict[int, tuple[Path, Path, Path]] = {}
    for count, (baseline, applied) in sources.items():
        root = workdir / f"history-{count}"
        source, warehouse, saved = root / "source", root / "warehouse", root / "loaded"
        _link_exports(everything, source, [baseline, *applied[:-1]])
        sync(source, warehouse)  # the table reflects all but the last window
        _link_exports(everything, source, applied[-1:])
        _restore(warehouse, saved)
        prepared[count] = (source, warehouse, saved)
        timings[count] = Timing()
    log("7. ... the last window's sync, interleaved ...")
    opened: dict[int, int] = {}
    for _ in range(runs):
        for count, (source, warehouse, saved) in prepared.items():
            _restore(warehouse, saved)
            synced = sync(source, warehouse)
            timings[count].add(synced.seconds)
            opened[count] = int(synced.result["exports_read"])
            assert len(synced.result["applied_exports"]) == 1, synced.result["applied_exports"]
    for count in sources:
        figures[f"one scheduled window after {count:,} applied windows, whole process"] = (
            f"{timings[count]}; exports opened: {opened[count]} of {count + 1}"
        )
    ratio = timings[long_windows].median / timings[short_windows].median
    checks = {
        f"one-window sync after {long_windows:,} windows ≤ 1.1x after {short_windows}": f"{ratio:.2f}x",
        "exports a one-window sync opens ≤ those it applies + a constant": (
            f"{opened[long_windows]} after {long_windows:,} windows, {opened[short_windows]} after {short_windows} "
            "(it applies 1)"
        ),
    }

    log("7. ... against S3 (moto on loopback, requests counted) ...")
    from ddb_iceberg.loopback_aws import LoopbackAws

    aws = LoopbackAws().start()
    try:
        requests: dict[int, int] = {}
        dagster: dict[int, str] = {}
        for count, (source, warehouse, saved) in prepared.items():
            bucket = f"history-{count}"
            _upload(aws.endpoint_url, source, bucket)
            _restore(warehouse, saved)
            mark = aws.log.mark()
            sync(f"s3://{bucket}", warehouse, "--s3-endpoint-url", aws.endpoint_url, env=MOTO_KEYS)
            requests[count] = aws.log.count(mark, "s3")
            operations = ", ".join(f"{n} {op.split()[-1]}" for op, n in aws.log.operations(mark, "s3").most_common())
            figures[f"S3 requests of that sync after {count:,} windows"] = f"{requests[count]} ({operations})"
            dagster[count] = _dagster_side(aws, bucket, sources[count][0], sources[count][1], count)
            figures[f"Dagster side of one scheduled run after {count:,} windows"] = dagster[count]
    finally:
        aws.stop()
    checks[f"S3 requests per one-window sync after {long_windows:,} exports ≤ 1.2x after {short_windows}"] = (
        f"{requests[long_windows] / requests[short_windows]:.2f}x "
        f"({requests[long_windows]} against {requests[short_windows]})"
    )
    return figures, checks


def _link_exports(everything: Path, source: Path, exports: Sequence[ManifestSummary]) -> None:
    """Hard links of the exports' folders and data files: the source holds exactly these exports."""
    source_data = source / "AWSDynamoDB" / "data"
    source_data.mkdir(parents=True, exist_ok=True)
    for summary in exports:
        folder = everything / "AWSDynamoDB" / summary.export_id
        shutil.copytree(folder, source / "AWSDynamoDB" / summary.export_id, copy_function=os.link)
        for key in _data_keys(folder):
            if key.startswith("AWSDynamoDB/data/"):
                os.link(everything / key, source / key)


def _data_keys(folder: Path) -> list[str]:
    lines = (folder / "manifest-files.json").read_text().splitlines()
    return [json.loads(line)["dataFileS3Key"] for line in lines if line.strip()]


def _upload(endpoint_url: str, root: Path, bucket: str) -> None:
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=MOTO_KEYS["AWS_DEFAULT_REGION"],
        aws_access_key_id=MOTO_KEYS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=MOTO_KEYS["AWS_SECRET_ACCESS_KEY"],
    )
    s3.create_bucket(Bucket=bucket)
    files = [path for path in root.rglob("*") if path.is_file()]
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(
            pool.map(
                lambda path: s3.put_object(
                    Bucket=bucket, Key=path.relative_to(root).as_posix(), Body=path.read_bytes()
                ),
                files,
            )
        )


def _dagster_side(
    aws: Any, bucket: str, baseline: ManifestSummary, windows: Sequence[ManifestSummary], count: int
) -> str:
    """Requests of one scheduled run's Dagster side: the exporter's lookup of an earlier export of the window,
    and the baseline check's reading of the full export."""
    from ddb_iceberg.exports.source import S3Options

    calls = _exporter_lookup_calls(baseline, windows)
    lookup = " + ".join(f"{n} {name}" for name, n in sorted(calls.items()))
    mark = aws.log.mark()
    options = S3Options(region="us-east-1", endpoint_url=aws.endpoint_url, access_key="testing", secret_key="testing")
    load_export(ExportSource.from_uri(f"s3://{bucket}", options), baseline.export_id)
    check_requests = aws.log.count(mark, "s3")
    return (
        f"exporting the next window: {lookup} (the table has {count + 1} exports); the baseline check: "
        f"{check_requests} S3 requests"
    )


def _exporter_lookup_calls(baseline: ManifestSummary, windows: Sequence[ManifestSummary]) -> dict[str, int]:
    """What the DynamoDB exporter asks DynamoDB to export the next window, the table's exports listed as DynamoDB
    lists them: newest first, 25 a page."""
    from ddb_iceberg.resources.dynamodb_exporter import DynamoDBExporter

    exports = sorted([baseline, *windows], key=lambda summary: summary.export_arn, reverse=True)
    described = {summary.export_arn: summary for summary in exports}
    calls: Counter[str] = Counter()

    class DynamoDB:
        """DynamoDB's export API over the table's exports (moto's ListExports has no pages nor the real order)."""

        class exceptions:  # noqa: N801 (boto3's spelling)
            ClientError = Exception

        def describe_continuous_backups(self, **_: Any) -> dict[str, Any]:
            calls["DescribeContinuousBackups"] += 1
            status = {"PointInTimeRecoveryStatus": "ENABLED"}
            return {"ContinuousBackupsDescription": {"PointInTimeRecoveryDescription": status}}

        def list_exports(self, TableArn: str, MaxResults: int, NextToken: str = "0") -> dict[str, Any]:  # noqa: N803
            calls["ListExports"] += 1
            start = int(NextToken)
            page = exports[start : start + MaxResults]
            response: dict[str, Any] = {
                "ExportSummaries": [
                    {"ExportArn": s.export_arn, "ExportStatus": "COMPLETED", "ExportType": s.export_type.value}
                    for s in page
                ]
            }
            if start + MaxResults < len(exports):
                response["NextToken"] = str(start + MaxResults)
            return response

        def describe_export(self, ExportArn: str) -> dict[str, Any]:  # noqa: N803
            calls["DescribeExport"] += 1
            summary = described[ExportArn]
            return {"ExportDescription": _description(summary, ExportArn)}

        def export_table_to_point_in_time(self, **request: Any) -> dict[str, Any]:
            calls["ExportTableToPointInTime"] += 1
            window = request["IncrementalExportSpecification"]
            new = {"ExportArn": f"{baseline.table_arn}/export/99999999999999-00000000", "ExportStatus": "COMPLETED"}
            new |= {"ExportType": ExportType.INCREMENTAL.value, "IncrementalExportSpecification": window}
            return {"ExportDescription": new}

    class CountedExporter(DynamoDBExporter):
        def _client(self) -> Any:
            return DynamoDB()

    exporter = CountedExporter(table_arn=baseline.table_arn, s3_bucket="exports", region="us-east-1")
    following = windows[-1].covers_to
    exporter.export_incremental(following, following + QUARTER, logging.getLogger("ddb_iceberg.bench"))
    return dict(calls)


def _description(summary: ManifestSummary, export_arn: str) -> dict[str, Any]:
    description: dict[str, Any] = {
        "ExportArn": export_arn,
        "ExportStatus": "COMPLETED",
        "ExportType": summary.export_type.value,
        "S3Bucket": "exports",
    }
    if not summary.is_full:
        window = {"ExportFromTime": summary.export_from_time, "ExportToTime": summary.export_to_time}
        description["IncrementalExportSpecification"] = window | {"ExportViewType": "NEW_AND_OLD_IMAGES"}
    return description
