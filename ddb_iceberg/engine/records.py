"""What Spark's executors run: read, verify and decode data files into records; profile images; build rows.

Each function here maps Arrow record batches to Arrow record batches (`DataFrame.mapInArrow`), holds at most one
batch of records at a time, and imports nothing of Spark, so it runs the same in a test, in a local Spark
session and on a cluster's executors. The driver (`engine.changes`) only plans the tasks and merges what they
sum up (a small plan's it runs itself: `read_tasks_here`, `build_rows_here`).

Records carry their key as canonical text (`key_text`): equal DynamoDB keys give equal text, so Spark can group
by it; their image as the DynamoDB JSON they were read from, decoded again only where a row is built.
"""

from __future__ import annotations

import base64
import json
import pickle
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pyarrow as pa

from ddb_iceberg.engine.naming import WRITE_TIME_COLUMN
from ddb_iceberg.engine.rows import RowBuilder, arrow_schema, cell_reader
from ddb_iceberg.engine.schema import Column, Layout, number_fits
from ddb_iceberg.engine.type_profile import ItemProfile, tag_of
from ddb_iceberg.errors import ExportError
from ddb_iceberg.exports import ChangeRecord, FullExportItem
from ddb_iceberg.exports.reader import DataFile, read_data_file
from ddb_iceberg.exports.typed_values import DecodedItem, DecodedValue, decode_item, format_number, key_value_problem

Key = tuple[DecodedValue, ...]

UPSERT, DELETE = "U", "D"
# A stale record of a window that overlaps what the table reflects: it applies nothing, but the window
# mentions its key (see engine.changes: overlapping windows).
MENTIONED = "M"
# One per task: what it sums up (`TaskSummary`), or the error that stopped it.
SUMMARY, ERROR = "S", "E"

# The records DataFrame. `line` is the line in the file; with `export_ord` and `file_ord` it orders records that
# share a write time, so the collapse to the latest change per key never depends on task scheduling.
RECORD_SCHEMA = (
    "key STRING, written BIGINT, export_ord INT, file_ord INT, line BIGINT, kind STRING, image STRING, meta BINARY"
)
_RECORD_FIELDS = pa.schema(
    [
        pa.field("key", pa.string()),
        pa.field("written", pa.int64()),
        pa.field("export_ord", pa.int32()),
        pa.field("file_ord", pa.int32()),
        pa.field("line", pa.int64()),
        pa.field("kind", pa.string()),
        pa.field("image", pa.string()),
        pa.field("meta", pa.binary()),
    ]
)
OP_COLUMN = "_ddb_op"
_BATCH_ROWS = 8192
# A batch also ends at this many characters of images: an item can be 400 KB, and a batch is what an executor
# holds at once, and what a small plan's reading on the driver may hold beyond its bound (SMALL_PLAN_BYTES).
_BATCH_IMAGE_CHARS = 4 * 2**20
_IMAGE = 6  # the image's place in a record (RECORD_SCHEMA)


def key_text(key: Key) -> str:
    """Canonical text of a key: the same for equal DynamoDB keys (numbers in DynamoDB's canonical form)."""
    parts = []
    for value in key:
        if type(value) is str:
            parts.append(["S", value])
        elif type(value) is Decimal:
            parts.append(["N", format_number(value)])
        else:
            parts.append(["B", base64.b64encode(value).decode("ascii")])
    return json.dumps(parts, ensure_ascii=False, separators=(",", ":"))


def key_values(text: str) -> Key:
    """The key a `key_text` stands for."""
    values: list[DecodedValue] = []
    for tag, payload in json.loads(text):
        values.append(payload if tag == "S" else Decimal(payload) if tag == "N" else base64.b64decode(payload))
    return tuple(values)


def image_text(typed_image: Any) -> str:
    return json.dumps(typed_image, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class FileToRead:
    """One data file of the plan, and how its records apply (see `_read_file`)."""

    data_file: DataFile
    export_ord: int  # the export's place in the plan (0 is the baseline, when there is one)
    file_ord: int
    # Changes written before this time are already in the table (stale); the baseline's items are written at it.
    reflected_before: int
    # The window starts before `reflected_before`: the keys of its stale records still count as mentioned.
    overlapping: bool


@dataclass(frozen=True)
class ReadTask:
    """One Spark task: read and verify some data files (one large one, or a few small ones) into records."""

    files: tuple[FileToRead, ...]
    key_attributes: tuple[str, ...]
    # The table's key columns (when it has them): a key value they cannot hold is refused here.
    key_columns: tuple[Column, ...] = ()


@dataclass
class TaskSummary:
    """What a task sums up, for the driver to merge: counts, the first record of each key attribute's types, and
    the profile of the images it read (the layout is planned from every image a sync reads)."""

    records_read: int = 0
    records_stale: int = 0
    # key attribute -> DynamoDB type -> the first (export_ord, file_ord, line) with that type
    key_types: dict[str, dict[str, tuple[int, int, int]]] = field(default_factory=dict)
    profile: ItemProfile | None = None

    def merge(self, other: TaskSummary) -> None:
        self.records_read += other.records_read
        self.records_stale += other.records_stale
        for name, tags in other.key_types.items():
            mine = self.key_types.setdefault(name, {})
            for tag, place in tags.items():
                mine[tag] = min(mine.get(tag, place), place)
        if other.profile is not None:
            self.profile = (self.profile or ItemProfile()).merge(other.profile)


class _Batches:
    """Records gathered column by column and sent on as Arrow batches of bounded size."""

    def __init__(self) -> None:
        self.columns: list[list[Any]] = [[] for _ in _RECORD_FIELDS]
        self.image_chars = 0

    def add(self, *values: Any) -> pa.RecordBatch | None:
        for column, value in zip(self.columns, values, strict=True):
            column.append(value)
        image = values[_IMAGE]
        if image is not None:
            self.image_chars += len(image)
        if len(self.columns[0]) >= _BATCH_ROWS or self.image_chars >= _BATCH_IMAGE_CHARS:
            return self.flush()
        return None

    def flush(self) -> pa.RecordBatch | None:
        if not self.columns[0]:
            return None
        batch = pa.RecordBatch.from_arrays(
            [pa.array(column, type=f.type) for column, f in zip(self.columns, _RECORD_FIELDS, strict=True)],
            schema=_RECORD_FIELDS,
        )
        self.columns = [[] for _ in _RECORD_FIELDS]
        self.image_chars = 0
        return batch


def read_task_slots(tasks: Sequence[ReadTask]) -> Callable[[Iterable[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """mapInArrow over `spark.range(len(tasks))`: for the task each id names, the records of its files, then one
    SUMMARY row with their profile (or one ERROR row). The tasks travel with the function (their size grows with
    the files, not the items), so no Python RDD and no worker of its own are needed to hand them out."""

    def read_slots(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for slot in batch.column("id").to_pylist():
                yield from _read_task(tasks[slot])

    return read_slots


def read_tasks_here(tasks: Sequence[ReadTask], max_bytes: int) -> pa.Table | None:
    """The records of these tasks read in this very process (a small plan's, on the driver: see
    `engine.changes.reads_on_driver`) by the same functions the executors run; None once they pass `max_bytes`."""
    batches, size = [], 0
    for task in tasks:
        for batch in _read_task(task):
            size += batch.nbytes
            if size > max_bytes:
                return None
            batches.append(batch)
    return pa.Table.from_batches(batches, schema=_RECORD_FIELDS)


def _read_task(task: ReadTask) -> Iterator[pa.RecordBatch]:
    """The records of a task's files, then one SUMMARY row with their profile (or one ERROR row)."""
    summary = TaskSummary(profile=ItemProfile())
    for file in task.files:
        error = yield from _read_file(task, file, summary)
        if error is not None:
            yield error
            return
    first = task.files[0]
    yield _meta_batch(SUMMARY, first.export_ord, first.file_ord, 0, summary)


def _meta_batch(kind: str, export_ord: int, file_ord: int, line: int, meta: object) -> pa.RecordBatch:
    out = _Batches()
    out.add("", 0, export_ord, file_ord, line, kind, None, pickle.dumps(meta))
    batch = out.flush()
    assert batch is not None
    return batch


def _read_file(
    task: ReadTask, file: FileToRead, summary: TaskSummary
) -> Generator[pa.RecordBatch, None, pa.RecordBatch | None]:
    """The records of one file; returns (as the generator's value) an ERROR batch if the file is refused."""
    out = _Batches()
    data_file, order = file.data_file, (file.export_ord, file.file_ord)
    profile = summary.profile
    assert profile is not None
    line = 0
    try:
        for line, record in enumerate(read_data_file(data_file), start=1):
            summary.records_read += 1
            if isinstance(record, FullExportItem):
                key = item_key(record.item, task.key_attributes, data_file, line)
                _check_key(task, file, summary, key, line)
                profile.add(record.item)
                image = record.item_json
                batch = out.add(key_text(key), file.reflected_before, *order, line, UPSERT, image, None)
            else:
                assert isinstance(record, ChangeRecord)
                key = change_key(record, task.key_attributes, data_file, line)
                _check_key(task, file, summary, key, line)
                written = record.write_timestamp_micros
                if written < file.reflected_before:
                    summary.records_stale += 1
                    if not file.overlapping:
                        continue
                    batch = out.add(key_text(key), written, *order, line, MENTIONED, None, None)
                elif record.new_image is None:
                    batch = out.add(key_text(key), written, *order, line, DELETE, None, None)
                else:
                    profile.add(record.new_image)
                    image = image_text(record.typed_new_image)
                    batch = out.add(key_text(key), written, *order, line, UPSERT, image, None)
            if batch is not None:
                yield batch
    except ExportError as error:
        # Records already sent are harmless: the driver refuses the sync when any task reports an error.
        return _meta_batch(ERROR, *order, line, error)
    last = out.flush()
    if last is not None:
        yield last
    return None


def item_key(item: DecodedItem, key_attributes: Sequence[str], data_file: DataFile, line: int) -> Key:
    """The key of a full export's item, refused unless every key attribute holds a key value (S, N or B)."""
    key = []
    for name in key_attributes:
        value = item.get(name)
        problem = "is missing" if value is None and name not in item else key_value_problem(value)
        if problem is not None:
            raise data_file.fail(f"key attribute {name!r} {problem}", line)
        key.append(value)
    return tuple(key)


def change_key(record: ChangeRecord, key_attributes: Sequence[str], data_file: DataFile, line: int) -> Key:
    if len(record.keys) != len(key_attributes) or any(name not in record.keys for name in key_attributes):
        raise data_file.fail(f"names the Keys {sorted(record.keys)}, not the table's keys {list(key_attributes)}", line)
    return tuple(record.keys[name] for name in key_attributes)


def _check_key(task: ReadTask, file: FileToRead, summary: TaskSummary, key: Key, line: int) -> None:
    """A key attribute has one DynamoDB type; it must fit the table's key column. (Whether all records agree on
    the type is the driver's to check, from the tasks' summaries.)"""
    for index, (name, value) in enumerate(zip(task.key_attributes, key, strict=True)):
        tag = str(tag_of(value))
        if task.key_columns:
            column = task.key_columns[index]
            if tag != column.tag or (isinstance(value, Decimal) and not number_fits(column.type, value)):
                raise file.data_file.fail(
                    f"key attribute {name!r} = {value!r} ({tag}) does not fit the table's key column "
                    f"{column.name} ({column.tag}, {column.type.kind.value}); a key cannot change type",
                    line,
                )
        types = summary.key_types.setdefault(name, {})
        if tag not in types:
            types[tag] = (file.export_ord, file.file_ord, line)


def rows_schema(layout: Layout) -> pa.Schema:
    """The Arrow schema of `row_builder`'s output: the table's columns, plus the operation column."""
    return arrow_schema(layout).append(pa.field(OP_COLUMN, pa.string(), nullable=False))


def build_rows_here(changes: pa.Table, layout: Layout) -> pa.Table:
    """`row_builder` run in this very process: a small plan's rows, on the driver."""
    batches = changes.to_batches(max_chunksize=_BATCH_ROWS)
    return pa.Table.from_batches(list(row_builder(layout)(batches)), schema=rows_schema(layout))


def row_builder(layout: Layout) -> Callable[[Iterable[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """mapInArrow over changes (key, written, kind, image): the table's rows, plus the operation column."""
    schema = rows_schema(layout)
    key_attributes = layout.key_attributes
    has_keys = layout.has_key_columns

    def build(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        builder = RowBuilder(layout)
        for batch in batches:
            rows = []
            columns = (batch.column(name).to_pylist() for name in ("key", "written", "kind", "image"))
            for key, written, kind, image in zip(*columns, strict=True):
                if kind == UPSERT:
                    row = builder.row(decode_item(json.loads(image)))
                elif has_keys:
                    row = builder.row(dict(zip(key_attributes, key_values(key), strict=True)))
                else:
                    continue  # a table without key columns holds no row to delete
                row[WRITE_TIME_COLUMN] = written
                row[OP_COLUMN] = kind
                rows.append(row)
            if rows:
                yield pa.RecordBatch.from_pylist(rows, schema=schema)

    return build


def key_texts(layout: Layout) -> Callable[[Iterable[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """mapInArrow over table rows (key columns, `written`): their keys as `key_text`, with `written`."""
    columns = layout.key_columns
    schema = pa.schema([("key", pa.string()), ("written", pa.int64())])

    def convert(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        readers = [cell_reader(column) for column in columns]
        for batch in batches:
            cells = zip(*(batch.column(column.name).to_pylist() for column in columns), strict=True)
            keys = [key_text(tuple(read(cell) for read, cell in zip(readers, row, strict=True))) for row in cells]
            yield pa.RecordBatch.from_arrays([pa.array(keys, pa.string()), batch.column("written")], schema=schema)

    return convert


def spark_schema(layout: Layout) -> str:
    """The DDL of `row_builder`'s output (what mapInArrow needs)."""
    from ddb_iceberg.engine.spark_types import column_ddl

    return ", ".join([*(column_ddl(c, comments=False) for c in layout.columns), f"{OP_COLUMN} STRING NOT NULL"])
