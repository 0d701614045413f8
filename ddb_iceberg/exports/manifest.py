"""The two manifests of a DynamoDB export: manifest-summary.json and manifest-files.json.

Parsing is strict (every field AWS writes must be there with the right type) and serialization reproduces
AWS's bytes: compact JSON, AWS's key order, no trailing newline on the summary, one line per data file.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from ddb_iceberg.errors import ExportError, SettingError

FULL_EXPORT_VERSION = "2020-06-30"
INCREMENTAL_EXPORT_VERSION = "2023-08-01"


class ExportType(StrEnum):
    FULL = "FULL_EXPORT"
    INCREMENTAL = "INCREMENTAL_EXPORT"


class OutputFormat(StrEnum):
    DYNAMODB_JSON = "DYNAMODB_JSON"
    ION = "ION"


class ExportView(StrEnum):
    NEW_AND_OLD_IMAGES = "NEW_AND_OLD_IMAGES"
    NEW_IMAGE = "NEW_IMAGE"


# DynamoDB's rule for an incremental export's window (ExportTableToPointInTime's IncrementalExportSpecification).
MIN_WINDOW = timedelta(minutes=15)
MAX_WINDOW = timedelta(hours=24)
# The window this tool exports by, unless told otherwise (the schedule, the simulator).
DEFAULT_WINDOW = timedelta(hours=1)


def check_window_length(length: timedelta) -> None:
    """Refuse a window DynamoDB would refuse."""
    if not MIN_WINDOW <= length <= MAX_WINDOW:
        minutes = length / timedelta(minutes=1)
        raise SettingError(
            f"an incremental export window lasts 15 minutes to 24 hours (15 to 1440), not {minutes:g} minutes"
        )


def parse_timestamp(text: str) -> datetime:
    """Parse AWS's `YYYY-MM-DDTHH:MM:SS.mmmZ` into an aware UTC datetime."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def format_timestamp(moment: datetime) -> str:
    """Format a datetime the way export manifests do: UTC, millisecond precision, `Z`."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def format_micros(micros: int) -> str:
    """Format microseconds since the epoch the way export manifests do."""
    return format_timestamp(datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros))


def to_micros(moment: datetime) -> int:
    """Microseconds since the epoch, exactly (no float arithmetic)."""
    delta = moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def md5_base64(data: bytes) -> str:
    """Base64 MD5, as in md5Checksum and the .md5 side files."""
    return base64.b64encode(hashlib.md5(data).digest()).decode("ascii")


def single_part_etag(data: bytes) -> str:
    """S3's multipart ETag of an object uploaded in one part, as export manifests show it."""
    return hashlib.md5(hashlib.md5(data).digest()).hexdigest() + "-1"


_COMMON_FIELDS: tuple[tuple[str, type | tuple[type, ...]], ...] = (
    ("version", str),
    ("exportArn", str),
    ("startTime", str),
    ("endTime", str),
    ("tableArn", str),
    ("tableId", str),
)
_LOCATION_FIELDS: tuple[tuple[str, type | tuple[type, ...]], ...] = (
    ("s3Bucket", str),
    ("s3Prefix", (str, type(None))),
    ("s3SseAlgorithm", (str, type(None))),
    ("s3SseKmsKeyId", (str, type(None))),
    ("manifestFilesS3Key", str),
    ("billedSizeBytes", int),
    ("itemCount", int),
    ("outputFormat", str),
)
# AWS's field order, which `ManifestSummary.to_json` reproduces.
FULL_SUMMARY_FIELDS = (*_COMMON_FIELDS, ("exportTime", str), *_LOCATION_FIELDS)
INCREMENTAL_SUMMARY_FIELDS = (
    *_COMMON_FIELDS,
    ("exportFromTime", str),
    ("exportToTime", str),
    *_LOCATION_FIELDS,
    ("outputView", str),
    ("exportType", str),
)


@dataclass(frozen=True)
class ManifestSummary:
    """manifest-summary.json of one export (full or incremental)."""

    export_type: ExportType
    export_arn: str
    start_time: datetime
    end_time: datetime
    table_arn: str
    table_id: str
    s3_bucket: str
    s3_prefix: str | None
    s3_sse_algorithm: str | None
    s3_sse_kms_key_id: str | None
    manifest_files_s3_key: str
    billed_size_bytes: int
    item_count: int
    output_format: str
    export_time: datetime | None = None
    export_from_time: datetime | None = None
    export_to_time: datetime | None = None
    output_view: ExportView | None = None

    @property
    def export_id(self) -> str:
        return self.export_arn.rsplit("/", 1)[-1]

    @property
    def is_full(self) -> bool:
        return self.export_type is ExportType.FULL

    @property
    def covers_from(self) -> datetime:
        """Start of the time the export speaks for (a full export: its exportTime)."""
        moment = self.export_time if self.is_full else self.export_from_time
        assert moment is not None
        return moment

    @property
    def covers_to(self) -> datetime:
        """The point in time the table reflects after applying this export."""
        moment = self.export_time if self.is_full else self.export_to_time
        assert moment is not None
        return moment

    @classmethod
    def from_json(cls, text: str | bytes, *, export: str, file: str) -> ManifestSummary:
        def fail(problem: str) -> ExportError:
            return ExportError(export=export, file=file, problem=problem)

        try:
            raw = json.loads(text)
        except ValueError as error:
            raise fail(f"is not valid JSON ({error})") from None
        if not isinstance(raw, dict):
            raise fail("is not a JSON object")
        version = raw.get("version")
        if version == FULL_EXPORT_VERSION and "exportType" not in raw:
            fields, export_type = FULL_SUMMARY_FIELDS, ExportType.FULL
        elif version == INCREMENTAL_EXPORT_VERSION and raw.get("exportType") == ExportType.INCREMENTAL:
            fields, export_type = INCREMENTAL_SUMMARY_FIELDS, ExportType.INCREMENTAL
        else:
            raise fail(
                f"has version {version!r} and exportType {raw.get('exportType')!r}: not a full "
                f"({FULL_EXPORT_VERSION}) or incremental ({INCREMENTAL_EXPORT_VERSION}) export summary"
            )
        for name, expected in fields:
            if name not in raw:
                raise fail(f"lacks field {name!r}")
            if not isinstance(raw[name], expected) or isinstance(raw[name], bool):
                raise fail(f"field {name!r} has unexpected value {raw[name]!r}")
        try:
            times = {
                name: parse_timestamp(raw[name])
                for name in ("startTime", "endTime", "exportTime", "exportFromTime", "exportToTime")
                if name in raw
            }
            view = ExportView(raw["outputView"]) if "outputView" in raw else None
        except ValueError as error:
            raise fail(f"has a malformed field ({error})") from None
        summary = cls(
            export_type=export_type,
            export_arn=raw["exportArn"],
            start_time=times["startTime"],
            end_time=times["endTime"],
            table_arn=raw["tableArn"],
            table_id=raw["tableId"],
            s3_bucket=raw["s3Bucket"],
            s3_prefix=raw["s3Prefix"],
            s3_sse_algorithm=raw["s3SseAlgorithm"],
            s3_sse_kms_key_id=raw["s3SseKmsKeyId"],
            manifest_files_s3_key=raw["manifestFilesS3Key"],
            billed_size_bytes=raw["billedSizeBytes"],
            item_count=raw["itemCount"],
            output_format=raw["outputFormat"],
            export_time=times.get("exportTime"),
            export_from_time=times.get("exportFromTime"),
            export_to_time=times.get("exportToTime"),
            output_view=view,
        )
        if summary.item_count < 0 or summary.billed_size_bytes < 0:
            raise fail("has a negative itemCount or billedSizeBytes")
        if not summary.is_full and summary.covers_from >= summary.covers_to:
            raise fail("has exportFromTime at or after exportToTime")
        return summary

    def to_dict(self) -> dict[str, Any]:
        """The summary as AWS writes it, fields in AWS's order."""
        values: dict[str, Any] = {
            "version": FULL_EXPORT_VERSION if self.is_full else INCREMENTAL_EXPORT_VERSION,
            "exportArn": self.export_arn,
            "startTime": format_timestamp(self.start_time),
            "endTime": format_timestamp(self.end_time),
            "tableArn": self.table_arn,
            "tableId": self.table_id,
            "s3Bucket": self.s3_bucket,
            "s3Prefix": self.s3_prefix,
            "s3SseAlgorithm": self.s3_sse_algorithm,
            "s3SseKmsKeyId": self.s3_sse_kms_key_id,
            "manifestFilesS3Key": self.manifest_files_s3_key,
            "billedSizeBytes": self.billed_size_bytes,
            "itemCount": self.item_count,
            "outputFormat": self.output_format,
            "exportType": ExportType.INCREMENTAL.value,
        }
        if self.is_full:
            assert self.export_time is not None
            values["exportTime"] = format_timestamp(self.export_time)
            fields = FULL_SUMMARY_FIELDS
        else:
            assert self.export_from_time and self.export_to_time and self.output_view
            values["exportFromTime"] = format_timestamp(self.export_from_time)
            values["exportToTime"] = format_timestamp(self.export_to_time)
            values["outputView"] = self.output_view.value
            fields = INCREMENTAL_SUMMARY_FIELDS
        return {name: values[name] for name, _ in fields}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))


@dataclass(frozen=True)
class DataFileEntry:
    """One line of manifest-files.json."""

    item_count: int
    md5_checksum: str
    etag: str
    data_file_s3_key: str

    @classmethod
    def from_json_line(cls, line: str, *, export: str, file: str, line_number: int) -> DataFileEntry:
        def fail(problem: str) -> ExportError:
            return ExportError(export=export, file=file, line=line_number, problem=problem)

        try:
            raw = json.loads(line)
        except ValueError as error:
            raise fail(f"is not valid JSON ({error})") from None
        if not isinstance(raw, dict):
            raise fail("is not a JSON object")
        for name, expected in (
            ("itemCount", int),
            ("md5Checksum", str),
            ("etag", str),
            ("dataFileS3Key", str),
        ):
            if not isinstance(raw.get(name), expected) or isinstance(raw.get(name), bool):
                raise fail(f"lacks a valid {name!r}")
        if raw["itemCount"] < 0:
            raise fail("has a negative itemCount")
        return cls(raw["itemCount"], raw["md5Checksum"], raw["etag"], raw["dataFileS3Key"])

    def to_json_line(self) -> str:
        return (
            json.dumps(
                {
                    "itemCount": self.item_count,
                    "md5Checksum": self.md5_checksum,
                    "etag": self.etag,
                    "dataFileS3Key": self.data_file_s3_key,
                },
                separators=(",", ":"),
            )
            + "\n"
        )
