"""Finding, classifying and ordering exports under a local directory or an S3 prefix."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ddb_iceberg.errors import SettingError
from ddb_iceberg.exports import ExportSource, ExportType, discover_exports, find_gaps
from ddb_iceberg_tests.helpers import MotoServer, copy_tree


def test_lists_and_orders_the_real_exports(test_table_source: Path) -> None:
    listing = discover_exports(ExportSource.from_uri(str(test_table_source)))
    assert [e.export_id for e in listing.full_exports] == ["01768385930622-efd1a093"]
    assert [e.export_id for e in listing.incremental_exports] == [
        "01768386924000-d339e52d",
        "01768388186000-4a2fc3ff",
    ]
    assert all(e.summary.export_type is ExportType.INCREMENTAL for e in listing.incremental_exports)
    assert listing.incomplete == ()  # the shared data/ folder is not an export


def test_finds_the_real_69_second_gap(test_table_source: Path) -> None:
    listing = discover_exports(ExportSource.from_uri(str(test_table_source)))
    (gap,) = find_gaps(listing.full_exports[0].summary.covers_to, listing.incremental_exports)
    assert gap.start == datetime(2026, 1, 14, 10, 18, 50, 622000, tzinfo=UTC)
    assert gap.end == datetime(2026, 1, 14, 10, 20, tzinfo=UTC)
    assert gap.end - gap.start == timedelta(seconds=69, milliseconds=378)


def test_windows_that_tile_or_overlap_leave_no_gap(test_table_source: Path) -> None:
    listing = discover_exports(ExportSource.from_uri(str(test_table_source)))
    first, second = listing.incremental_exports
    # Measured from the first window's start, the two real windows tile without a gap.
    assert find_gaps(first.summary.covers_from, [first, second]) == []


def test_in_progress_exports_are_listed_as_incomplete(tmp_path: Path, test_table_source: Path) -> None:
    root = copy_tree(test_table_source, tmp_path / "table")
    running = root / "AWSDynamoDB" / "01768390000000-0badc0de"
    running.mkdir()
    (running / "_started").write_bytes(b"")
    listing = discover_exports(ExportSource.from_uri(str(root)))
    assert listing.incomplete == ("01768390000000-0badc0de",)
    assert len(listing.exports) == 3


def test_an_empty_source_has_no_exports(tmp_path: Path) -> None:
    listing = discover_exports(ExportSource.from_uri(str(tmp_path)))
    assert listing.exports == ()


def test_prefixed_export_in_a_local_copy_of_the_prefix(airline_source: Path) -> None:
    listing = discover_exports(ExportSource.from_uri(str(airline_source)))
    (export,) = listing.full_exports
    assert export.summary.s3_prefix == "public-s3-files/Output_Airline.csv"


def test_rejects_unsupported_schemes() -> None:
    with pytest.raises(SettingError, match="only local directories and s3://"):
        ExportSource.from_uri("gs://bucket/prefix")


@pytest.mark.parametrize("prefix", ["", "exports/orders", "public-s3-files/Output_Airline.csv"])
def test_reads_exports_from_s3(moto_server: MotoServer, test_table_source: Path, prefix: str) -> None:
    bucket = f"exports-{abs(hash(prefix)) % 10_000}"
    moto_server.client("s3").create_bucket(Bucket=bucket)
    moto_server.upload_tree(test_table_source, bucket, prefix)
    uri = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
    listing = discover_exports(ExportSource.from_uri(uri, moto_server.s3_options))
    assert [e.export_id for e in listing.exports] == [
        "01768385930622-efd1a093",
        "01768386924000-d339e52d",
        "01768388186000-4a2fc3ff",
    ]
    # The manifests say s3Prefix null: keys resolve inside whatever prefix the source names.
    assert [e.verify() for e in listing.exports] == [3, 6, 5]
