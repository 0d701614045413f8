"""Items to Arrow rows of a layout, and table rows back to items (to check the table against the truth)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

import pyarrow as pa

from ddb_iceberg.engine.naming import WRITE_TIME_COLUMN
from ddb_iceberg.engine.schema import (
    MAX_DECIMAL_PRECISION,
    Column,
    ColumnType,
    ColumnTypeVisitor,
    Kind,
    Layout,
    element_tag_of,
    number_fits,
)
from ddb_iceberg.engine.type_profile import tag_of
from ddb_iceberg.errors import KeyTypeError
from ddb_iceberg.exports.typed_values import DecodedItem, DecodedValue, decode_value, encode_value, format_number

_SET_ELEMENT_TAGS = {"SS": "S", "NS": "N", "BS": "B"}
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1


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


class NotHeld(Exception):  # noqa: N818 (a control-flow signal, not an error)
    """A value its column's type cannot hold exactly."""


Converter = Callable[[DecodedValue], Any]


def converter(column_type: ColumnType, tag: str) -> Converter:
    """A function converting decoded values of the DynamoDB type `tag` to the Arrow-ready Python values of one
    column type, built once per column (rows convert millions); it raises NotHeld for a value the column cannot
    hold exactly (another DynamoDB type, a number out of range or scale, a map field of another type)."""
    return _ConverterBuilder(tag).visit(column_type)


class _ConverterBuilder(ColumnTypeVisitor[Converter]):
    """Builds the converter of a column type for values of the DynamoDB type `tag`. A converter reads only its
    closure's variables, never the builder: it runs for every value."""

    def __init__(self, tag: str) -> None:
        self.tag = tag

    def _plain(self) -> Converter:
        python_type = _PYTHON_TYPES.get(self.tag)

        def plain(value: DecodedValue) -> Any:
            if type(value) is not python_type:
                raise NotHeld
            return value

        return plain

    def visit_string(self) -> Converter:
        return self._plain()

    def visit_long(self) -> Converter:
        return _long_number

    def visit_decimal(self, scale: int) -> Converter:
        column_type = ColumnType(Kind.DECIMAL, scale=scale)

        def decimal_number(value: DecodedValue) -> Any:
            if type(value) is not Decimal or not number_fits(column_type, value):
                raise NotHeld
            return value

        return decimal_number

    def visit_number_text(self) -> Converter:
        return _number_text

    def visit_boolean(self) -> Converter:
        return self._plain()

    def visit_binary(self) -> Converter:
        return self._plain()

    def visit_json(self) -> Converter:
        tag = self.tag

        def json_text(value: DecodedValue) -> Any:
            if tag_of(value) != tag:
                raise NotHeld
            return json.dumps(encode_value(value), separators=(",", ":"), sort_keys=True, ensure_ascii=False)

        return json_text

    def visit_struct(self, fields: tuple[Column, ...]) -> Converter:
        by_attribute = {f.attribute: (f.name, converter(f.type, f.tag)) for f in fields}

        def struct(value: DecodedValue) -> Any:
            if type(value) is not dict:
                raise NotHeld
            cell: dict[str, Any] = {}
            for attribute, nested in value.items():
                if nested is None:
                    continue
                field = by_attribute.get(attribute)
                if field is None:
                    raise NotHeld
                cell[field[0]] = field[1](nested)
            return cell

        return struct

    def visit_list(self, element: ColumnType) -> Converter:
        tag = self.tag
        convert_element = converter(element, _element_tag(tag, element))
        is_set = tag in _SET_ELEMENT_TAGS

        def array(value: DecodedValue) -> Any:
            if tag_of(value) != tag:
                raise NotHeld
            elements = sorted(value) if is_set else value
            return [None if e is None else convert_element(e) for e in elements]

        return array

    def visit_timestamp(self) -> Converter:
        # The only timestamp column is the engine's write time, which is no attribute's: rows get it from the
        # change they come from.
        raise TypeError("no DynamoDB value converts to a timestamp column")


def _long_number(value: DecodedValue) -> Any:
    if type(value) is not Decimal:
        raise NotHeld
    whole = int(value)  # truncates: equal only when the number is whole
    if whole != value or not _LONG_MIN <= whole <= _LONG_MAX:
        raise NotHeld
    return whole


def _number_text(value: DecodedValue) -> Any:
    if type(value) is not Decimal:
        raise NotHeld
    return format_number(value)


_PYTHON_TYPES: dict[str, type] = {"S": str, "B": bytes, "BOOL": bool}


CellReader = Callable[[Any], DecodedValue]


def cell_reader(column: Column) -> CellReader:
    """A function reading a column's (non-NULL) cells back as the values of its DynamoDB type, the inverse of
    `converter`, built once per column (executors read every row of a window's keys)."""
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


class RowBuilder:
    """Builds table rows from items against a final layout (`schema.plan_layout`): each value goes to the first
    of its attribute's columns that holds it exactly. A value that lands in a fallback column is drift, counted."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.drift: Counter[tuple[str, str, str]] = Counter()
        self._converters: dict[str, list[tuple[str, Converter]]] = {}

    def _columns(self, attribute: str) -> list[tuple[str, Converter]]:
        columns = self._converters.get(attribute)
        if columns is None:
            columns = self._converters[attribute] = [
                (c.name, converter(c.type, c.tag)) for c in self.layout.columns_of(attribute)
            ]
        return columns

    def row(self, item: Mapping[str, DecodedValue]) -> dict[str, Any]:
        row: dict[str, Any] = {}
        for attribute, value in item.items():
            if value is None:
                continue
            for index, (name, convert) in enumerate(self._columns(attribute)):
                try:
                    row[name] = convert(value)
                except NotHeld:
                    continue
                if index:
                    self.drift[(attribute, str(tag_of(value)), name)] += 1
                break
            else:
                raise self._not_held(attribute, value)
        return row

    def _not_held(self, attribute: str, value: DecodedValue) -> Exception:
        columns = self.layout.columns_of(attribute)
        if columns and attribute in self.layout.key_attributes:
            return KeyTypeError(
                f"key attribute {attribute!r} has value {value!r}, which its column {columns[0].name} "
                f"({columns[0].tag}) cannot hold"
            )
        # The layout was planned from a profile of these very items: this is a bug, not bad data.
        return AssertionError(f"the layout has no column that holds the {tag_of(value)} value of {attribute!r}")


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


def rows_table(layout: Layout, rows: Iterable[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(list(rows), schema=arrow_schema(layout))
