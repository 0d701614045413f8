"""Finding, classifying and ordering exports under a local directory or an S3 prefix."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ddb_iceberg.errors import ExportError, SettingError
from ddb_iceberg.exports import (
    ExportListing,
    ExportSource,
    ExportType,
    ManifestSummary,
    discover_exports,
    discover_from_latest_full,
    find_gaps,
    load_export,
)
from ddb_iceberg.exports.manifest import md5_base64
from ddb_iceberg.simulator import ExportTarget, SimulatedTable, SimulationConfig, write_full_export, write_series
from ddb_iceberg_tests.helpers import MotoServer, add_incomplete_export, copy_tree


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
    add_incomplete_export(root, "01768390000000-0badc0de")
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


# -- A source's history is listed once, and only the exports that may still apply are read -------------------


@pytest.fixture(scope="module")
def long_series(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[ManifestSummary]]:
    """A full export and 60 quarter-hour windows of a small table (each window an export folder of its own)."""
    root = tmp_path_factory.mktemp("long-series")
    table = SimulatedTable(SimulationConfig(seed=3, initial_items=20, writes_per_hour=40))
    target = ExportTarget(ExportSource.from_uri(str(root)), "simulated-exports", None, partitions=1)
    return root, write_series(table, target, windows=60, window_length=timedelta(minutes=15))


def test_exports_requested_before_the_point_a_table_reflects_are_not_read(
    long_series: tuple[Path, list[ManifestSummary]],
) -> None:
    root, summaries = long_series
    reflects = summaries[-3].covers_to  # two windows still to apply
    listing = discover_exports(ExportSource.from_uri(str(root)), after=reflects)
    assert listing.folders == 61
    # The two windows after it, plus the one requested within the clock margin before it: not the other 58.
    assert [e.export_id for e in listing.incremental_exports][-2:] == [s.export_id for s in summaries[-2:]]
    assert listing.read <= 3
    assert listing.full_exports == ()


def test_a_new_table_reads_the_latest_full_export_and_what_follows_it_not_the_history_before(
    tmp_path: Path, long_series: tuple[Path, list[ManifestSummary]]
) -> None:
    root = copy_tree(long_series[0], tmp_path / "source")
    table = SimulatedTable(SimulationConfig(seed=3, initial_items=20, writes_per_hour=40))
    target = ExportTarget(ExportSource.from_uri(str(root)), "simulated-exports", None, partitions=1)
    newest_window_end = long_series[1][-1].covers_to
    # A second full export, of a moment 30 minutes back: two windows after that moment were requested before it.
    rebaseline = write_full_export(table, target, newest_window_end - timedelta(minutes=30))
    (root / "AWSDynamoDB" / rebaseline.export_id).rename(
        root / "AWSDynamoDB" / f"{to_millis(newest_window_end + timedelta(hours=1)):014d}-{rebaseline.export_id[-8:]}"
    )
    _rename_in_summary(root, rebaseline, newest_window_end + timedelta(hours=1))

    listing = discover_from_latest_full(ExportSource.from_uri(str(root)))
    (baseline,) = [e for e in listing.full_exports if e.summary.covers_to == rebaseline.covers_to]
    assert plan_windows_after(listing, baseline.summary.covers_to) == [s.export_id for s in long_series[1][-2:]]
    assert listing.read <= 5  # the new full export, the two windows after its moment, and the clock margin's


def test_an_export_id_that_does_not_parse_is_always_read(tmp_path: Path, test_table_source: Path) -> None:
    root = copy_tree(test_table_source, tmp_path / "table")
    add_incomplete_export(root, "copied-by-hand")
    listing = discover_exports(ExportSource.from_uri(str(root)), after=datetime(2030, 1, 1, tzinfo=UTC))
    assert (listing.read, listing.incomplete) == (1, ("copied-by-hand",))


def test_checksum_files_are_read_under_either_name(tmp_path: Path, test_table_source: Path) -> None:
    # DynamoDB's documentation names them `.checksum`; the real exports of January 2026 have `.md5`.
    root = copy_tree(test_table_source, tmp_path / "table")
    folder = root / "AWSDynamoDB" / "01768386924000-d339e52d"
    (folder / "manifest-files.md5").rename(folder / "manifest-files.checksum")
    assert len(load_export(ExportSource.from_uri(str(root)), folder.name).data_files) == 4
    (folder / "manifest-files.checksum").write_bytes(b"AAAAAAAAAAAAAAAAAAAAAA==")
    with pytest.raises(ExportError, match=r"manifest-files\.json: does not match manifest-files\.checksum"):
        load_export(ExportSource.from_uri(str(root)), folder.name)


def test_a_missing_export_and_an_incomplete_one_are_named_by_id(tmp_path: Path, test_table_source: Path) -> None:
    root = copy_tree(test_table_source, tmp_path / "table")
    add_incomplete_export(root, "01768390000000-0badc0de")
    source = ExportSource.from_uri(str(root))
    with pytest.raises(ExportError, match=r"export 01768390000000-0badc0de.*still in progress, or failed"):
        load_export(source, "01768390000000-0badc0de")
    with pytest.raises(ExportError, match="export 01768399999999-00000000: is not under"):
        load_export(source, "01768399999999-00000000")


def test_without_list_permission_a_missing_key_is_access_denied_and_discovery_still_reports_it(
    moto_server: MotoServer, test_table_source: Path, tmp_path: Path
) -> None:
    # S3 answers 403, not 404, for a missing key when the caller may not list the bucket there (the rule in
    # ddb_iceberg.loopback_aws.s3_rules): an export still running (only `_started`) and a missing checksum file
    # must be found out from listings, not by asking for the key.
    root = copy_tree(test_table_source, tmp_path / "table")
    (root / "AWSDynamoDB" / "01768386924000-d339e52d" / "manifest-summary.md5").unlink()
    add_incomplete_export(root, "01768390000000-0badc0de")
    bucket = "exports-without-list"
    source = moto_server.source_without_list_permission(root, bucket)
    with pytest.raises(OSError, match=r"ACCESS_DENIED|Forbidden|403"):  # what a HEAD of a missing key gets
        source.filesystem.get_file_info(f"{bucket}/AWSDynamoDB/01768390000000-0badc0de/manifest-summary.json")

    listing = discover_exports(source)
    assert listing.incomplete == ("01768390000000-0badc0de",)
    assert [e.verify() for e in listing.exports] == [3, 6, 5]
    with pytest.raises(ExportError, match="still in progress, or failed"):
        load_export(source, "01768390000000-0badc0de")
    # A data file its manifest lists but S3 no longer holds: the error names the export and the file.
    window = listing.incremental_exports[0]
    moto_server.client("s3").delete_object(Bucket=bucket, Key=window.data_files[0].data_file_s3_key)
    with pytest.raises(ExportError, match=rf"export {window.export_id}, file AWSDynamoDB/data/.*: cannot be read"):
        window.verify()


def plan_windows_after(listing: ExportListing, moment: datetime) -> list[str]:
    return [e.export_id for e in listing.incremental_exports if e.summary.covers_to > moment]


def to_millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _rename_in_summary(root: Path, summary: ManifestSummary, requested: datetime) -> None:
    """Make a full export look requested at `requested` (its folder renamed already), manifests consistent."""
    new_id = f"{to_millis(requested):014d}-{summary.export_id[-8:]}"
    folder = root / "AWSDynamoDB" / new_id
    text = (folder / "manifest-summary.json").read_text().replace(summary.export_id, new_id)
    (folder / "manifest-summary.json").write_text(text)
    (folder / "manifest-summary.md5").write_bytes(md5_base64(text.encode()).encode())
    files = (folder / "manifest-files.json").read_text().replace(summary.export_id, new_id)
    (folder / "manifest-files.json").write_text(files)
    (folder / "manifest-files.md5").write_bytes(md5_base64(files.encode()).encode())
