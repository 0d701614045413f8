"""Items to Arrow rows of a layout, and table rows back to items (to check the table against the truth)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

import pyarrow as pa

from ddb_iceberg.engine.naming import WRITE_TIME_COLUMN
from ddb_iceberg.engine.schema import Column, ColumnType, Kind, Layout, element_tag_of
from ddb_iceberg.exports.typed_values import DecodedItem, DecodedValue, decode_value, encode_value, format_number

_SET_ELEMENT_TAGS = {"SS": "S", "NS": "N", "BS": "B"}


def arrow_type(column_type: ColumnType) -> pa.DataType:
    kind = column_type.kind
    if kind in (Kind.STRING, Kind.NUMBER_TEXT, Kind.JSON):
        return pa.string()
    if kind is Kind.LONG:
        return pa.int64()
    if kind is Kind.DECIMAL:
        return pa.decimal128(38, column_type.scale)
    if kind is Kind.BOOLEAN:
        return pa.bool_()
    if kind is Kind.BINARY:
        return pa.binary()
    if kind is Kind.TIMESTAMP:
        return pa.timestamp("us", tz="UTC")
    if kind is Kind.LIST:
        assert column_type.element is not None
        return pa.list_(arrow_type(column_type.element))
    return pa.struct([arrow_field(f) for f in column_type.fields])


def arrow_field(column: Column) -> pa.Field:
    return pa.field(column.name, arrow_type(column.type), nullable=not column.required)


def arrow_schema(layout: Layout) -> pa.Schema:
    return pa.schema([arrow_field(c) for c in layout.columns])


def _element_tag(column: Column) -> str:
    assert column.type.element is not None
    return _SET_ELEMENT_TAGS.get(column.tag) or str(element_tag_of(column.type.element))


def to_cell(column: Column, value: DecodedValue) -> Any:
    """A decoded value as the Arrow-ready Python value of its column (the layout placed it there)."""
    kind = column.type.kind
    if kind is Kind.LONG:
        return int(value)
    if kind is Kind.NUMBER_TEXT:
        return format_number(value)
    if kind is Kind.JSON:
        return json.dumps(encode_value(value), separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    if kind is Kind.LIST:
        assert column.type.element is not None
        element = Column("element", "", _element_tag(column), column.type.element)
        elements = sorted(value) if isinstance(value, frozenset) else value
        return [None if e is None else to_cell(element, e) for e in elements]
    if kind is Kind.STRUCT:
        return {
            f.name: None if value.get(f.attribute) is None else to_cell(f, value[f.attribute])
            for f in column.type.fields
        }
    return value


def from_cell(column: Column, cell: Any) -> DecodedValue:
    """The inverse of `to_cell`."""
    kind = column.type.kind
    if kind in (Kind.LONG, Kind.NUMBER_TEXT):
        return Decimal(cell)
    if kind is Kind.DECIMAL:
        return Decimal(cell)
    if kind is Kind.JSON:
        return decode_value(json.loads(cell))
    if kind is Kind.BINARY:
        return bytes(cell)
    if kind is Kind.LIST:
        assert column.type.element is not None
        element = Column("element", "", _element_tag(column), column.type.element)
        values = [None if e is None else from_cell(element, e) for e in cell]
        return frozenset(values) if column.tag in _SET_ELEMENT_TAGS else values
    if kind is Kind.STRUCT:
        return {f.attribute: from_cell(f, cell[f.name]) for f in column.type.fields if cell.get(f.name) is not None}
    return cell


def item_to_row(layout: Layout, item: Mapping[str, DecodedValue]) -> dict[str, Any]:
    """One table row (without the engine's columns) holding `item`; every value lands in the column the
    layout places it in."""
    row: dict[str, Any] = {}
    for attribute, value in item.items():
        if value is None:
            continue
        column = layout.place(attribute, value)
        if column is None:
            raise ValueError(f"the layout has no column for attribute {attribute!r} value {value!r}")
        row[column.name] = to_cell(column, value)
    return row


def row_to_item(layout: Layout, row: Mapping[str, Any]) -> DecodedItem:
    """The DynamoDB item a table row holds (NULL columns are absent attributes)."""
    item: DecodedItem = {}
    for column in layout.columns:
        if column.name == WRITE_TIME_COLUMN or not column.tag:
            continue
        cell = row.get(column.name)
        if cell is not None:
            item[column.attribute] = from_cell(column, cell)
    return item


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
