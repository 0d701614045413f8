"""The simulated table: deterministic, exact, and indistinguishable in layout from real exports."""

from __future__ import annotations

import gzip
import json
import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ddb_iceberg.exports import ChangeRecord, ExportSource, ExportView, FullExportItem, discover_exports
from ddb_iceberg.exports.manifest import md5_base64, single_part_etag
from ddb_iceberg.exports.typed_values import DecodedItem
from ddb_iceberg.simulator import (
    ExportTarget,
    KeyShape,
    SimulatedTable,
    SimulationConfig,
    write_incremental_export,
    write_series,
)
from ddb_iceberg.simulator.workload import Key
from ddb_iceberg.simulator.writer import EMPTY_GZIP
from ddb_iceberg_tests.helpers import MotoServer

HOUR = timedelta(hours=1)


def _write(tmp_path: Path, config: SimulationConfig, windows: int = 6, **kwargs: Any) -> Path:
    root = tmp_path / f"exports-{config.seed}-{config.key_shape}-{kwargs.get('view', 'both')}"
    write_series(
        SimulatedTable(config),
        ExportTarget.for_source(ExportSource.from_uri(str(root))),
        windows=windows,
        **kwargs,
    )
    return root


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _apply(table: SimulatedTable, state: dict[Key, DecodedItem], record: ChangeRecord) -> None:
    key = tuple(record.keys[name] for name in table.key_attributes)
    if record.new_image is None:
        state.pop(key, None)
    else:
        state[key] = record.new_image


def test_same_seed_same_bytes_other_seed_other_history(tmp_path: Path) -> None:
    first = _files(_write(tmp_path / "a", SimulationConfig(seed=11), windows=3))
    second = _files(_write(tmp_path / "b", SimulationConfig(seed=11), windows=3))
    other = _files(_write(tmp_path / "c", SimulationConfig(seed=12), windows=3))
    assert first == second
    assert first.keys() != other.keys()


def test_windows_can_be_asked_for_in_any_order(tmp_path: Path) -> None:
    config = SimulationConfig(seed=5)
    late_first = SimulatedTable(config)
    late = late_first.events_between(config.start + 5 * HOUR, config.start + 6 * HOUR)
    in_order = SimulatedTable(config)
    assert in_order.events_between(config.start, config.start + 6 * HOUR)[-len(late) :] == late


@pytest.mark.parametrize("view", list(ExportView))
@pytest.mark.parametrize("key_shape", list(KeyShape))
def test_strict_reader_reads_back_the_true_state_at_every_window(
    tmp_path: Path, view: ExportView, key_shape: KeyShape
) -> None:
    config = SimulationConfig(seed=21, key_shape=key_shape, initial_items=200, writes_per_hour=90)
    table = SimulatedTable(config)
    root = _write(tmp_path, config, windows=5, view=view, window_length=timedelta(minutes=45))
    listing = discover_exports(ExportSource.from_uri(str(root)))
    (full,) = listing.full_exports
    state = {table.key_of(r.item): r.item for r in full.records() if isinstance(r, FullExportItem)}
    assert state == table.state_at(full.summary.covers_to)
    assert len(listing.incremental_exports) == 5
    for export in listing.incremental_exports:
        records = [r for r in export.records() if isinstance(r, ChangeRecord)]
        keys = [tuple(r.keys[n] for n in table.key_attributes) for r in records]
        assert len(keys) == len(set(keys)), "compaction: one line per changed item and window"
        before = table.state_at(export.summary.covers_from)
        for record, key in zip(records, keys, strict=True):
            if view is ExportView.NEW_AND_OLD_IMAGES:
                assert record.old_image == before.get(key), "OldImage is the state before the window"
            else:
                assert record.old_image is None
            assert record.new_image is not None or key in before, "created-and-deleted items are not exported"
            _apply(table, state, record)
        assert state == table.state_at(export.summary.covers_to)


def test_workload_has_realistic_variety() -> None:
    config = SimulationConfig(seed=3, initial_items=300, writes_per_hour=200, type_drift=True)
    table = SimulatedTable(config)
    events = table.events_between(config.start - HOUR, config.start + 24 * HOUR)
    seen: set[Key] = set()
    deleted: set[Key] = set()
    kinds = {"insert": 0, "update": 0, "delete": 0, "re-create": 0, "attribute removed": 0}
    last: dict[Key, DecodedItem] = {}
    for event in events:
        if event.item is None:
            kinds["delete"] += 1
            deleted.add(event.key)
            last.pop(event.key, None)
            continue
        if event.key in last:
            kinds["update"] += 1
            kinds["attribute removed"] += bool(set(last[event.key]) - set(event.item))
        elif event.key in deleted:
            kinds["re-create"] += 1
        else:
            kinds["insert"] += 1
        seen.add(event.key)
        last[event.key] = event.item
    assert all(count > 0 for count in kinds.values()), kinds
    values = [value for item in last.values() for value in item.values()]
    types = {type(value).__name__ for value in values}
    assert {"str", "Decimal", "bytes", "bool", "NoneType", "dict", "list", "frozenset"} <= types
    numbers = [v for v in values if isinstance(v, Decimal)]
    assert any(len(v.as_tuple().digits) == 38 for v in numbers), "38-digit numbers"
    assert any(v.adjusted() > 37 or v.adjusted() < -38 for v in numbers), "numbers beyond decimal(38, s)"
    assert any(isinstance(item.get("quantity"), str) for item in last.values()), "type drift when asked for"
    assert not any(
        isinstance(i.get("quantity"), str) for i in SimulatedTable().state_at(config.start + 24 * HOUR).values()
    )


def test_rejects_windows_dynamodb_would_refuse(tmp_path: Path) -> None:
    table = SimulatedTable()
    target = ExportTarget.for_source(ExportSource.from_uri(str(tmp_path)))
    start = table.config.start
    with pytest.raises(ValueError, match="15 minutes to 24 hours"):
        write_incremental_export(table, target, start, start + timedelta(minutes=14))
    with pytest.raises(ValueError, match="15 minutes to 24 hours"):
        write_incremental_export(table, target, start, start + timedelta(hours=24, minutes=1))


# Structural indistinguishability from the real exports.

EXPORT_ID = re.compile(r"^\d{14}-[0-9a-f]{8}$")
DATA_FILE = re.compile(r"^[a-z2-7]{26}\.json\.gz$")


def _layout(root: Path) -> dict[str, Any]:
    """What a reader of the bucket can tell about an export series besides its content."""
    exports = sorted(p for p in (root / "AWSDynamoDB").iterdir() if p.name != "data")
    shape: dict[str, dict[str, Any]] = {"full": {}, "incremental": {}}
    for folder in exports:
        summary_bytes = (folder / "manifest-summary.json").read_bytes()
        summary = json.loads(summary_bytes)
        kind = "incremental" if "exportType" in summary else "full"
        files_text = (folder / "manifest-files.json").read_text()
        entries = [json.loads(line) for line in files_text.splitlines()]
        data = {e["dataFileS3Key"]: (root / e["dataFileS3Key"]).read_bytes() for e in entries}
        lines = [json.loads(line) for blob in data.values() for line in _gunzip_lines(blob)]
        observed = {
            "folder files": sorted(p.name for p in folder.iterdir()),
            "summary keys": list(summary),
            "summary ends without newline": not summary_bytes.endswith(b"\n"),
            "md5 sidecars": [len((folder / n).read_bytes()) for n in ("manifest-summary.md5", "manifest-files.md5")],
            "manifest-files lines end in newline": files_text.endswith("\n"),
            "entry keys": {tuple(e) for e in entries},
            "ids and names match": bool(EXPORT_ID.match(folder.name))
            and all(DATA_FILE.match(k.rsplit("/", 1)[1]) for k in data),
            "data folder": {k.rsplit("/", 2)[-2] for k in data} == {"data"}
            and all(
                k.startswith(f"AWSDynamoDB/{folder.name}/data/" if kind == "full" else "AWSDynamoDB/data/")
                for k in data
            ),
            "checksums": all(
                e["md5Checksum"] == md5_base64(data[e["dataFileS3Key"]])
                and e["etag"] == single_part_etag(data[e["dataFileS3Key"]])
                for e in entries
            ),
            "empty files are DynamoDB's 20 bytes": all(
                b == EMPTY_GZIP for k, b in data.items() if not _gunzip_lines(b)
            ),
            "gzip headers": {b[:10] for b in data.values()},
            "line keys": {tuple(line) for line in lines} - {("Metadata", "Keys", "NewImage")},
            "images sorted by name": all(
                list(line[image]) == sorted(line[image])
                for line in lines
                for image in ("OldImage", "NewImage")
                if image in line
            ),
        }
        # Over all exports of a kind: sets are united, everything else must agree.
        for name, value in observed.items():
            previous = shape[kind].setdefault(name, value)
            shape[kind][name] = (
                previous | value if isinstance(value, set) else previous if previous == value else "varies"
            )
    return shape


def _gunzip_lines(blob: bytes) -> list[bytes]:
    return gzip.decompress(blob).splitlines()


def test_files_are_structurally_indistinguishable_from_real_exports(tmp_path: Path, test_table_source: Path) -> None:
    simulated = _layout(
        _write(
            tmp_path,
            SimulationConfig(seed=2, initial_items=40, writes_per_hour=40),
            windows=2,
            window_length=timedelta(minutes=15),
        )
    )
    real = _layout(test_table_source)
    assert simulated == real


def test_writes_to_s3_with_a_prefix_and_reads_back(moto_server: MotoServer) -> None:
    moto_server.client("s3").create_bucket(Bucket="sim-exports")
    source = ExportSource.from_uri("s3://sim-exports/team/orders", moto_server.s3_options)
    table = SimulatedTable(SimulationConfig(seed=9, initial_items=50))
    summaries = write_series(table, ExportTarget.for_source(source), windows=2)
    assert summaries[0].s3_bucket == "sim-exports" and summaries[0].s3_prefix == "team/orders"
    assert summaries[0].manifest_files_s3_key.startswith("team/orders/AWSDynamoDB/")
    listing = discover_exports(source)
    assert [e.export_id for e in listing.exports] == [s.export_id for s in summaries]
    assert all(e.data_files[0].data_file_s3_key.startswith("team/orders/AWSDynamoDB/") for e in listing.exports)
    assert sum(e.verify() for e in listing.exports) == sum(s.item_count for s in summaries)
