from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ddb_iceberg.errors import ExportError
from ddb_iceberg.exports import ExportType, ExportView, ManifestSummary
from ddb_iceberg.exports.manifest import DataFileEntry, format_timestamp, parse_timestamp, to_micros

FULL_ID = "01768385930622-efd1a093"
INCREMENTAL_ID = "01768386924000-d339e52d"


def _summary_bytes(source: Path, export_id: str) -> bytes:
    return (source / "AWSDynamoDB" / export_id / "manifest-summary.json").read_bytes()


def test_parses_a_real_full_summary(test_table_source: Path) -> None:
    summary = ManifestSummary.from_json(_summary_bytes(test_table_source, FULL_ID), export=FULL_ID, file="s")
    assert summary.export_type is ExportType.FULL
    assert summary.export_id == FULL_ID
    assert summary.export_time == datetime(2026, 1, 14, 10, 18, 50, 622000, tzinfo=UTC)
    assert summary.item_count == 3
    assert summary.s3_prefix is None
    assert summary.output_view is None


def test_parses_a_real_incremental_summary(test_table_source: Path) -> None:
    raw = _summary_bytes(test_table_source, INCREMENTAL_ID)
    summary = ManifestSummary.from_json(raw, export=INCREMENTAL_ID, file="s")
    assert summary.export_type is ExportType.INCREMENTAL
    assert (summary.covers_from, summary.covers_to) == (
        datetime(2026, 1, 14, 10, 20, tzinfo=UTC),
        datetime(2026, 1, 14, 10, 35, tzinfo=UTC),
    )
    assert summary.output_view is ExportView.NEW_AND_OLD_IMAGES
    assert summary.billed_size_bytes == 10_000_000


@pytest.mark.parametrize("export_id", [FULL_ID, INCREMENTAL_ID, "01768388186000-4a2fc3ff"])
def test_serializes_summaries_byte_for_byte_as_aws(test_table_source: Path, export_id: str) -> None:
    raw = _summary_bytes(test_table_source, export_id)
    assert ManifestSummary.from_json(raw, export=export_id, file="s").to_json().encode() == raw


def test_serializes_manifest_files_lines_byte_for_byte(test_table_source: Path, airline_source: Path) -> None:
    for path in [
        *test_table_source.glob("AWSDynamoDB/*/manifest-files.json"),
        *airline_source.glob("*/*/*.json"),
    ]:
        if path.name != "manifest-files.json":
            continue
        for number, line in enumerate(path.read_text().splitlines(keepends=True), start=1):
            entry = DataFileEntry.from_json_line(line, export="x", file=path.name, line_number=number)
            assert entry.to_json_line() == line


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"version": "2099-01-01"}, "not a full .* or incremental"),
        ({"itemCount": "3"}, "field 'itemCount' has unexpected value"),
        ({"exportTime": "yesterday"}, "malformed field"),
        ({"exportFromTime": "2026-01-14T10:40:00.000Z"}, "exportFromTime at or after exportToTime"),
        ({"outputView": "KEYS_ONLY"}, "malformed field"),
    ],
)
def test_rejects_malformed_summaries(test_table_source: Path, change: dict[str, object], problem: str) -> None:
    export_id = FULL_ID if "exportTime" in change or "version" in change or "itemCount" in change else INCREMENTAL_ID
    raw = json.loads(_summary_bytes(test_table_source, export_id))
    raw.update(change)
    with pytest.raises(ExportError, match=problem) as caught:
        ManifestSummary.from_json(json.dumps(raw), export=export_id, file="manifest-summary.json")
    assert f"export {export_id}, file manifest-summary.json" in str(caught.value)


def test_missing_field_is_named(test_table_source: Path) -> None:
    raw = json.loads(_summary_bytes(test_table_source, FULL_ID))
    del raw["manifestFilesS3Key"]
    with pytest.raises(ExportError, match="lacks field 'manifestFilesS3Key'"):
        ManifestSummary.from_json(json.dumps(raw), export=FULL_ID, file="manifest-summary.json")


def test_timestamps_round_trip_at_millisecond_precision() -> None:
    moment = parse_timestamp("2026-01-14T10:18:50.622Z")
    assert format_timestamp(moment) == "2026-01-14T10:18:50.622Z"
    assert to_micros(moment) == 1_768_385_930_622_000
