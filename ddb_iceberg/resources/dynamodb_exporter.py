"""The AWS exporter: `DynamoDBExporter`, exports through ExportTableToPointInTime, reused and retried safely."""

from __future__ import annotations

import hashlib
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import Field

from ddb_iceberg.errors import ExportFailedError
from ddb_iceberg.exports import ExportSource, ExportView, S3Options
from ddb_iceberg.exports.discovery import export_started_at
from ddb_iceberg.exports.manifest import ExportType, OutputFormat, format_timestamp
from ddb_iceberg.resources.exporter import ExportDescription, ExporterResource

# An export can only start after the moment it exports up to; the slack absorbs clock differences generously.
EXPORT_START_SLACK = timedelta(hours=1)
COMPLETED, IN_PROGRESS, FAILED = "COMPLETED", "IN_PROGRESS", "FAILED"
# How many FAILED exports of one window a start skips over (see `_run`) before it reports the last one.
MAX_FAILED_EXPORTS_SKIPPED = 10
# A FAILED export that a start returns is an earlier one (not the one just asked for) only if it started
# this much before the request: far more than the clocks of this host and DynamoDB differ.
EARLIER_EXPORT_MARGIN = timedelta(minutes=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The words a client token is derived from, as before the kinds were `ExportType`s: the same words keep every
# token what it was, so a retry straddling an upgrade still gets its export back from DynamoDB.
_TOKEN_WORDS = {ExportType.FULL: "full", ExportType.INCREMENTAL: "incremental"}
_AS_OF_NOW_TOKEN_WORD = "full-now"


def _started_at(export_arn: str) -> datetime | None:
    """When an export was requested, from its ARN (`<table ARN>/export/<export id>`)."""
    _, separator, export_id = export_arn.rpartition("/export/")
    return export_started_at(export_id) if separator else None


@dataclass(frozen=True)
class _WantedExport:
    """One export to take: the request's own parameters, and how to recognise it among the table's exports."""

    label: str
    export_type: ExportType
    specification: dict[str, Any]
    start: datetime | None  # ExportFromTime, or the full export's ExportTime (None: as of now)
    end: datetime | None  # ExportToTime
    view: str | None

    @property
    def reusable(self) -> bool:
        # "Now" is a new moment at every call: an earlier export of the table is never that moment.
        return self.start is not None

    @property
    def exports_up_to(self) -> datetime:
        moment = self.end or self.start
        assert moment is not None, "only a reusable export is looked for"
        return moment

    def is_described_by(self, description: dict[str, Any]) -> bool:
        if _export_type_of(description) != self.export_type.value:
            return False
        if self.export_type is ExportType.INCREMENTAL:
            incremental = description.get("IncrementalExportSpecification") or {}
            return (
                _same_moment(incremental.get("ExportFromTime"), self.start)
                and _same_moment(incremental.get("ExportToTime"), self.end)
                and incremental.get("ExportViewType", ExportView.NEW_AND_OLD_IMAGES.value) == self.view
            )
        return _same_moment(description.get("ExportTime"), self.start)


def _export_type_of(description: dict[str, Any]) -> str:
    # Without an ExportType, an export is a full one: the type DynamoDB takes when a request names none.
    return str(description.get("ExportType", ExportType.FULL.value))


def _same_moment(reported: datetime | None, wanted: datetime | None) -> bool:
    # Compared at the manifests' millisecond precision, whatever time zone boto3 parsed them into.
    return reported is not None and wanted is not None and format_timestamp(reported) == format_timestamp(wanted)


@dataclass
class _ExportProgress:
    """What became of each wanted export so far, by its position in the request."""

    completed: dict[int, ExportDescription]
    in_flight: dict[int, str]  # position -> export ARN
    failures: dict[int, str]


class DynamoDBExporter(ExporterResource):
    """Real exports through DynamoDB's ExportTableToPointInTime, into an S3 bucket and prefix.

    Before starting an export it looks for one of the same table, window (or explicit export time) and
    destination: a COMPLETED one is reused and an IN_PROGRESS one waited for, so a retry never pays twice, even
    after the ClientToken's 8-hour idempotency has run out.
    """

    table_arn: str = Field(description="ARN of the DynamoDB table (point-in-time recovery must be on).")
    s3_bucket: str = Field(description="Bucket the exports are written to.")
    s3_prefix: str = Field(default="", description="Prefix in the bucket; AWSDynamoDB/ goes under it.")
    region: str | None = Field(default=None, description="AWS Region of the table (default: AWS's chain).")
    view: str = Field(default=ExportView.NEW_AND_OLD_IMAGES.value, description="Incremental export view type.")
    s3_sse_algorithm: str | None = Field(default=None, description="AES256 or KMS (default: the bucket's).")
    s3_sse_kms_key_id: str | None = Field(default=None, description="KMS key for KMS encryption.")
    poll_seconds: float = Field(default=15.0, description="First wait between describe_export calls.")
    max_poll_seconds: float = Field(default=120.0, description="Longest wait between describe_export calls.")
    timeout_seconds: float = Field(
        default=6 * 3600.0, description="Give up waiting for an export that is still running after this long."
    )
    max_concurrent_exports: int = Field(
        default=8,
        description="Most exports a backfill has running at once; it starts the next as one finishes. Stays "
        "well within DynamoDB's limit on concurrent exports per account (300), which other exporters share.",
    )
    endpoint_url: str | None = Field(default=None, description="Endpoint override (local stand-ins only).")

    @property
    def source_uri(self) -> str:
        return f"s3://{self.s3_bucket}/{self.s3_prefix.strip('/')}".rstrip("/")

    def export_source(self) -> ExportSource:
        return ExportSource.from_uri(self.source_uri, S3Options(region=self.region, endpoint_url=self.endpoint_url))

    def _client(self) -> Any:
        import boto3

        return boto3.client("dynamodb", region_name=self.region, endpoint_url=self.endpoint_url)

    def client_token(
        self,
        export_type: ExportType,
        start: datetime | None,
        end: datetime | None,
        failed_exports: int = 0,
        *,
        as_of_now: bool = False,
    ) -> str:
        """Derived from table, window and destination, so a retried run gets the same export back, never a second
        one; `failed_exports` (how many exports of this window FAILED already) makes a retry after a failure
        start a new export instead of getting the failed one back. `as_of_now`: a full export without an
        ExportTime, requested at `start`."""
        parts = [
            self.table_arn,
            _AS_OF_NOW_TOKEN_WORD if as_of_now else _TOKEN_WORDS[export_type],
            start.isoformat() if start else "",
            end.isoformat() if end else "",
            self.s3_bucket,
            self.s3_prefix.strip("/"),
            self.view if export_type is ExportType.INCREMENTAL else "",
            str(failed_exports),
        ]
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
        specification: dict[str, Any] = {"ExportType": ExportType.FULL.value}
        if export_time is None:
            wanted = _WantedExport("the full export as of now", ExportType.FULL, specification, None, None, None)
        else:
            specification["ExportTime"] = export_time
            label = f"the full export as of {format_timestamp(export_time)}"
            wanted = _WantedExport(label, ExportType.FULL, specification, export_time, None, None)
        return self._take_exports([wanted], log)[0]

    def export_incremental(self, start: datetime, end: datetime, log: Any) -> ExportDescription:
        return self.export_incrementals([(start, end)], log)[0]

    def export_incrementals(self, windows: Sequence[tuple[datetime, datetime]], log: Any) -> list[ExportDescription]:
        """Start the windows' exports together, at most `max_concurrent_exports` at a time, and wait for all."""
        wanted = [
            _WantedExport(
                f"window [{format_timestamp(start)}, {format_timestamp(end)})",
                ExportType.INCREMENTAL,
                {
                    "ExportType": ExportType.INCREMENTAL.value,
                    "IncrementalExportSpecification": {
                        "ExportFromTime": start,
                        "ExportToTime": end,
                        "ExportViewType": self.view,
                    },
                },
                start,
                end,
                self.view,
            )
            for start, end in windows
        ]
        return self._take_exports(wanted, log)

    def _take_exports(self, wanted: list[_WantedExport], log: Any) -> list[ExportDescription]:
        if self.max_concurrent_exports < 1:
            raise ValueError(f"max_concurrent_exports must be at least 1, not {self.max_concurrent_exports}")
        client = self._client()
        self.check_point_in_time_recovery(client)
        progress = _ExportProgress(completed={}, in_flight={}, failures={})
        to_start = self._plan(client, wanted, progress, log)
        self._run(client, wanted, to_start, progress, log)
        if progress.failures:
            raise ExportFailedError(self._failure_report(wanted, progress))
        return [progress.completed[position] for position in range(len(wanted))]

    def _plan(
        self, client: Any, wanted: list[_WantedExport], progress: _ExportProgress, log: Any
    ) -> deque[tuple[int, int]]:
        """Reuse what exists already; return the exports still to start, with how many of each FAILED already."""
        existing = self._existing_exports(client, wanted)
        to_start: deque[tuple[int, int]] = deque()
        for position, export in enumerate(wanted):
            found = existing.get(position, [])
            by_status = {
                status: [description for description in found if description.get("ExportStatus") == status]
                for status in (COMPLETED, IN_PROGRESS, FAILED)
            }
            if by_status[COMPLETED]:
                description = by_status[COMPLETED][0]
                log.info(f"Reusing export {description['ExportArn']} of {export.label}: it COMPLETED already")
                progress.completed[position] = self._describe(description)
            elif by_status[IN_PROGRESS]:
                export_arn = by_status[IN_PROGRESS][0]["ExportArn"]
                log.info(f"Waiting for export {export_arn} of {export.label}: it is IN_PROGRESS already")
                progress.in_flight[position] = export_arn
            else:
                failed = by_status[FAILED]
                if failed:
                    latest = max(failed, key=lambda description: description.get("StartTime") or _EPOCH)
                    log.warning(
                        f"{len(failed)} earlier export(s) of {export.label} FAILED (latest: {_failure_of(latest)}); "
                        "starting a new one"
                    )
                to_start.append((position, len(failed)))
        return to_start

    def _token(self, export: _WantedExport, failed_exports: int) -> str:
        if export.start is None:
            # Fresh at every call: within 8 hours the same token would bring back the earlier "now".
            return self.client_token(export.export_type, datetime.now(UTC), None, failed_exports, as_of_now=True)
        return self.client_token(export.export_type, export.start, export.end, failed_exports)

    def _existing_exports(self, client: Any, wanted: list[_WantedExport]) -> dict[int, list[dict[str, Any]]]:
        """The table's exports (as described) that are one of the wanted ones, by the wanted one's position."""
        reusable = [(position, export) for position, export in enumerate(wanted) if export.reusable]
        if not reusable:
            return {}
        export_types = {export.export_type.value for _, export in reusable}
        # Listing only says ARN, status and type; the window needs a describe_export. An export that started
        # before the earliest wanted moment cannot be one of them. ListExports lists a table's exports "in reverse
        # alphanumeric order of ExportArn" (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/
        # API_ListExports.html), and an ARN ends in its zero-padded request time: newest first. So the listing
        # stops at the first export requested before that moment: a lookup reads the newest pages only, however
        # many exports the table has had (90 days of them: 8,640 at 15-minute windows).
        earliest = min(export.exports_up_to for _, export in reusable) - EXPORT_START_SLACK
        candidates: list[str] = []
        for summary in self._list_exports(client):
            started = _started_at(summary["ExportArn"])
            if started is not None and started < earliest:
                break
            if _export_type_of(summary) in export_types:
                candidates.append(summary["ExportArn"])
        found: dict[int, list[dict[str, Any]]] = {}
        for export_arn in candidates:
            response = self._call(client, "describe", client.describe_export, ExportArn=export_arn)
            description: dict[str, Any] = response["ExportDescription"]
            if not self._is_in_destination(description):
                continue
            for position, export in reusable:
                if export.is_described_by(description):
                    found.setdefault(position, []).append(description)
        return found

    def _list_exports(self, client: Any) -> Iterator[dict[str, Any]]:
        arguments: dict[str, Any] = {"TableArn": self.table_arn, "MaxResults": 25}
        while True:
            page = self._call(client, "list", client.list_exports, **arguments)
            yield from page.get("ExportSummaries", [])
            if not page.get("NextToken"):
                return
            arguments["NextToken"] = page["NextToken"]

    def _is_in_destination(self, description: dict[str, Any]) -> bool:
        dynamodb_json = OutputFormat.DYNAMODB_JSON.value
        return (
            description.get("S3Bucket") == self.s3_bucket
            and (description.get("S3Prefix") or "").strip("/") == self.s3_prefix.strip("/")
            and description.get("ExportFormat", dynamodb_json) == dynamodb_json
        )

    def _call(self, client: Any, what: str, operation: Any, **arguments: Any) -> Any:
        try:
            return operation(**arguments)
        except client.exceptions.ClientError as error:
            code, message = _error_of(error)
            raise ExportFailedError(
                f"DynamoDB refused to {what} the table's exports ({code}): {message}. Reusing earlier exports "
                "needs dynamodb:ListExports and dynamodb:DescribeExport"
            ) from None

    def _start(self, client: Any, export: _WantedExport, token: str) -> dict[str, Any]:
        arguments: dict[str, Any] = {
            "TableArn": self.table_arn,
            "S3Bucket": self.s3_bucket,
            "ExportFormat": OutputFormat.DYNAMODB_JSON.value,
            "ClientToken": token,
            **export.specification,
        }
        if self.s3_prefix:
            arguments["S3Prefix"] = self.s3_prefix.strip("/")
        if self.s3_sse_algorithm:
            arguments["S3SseAlgorithm"] = self.s3_sse_algorithm
        if self.s3_sse_kms_key_id:
            arguments["S3SseKmsKeyId"] = self.s3_sse_kms_key_id
        description: dict[str, Any] = client.export_table_to_point_in_time(**arguments)["ExportDescription"]
        return description

    def _run(
        self,
        client: Any,
        wanted: list[_WantedExport],
        to_start: deque[tuple[int, int]],
        progress: _ExportProgress,
        log: Any,
    ) -> None:
        """Keep up to `max_concurrent_exports` exports running, starting the next as one ends, until all ended.

        All that fit are started before the first poll, and each poll round describes every export in flight, so
        a backfill's exports run side by side on DynamoDB's side; one failing stops none of the others.
        """
        delay, waited = self.poll_seconds, 0.0
        waiting_since: dict[int, float] = {}
        while to_start or progress.in_flight:
            while to_start and len(progress.in_flight) < self.max_concurrent_exports:
                position, failed_already = to_start.popleft()
                requested_at = datetime.now(UTC)
                try:
                    description = self._start(client, wanted[position], self._token(wanted[position], failed_already))
                except client.exceptions.ClientError as error:
                    code, message = _error_of(error)
                    progress.failures[position] = f"DynamoDB refused the export ({code}): {message}"
                    continue
                status = description.get("ExportStatus")
                log.info(f"Export {description['ExportArn']} of {wanted[position].label} is {status}")
                if (
                    status == FAILED
                    and failed_already < MAX_FAILED_EXPORTS_SKIPPED
                    and _started_before(description, requested_at - EARLIER_EXPORT_MARGIN)
                ):
                    # The token brought back an earlier, FAILED export that the listing did not show (a new
                    # export is never that old): the next token starts a new one.
                    log.warning(f"{wanted[position].label}: {_failure_of(description)}; starting a new export")
                    to_start.appendleft((position, failed_already + 1))
                    continue
                self._record(position, description, progress)
            if not progress.in_flight:
                continue
            for position in progress.in_flight:
                waiting_since.setdefault(position, waited)
            if any(waited - waiting_since[position] >= self.timeout_seconds for position in progress.in_flight):
                self._give_up(to_start, progress, waited)
                return
            log.info(f"{len(progress.in_flight)} export(s) IN_PROGRESS; checking again in {delay:.0f}s")
            time.sleep(delay)
            waited += delay
            delay = min(delay * 2, self.max_poll_seconds)
            for position, export_arn in list(progress.in_flight.items()):
                self._record(position, client.describe_export(ExportArn=export_arn)["ExportDescription"], progress)

    def _record(self, position: int, description: dict[str, Any], progress: _ExportProgress) -> None:
        status = description.get("ExportStatus")
        if status == COMPLETED:
            progress.in_flight.pop(position, None)
            progress.completed[position] = self._describe(description)
        elif status == FAILED:
            progress.in_flight.pop(position, None)
            progress.failures[position] = f"export {description['ExportArn']} FAILED: {_failure_of(description)}"
        else:
            progress.in_flight[position] = description["ExportArn"]

    def _give_up(self, to_start: deque[tuple[int, int]], progress: _ExportProgress, waited: float) -> None:
        for position, export_arn in progress.in_flight.items():
            progress.failures[position] = (
                f"export {export_arn} still IN_PROGRESS after {self.timeout_seconds:.0f}s "
                "(a retry waits for it, never starts another)"
            )
        for position, _ in to_start:
            progress.failures[position] = f"not started: gave up after {waited:.0f}s waiting for the others"
        progress.in_flight.clear()
        to_start.clear()

    def _failure_report(self, wanted: list[_WantedExport], progress: _ExportProgress) -> str:
        lines = [f"{wanted[position].label}: {failure}" for position, failure in sorted(progress.failures.items())]
        if len(wanted) == 1:
            return lines[0]
        return (
            f"{len(progress.failures)} of {len(wanted)} exports did not complete ({len(progress.completed)} did; "
            "a retry reuses those and starts new exports for the others):\n" + "\n".join(lines)
        )

    def _describe(self, description: dict[str, Any]) -> ExportDescription:
        incremental = description.get("IncrementalExportSpecification") or {}
        export_type = ExportType(_export_type_of(description))
        is_incremental = export_type is ExportType.INCREMENTAL
        manifest = description.get("ExportManifest", "")
        return ExportDescription(
            export_arn=description["ExportArn"],
            export_type=export_type,
            export_time=None if is_incremental else _utc(description.get("ExportTime")),
            export_from_time=_utc(incremental.get("ExportFromTime")) if is_incremental else None,
            export_to_time=_utc(incremental.get("ExportToTime")) if is_incremental else None,
            item_count=int(description.get("ItemCount", 0)),
            billed_size_bytes=int(description.get("BilledSizeBytes", 0)),
            manifest_location=f"s3://{description.get('S3Bucket', self.s3_bucket)}/{manifest}",
            price_per_gb_usd=self.export_price_per_gb_usd,
        )


def _started_before(description: dict[str, Any], moment: datetime) -> bool:
    started = _utc(description.get("StartTime")) or _started_at(description["ExportArn"])
    return started is not None and started < moment


def _failure_of(description: dict[str, Any]) -> str:
    return f"{description.get('FailureCode') or 'unknown'}: {description.get('FailureMessage') or 'no message'}"


def _error_of(error: Any) -> tuple[str, str]:
    details = error.response.get("Error", {})
    return details.get("Code", ""), details.get("Message", str(error))


def _utc(moment: datetime | None) -> datetime | None:
    return moment.astimezone(UTC) if moment else None
