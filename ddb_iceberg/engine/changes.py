"""The changes a plan makes: every record of its exports, verified and collapsed to the latest per key.

Pure Python over the export reader (no Spark).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from ddb_iceberg.engine.plan import SyncPlan
from ddb_iceberg.engine.profile import tag_of
from ddb_iceberg.engine.schema import Layout, number_fits
from ddb_iceberg.exports import ChangeRecord, Export, ExportListing, FullExportItem
from ddb_iceberg.exports.errors import ExportError
from ddb_iceberg.exports.manifest import format_timestamp, to_micros
from ddb_iceberg.exports.typed_values import DecodedItem, key_value_problem

Key = tuple[object, ...]


def key_attributes_from(listing: ExportListing) -> tuple[str, ...] | None:
    """The key attributes incremental exports name in `Keys` (full exports do not say)."""
    for export in listing.incremental_exports:
        for entry in export.data_files:
            if not entry.item_count:
                continue
            for record in export.file_records(entry):
                assert isinstance(record, ChangeRecord)
                return tuple(record.keys)
    return None


@dataclass(frozen=True, slots=True)
class RowChange:
    """A row's final state after the sync: its image (None: deleted) and the time of its last write."""

    write_micros: int
    image: DecodedItem | None


@dataclass
class ChangeSet:
    """Every record of the plan, collapsed to the latest per key."""

    changes: dict[Key, RowChange] = field(default_factory=dict)
    records_read: int = 0
    records_stale: int = 0
    overlap_deletes: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def upserts(self) -> list[DecodedItem]:
        return [c.image for c in self.changes.values() if c.image is not None]


# Keys of table rows last written in [start, end) microseconds, with their write times.
RowsWrittenBetween = Callable[[int, int], Iterable[tuple[Key, int]]]


def collect_changes(
    plan: SyncPlan,
    key_attributes: Sequence[str],
    rows_written_between: RowsWrittenBetween | None = None,
    layout: Layout | None = None,
) -> ChangeSet:
    """Read and verify every export of the plan, and collapse its records to the latest per key.

    A record applies only if it was written at or after the point the table already reflects, so
    re-applied exports change nothing. Overlapping windows need one more rule, because DynamoDB leaves out
    an item created and deleted inside a window: a row last written inside the part of a window the table
    already reflects, which that window does not mention, was deleted in the window, and is deleted here.
    """
    change_set = ChangeSet()
    changes = change_set.changes
    key_types = KeyTypes(key_attributes, layout)
    baseline_micros = to_micros(plan.baseline_time)
    if plan.baseline is not None:
        baseline = plan.baseline
        for entry in baseline.data_files:
            for line, record in enumerate(baseline.file_records(entry), start=1):
                assert isinstance(record, FullExportItem)
                key = item_key(record.item, key_attributes, baseline, entry.data_file_s3_key, line)
                key_types.check(key, baseline, entry.data_file_s3_key, line)
                if key in changes:
                    raise _repeated_key(baseline, key, key_attributes, entry.data_file_s3_key, line)
                changes[key] = RowChange(baseline_micros, record.item)
                change_set.records_read += 1
    reflected_time = plan.baseline.summary.covers_to if plan.baseline else plan.reflects_before
    assert reflected_time is not None
    reflected = to_micros(reflected_time)
    for export in plan.incrementals:
        window_start, window_end = (to_micros(export.summary.covers_from), to_micros(export.summary.covers_to))
        mentioned: set[Key] = set()
        for entry in export.data_files:
            for line, record in enumerate(export.file_records(entry), start=1):
                assert isinstance(record, ChangeRecord)
                change_set.records_read += 1
                if set(record.keys) != set(key_attributes):
                    raise ExportError(
                        export=export.export_id,
                        file=entry.data_file_s3_key,
                        line=line,
                        problem=f"names the Keys {sorted(record.keys)}, not the table's keys {list(key_attributes)}",
                    )
                key = tuple(record.keys[name] for name in key_attributes)
                key_types.check(key, export, entry.data_file_s3_key, line)
                mentioned.add(key)
                if record.write_timestamp_micros < reflected:
                    change_set.records_stale += 1
                    continue
                previous = changes.get(key)
                if previous is None or record.write_timestamp_micros >= previous.write_micros:
                    changes[key] = RowChange(record.write_timestamp_micros, record.new_image)
        if window_start < reflected:
            _delete_compacted_away(
                change_set, mentioned, window_start, reflected, baseline_micros, rows_written_between
            )
            if window_start < baseline_micros:
                change_set.warnings.append(
                    f"window of export {export.export_id} starts before the baseline's exportTime "
                    f"{format_timestamp(plan.baseline_time)}: an item created before it and deleted inside the "
                    "window leaves no trace in any export and cannot be removed"
                )
        reflected = max(reflected, window_end)
    return change_set


def _delete_compacted_away(
    change_set: ChangeSet,
    mentioned: set[Key],
    window_start: int,
    reflected: int,
    baseline_micros: int,
    rows_written_between: RowsWrittenBetween | None,
) -> None:
    # Rows of the full export carry its exportTime, not their own write time: they are never candidates.
    start = max(window_start, baseline_micros + 1)
    if start >= reflected:
        return
    changes = change_set.changes
    for key, change in list(changes.items()):
        if change.image is not None and start <= change.write_micros < reflected and key not in mentioned:
            changes[key] = RowChange(change.write_micros, None)
            change_set.overlap_deletes += 1
    for key, write_micros in rows_written_between(start, reflected) if rows_written_between else ():
        if key not in changes and key not in mentioned:
            changes[key] = RowChange(write_micros, None)
            change_set.overlap_deletes += 1


def item_key(item: DecodedItem, key_attributes: Sequence[str], export: Export, file: str, line: int) -> Key:
    """The key of a full export's item, refused unless every key attribute holds a key value (S, N or B)."""
    key = []
    for name in key_attributes:
        value = item.get(name)
        problem = "is missing" if value is None and name not in item else key_value_problem(value)
        if problem is not None:
            raise ExportError(
                export=export.export_id, file=file, line=line, problem=f"key attribute {name!r} {problem}"
            )
        key.append(value)
    return tuple(key)


class KeyTypes:
    """Each key attribute holds one DynamoDB type (S, N or B) in every item, and only values its column (if the
    table has one) holds: a key is what rows are matched by, it cannot drift to a fallback column."""

    def __init__(self, key_attributes: Sequence[str], layout: Layout | None) -> None:
        self.key_attributes = tuple(key_attributes)
        self.columns = (
            dict(zip(self.key_attributes, layout.key_columns, strict=True)) if layout and layout.has_key_columns else {}
        )
        self.first: dict[str, tuple[str, str, str, int]] = {}

    def check(self, key: Key, export: Export, file: str, line: int) -> None:
        for name, value in zip(self.key_attributes, key, strict=True):
            tag = str(tag_of(value))
            column = self.columns.get(name)
            if column is not None:
                if tag != column.tag or (isinstance(value, Decimal) and not number_fits(column.type, value)):
                    raise ExportError(
                        export=export.export_id,
                        file=file,
                        line=line,
                        problem=f"key attribute {name!r} = {value!r} ({tag}) does not fit the table's key column "
                        f"{column.name} ({column.tag}, {column.type.kind.value}); a key cannot change type",
                    )
                continue
            first = self.first.setdefault(name, (tag, export.export_id, file, line))
            if first[0] != tag:
                raise ExportError(
                    export=export.export_id,
                    file=file,
                    line=line,
                    problem=f"key attribute {name!r} is {tag} here but {first[0]} in export {first[1]}, file "
                    f"{first[2]}, line {first[3]}: a DynamoDB key attribute has one type",
                )


def _repeated_key(export: Export, key: Key, key_attributes: Sequence[str], file: str, line: int) -> ExportError:
    first = next(
        (entry.data_file_s3_key, number)
        for entry in export.data_files
        for number, record in enumerate(export.file_records(entry), start=1)
        if isinstance(record, FullExportItem) and tuple(record.item.get(name) for name in key_attributes) == key
    )
    shown = ", ".join(f"{name}={value!r}" for name, value in zip(key_attributes, key, strict=True))
    return ExportError(
        export=export.export_id,
        file=file,
        line=line,
        problem=f"repeats the key ({shown}) of file {first[0]}, line {first[1]}: a full export holds each item "
        f"once. If the table's key is not ({', '.join(key_attributes)}), name all its key attributes with --key",
    )
