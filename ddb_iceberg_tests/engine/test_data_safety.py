"""Ways the table could stop equalling DynamoDB, each made exact or refused with the table unchanged."""

from __future__ import annotations

import gzip
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ddb_iceberg.catalog_access import local_catalog, table_status
from ddb_iceberg.engine.ledger import LEDGER_PROPERTY, REFLECTS_TIME
from ddb_iceberg.engine.rows import canonical_item
from ddb_iceberg.engine.sync import tag_name
from ddb_iceberg.errors import ExportError, Fix, SyncError
from ddb_iceberg.exports import ExportSource, discover_exports
from ddb_iceberg.exports.manifest import format_timestamp
from ddb_iceberg.simulator import (
    ExportTarget,
    SimulatedTable,
    SimulationConfig,
    write_full_export,
    write_incremental_export,
)
from ddb_iceberg_tests.helpers import (
    HOUR,
    History,
    LocalWarehouse,
    copy_tree,
    edit_summary,
    gzip_lines,
    read_manifest_files,
    replace_data_file,
)

FULL_ID = "01768385930622-efd1a093"


def _upkeep_with_spark(warehouse: LocalWarehouse) -> None:
    """What an operator runs: compaction, then every tag dropped and every snapshot but the current expired."""
    spark, catalog, name = warehouse.spark, warehouse.catalog, "'dynamodb.orders'"
    spark.sql(
        f"CALL {catalog}.system.rewrite_data_files(table => {name}, options => map('rewrite-all', 'true'))"
    ).collect()
    spark.sql(
        f"CALL {catalog}.system.rewrite_position_delete_files(table => {name}, options => map('rewrite-all', 'true'))"
    ).collect()
    for tag in warehouse.table().tags():
        spark.sql(f"ALTER TABLE {catalog}.dynamodb.orders DROP TAG `{tag}`")
    later = (datetime.now(UTC) + timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M:%S")
    spark.sql(
        f"CALL {catalog}.system.expire_snapshots(table => {name}, older_than => TIMESTAMP '{later}', retain_last => 1)"
    ).collect()


def _snapshots(warehouse: LocalWarehouse) -> list[dict[str, str]]:
    table = local_catalog(warehouse.path, warehouse.catalog).load_table("dynamodb.orders")
    return [dict(snapshot.summary.additional_properties) for snapshot in table.snapshots() if snapshot.summary]


def test_the_ledger_survives_compaction_expiry_and_dropped_tags(warehouse: LocalWarehouse, tmp_path: Path) -> None:
    history = History(tmp_path, seed=21)
    history.add_windows(2)
    warehouse.sync(history.source, key_attributes=history.table.key_attributes)
    _upkeep_with_spark(warehouse)
    (only,) = _snapshots(warehouse)
    assert REFLECTS_TIME not in only and not warehouse.table().tags(), "upkeep left no ledger in any snapshot"

    # Two more windows, and a later full export in the same source that must not be taken for a baseline:
    # merged onto the table, it would keep the rows DynamoDB deleted in those windows.
    history.add_windows(2)
    write_full_export(history.table, history.target, history.time(4))
    result = warehouse.sync(history.source)
    assert [e["type"] for e in result.applied_exports] == ["INCREMENTAL_EXPORT"] * 2
    assert result.reflects == format_timestamp(history.time(4)) and result.rows_deleted > 0
    assert warehouse.items() == history.truth(4)
    assert table_status(local_catalog(warehouse.path, warehouse.catalog), "dynamodb.orders").reflects == result.reflects


@pytest.mark.filterwarnings("ignore:Merge on read is not yet supported:UserWarning")
def test_the_ledger_survives_upkeep_and_a_rewrite_by_pyiceberg(warehouse: LocalWarehouse, tmp_path: Path) -> None:
    history = History(tmp_path, seed=22)
    history.add_windows(1)
    warehouse.sync(history.source, key_attributes=history.table.key_attributes)
    table = local_catalog(warehouse.path, warehouse.catalog).load_table("dynamodb.orders")
    table.overwrite(table.scan().to_arrow())  # another writer rewrites every row, in a commit of its own
    for tag in list(table.refs()):
        if tag != "main":
            table.manage_snapshots().remove_tag(tag).commit()
    table.maintenance.expire_snapshots().older_than(datetime.now(UTC) + timedelta(minutes=1)).commit()
    assert all(REFLECTS_TIME not in summary for summary in _snapshots(warehouse))

    history.add_windows(2)
    write_full_export(history.table, history.target, history.time(3))
    result = warehouse.sync(history.source)
    assert result.reflects == format_timestamp(history.time(3)) and len(result.applied_exports) == 2
    assert warehouse.items() == history.truth(3)


def lose_the_ledger(warehouse: LocalWarehouse, history: History) -> None:
    """A table synced to hour 1 whose ledger another tool removed; then a window and a full export at hour 2."""
    history.add_windows(1)
    warehouse.sync(history.source, key_attributes=history.table.key_attributes)
    _upkeep_with_spark(warehouse)
    warehouse.spark.sql(f"ALTER TABLE {warehouse.catalog}.dynamodb.orders UNSET TBLPROPERTIES ('{LEDGER_PROPERTY}')")
    history.add_windows(1)
    write_full_export(history.table, history.target, history.time(2))


def test_a_table_with_rows_but_no_ledger_is_refused_never_taken_for_new(
    warehouse: LocalWarehouse, tmp_path: Path
) -> None:
    history = History(tmp_path, seed=23)
    lose_the_ledger(warehouse, history)
    items, files = warehouse.items(), warehouse.files()
    with pytest.raises(SyncError, match="holds data but no ddb_iceberg ledger") as caught:
        warehouse.sync(history.source)
    assert "re-baseline the table from a new full export" in str(caught.value)
    assert caught.value.fixes == (Fix.REBASELINE,)  # each surface says how: a CLI flag, a Dagster job
    assert warehouse.items() == items and warehouse.files() == files


def test_a_sync_repairs_the_tag_and_ledger_property_a_dead_run_did_not_write(
    warehouse: LocalWarehouse, tmp_path: Path
) -> None:
    history = History(tmp_path, seed=24, items=20)
    history.add_windows(1)
    first = warehouse.sync(history.source, key_attributes=history.table.key_attributes)
    warehouse.spark.sql(f"ALTER TABLE {warehouse.catalog}.dynamodb.orders UNSET TBLPROPERTIES ('{LEDGER_PROPERTY}')")
    warehouse.spark.sql(f"ALTER TABLE {warehouse.catalog}.dynamodb.orders DROP TAG `{first.tag}`")
    again = warehouse.sync(history.source)
    assert not again.changed and again.tag == first.tag == tag_name(history.time(1))
    assert warehouse.table().tags() == {first.tag: first.snapshot_id}
    assert f'"snapshot-id":{first.snapshot_id}' in warehouse.table().properties()[LEDGER_PROPERTY]


def test_a_rollback_to_an_earlier_sync_is_caught_up_again(warehouse: LocalWarehouse, tmp_path: Path) -> None:
    history = History(tmp_path, seed=25)
    history.add_windows(1)
    first = warehouse.sync(history.source, key_attributes=history.table.key_attributes)
    history.add_windows(1)
    warehouse.sync(history.source)
    warehouse.spark.sql(
        f"CALL {warehouse.catalog}.system.rollback_to_snapshot('dynamodb.orders', {first.snapshot_id})"
    ).collect()
    assert warehouse.items() == history.truth(1)
    result = warehouse.sync(history.source)
    assert result.reflects == format_timestamp(history.time(2)) and warehouse.items() == history.truth(2)


# Records that do not fit their export.


def test_a_change_stamped_outside_its_window_is_refused_and_nothing_changes(
    warehouse: LocalWarehouse, tmp_path: Path
) -> None:
    history = History(tmp_path, seed=26, items=40)
    warehouse.sync(history.source, key_attributes=history.table.key_attributes)
    history.add_windows(2)
    items, files = warehouse.items(), warehouse.files()
    last = discover_exports(ExportSource.from_uri(str(history.source))).incremental_exports[-1]
    export_dir = Path(last.directory)
    entries = read_manifest_files(export_dir)
    index = next(i for i, e in enumerate(entries) if e.item_count)
    lines = gzip.decompress((history.source / entries[index].data_file_s3_key).read_bytes()).decode().splitlines()
    written = lines[0].split('"WriteTimestampMicros":{"N":"', 1)[1].split('"', 1)[0]
    in_2100 = lines[0].replace(written, "4102444800000000", 1)
    replace_data_file(history.source, export_dir, index, gzip_lines([in_2100, *lines[1:]]))
    with pytest.raises(ExportError, match="WriteTimestampMicros 4102444800000000, outside the export's window") as e:
        warehouse.sync(history.source)
    assert e.value.export == export_dir.name and e.value.file == entries[index].data_file_s3_key and e.value.line == 1
    assert warehouse.items() == items and warehouse.files() == files


@pytest.fixture
def tampered(tmp_path: Path, test_table_source: Path) -> Path:
    return copy_tree(test_table_source, tmp_path / "table")


def test_a_full_export_that_repeats_a_key_is_refused(warehouse: LocalWarehouse, tampered: Path) -> None:
    export_dir = tampered / "AWSDynamoDB" / FULL_ID
    index = next(i for i, e in enumerate(read_manifest_files(export_dir)) if e.item_count)
    data_file = tampered / read_manifest_files(export_dir)[index].data_file_s3_key
    lines = gzip.decompress(data_file.read_bytes()).decode().splitlines()
    replace_data_file(tampered, export_dir, index, gzip_lines([*lines, lines[0]]), item_count=4)
    edit_summary(export_dir, itemCount=4)
    with pytest.raises(ExportError, match=r"line 4: repeats the key \(pk='1', sk='1'\) of file .*, line 1"):
        warehouse.sync(tampered, "real.test", allow_gaps=True)
    assert not warehouse.table("real.test").exists()


def test_a_key_that_leaves_out_the_sort_key_is_refused(
    warehouse: LocalWarehouse, test_table_source: Path, tampered: Path
) -> None:
    # Every item of the real full export has pk "1": keyed by pk alone, they would collapse into one row.
    with pytest.raises(SyncError, match="name the keys pk, sk in `Keys`, not pk"):
        warehouse.sync(
            test_table_source, "real.test", key_attributes=("pk",), up_to=datetime(2026, 1, 14, 10, 19, tzinfo=UTC)
        )
    for export in tampered.glob("AWSDynamoDB/*"):
        if export.name not in (FULL_ID, "data"):
            for path in sorted(export.rglob("*"), reverse=True):
                path.unlink() if path.is_file() else path.rmdir()
            export.rmdir()
    with pytest.raises(ExportError, match=r"repeats the key \(pk='1'\)"):
        warehouse.sync(tampered, "real.test", key_attributes=("pk",))
    assert not warehouse.table("real.test").exists()


def test_a_full_export_whose_key_attribute_is_a_map_is_refused(warehouse: LocalWarehouse, tampered: Path) -> None:
    export_dir = tampered / "AWSDynamoDB" / FULL_ID
    index = next(i for i, e in enumerate(read_manifest_files(export_dir)) if e.item_count)
    bad = '{"Item":{"pk":{"M":{"a":{"S":"1"}}},"sk":{"S":"1"}}}'
    replace_data_file(tampered, export_dir, index, gzip_lines([bad]), item_count=1)
    edit_summary(export_dir, itemCount=1)
    with pytest.raises(ExportError, match="line 1: key attribute 'pk' is a M \\(map\\) value"):
        warehouse.sync(
            tampered, "real.test", key_attributes=("pk", "sk"), up_to=datetime(2026, 1, 14, 10, 19, tzinfo=UTC)
        )


# A new, empty DynamoDB table.


def test_a_pipeline_starts_from_an_empty_table(warehouse: LocalWarehouse, tmp_path: Path) -> None:
    t0 = datetime(2026, 6, 1, tzinfo=UTC)
    writes = [
        (t0 + timedelta(minutes=70), None, ("ghost",)),  # window 2: only a delete, of an item never there
        (t0 + timedelta(minutes=130), {"id": "a", "n": 1}, ("a",)),  # window 3: the first items
        (t0 + timedelta(minutes=140), {"id": "b", "n": 2, "tags": frozenset({"x"})}, ("b",)),
        (t0 + timedelta(minutes=200), None, ("a",)),  # window 4
    ]
    table = SimulatedTable.scripted(("id",), writes, SimulationConfig(start=t0))
    exports = tmp_path / "exports"
    target = ExportTarget.for_source(ExportSource.from_uri(str(exports)))
    write_full_export(table, target, t0)
    first = warehouse.sync(exports)
    assert first.changed and first.reflects == format_timestamp(t0) and first.rows_inserted == 0
    assert warehouse.items() == {} and warehouse.table().ledger() is not None
    for hour in range(1, 5):
        write_incremental_export(table, target, t0 + (hour - 1) * HOUR, t0 + hour * HOUR)
        result = warehouse.sync(exports)
        assert result.reflects == format_timestamp(t0 + hour * HOUR)
        truth = {key: canonical_item(item) for key, item in table.state_at(t0 + hour * HOUR).items()}
        assert warehouse.items() == truth, f"after window {hour}"
    iceberg = local_catalog(warehouse.path, warehouse.catalog).load_table("dynamodb.orders")
    assert iceberg.schema().identifier_field_names() == {"id"}
    assert iceberg.schema().find_field("id").required and iceberg.schema().columns[0].name == "id"


# Two syncs at once.


def _sync_in_another_process(warehouse: LocalWarehouse, source: Path, up_to: datetime) -> None:
    command = [
        sys.executable, "-m", "ddb_iceberg.engine.job", "--source", str(source), "--table", "dynamodb.orders",
        "--warehouse", str(warehouse.path), "--catalog-name", warehouse.catalog, "--up-to", up_to.isoformat(),
    ]  # fmt: skip
    completed = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]


def _sync_held_before_its_commit(warehouse: LocalWarehouse, source: Path, **options: Any) -> tuple[Any, Any, Any]:
    """A sync in a thread of this process that stops just before it writes until `release` is set."""
    waiting, release = threading.Event(), threading.Event()
    outcome: dict[str, Any] = {}

    def log(message: str) -> None:
        outcome.setdefault("log", []).append(message)
        if message.startswith("Writing") and not release.is_set():
            waiting.set()
            release.wait(timeout=600)

    def run() -> None:
        try:
            outcome["result"] = warehouse.sync(source, log=log, **options)
        except Exception as error:  # reported to the test thread
            outcome["error"] = error

    thread = threading.Thread(target=run)
    thread.start()
    assert waiting.wait(timeout=300), outcome
    return thread, release, outcome


@pytest.mark.slow
def test_the_loser_of_two_syncs_finds_the_table_up_to_date(warehouse: LocalWarehouse, tmp_path: Path) -> None:
    history = History(tmp_path, seed=27)
    warehouse.sync(history.source, key_attributes=history.table.key_attributes)
    history.add_windows(3)
    thread, release, outcome = _sync_held_before_its_commit(warehouse, history.source)
    _sync_in_another_process(warehouse, history.source, history.time(3))  # commits first, the same windows
    release.set()
    thread.join(timeout=600)
    assert "error" not in outcome, outcome.get("error")
    result = outcome["result"]
    assert not result.changed and result.reflects == format_timestamp(history.time(3))
    assert "planned 2 times: another writer committed first" in result.warnings
    assert any(message.startswith("Another writer committed") for message in outcome["log"])
    assert warehouse.items() == history.truth(3)


@pytest.mark.slow
def test_the_loser_of_two_syncs_applies_what_the_winner_left(warehouse: LocalWarehouse, tmp_path: Path) -> None:
    history = History(tmp_path, seed=28)
    warehouse.sync(history.source, key_attributes=history.table.key_attributes)
    history.add_windows(3)
    thread, release, outcome = _sync_held_before_its_commit(warehouse, history.source)
    _sync_in_another_process(warehouse, history.source, history.time(1))  # commits first, one window
    release.set()
    thread.join(timeout=600)
    assert "error" not in outcome, outcome.get("error")
    result = outcome["result"]
    assert [e["to"] for e in result.applied_exports] == [format_timestamp(history.time(h)) for h in (2, 3)]
    assert warehouse.items() == history.truth(3)
    status = table_status(local_catalog(warehouse.path, warehouse.catalog), "dynamodb.orders")
    assert [commit["reflects"] for commit in status.commits] == [format_timestamp(history.time(h)) for h in (0, 1, 3)]
