"""Items to Arrow rows of a layout, and table rows back to items (to check the table against the truth)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ddb_iceberg.engine.naming import WRITE_TIME_COLUMN
from ddb_iceberg.engine.schema import (
    BINARY,
    BOOLEAN,
    JSON_TEXT,
    LONG,
    MAX_DECIMAL_PRECISION,
    NUMBER_TEXT,
    STRING,
    Column,
    ColumnType,
    ColumnTypeVisitor,
    Kind,
    Layout,
    element_tag_of,
)
from ddb_iceberg.engine.type_profile import tag_of
from ddb_iceberg.errors import KeyTypeError
from ddb_iceberg.exports.arrow_json import (
    decode_base64,
    holds_value,
    is_null_value,
    lines_text,
    numbers,
    parse_lines,
    row_ids,
    tag_payload,
)
from ddb_iceberg.exports.typed_values import (
    DecodedItem,
    DecodedValue,
    decode_value,
    encode_item,
    encode_value,
)

_SET_ELEMENT_TAGS = {"SS": "S", "NS": "N", "BS": "B"}


class _ArrowType(ColumnTypeVisitor[pa.DataType]):
    def visit_string(self) -> pa.DataType:
        return pa.string()

    def visit_long(self) -> pa.DataType:
        return pa.int64()

    def visit_decimal(self, scale: int) -> pa.DataType:
        return pa.decimal128(MAX_DECIMAL_PRECISION, scale)

    def visit_number_text(self) -> pa.DataType:
        return pa.string()

    def visit_boolean(self) -> pa.DataType:
        return pa.bool_()

    def visit_binary(self) -> pa.DataType:
        return pa.binary()

    def visit_json(self) -> pa.DataType:
        return pa.string()

    def visit_struct(self, fields: tuple[Column, ...]) -> pa.DataType:
        return pa.struct([arrow_field(f) for f in fields])

    def visit_list(self, element: ColumnType) -> pa.DataType:
        return pa.list_(self.visit(element))

    def visit_timestamp(self) -> pa.DataType:
        return pa.timestamp("us", tz="UTC")


_ARROW_TYPE = _ArrowType()


def arrow_type(column_type: ColumnType) -> pa.DataType:
    return _ARROW_TYPE.visit(column_type)


def arrow_field(column: Column) -> pa.Field:
    return pa.field(column.name, arrow_type(column.type), nullable=not column.required)


def arrow_schema(layout: Layout) -> pa.Schema:
    return pa.schema([arrow_field(c) for c in layout.columns])


def _element_tag(tag: str, element_type: ColumnType) -> str:
    """The DynamoDB type of an array column's elements: a set's, or those of the list it was built from."""
    return _SET_ELEMENT_TAGS.get(tag) or str(element_tag_of(element_type))


CellReader = Callable[[Any], DecodedValue]


def cell_reader(column: Column) -> CellReader:
    """A function reading a column's (non-NULL) cells back as the values of its DynamoDB type, the inverse of
    `typed_cells`, built once per column (executors read every row of a window's keys)."""
    return _CellReaderBuilder(column.tag).visit(column.type)


def from_cell(column: Column, cell: Any) -> DecodedValue:
    """One cell read back (`cell_reader`, for a value or two; build the reader once for many)."""
    return cell_reader(column)(cell)


def _same(cell: Any) -> DecodedValue:
    return cell


class _CellReaderBuilder(ColumnTypeVisitor[CellReader]):
    """Builds the reader of a column type for cells of the DynamoDB type `tag`. A reader reads only its closure's
    variables, never the builder: it runs for every cell."""

    def __init__(self, tag: str) -> None:
        self.tag = tag

    def visit_string(self) -> CellReader:
        return _same

    def visit_long(self) -> CellReader:
        return Decimal

    def visit_decimal(self, scale: int) -> CellReader:
        return Decimal

    def visit_number_text(self) -> CellReader:
        return Decimal

    def visit_boolean(self) -> CellReader:
        return _same

    def visit_binary(self) -> CellReader:
        return bytes

    def visit_json(self) -> CellReader:
        return lambda cell: decode_value(json.loads(cell))

    def visit_struct(self, fields: tuple[Column, ...]) -> CellReader:
        readers = [(f.name, f.attribute, cell_reader(f)) for f in fields]

        def struct(cell: Any) -> DecodedValue:
            return {attribute: read(cell[name]) for name, attribute, read in readers if cell.get(name) is not None}

        return struct

    def visit_list(self, element: ColumnType) -> CellReader:
        read_element = cell_reader(Column("element", "", _element_tag(self.tag, element), element))
        is_set = self.tag in _SET_ELEMENT_TAGS

        def array(cell: Any) -> DecodedValue:
            values = [None if e is None else read_element(e) for e in cell]
            return frozenset(values) if is_set else values

        return array

    def visit_timestamp(self) -> CellReader:
        # The only timestamp column is the engine's write time, which is no attribute's (`item_reader` skips it).
        raise TypeError("a timestamp column holds no DynamoDB value")


def item_reader(layout: Layout) -> Callable[[Mapping[str, Any]], DecodedItem]:
    """A function reading the DynamoDB item a table row holds (NULL columns are absent attributes), its columns'
    readers built once for every row."""
    readers = [
        (column.name, column.attribute, cell_reader(column))
        for column in layout.columns
        if column.name != WRITE_TIME_COLUMN and column.tag
    ]

    def read(row: Mapping[str, Any]) -> DecodedItem:
        return {
            attribute: read_cell(cell) for name, attribute, read_cell in readers if (cell := row.get(name)) is not None
        }

    return read


def row_to_item(layout: Layout, row: Mapping[str, Any]) -> DecodedItem:
    """The DynamoDB item one table row holds (`item_reader`, for a row or two)."""
    return item_reader(layout)(row)


def canonical_item(item: Mapping[str, DecodedValue]) -> DecodedItem:
    """An item as the table can show it: NULL attributes and NULL map fields are absent (SQL NULL)."""
    return {name: _canonical(value) for name, value in item.items() if value is not None}


def _canonical(value: DecodedValue) -> DecodedValue:
    if isinstance(value, dict):
        return canonical_item(value)
    if isinstance(value, list):
        return [None if v is None else _canonical(v) for v in value]
    return value


Cells = tuple[pa.Array, pa.Array]


def typed_cells(column: Column, typed: pa.Array) -> Cells:
    """Where an array of typed values (as Arrow reads DynamoDB JSON: a struct with a field per type tag) holds a
    value of the column's DynamoDB type that the column holds exactly, and the column's cells for them (NULL
    elsewhere). A value not held (another type, a number out of range or scale, a map with a field the column has
    not or holds another way) goes to the attribute's next column."""
    return _ArrowCells(column.tag, typed).visit(column.type)


class _ArrowCells(ColumnTypeVisitor[Cells]):
    """Builds a column type's cells for the `tag` values of an array of typed values, a column at a time."""

    def __init__(self, tag: str, typed: pa.Array) -> None:
        self.tag = tag
        self.typed = typed
        self.payload = tag_payload(typed, tag)
        if self.payload is not None and pa.types.is_null(self.payload.type):
            self.payload = None
        self.has = (
            pa.repeat(False, len(typed)) if self.payload is None else pc.fill_null(pc.is_valid(self.payload), False)
        )

    def _none(self, column_type: ColumnType) -> Cells:
        return pa.repeat(False, len(self.typed)), pa.nulls(len(self.typed), arrow_type(column_type))

    def visit_string(self) -> Cells:
        if self.payload is None:
            return self._none(STRING)
        return self.has, self.payload.cast(pa.string())

    def visit_boolean(self) -> Cells:
        if self.payload is None:
            return self._none(BOOLEAN)
        return self.has, self.payload.cast(pa.bool_())

    def visit_binary(self) -> Cells:
        if self.payload is None:
            return self._none(BINARY)
        return self.has, decode_base64(self.payload)

    def visit_long(self) -> Cells:
        if self.payload is None:
            return self._none(LONG)
        parsed = numbers(self.payload)
        held = pc.and_(self.has, pc.fill_null(parsed.is_long, False))
        return held, pc.cast(pc.if_else(held, parsed.canonical, None), pa.int64())

    def visit_decimal(self, scale: int) -> Cells:
        column_type = ColumnType(Kind.DECIMAL, scale=scale)
        if self.payload is None:
            return self._none(column_type)
        parsed = numbers(self.payload)
        fits = pc.and_(pc.less_equal(parsed.scale, scale), pc.less_equal(parsed.digits, MAX_DECIMAL_PRECISION - scale))
        held = pc.and_(self.has, pc.fill_null(fits, False))
        return held, pc.cast(pc.if_else(held, parsed.canonical, None), arrow_type(column_type))

    def visit_number_text(self) -> Cells:
        if self.payload is None:
            return self._none(NUMBER_TEXT)
        return self.has, numbers(self.payload).canonical

    def visit_json(self) -> Cells:
        if self.payload is None:
            return self._none(JSON_TEXT)
        tag = self.tag
        texts = [
            None if payload is None else _json_text({tag: _typed_python(payload)})
            for payload in self.payload.to_pylist()
        ]
        return self.has, pa.array(texts, pa.string())

    def visit_struct(self, fields: tuple[Column, ...]) -> Cells:
        column_type = ColumnType(Kind.STRUCT, fields=fields)
        payload = self.payload
        if payload is None or not pa.types.is_struct(payload.type):
            return self._none(column_type)
        held = self.has
        children = []
        data_fields = {f.name for f in payload.type}
        for field in fields:
            if field.attribute not in data_fields:
                children.append(pa.nulls(len(payload), arrow_type(field.type)))
                continue
            nested = pc.struct_field(payload, field.attribute)
            field_held, cells = typed_cells(field, nested)
            held = pc.and_(held, pc.or_(pc.invert(holds_value(nested)), field_held))
            children.append(cells)
        known = {f.attribute for f in fields}
        for name in data_fields - known:
            held = pc.and_(held, pc.invert(holds_value(pc.struct_field(payload, name))))
        cells = pa.StructArray.from_arrays(children, fields=[arrow_field(f) for f in fields], mask=pc.invert(held))
        return held, cells

    def visit_list(self, element: ColumnType) -> Cells:
        column_type = ColumnType(Kind.LIST, element=element)
        payload = self.payload
        if payload is None or not pa.types.is_list(payload.type):
            return self._none(column_type)
        element_tag = _element_tag(self.tag, element)
        values = payload.flatten()
        is_set = self.tag in _SET_ELEMENT_TAGS
        if is_set:
            # Set elements are bare payloads: typed values of the element type.
            values = pa.StructArray.from_arrays([values], names=[element_tag])
        element_held, cells = typed_cells(Column("element", "", element_tag, element), values)
        element_held = pc.or_(element_held, is_null_value(values))  # a NULL element is an SQL NULL element
        parents = pc.list_parent_indices(payload)
        unheld_lists = pc.unique(pc.filter(parents, pc.invert(element_held)))
        held = pc.and_(self.has, pc.invert(pc.is_in(row_ids(len(payload)), unheld_lists)))
        if is_set and len(cells):
            cells = cells.take(_set_order(parents, cells, element))
        lengths = pc.fill_null(pc.list_value_length(payload), 0)
        offsets = pa.concat_arrays([pa.array([0], pa.int32()), pc.cumulative_sum(pc.cast(lengths, pa.int32()))])
        lists = pa.ListArray.from_arrays(offsets, cells, type=arrow_type(column_type), mask=pc.invert(held))
        return held, lists

    def visit_timestamp(self) -> Cells:
        # The only timestamp column is the engine's write time, which is no attribute's: rows get it from the
        # change they come from.
        raise TypeError("no DynamoDB value converts to a timestamp column")


def _set_order(parents: pa.Array, cells: pa.Array, element: ColumnType) -> pa.Array:
    """The order that sorts each set's elements (a set has no order; its array is sorted, as Python sorts the
    decoded values: text by code point, numbers by value, binaries by byte)."""
    if element.kind is Kind.NUMBER_TEXT:
        # Exact text of numbers no decimal holds: sorted by value, which only Python's Decimal can compare.
        keys = [Decimal(text) for text in cells.to_pylist()]
        order = sorted(range(len(keys)), key=lambda index: (parents[index].as_py(), keys[index]))
        return pa.array(order, pa.int64())
    table = pa.table({"set": parents, "element": cells})
    return pc.sort_indices(table, sort_keys=[("set", "ascending"), ("element", "ascending")])


def _typed_python(value: Any) -> Any:
    """A typed value as Arrow's `to_pylist` gives it (a dict with None for the tags it has not), as DynamoDB JSON."""
    if isinstance(value, dict):
        return {name: _typed_python(nested) for name, nested in value.items() if nested is not None}
    if isinstance(value, list):
        return [_typed_python(nested) for nested in value]
    return value


def _json_text(typed: Any) -> str:
    return json.dumps(encode_value(decode_value(typed)), separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def typed_value(typed: pa.Array, index: int) -> DecodedValue:
    """The decoded value at one place of an array of typed values (for a message)."""
    return decode_value(_typed_python(typed[index].as_py()))


def build_columns(layout: Layout, images: pa.Array) -> dict[str, pa.Array]:
    """The table's columns (all but the write time) for an array of items as Arrow reads DynamoDB JSON: each
    value in the first of its attribute's columns that holds it exactly (`typed_cells`)."""
    length = len(images)
    attributes = {f.name for f in images.type} if pa.types.is_struct(images.type) else set()
    columns: dict[str, pa.Array] = {}
    for attribute, attribute_columns in _columns_by_attribute(layout).items():
        if attribute not in attributes:
            for column in attribute_columns:
                columns[column.name] = pa.nulls(length, arrow_type(column.type))
            continue
        typed = pc.struct_field(images, attribute)
        remaining = holds_value(typed)
        for column in attribute_columns:
            held, cells = typed_cells(column, typed)
            placed = pc.and_(remaining, held)
            columns[column.name] = pc.if_else(placed, cells, pa.scalar(None, cells.type))
            remaining = pc.and_(remaining, pc.invert(held))
        if pc.any(remaining).as_py():
            raise _not_held(layout, attribute, typed_value(typed, pc.index(remaining, True).as_py()))
    for attribute in attributes:
        if not layout.columns_of(attribute):
            typed = pc.struct_field(images, attribute)
            left = holds_value(typed)
            if pc.any(left).as_py():
                raise _not_held(layout, attribute, typed_value(typed, pc.index(left, True).as_py()))
    return columns


def _columns_by_attribute(layout: Layout) -> dict[str, tuple[Column, ...]]:
    return {c.attribute: layout.columns_of(c.attribute) for c in layout.columns if c.tag}


def _not_held(layout: Layout, attribute: str, value: DecodedValue) -> Exception:
    columns = layout.columns_of(attribute)
    if columns and attribute in layout.key_attributes:
        return KeyTypeError(
            f"key attribute {attribute!r} has value {value!r}, which its column {columns[0].name} "
            f"({columns[0].tag}) cannot hold"
        )
    # The layout was planned from a profile of these very items: this is a bug, not bad data.
    return AssertionError(f"the layout has no column that holds the {tag_of(value)} value of {attribute!r}")


def typed_array(values: Iterable[DecodedValue]) -> pa.Array:
    """Decoded values as Arrow reads their DynamoDB JSON: one typed value (a struct per tag) each."""
    lines = [json.dumps({"Keys": {"v": encode_value(value)}}, ensure_ascii=False) for value in values]
    return pc.struct_field(parse_lines(lines_text(lines)).table.column("Keys").combine_chunks(), "v")


def rows_of_items(layout: Layout, items: Iterable[Mapping[str, DecodedValue]]) -> pa.Table:
    """Table rows for decoded items (write time 0), built as the engine builds them: from their DynamoDB JSON."""
    lines = [json.dumps({"Item": encode_item(item)}, ensure_ascii=False) for item in items]
    length = len(lines)
    if not length:
        return pa.Table.from_pylist([], schema=arrow_schema(layout))
    images = parse_lines(lines_text(lines)).table.column("Item").combine_chunks()
    columns = build_columns(layout, images)
    columns[WRITE_TIME_COLUMN] = pa.array([0] * length, pa.int64()).cast(pa.timestamp("us", tz="UTC"))
    schema = arrow_schema(layout)
    return pa.Table.from_arrays([columns[f.name] for f in schema], schema=schema)
