"""Export housekeeping: the exports a table has applied go once older than the retention; nothing else does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ddb_iceberg.engine.export_housekeeping import remove_applied_exports
from ddb_iceberg.engine.ledger import LedgerEntry
from ddb_iceberg.errors import SettingError
from ddb_iceberg.exports import ExportSource, ManifestSummary, discover_exports
from ddb_iceberg.simulator import ExportTarget, SimulatedTable, SimulationConfig, write_full_export, write_series
from ddb_iceberg_tests.helpers import MotoServer, add_incomplete_export, copy_tree

LATER = datetime(2026, 6, 1, tzinfo=UTC)  # months after the simulated exports of January 2026
QUARTER = timedelta(minutes=15)


def _series(root: Path, windows: int = 8) -> tuple[SimulatedTable, list[ManifestSummary]]:
    table = SimulatedTable(SimulationConfig(seed=11, initial_items=20, writes_per_hour=40))
    target = ExportTarget(ExportSource.from_uri(str(root)), "simulated-exports", None, partitions=2)
    return table, write_series(table, target, windows=windows, window_length=QUARTER)


def _ledger(source: ExportSource, baseline: ManifestSummary, reflects: datetime) -> LedgerEntry:
    return LedgerEntry(
        snapshot_id=1,
        reflects=reflects,
        applied_exports=(),
        baseline_export=baseline.export_id,
        baseline_time=baseline.covers_to,
        table_arn=baseline.table_arn,
        source=source.location,
    )


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_applied_exports_older_than_the_retention_go_with_their_data_files(tmp_path: Path) -> None:
    root = tmp_path / "exports"
    _, summaries = _series(root)
    source = ExportSource.from_uri(str(root))
    full, windows = summaries[0], summaries[1:]
    before = {e.export_id: e for e in discover_exports(source).exports}
    reflects = windows[4].covers_to  # five windows applied, three not yet

    result = remove_applied_exports(source, _ledger(source, full, reflects), now=LATER)

    assert result.exports_removed == [w.export_id for w in windows[:5]]
    left = discover_exports(source)
    assert [e.export_id for e in left.exports] == [full.export_id] + [w.export_id for w in windows[5:]]
    # The shared data/ folder keeps exactly the files of the exports still there.
    kept_data = {before[e.export_id].data_file_path(entry) for e in left.exports for entry in e.data_files}
    assert {f"{root.as_posix()}/{name}" for name in _files(root) if "/data/" in f"/{name}"} == kept_data
    assert not any((root / "AWSDynamoDB" / w.export_id).exists() for w in windows[:5])
    assert result.files_removed == 5 * (2 + 5) and result.bytes_removed > 0  # 2 data files, 5 folder files each
    # Run again: nothing more to remove.
    assert remove_applied_exports(source, _ledger(source, full, reflects), now=LATER).exports_removed == []


def test_nothing_within_the_retention_and_nothing_in_a_dry_run_goes(tmp_path: Path) -> None:
    root = tmp_path / "exports"
    _, summaries = _series(root)
    source = ExportSource.from_uri(str(root))
    ledger = _ledger(source, summaries[0], summaries[-1].covers_to)
    files = _files(root)

    recent = remove_applied_exports(source, ledger, now=summaries[-1].covers_to + timedelta(days=39))
    assert (recent.exports_removed, _files(root)) == ([], files)
    dry = remove_applied_exports(source, ledger, now=LATER, dry_run=True)
    assert dry.exports_removed == [s.export_id for s in summaries[1:]]
    assert dry.files_removed > 0 and _files(root) == files
    assert "would remove" in dry.describe()


def test_the_baseline_and_the_newest_full_export_since_stay_older_full_exports_go(tmp_path: Path) -> None:
    root = tmp_path / "exports"
    table, summaries = _series(root)
    target = ExportTarget(ExportSource.from_uri(str(root)), "simulated-exports", None, partitions=2)
    source = ExportSource.from_uri(str(root))
    before_baseline = write_full_export(table, target, summaries[0].covers_to - timedelta(hours=2))
    newer = [write_full_export(table, target, summaries[n].covers_to) for n in (3, 5)]

    result = remove_applied_exports(source, _ledger(source, summaries[0], summaries[-1].covers_to), now=LATER)

    full_left = [e.export_id for e in discover_exports(source).full_exports]
    assert full_left == [summaries[0].export_id, newer[1].export_id]
    assert {before_baseline.export_id, newer[0].export_id} <= set(result.exports_removed)
    assert result.exports_kept == 2


def test_exports_not_applied_of_another_table_or_not_complete(tmp_path: Path, test_table_source: Path) -> None:
    root = tmp_path / "exports"
    _, summaries = _series(root)
    source = ExportSource.from_uri(str(root))
    # Another table's exports under the same prefix, and an export that never completed (a FAILED one's folder).
    other = copy_tree(test_table_source / "AWSDynamoDB" / "01768386924000-d339e52d", root / "AWSDynamoDB" / "x")
    other.rename(root / "AWSDynamoDB" / "01768386924000-d339e52d")
    failed = add_incomplete_export(root, "01767300000000-0badc0de")

    result = remove_applied_exports(source, _ledger(source, summaries[0], summaries[2].covers_to), now=LATER)

    assert result.exports_removed == [s.export_id for s in summaries[1:3]]
    assert result.incomplete_removed == ["01767300000000-0badc0de"] and not failed.exists()
    assert (root / "AWSDynamoDB" / "01768386924000-d339e52d" / "manifest-summary.json").exists()
    assert [e.export_id for e in discover_exports(source).incremental_exports] == [
        *(s.export_id for s in summaries[3:]),
        "01768386924000-d339e52d",
    ]


def test_a_source_the_ledger_does_not_name_is_refused_and_an_unnamed_one_left_alone(tmp_path: Path) -> None:
    root = tmp_path / "exports"
    _, summaries = _series(root, windows=2)
    source = ExportSource.from_uri(str(root))
    files = _files(root)
    elsewhere = _ledger(ExportSource.from_uri(str(tmp_path / "elsewhere")), summaries[0], summaries[-1].covers_to)
    with pytest.raises(SettingError, match="refusing to remove exports from a source it does not name"):
        remove_applied_exports(source, elsewhere, now=LATER)
    older_sync = _ledger(source, summaries[0], summaries[-1].covers_to)
    unnamed = LedgerEntry(**{**older_sync.__dict__, "source": ""})
    assert "names no export source" in remove_applied_exports(source, unnamed, now=LATER).warnings[0]
    assert remove_applied_exports(source, None, now=LATER).exports_removed == []
    assert _files(root) == files


def test_on_s3_without_list_permission_a_run_that_died_halfway_is_finished_by_the_next(
    moto_server: MotoServer, tmp_path: Path
) -> None:
    root = tmp_path / "exports"
    _, summaries = _series(root, windows=4)
    bucket = "housekeeping-without-list"
    source = moto_server.source_without_list_permission(root, bucket, "ddb/orders")
    s3 = moto_server.client("s3")
    ledger = _ledger(source, summaries[0], summaries[-1].covers_to)
    # The first run died after removing one export's data files and its manifest-summary.json.
    died = summaries[1].export_id
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="ddb/orders/AWSDynamoDB/")["Contents"]]
    first_export = discover_exports(ExportSource.from_uri(str(root))).incremental_exports[0]
    for entry in first_export.data_files:
        s3.delete_object(Bucket=bucket, Key=f"ddb/orders/{entry.data_file_s3_key}")
    s3.delete_object(Bucket=bucket, Key=f"ddb/orders/AWSDynamoDB/{died}/manifest-summary.json")

    result = remove_applied_exports(source, ledger, now=LATER)

    assert result.incomplete_removed == [died]
    assert result.exports_removed == [s.export_id for s in summaries[2:]]
    left = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="ddb/orders/AWSDynamoDB/")["Contents"]]
    assert left == sorted(k for k in keys if f"/{summaries[0].export_id}/" in k)
