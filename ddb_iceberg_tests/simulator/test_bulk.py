"""The bench's bulk table: its full export is the same bytes however many processes write it, and reads back; its
windows' OldImages are the items as the exports last showed them."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from ddb_iceberg.exports import ChangeRecord, ExportSource, FullExportItem, discover_exports
from ddb_iceberg.exports.manifest import ExportView
from ddb_iceberg.simulator import ExportTarget
from ddb_iceberg.simulator.bulk import BulkTable


def _files(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def test_a_full_export_is_the_same_bytes_written_by_one_process_or_two(tmp_path: Path) -> None:
    exports = {}
    for workers in (1, 2):
        root = tmp_path / f"workers-{workers}"
        BulkTable(3_000).full_export(
            ExportTarget.for_source(ExportSource.from_uri(str(root)), partitions=4), workers=workers
        )
        exports[workers] = _files(root)
    assert exports[1] == exports[2]
    assert sum(name.endswith(".json.gz") for name in exports[2]) == 4
    listing = discover_exports(ExportSource.from_uri(str(tmp_path / "workers-2")))
    (full,) = listing.full_exports
    items = [record for record in full.records() if isinstance(record, FullExportItem)]
    assert len(items) == 3_000 and {item.item["order_id"] for item in items} == set(range(3_000))


def test_a_new_and_old_images_window_shows_each_item_as_the_exports_last_showed_it(tmp_path: Path) -> None:
    table, target = BulkTable(500), ExportTarget.for_source(ExportSource.from_uri(str(tmp_path)), partitions=2)
    table.full_export(target)
    for hour in range(2):
        start = table.start + timedelta(hours=hour)
        table.window(target, start, start + timedelta(hours=1), 200, view=ExportView.NEW_AND_OLD_IMAGES)
    listing = discover_exports(ExportSource.from_uri(str(tmp_path)))
    (full,) = listing.full_exports
    shown: dict[object, object] = {}
    for record in full.records():
        assert isinstance(record, FullExportItem)
        shown[record.item["order_id"]] = record.item
    kinds = []
    for window in listing.incremental_exports:
        assert window.summary.output_view is ExportView.NEW_AND_OLD_IMAGES
        for change in window.records():
            assert isinstance(change, ChangeRecord)
            key = change.keys["order_id"]
            assert change.old_image == shown.get(key), f"order {key}"
            kinds.append("insert" if change.old_image is None else "delete" if change.new_image is None else "update")
            shown[key] = change.new_image
    assert {"insert", "update", "delete"} <= set(kinds)
