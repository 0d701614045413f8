"""What Spark's executors run: read, verify and decode data files into records; profile images; build rows.

Each function here maps Arrow record batches to Arrow record batches (`DataFrame.mapInArrow`), holds at most one
batch of records at a time, and imports nothing of Spark, so it runs the same in a test, in a local Spark
session and on a cluster's executors. The driver (`engine.changes`) only plans the tasks and merges what they
sum up (a small plan's it runs itself: `read_tasks_here`, `build_rows_here`).

No Python code runs per record: lines are parsed by Arrow and checked, keyed and profiled a column at a time
(`exports.reader.check_lines`, `exports.arrow_json`, `type_profile.profile_of`), and rows built the same way
(`rows.build_columns`). Records carry their key as canonical text (`key_text`): equal DynamoDB keys give equal
text, so Spark can group by it; their image as the line they were read from, parsed again where a row is built.
"""

from __future__ import annotations

import base64
import json
import pickle
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc

from ddb_iceberg.engine.naming import WRITE_TIME_COLUMN
from ddb_iceberg.engine.rows import arrow_schema, arrow_type, build_columns, cell_reader, typed_value
from ddb_iceberg.engine.schema import MAX_DECIMAL_PRECISION, Column, Kind, Layout
from ddb_iceberg.engine.type_profile import ItemProfile, profile_of
from ddb_iceberg.errors import ExportError
from ddb_iceberg.exports.arrow_json import KeyParts, key_parts, lines_text, numbers, parse_lines, row_ids
from ddb_iceberg.exports.reader import CheckedLines, DataFile, read_checked_lines
from ddb_iceberg.exports.typed_values import (
    DecodedItem,
    DecodedValue,
    decode_item,
    encode_item,
    format_number,
    key_value_problem,
)

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
# With `row_builder(old_images=True)`: the item before the change, as the line's OldImage holds it (`Layout.image_type`;
# none for an insert, a full export's item, a line without one).
OLD_IMAGE_COLUMN = "_ddb_old_image"
# Rows built at once from the changes (each holds its line: an item can be 400 KB).
_BATCH_ROWS = 8192


def key_text(key: Key) -> str:
    """Canonical text of a key: the same for equal DynamoDB keys. Each value is its type, its canonical text's
    length and that text (`S3:abc`, numbers in DynamoDB's canonical form, binaries in base64), so that the text
    is read back unambiguously and made alike by `key_text_column` a column at a time."""
    parts = []
    for value in key:
        if type(value) is str:
            tag, payload = "S", value
        elif type(value) is Decimal:
            tag, payload = "N", format_number(value)
        else:
            tag, payload = "B", base64.b64encode(value).decode("ascii")
        parts.append(f"{tag}{len(payload)}:{payload}")
    return "".join(parts)


def key_values(text: str) -> Key:
    """The key a `key_text` stands for."""
    values: list[DecodedValue] = []
    position = 0
    while position < len(text):
        tag = text[position]
        colon = text.index(":", position)
        end = colon + 1 + int(text[position + 1 : colon])
        payload = text[colon + 1 : end]
        values.append(payload if tag == "S" else Decimal(payload) if tag == "N" else base64.b64decode(payload))
        position = end
    return tuple(values)


def key_text_column(parts: Sequence[KeyParts]) -> pa.Array:
    """`key_text` of the keys whose values are `parts` (one per key attribute), a column at a time."""
    pieces = [
        pc.binary_join_element_wise(part.tag, pc.cast(pc.utf8_length(part.payload), pa.string()), ":", part.payload, "")
        for part in parts
    ]
    return pc.binary_join_element_wise(*pieces, "")


def image_item(kind: str, image: str | None) -> DecodedItem | None:
    """The item an upsert's image (the line it was read from) holds; None for a delete. Rows are built from the
    images a column at a time (`row_builder`); this reads one, for a look at a record."""
    if kind != UPSERT or image is None:
        return None
    line = json.loads(image)
    return decode_item(line["Item"] if "Item" in line else line["NewImage"])


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
    values = ("", 0, export_ord, file_ord, line, kind, None, pickle.dumps(meta))
    return pa.RecordBatch.from_arrays(
        [pa.array([value], f.type) for value, f in zip(values, _RECORD_FIELDS, strict=True)], schema=_RECORD_FIELDS
    )


def _read_file(
    task: ReadTask, file: FileToRead, summary: TaskSummary
) -> Generator[pa.RecordBatch, None, pa.RecordBatch | None]:
    """The records of one file; returns (as the generator's value) an ERROR batch if the file is refused."""
    order = (file.export_ord, file.file_ord)
    try:
        for lines in read_checked_lines(file.data_file):
            batch = _records(task, file, summary, lines)
            if batch.num_rows:
                yield batch
    except ExportError as error:
        # Records already sent are harmless: the driver refuses the sync when any task reports an error.
        return _meta_batch(ERROR, *order, error.line or 0, error)
    return None


def _records(task: ReadTask, file: FileToRead, summary: TaskSummary, checked: CheckedLines) -> pa.RecordBatch:
    """The records of some checked lines of a file, a column at a time: the key of each, its write time, what it
    does, the line as its image; and what they add to the task's summary."""
    data_file, table, length = file.data_file, checked.table, len(checked)
    line_numbers = pc.add(row_ids(length), checked.first_line)
    assert summary.profile is not None
    summary.records_read += length
    if data_file.full:
        images = table.column("Item").combine_chunks()
        keys = _key_values(task, images, length)
        _refuse_bad_keys(task, file, checked, keys, line_numbers, images=images)
        written = pa.repeat(file.reflected_before, length)
        kind = pa.repeat(UPSERT, length)
        image = checked.lines
        summary.profile.merge(profile_of(images))
    else:
        key_typed = table.column("Keys").combine_chunks()
        keys = _key_values(task, key_typed, length)
        _refuse_bad_keys(task, file, checked, keys, line_numbers, key_typed=key_typed)
        assert checked.written is not None
        written = checked.written
        new_images = table.column("NewImage").combine_chunks() if "NewImage" in table.column_names else None
        deleted = pa.repeat(True, length) if new_images is None else pc.is_null(new_images)
        stale = pc.less(written, file.reflected_before)
        summary.records_stale += pc.sum(stale).as_py() or 0
        kind = pc.if_else(stale, MENTIONED, pc.if_else(deleted, DELETE, UPSERT))
        image = pc.if_else(stale, pa.scalar(None, pa.string()), checked.lines)
        if new_images is not None:
            summary.profile.merge(profile_of(new_images.filter(pc.and_(pc.invert(stale), pc.invert(deleted)))))
    _note_key_types(task, file, summary, keys, line_numbers)
    batch = pa.RecordBatch.from_arrays(
        [
            key_text_column(keys),
            written,
            pa.repeat(file.export_ord, length).cast(pa.int32()),
            pa.repeat(file.file_ord, length).cast(pa.int32()),
            line_numbers,
            kind,
            image,
            pa.nulls(length, pa.binary()),
        ],
        schema=_RECORD_FIELDS,
    )
    if not data_file.full and not file.overlapping:
        batch = batch.filter(pc.not_equal(batch.column("kind"), MENTIONED))
    return batch


def _key_values(task: ReadTask, typed: pa.Array, length: int) -> list[KeyParts]:
    """The parts of each key attribute's values (NULL where the attribute is absent)."""
    fields = {f.name for f in typed.type} if pa.types.is_struct(typed.type) else set()
    return [
        key_parts(pc.struct_field(typed, name) if name in fields else pa.nulls(length, pa.struct([])))
        for name in task.key_attributes
    ]


def _refuse_bad_keys(
    task: ReadTask,
    file: FileToRead,
    checked: CheckedLines,
    keys: list[KeyParts],
    line_numbers: pa.Array,
    *,
    images: pa.Array | None = None,
    key_typed: pa.Array | None = None,
) -> None:
    """Refuses, at the first line that has one, a key that is not the table's: a key attribute missing or not a
    key value (full exports), Keys that name other attributes (incremental), a value the key column cannot hold."""
    problems: list[tuple[int, str]] = []
    rows = row_ids(len(checked))

    def first(mask: pa.Array) -> int | None:
        found = pc.min(pc.filter(rows, pc.fill_null(mask, False))).as_py()
        return None if found is None else int(found)

    source = images if images is not None else key_typed
    assert source is not None
    for index, (name, parts) in enumerate(zip(task.key_attributes, keys, strict=True)):
        typed = pc.struct_field(source, name) if name in _field_names(source) else None
        if images is not None:
            missing = first(pa.repeat(True, len(rows)) if typed is None else pc.is_null(typed))
            if missing is not None:
                problems.append((missing, f"key attribute {name!r} is missing"))
            unfit = first(pc.and_(pc.is_valid(parts.tag) if typed is None else pc.is_valid(typed), parts.unfit))
            if unfit is not None and typed is not None:
                value = typed_value(typed, unfit)
                problems.append((unfit, f"key attribute {name!r} {key_value_problem(value)}"))
        if task.key_columns and typed is not None:
            column = task.key_columns[index]
            misfit = first(pc.and_(pc.is_valid(parts.tag), pc.invert(_fits_key_column(column, parts))))
            if misfit is not None:
                value, tag = typed_value(typed, misfit), parts.tag[misfit].as_py()
                problems.append(
                    (
                        misfit,
                        f"key attribute {name!r} = {value!r} ({tag}) does not fit the table's key column "
                        f"{column.name} ({column.tag}, {column.type.kind.value}); a key cannot change type",
                    )
                )
    if key_typed is not None:
        names = _field_names(key_typed)
        wrong = pa.repeat(False, len(rows))
        for name in names:
            if name not in task.key_attributes:
                wrong = pc.or_(wrong, pc.is_valid(pc.struct_field(key_typed, name)))
        for name in task.key_attributes:
            absent = pc.is_null(pc.struct_field(key_typed, name)) if name in names else pa.repeat(True, len(rows))
            wrong = pc.or_(wrong, absent)
        named = first(wrong)
        if named is not None:
            keys_there = sorted(k for k, v in key_typed[named].as_py().items() if v is not None)
            problems.append((named, f"names the Keys {keys_there}, not the table's keys {list(task.key_attributes)}"))
    if problems:
        row, problem = min(problems, key=lambda found: found[0])
        raise file.data_file.fail(problem, line_numbers[row].as_py())


def _field_names(typed: pa.Array) -> set[str]:
    return {f.name for f in typed.type} if pa.types.is_struct(typed.type) else set()


def _fits_key_column(column: Column, parts: KeyParts) -> pa.Array:
    """Where a key value has the key column's type and, for numbers, fits it exactly."""
    same_tag = pc.fill_null(pc.equal(parts.tag, column.tag), False)
    if column.tag != "N" or column.type.kind is Kind.NUMBER_TEXT:
        return same_tag
    parsed = numbers(parts.payload)
    if column.type.kind is Kind.LONG:
        fits = parsed.is_long
    else:
        scale = column.type.scale
        fits = pc.and_(pc.less_equal(parsed.scale, scale), pc.less_equal(parsed.digits, MAX_DECIMAL_PRECISION - scale))
    return pc.and_(same_tag, pc.fill_null(fits, False))


def _note_key_types(
    task: ReadTask, file: FileToRead, summary: TaskSummary, keys: list[KeyParts], line_numbers: pa.Array
) -> None:
    """The first line of each DynamoDB type each key attribute has (whether all records agree on the type is the
    driver's to check, from the tasks' summaries)."""
    for name, parts in zip(task.key_attributes, keys, strict=True):
        types = summary.key_types.setdefault(name, {})
        for tag in pc.unique(pc.drop_null(parts.tag)).to_pylist():
            if tag not in types:
                index = pc.index(parts.tag, tag).as_py()
                types[tag] = (file.export_ord, file.file_ord, line_numbers[index].as_py())


def rows_schema(layout: Layout, carried: Sequence[pa.Field] = (), *, old_images: bool = False) -> pa.Schema:
    """The Arrow schema of `row_builder`'s output: the table's columns, the operation column, the columns of
    the changes it carries along, and (`old_images`) the item before each change."""
    schema = arrow_schema(layout).append(pa.field(OP_COLUMN, pa.string(), nullable=False))
    for carried_field in carried:
        schema = schema.append(carried_field)
    if old_images:
        # Every field nullable, as Spark's DDL has them: a NULL image's key fields are NULL too.
        image_type = pa.struct([f.with_nullable(True) for f in arrow_type(layout.image_type)])
        schema = schema.append(pa.field(OLD_IMAGE_COLUMN, image_type))
    return schema


def build_rows_here(
    changes: pa.Table, layout: Layout, carried: Sequence[pa.Field] = (), *, old_images: bool = False
) -> pa.Table:
    """`row_builder` run in this very process: a small plan's rows, on the driver."""
    batches = changes.to_batches(max_chunksize=_BATCH_ROWS)
    rows = row_builder(layout, carried, old_images=old_images)(batches)
    return pa.Table.from_batches(list(rows), schema=rows_schema(layout, carried, old_images=old_images))


def row_builder(
    layout: Layout, carried: Sequence[pa.Field] = (), *, old_images: bool = False
) -> Callable[[Iterable[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """mapInArrow over changes (key, written, kind, image, and the `carried` columns): the table's rows, the
    operation column and the carried columns; with `old_images`, also each line's OldImage in the same columns
    (OLD_IMAGE_COLUMN). The images (the lines records came from) are parsed again by Arrow, a batch at a time,
    and their values placed a column at a time (`rows.build_columns`)."""
    schema = rows_schema(layout, carried, old_images=old_images)
    key_attributes = layout.key_attributes
    has_keys = layout.has_key_columns
    carried_names = [f.name for f in carried]

    def old_of(parsed: pa.Table, mine: pa.Array | None = None) -> pa.Array | None:
        if not old_images or "OldImage" not in parsed.column_names:
            return None
        old = parsed.column("OldImage").combine_chunks()
        return old.filter(mine) if mine is not None else old

    def build(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            kind = batch.column("kind")
            upserts = batch.filter(pc.equal(kind, UPSERT))
            if len(upserts):
                parsed = parse_lines(lines_text(upserts.column("image")), checked=True).table
                for part in ("Item", "NewImage"):
                    if part in parsed.column_names:
                        images = parsed.column(part).combine_chunks()
                        mine = pc.is_valid(images)
                        along = {name: upserts.column(name).filter(mine) for name in carried_names}
                        written = upserts.column("written").filter(mine)
                        old = old_of(parsed, mine)
                        yield _rows(layout, schema, images.filter(mine), written, UPSERT, along, old)
            deletes = batch.filter(pc.equal(kind, DELETE))
            if has_keys and len(deletes):
                # Synthetic deletes (engine.changes: overlapping windows) have no line: their key stands for it.
                lines = [
                    line if line is not None else _keys_line(key_attributes, key)
                    for line, key in zip(
                        deletes.column("image").to_pylist(), deletes.column("key").to_pylist(), strict=True
                    )
                ]
                parsed = parse_lines(lines_text(lines)).table
                keys = parsed.column("Keys").combine_chunks()
                along = {name: deletes.column(name) for name in carried_names}
                yield _rows(layout, schema, keys, deletes.column("written"), DELETE, along, old_of(parsed))

    return build


def _keys_line(key_attributes: Sequence[str], key: str) -> str:
    return json.dumps({"Keys": encode_item(dict(zip(key_attributes, key_values(key), strict=True)))})


def _rows(
    layout: Layout,
    schema: pa.Schema,
    images: pa.Array,
    written: pa.Array,
    kind: str,
    carried: Mapping[str, pa.Array],
    old: pa.Array | None = None,
) -> pa.RecordBatch:
    columns = build_columns(layout, images)
    columns[WRITE_TIME_COLUMN] = written.cast(pa.timestamp("us", tz="UTC"))
    columns[OP_COLUMN] = pa.repeat(kind, len(images))
    columns.update(carried)
    if OLD_IMAGE_COLUMN in schema.names:
        columns[OLD_IMAGE_COLUMN] = _image_struct(layout, schema.field(OLD_IMAGE_COLUMN).type, old, len(images))
    return pa.RecordBatch.from_arrays([columns[f.name] for f in schema], schema=schema)


def _image_struct(layout: Layout, struct_type: pa.StructType, images: pa.Array | None, length: int) -> pa.Array:
    """Items (NULL where none) as structs of the table's item columns, placed as the rows' own values are."""
    if images is None or not pa.types.is_struct(images.type):
        return pa.nulls(length, struct_type)
    columns = build_columns(layout, images)
    return pa.StructArray.from_arrays(
        [columns[f.name] for f in struct_type], fields=list(struct_type), mask=pc.is_null(images)
    )


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


def spark_schema(layout: Layout, carried: Sequence[str] = (), *, old_images: bool = False) -> str:
    """The DDL of `row_builder`'s output (what mapInArrow needs), with the `carried` columns' DDL."""
    from ddb_iceberg.engine.spark_types import column_ddl, spark_type

    columns = [*(column_ddl(c, comments=False) for c in layout.columns), f"{OP_COLUMN} STRING NOT NULL"]
    if old_images:
        carried = [*carried, f"{OLD_IMAGE_COLUMN} {spark_type(layout.image_type, comments=False)}"]
    return ", ".join([*columns, *carried])
