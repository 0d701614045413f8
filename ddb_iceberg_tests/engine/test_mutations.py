"""Property: whatever damage an export suffers, a sync gives the exact table or a clean refusal that changes
nothing; never an unhandled exception. Damage is done at random to copies of the real exports."""

from __future__ import annotations

import itertools
import pickle
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, event, given, settings
from pyspark.sql import SparkSession

from ddb_iceberg.engine.changes import key_attributes_from, plan_tasks
from ddb_iceberg.engine.plan import plan_sync
from ddb_iceberg.engine.records import DELETE, ERROR, UPSERT, image_item, read_task_slots, row_builder
from ddb_iceberg.engine.rows import canonical_item
from ddb_iceberg.engine.schema import plan_layout
from ddb_iceberg.engine.type_profile import ItemProfile
from ddb_iceberg.errors import ExportError, KeyTypeError, SyncError
from ddb_iceberg.exports import ChangeRecord, ExportSource, FullExportItem, discover_exports
from ddb_iceberg_tests.helpers import LocalWarehouse, copy_tree
from ddb_iceberg_tests.mutations import Mutation, mutations

BASELINE_ONLY = datetime(2026, 1, 14, 10, 19, tzinfo=UTC)
KEYS = ("pk", "sk")
_examples = itertools.count()


def _damaged_copy(fixtures: Path, scratch: Path, mutation: Mutation) -> Path:
    root = copy_tree(fixtures, scratch / f"example-{next(_examples)}")
    mutation.apply(root)
    return root


def _assert_clean_refusal(error: Exception, mutation: Mutation) -> None:
    """A refusal a user can act on: our own error type, naming the export and the file for bad data. (Not
    always the damaged one: damage can make two exports disagree, e.g. on the key.)"""
    assert isinstance(error, ExportError | SyncError | KeyTypeError), f"{mutation}: {type(error).__name__}: {error}"
    if isinstance(error, ExportError):
        assert error.export and error.file, f"{mutation}: {error}"


def _truth(source: Path, up_to: datetime | None = None) -> dict[Any, Any]:
    """What the table must hold: an oracle independent of the engine (windows here never overlap, so each
    key's change with the latest write time, the later export and line on ties, wins)."""
    listing = discover_exports(ExportSource.from_uri(str(source)))
    items = {}
    for record in listing.full_exports[-1].records():
        assert isinstance(record, FullExportItem)
        items[tuple(record.item[k] for k in KEYS)] = record.item
    changes = [
        (record.write_timestamp_micros, order, record)
        for order, export in enumerate(listing.incremental_exports)
        if up_to is None or export.summary.covers_to <= up_to
        for record in export.records()
        if isinstance(record, ChangeRecord)
    ]
    for _, _, change in sorted(changes, key=lambda change: change[:2]):
        key = tuple(change.keys[k] for k in KEYS)
        if change.new_image is None:
            items.pop(key, None)
        else:
            items[key] = change.new_image
    return {key: canonical_item(item) for key, item in items.items()}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutation=mutations())
def test_damage_is_read_exactly_or_refused_by_name(mutation: Mutation, test_table_source: Path, tmp_path: Path) -> None:
    """Without Spark: what the executors do (read, verify, decode, profile, build Arrow rows) and the driver's
    planning, on every data file."""
    source = _damaged_copy(test_table_source, tmp_path, mutation)
    try:
        listing = discover_exports(ExportSource.from_uri(str(source)))
        plan = plan_sync(listing, None, allow_gaps=True)
        keys = key_attributes_from(listing) or KEYS
        tasks, _, _ = plan_tasks(plan, keys)
        # As Spark runs it: one id per task.
        batches = read_task_slots(tasks)(pa.RecordBatch.from_pydict({"id": [slot]}) for slot in range(len(tasks)))
        records = pa.Table.from_batches(list(batches)).to_pylist()
        for record in records:
            if record["kind"] == ERROR:
                raise pickle.loads(record["meta"])
        latest: dict[str, dict[str, Any]] = {}
        for record in sorted(records, key=lambda r: (r["written"], r["export_ord"], r["file_ord"], r["line"])):
            if record["kind"] in (UPSERT, DELETE):
                latest[record["key"]] = record
        images = (image_item(r["kind"], r["image"]) for r in latest.values())
        profile = ItemProfile.of(image for image in images if image is not None)
        layout = plan_layout(None, keys, profile)
        changes = pa.Table.from_pylist(list(latest.values())).to_batches() if latest else []
        list(row_builder(layout)(changes))
    except Exception as error:
        event(f"refused: {type(error).__name__}")
        _assert_clean_refusal(error, mutation)
    else:
        event("read")


@pytest.mark.slow
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutation=mutations())
def test_a_damaged_export_gives_the_exact_table_or_changes_nothing(
    mutation: Mutation, spark: SparkSession, test_table_source: Path, tmp_path: Path
) -> None:
    source = _damaged_copy(test_table_source, tmp_path, mutation)
    warehouse = LocalWarehouse.register(spark, tmp_path / f"warehouse-{next(_examples)}")
    try:
        warehouse.sync(source, "real.test", key_attributes=KEYS, up_to=BASELINE_ONLY)
    except Exception as error:
        _assert_clean_refusal(error, mutation)
        assert not warehouse.table("real.test").exists(), mutation
        return
    assert warehouse.items("real.test") == _truth(source, BASELINE_ONLY), mutation
    before, files = warehouse.items("real.test"), warehouse.files()
    try:
        warehouse.sync(source, "real.test", allow_gaps=True)
    except Exception as error:
        _assert_clean_refusal(error, mutation)
        assert warehouse.items("real.test") == before and warehouse.files() == files, mutation
        return
    assert warehouse.items("real.test") == _truth(source), mutation
