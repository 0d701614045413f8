"""Exporters: take DynamoDB exports to S3 (`DynamoDBExporter`) or simulate them locally (`SimulatedExporter`)."""

from __future__ import annotations

import hashlib
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

from ddb_iceberg.exports import ExportSource, ExportView, discover_exports
from ddb_iceberg.exports.manifest import ManifestSummary, format_timestamp
from ddb_iceberg.simulator import (
    ExportTarget,
    KeyShape,
    SimulatedTable,
    SimulationConfig,
    write_full_export,
    write_incremental_export,
)


@dataclass(frozen=True)
class ExportDescription:
    """A completed export, as asset metadata shows it."""

    export_arn: str
    export_type: str
    export_time: datetime | None
    export_from_time: datetime | None
    export_to_time: datetime | None
    item_count: int
    billed_size_bytes: int
    manifest_location: str

    def metadata(self) -> dict[str, Any]:
        times = (
            {"export_time": format_timestamp(self.export_time)}
            if self.export_time
            else {
                "export_from_time": format_timestamp(self.export_from_time) if self.export_from_time else None,
                "export_to_time": format_timestamp(self.export_to_time) if self.export_to_time else None,
            }
        )
        return {
            "export_arn": self.export_arn,
            "export_type": self.export_type,
            **times,
            "item_count": dg.MetadataValue.int(self.item_count),
            "billed_size_bytes": dg.MetadataValue.int(self.billed_size_bytes),
            "manifest_location": self.manifest_location,
        }


class ExporterResource(dg.ConfigurableResource, ABC):  # type: ignore[type-arg]
    """Takes full and incremental exports of one table into one S3 prefix (or local directory)."""

    @property
    @abstractmethod
    def source_uri(self) -> str:
        """Where the exports land: what the merge reads."""

    @abstractmethod
    def export_full(self, export_time: datetime | None, log: Any) -> ExportDescription:
        """Export the whole table as of `export_time` (default: now) and wait for it."""

    @abstractmethod
    def export_incremental(self, start: datetime, end: datetime, log: Any) -> ExportDescription:
        """Export the changes of [start, end) and wait for it; retrying the same window never exports twice."""


def _from_summary(summary: ManifestSummary, manifest_location: str) -> ExportDescription:
    return ExportDescription(
        export_arn=summary.export_arn,
        export_type=summary.export_type.value,
        export_time=summary.export_time,
        export_from_time=summary.export_from_time,
        export_to_time=summary.export_to_time,
        item_count=summary.item_count,
        billed_size_bytes=summary.billed_size_bytes,
        manifest_location=manifest_location,
    )


@lru_cache(maxsize=8)
def _simulated_table(config: SimulationConfig) -> SimulatedTable:
    # One history per configuration and process: windows asked for one by one replay it only once.
    return SimulatedTable(config)


class SimulatedExporter(ExporterResource):
    """The embedded default: a simulated table under traffic, exported into a local directory."""

    output_dir: str = Field(default=".ddb_iceberg/local/exports", description="Where AWSDynamoDB/ is written.")
    seed: int = Field(default=7, description="Same seed, same table history.")
    initial_items: int = Field(default=500, description="Items in the table at the simulation's start.")
    writes_per_hour: int = Field(default=120, description="Mean write rate.")
    start: str = Field(default="2026-01-01T00:00:00Z", description="When the simulated traffic starts (UTC).")
    key_shape: str = Field(default=KeyShape.COMPOSITE.value, description="composite or simple keys.")
    view: str = Field(default=ExportView.NEW_AND_OLD_IMAGES.value, description="Incremental export view type.")

    @property
    def simulation(self) -> SimulationConfig:
        return SimulationConfig(
            seed=self.seed,
            initial_items=self.initial_items,
            writes_per_hour=self.writes_per_hour,
            start=datetime.fromisoformat(self.start.replace("Z", "+00:00")),
            key_shape=KeyShape(self.key_shape),
        )

    @property
    def table(self) -> SimulatedTable:
        return _simulated_table(self.simulation)

    @property
    def source_uri(self) -> str:
        return str(Path(self.output_dir).expanduser().resolve())

    def _target(self) -> ExportTarget:
        return ExportTarget.for_source(ExportSource.from_uri(self.source_uri))

    def _existing(self, export_from: datetime, export_to: datetime, full: bool) -> ManifestSummary | None:
        source = ExportSource.from_uri(self.source_uri)
        if not Path(source.exports_root).exists():
            return None
        for export in discover_exports(source).exports:
            summary = export.summary
            if summary.is_full == full and (summary.covers_from, summary.covers_to) == (export_from, export_to):
                return summary
        return None

    def export_full(self, export_time: datetime | None, log: Any) -> ExportDescription:
        moment = export_time or self.simulation.start
        summary = self._existing(moment, moment, full=True)
        if summary is None:
            log.info(f"Simulating a full export of {self.simulation.table_name} as of {format_timestamp(moment)}")
            summary = write_full_export(self.table, self._target(), moment)
        return _from_summary(summary, f"{self.source_uri}/{summary.manifest_files_s3_key}")

    def export_incremental(self, start: datetime, end: datetime, log: Any) -> ExportDescription:
        summary = self._existing(start, end, full=False)
        if summary is None:
            log.info(f"Simulating the incremental export of [{format_timestamp(start)}, {format_timestamp(end)})")
            summary = write_incremental_export(self.table, self._target(), start, end, ExportView(self.view))
        else:
            log.info(f"Window [{format_timestamp(start)}, {format_timestamp(end)}) was exported already")
        return _from_summary(summary, f"{self.source_uri}/{summary.manifest_files_s3_key}")


class ExportFailedError(dg.Failure):
    """DynamoDB refused or failed an export."""


class DynamoDBExporter(ExporterResource):
    """Real exports through DynamoDB's ExportTableToPointInTime, into an S3 bucket and prefix."""

    table_arn: str = Field(description="ARN of the DynamoDB table (point-in-time recovery must be on).")
    s3_bucket: str = Field(description="Bucket the exports are written to.")
    s3_prefix: str = Field(default="", description="Prefix in the bucket; AWSDynamoDB/ goes under it.")
    region: str | None = Field(default=None, description="AWS Region of the table (default: AWS's chain).")
    view: str = Field(default=ExportView.NEW_AND_OLD_IMAGES.value, description="Incremental export view type.")
    s3_sse_algorithm: str | None = Field(default=None, description="AES256 or KMS (default: the bucket's).")
    s3_sse_kms_key_id: str | None = Field(default=None, description="KMS key for KMS encryption.")
    poll_seconds: float = Field(default=15.0, description="First wait between describe_export calls.")
    max_poll_seconds: float = Field(default=120.0, description="Longest wait between describe_export calls.")
    timeout_seconds: float = Field(default=6 * 3600.0, description="Give up waiting after this long.")
    endpoint_url: str | None = Field(default=None, description="Endpoint override (local stand-ins only).")

    @property
    def source_uri(self) -> str:
        return f"s3://{self.s3_bucket}/{self.s3_prefix.strip('/')}".rstrip("/")

    def _client(self) -> Any:
        import boto3

        return boto3.client("dynamodb", region_name=self.region, endpoint_url=self.endpoint_url)

    def client_token(self, kind: str, start: datetime | None, end: datetime | None) -> str:
        """Derived from table and window, so a retried run gets the same export back, never a second one."""
        parts = [self.table_arn, kind, start.isoformat() if start else "", end.isoformat() if end else ""]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]

    def check_point_in_time_recovery(self, client: Any) -> None:
        table_name = self.table_arn.rsplit("/", 1)[-1]
        try:
            description = client.describe_continuous_backups(TableName=table_name)["ContinuousBackupsDescription"]
        except client.exceptions.TableNotFoundException:
            raise ExportFailedError(f"DynamoDB table {self.table_arn} does not exist") from None
        status = description.get("PointInTimeRecoveryDescription", {}).get("PointInTimeRecoveryStatus")
        if status != "ENABLED":
            raise ExportFailedError(
                f"point-in-time recovery is {status or 'off'} for {table_name}: exports need it. Turn it on with "
                f"`aws dynamodb update-continuous-backups --table-name {table_name} "
                "--point-in-time-recovery-specification PointInTimeRecoveryEnabled=true`"
            )

    def export_full(self, export_time: datetime | None, log: Any) -> ExportDescription:
        request: dict[str, Any] = {"ExportType": "FULL_EXPORT"}
        if export_time is not None:
            request["ExportTime"] = export_time
        return self._export(request, self.client_token("full", export_time, None), log)

    def export_incremental(self, start: datetime, end: datetime, log: Any) -> ExportDescription:
        request = {
            "ExportType": "INCREMENTAL_EXPORT",
            "IncrementalExportSpecification": {
                "ExportFromTime": start,
                "ExportToTime": end,
                "ExportViewType": self.view,
            },
        }
        return self._export(request, self.client_token("incremental", start, end), log)

    def _export(self, request: dict[str, Any], token: str, log: Any) -> ExportDescription:
        client = self._client()
        self.check_point_in_time_recovery(client)
        arguments: dict[str, Any] = {
            "TableArn": self.table_arn,
            "S3Bucket": self.s3_bucket,
            "ExportFormat": "DYNAMODB_JSON",
            "ClientToken": token,
            **request,
        }
        if self.s3_prefix:
            arguments["S3Prefix"] = self.s3_prefix.strip("/")
        if self.s3_sse_algorithm:
            arguments["S3SseAlgorithm"] = self.s3_sse_algorithm
        if self.s3_sse_kms_key_id:
            arguments["S3SseKmsKeyId"] = self.s3_sse_kms_key_id
        try:
            description = client.export_table_to_point_in_time(**arguments)["ExportDescription"]
        except client.exceptions.ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            message = error.response.get("Error", {}).get("Message", str(error))
            raise ExportFailedError(f"DynamoDB refused the export ({code}): {message}") from None
        export_arn = description["ExportArn"]
        log.info(f"Export {export_arn} is {description.get('ExportStatus')}")
        return self._wait(client, export_arn, log)

    def _wait(self, client: Any, export_arn: str, log: Any) -> ExportDescription:
        delay, waited = self.poll_seconds, 0.0
        while True:
            description = client.describe_export(ExportArn=export_arn)["ExportDescription"]
            status = description["ExportStatus"]
            if status == "COMPLETED":
                return self._describe(description)
            if status == "FAILED":
                raise ExportFailedError(
                    f"export {export_arn} FAILED: {description.get('FailureCode', 'unknown')}: "
                    f"{description.get('FailureMessage', 'no message')}"
                )
            if waited >= self.timeout_seconds:
                raise ExportFailedError(f"export {export_arn} still {status} after {waited:.0f}s")
            log.info(f"Export {export_arn} is {status}; checking again in {delay:.0f}s")
            time.sleep(delay)
            waited += delay
            delay = min(delay * 2, self.max_poll_seconds)

    def _describe(self, description: dict[str, Any]) -> ExportDescription:
        incremental = description.get("IncrementalExportSpecification") or {}
        is_incremental = description.get("ExportType") == "INCREMENTAL_EXPORT"
        manifest = description.get("ExportManifest", "")
        return ExportDescription(
            export_arn=description["ExportArn"],
            export_type=description.get("ExportType", "FULL_EXPORT"),
            export_time=None if is_incremental else _utc(description.get("ExportTime")),
            export_from_time=_utc(incremental.get("ExportFromTime")) if is_incremental else None,
            export_to_time=_utc(incremental.get("ExportToTime")) if is_incremental else None,
            item_count=int(description.get("ItemCount", 0)),
            billed_size_bytes=int(description.get("BilledSizeBytes", 0)),
            manifest_location=f"s3://{description.get('S3Bucket', self.s3_bucket)}/{manifest}",
        )


def _utc(moment: datetime | None) -> datetime | None:
    return moment.astimezone(UTC) if moment else None
