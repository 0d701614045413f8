"""The bench's bulk table: its full export is the same bytes however many processes write it, and reads back."""

from __future__ import annotations

from pathlib import Path

from ddb_iceberg.exports import ExportSource, FullExportItem, discover_exports
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
