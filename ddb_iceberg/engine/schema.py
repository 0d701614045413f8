"""From DynamoDB's typed values to an Iceberg schema that holds every value exactly, and evolves.

The model here is plain Python (no Spark, no PyIceberg); `spark_types` and `rows` translate it.

Policy (documented in the README):
- Each attribute has a primary column, typed by the DynamoDB type most of its first sync's values have:
  S string, B binary, BOOL boolean, N long / decimal(38, s) / exact decimal text, M struct, L array (or JSON
  text when its elements differ in type), SS/NS/BS arrays. NULL carries no type: it is SQL NULL, and an
  attribute seen only as NULL gets no column until it holds a value.
- A value the primary column cannot hold exactly (another DynamoDB type, a number out of its range or scale, a
  map whose field changed type) goes to a fallback column `<column>__<type>` that holds any value of that
  DynamoDB type (numbers as exact text, maps and lists as DynamoDB JSON text). Nothing is lost, nothing
  crashes, and the run reports the drift.
- All of this is decided from a profile of the values (`profile.ItemProfile`), before any row is built: rows
  are built in parallel against the final layout.
- Columns are only ever added; a column no item uses any more stays, NULL.
- Every column stays within what Glue stores of it (`GLUE_TYPE_MAX_LENGTH`): a new map or list column whose type
  would be longer is DynamoDB JSON text, and a struct column grows only while its type fits: the values of the
  map keys left out go to its fallback column.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum
from functools import cached_property
from typing import Any, Generic, Never, NoReturn, TypeVar

from ddb_iceberg.engine.naming import WRITE_TIME_COLUMN, assign_column_names, with_suffix
from ddb_iceberg.engine.type_profile import ItemProfile, NumberStats, ValueProfile, tag_of
from ddb_iceberg.errors import KeyTypeError
from ddb_iceberg.exports.typed_values import DecodedValue, is_long, number_shape

MAX_DECIMAL_PRECISION = 38
# New decimal columns get room for this many fractional digits (when the integer digits leave it), so that
# a column first seen with `12.5` still holds `12.55` later.
PREFERRED_DECIMAL_SCALE = 18

TAG_ORDER = ("S", "N", "B", "BOOL", "M", "L", "SS", "NS", "BS")

# Glue stores a column's type as a string of at most this many characters (Column.Type in the Glue API:
# https://docs.aws.amazon.com/glue/latest/webapi/API_Column.html), and Iceberg's GlueCatalog writes every top-level
# column's type there on every commit: a column whose type string outgrew it would fail every commit from then on.
# `glue_type_string` is exactly what Iceberg writes, so no margin is kept below the limit.
GLUE_TYPE_MAX_LENGTH = 131_072


class Kind(StrEnum):
    STRING = "string"
    LONG = "long"
    DECIMAL = "decimal"
    NUMBER_TEXT = "number_text"  # exact decimal text of numbers no decimal(38, s) holds
    BOOLEAN = "boolean"
    BINARY = "binary"
    JSON = "json"  # DynamoDB JSON text of a value (lossless, types included)
    STRUCT = "struct"
    LIST = "list"
    TIMESTAMP = "timestamp"


@dataclass(frozen=True)
class ColumnType:
    kind: Kind
    scale: int = 0
    element: ColumnType | None = None
    fields: tuple[Column, ...] = ()

    @cached_property
    def field_by_attribute(self) -> dict[str, Column]:
        return {f.attribute: f for f in self.fields}

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind.value}
        if self.kind is Kind.DECIMAL:
            data["scale"] = self.scale
        if self.element is not None:
            data["element"] = self.element.to_json()
        if self.kind is Kind.STRUCT:
            data["fields"] = [f.to_json() for f in self.fields]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ColumnType:
        return cls(
            kind=Kind(data["kind"]),
            scale=data.get("scale", 0),
            element=cls.from_json(data["element"]) if "element" in data else None,
            fields=tuple(Column.from_json(f) for f in data.get("fields", ())),
        )


@dataclass(frozen=True)
class Column:
    """A column (or struct field): its name, the attribute it holds, and which DynamoDB type."""

    name: str
    attribute: str
    tag: str  # S N B BOOL M L SS NS BS; "" for the engine's own columns
    type: ColumnType
    required: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "attribute": self.attribute, "tag": self.tag, "type": self.type.to_json()} | (
            {"required": True} if self.required else {}
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Column:
        return cls(
            data["name"],
            data["attribute"],
            data["tag"],
            ColumnType.from_json(data["type"]),
            data.get("required", False),
        )


Result = TypeVar("Result")


class ColumnTypeVisitor(ABC, Generic[Result]):
    """What a column type is in one target (a type system: Glue, Spark, Arrow, Iceberg; or a conversion of values):
    one method per kind. A kind no method handles fails where the target is written, loudly: mypy refuses a
    visitor with an abstract method left, and so does Python when the visitor is made. Never does a kind fall into
    another kind's case.

    Lists and structs get their children's types, not results: each target recurses as it needs to (the Spark DDL
    adds its fields' comments, row conversion gives each child its DynamoDB type).
    """

    def visit(self, column_type: ColumnType) -> Result:
        kind = column_type.kind
        match kind:
            case Kind.STRING:
                return self.visit_string()
            case Kind.LONG:
                return self.visit_long()
            case Kind.DECIMAL:
                return self.visit_decimal(column_type.scale)
            case Kind.NUMBER_TEXT:
                return self.visit_number_text()
            case Kind.BOOLEAN:
                return self.visit_boolean()
            case Kind.BINARY:
                return self.visit_binary()
            case Kind.JSON:
                return self.visit_json()
            case Kind.STRUCT:
                return self.visit_struct(column_type.fields)
            case Kind.LIST:
                assert column_type.element is not None, "a list column type has an element type"
                return self.visit_list(column_type.element)
            case Kind.TIMESTAMP:
                return self.visit_timestamp()
            case _:
                _unknown_kind(kind, self)

    @abstractmethod
    def visit_string(self) -> Result: ...

    @abstractmethod
    def visit_long(self) -> Result: ...

    @abstractmethod
    def visit_decimal(self, scale: int) -> Result: ...

    @abstractmethod
    def visit_number_text(self) -> Result: ...

    @abstractmethod
    def visit_boolean(self) -> Result: ...

    @abstractmethod
    def visit_binary(self) -> Result: ...

    @abstractmethod
    def visit_json(self) -> Result: ...

    @abstractmethod
    def visit_struct(self, fields: tuple[Column, ...]) -> Result: ...

    @abstractmethod
    def visit_list(self, element: ColumnType) -> Result: ...

    @abstractmethod
    def visit_timestamp(self) -> Result: ...


def _unknown_kind(kind: Never, visitor: ColumnTypeVisitor[Any]) -> NoReturn:
    # Typed `Never` so that mypy flags a Kind member `visit` has no case for; at run time, what reaches here is no
    # Kind member at all.
    raise TypeError(f"{type(visitor).__name__}: no mapping for column kind {kind!r}")


STRING = ColumnType(Kind.STRING)
LONG = ColumnType(Kind.LONG)
NUMBER_TEXT = ColumnType(Kind.NUMBER_TEXT)
BOOLEAN = ColumnType(Kind.BOOLEAN)
BINARY = ColumnType(Kind.BINARY)
JSON_TEXT = ColumnType(Kind.JSON)
TIMESTAMP = ColumnType(Kind.TIMESTAMP)

WRITE_TIME = Column(WRITE_TIME_COLUMN, "", "", TIMESTAMP, required=True)


class _GlueTypeString(ColumnTypeVisitor[str]):
    """Iceberg 1.11's `IcebergToGlueConverter.toTypeString` of the Iceberg type Spark makes of a column type."""

    def visit_string(self) -> str:
        return "string"

    def visit_long(self) -> str:
        return "bigint"

    def visit_decimal(self, scale: int) -> str:
        return f"decimal({MAX_DECIMAL_PRECISION},{scale})"

    def visit_number_text(self) -> str:
        return "string"

    def visit_boolean(self) -> str:
        return "boolean"

    def visit_binary(self) -> str:
        return "binary"

    def visit_json(self) -> str:
        return "string"

    def visit_struct(self, fields: tuple[Column, ...]) -> str:
        return "struct<" + ",".join(_glue_field(f) for f in fields) + ">"

    def visit_list(self, element: ColumnType) -> str:
        return f"array<{self.visit(element)}>"

    def visit_timestamp(self) -> str:
        return "timestamp"  # Spark's TIMESTAMP is Iceberg's timestamptz, whose Glue type is `timestamp`


_GLUE_TYPE_STRING = _GlueTypeString()


def glue_type_string(column_type: ColumnType) -> str:
    """The type Iceberg's GlueCatalog writes to Glue for a column of this type: Iceberg 1.11's
    `IcebergToGlueConverter.toTypeString` of the Iceberg type Spark makes of it (`struct<a:string,b:bigint>`, no
    spaces, no docs; the same in every Iceberg release since the Glue catalog came)."""
    return _GLUE_TYPE_STRING.visit(column_type)


def _glue_field(field: Column) -> str:
    return f"{field.name}:{glue_type_string(field.type)}"


def glue_length(text: str) -> int:
    """How long Glue counts `text`, at most: its UTF-8 bytes (Glue's developer guide gives its limits in bytes, its
    API reference in characters; bytes are never fewer). Column names and types are ASCII, where both agree."""
    return len(text.encode("utf-8", "surrogatepass"))


@dataclass
class _TypeRoom:
    """How many characters a top-level column's Glue type string may still grow by, shared by all its fields."""

    left: int


# What a fallback column of each DynamoDB type is: it holds any value of that type.
FALLBACK_TYPES = {
    "S": STRING,
    "N": NUMBER_TEXT,
    "B": BINARY,
    "BOOL": BOOLEAN,
    "M": JSON_TEXT,
    "L": JSON_TEXT,
    "SS": ColumnType(Kind.LIST, element=STRING),
    "NS": ColumnType(Kind.LIST, element=NUMBER_TEXT),
    "BS": ColumnType(Kind.LIST, element=BINARY),
}


def number_type(numbers: NumberStats | Iterable[Decimal]) -> ColumnType:
    """The narrowest exact type for numbers: long, else decimal(38, s), else exact text."""
    stats = numbers if isinstance(numbers, NumberStats) else _number_stats(numbers)
    if stats.all_long:
        return LONG
    if stats.max_digits + stats.max_scale > MAX_DECIMAL_PRECISION:
        return NUMBER_TEXT
    preferred = min(PREFERRED_DECIMAL_SCALE, MAX_DECIMAL_PRECISION - stats.max_digits)
    return ColumnType(Kind.DECIMAL, scale=max(stats.max_scale, preferred))


def _number_stats(numbers: Iterable[Decimal]) -> NumberStats:
    stats = NumberStats()
    for number in numbers:
        stats.add(number)
    return stats


def number_fits(column_type: ColumnType, number: Decimal | NumberStats) -> bool:
    """Whether a column type holds a number (or every number of a profile) exactly."""
    kind = column_type.kind
    if kind is Kind.NUMBER_TEXT:
        return True
    if isinstance(number, NumberStats):
        all_long, digits, places = number.all_long, number.max_digits, number.max_scale
    else:
        shape = digits, places = number_shape(number)
        all_long = kind is Kind.LONG and is_long(number, shape)
    if kind is Kind.LONG:
        return all_long
    if kind is Kind.DECIMAL:
        return places <= column_type.scale and digits <= MAX_DECIMAL_PRECISION - column_type.scale
    return False


def initial_type(tag: str, values: ValueProfile) -> ColumnType:
    """A first type for the `tag` values of a profile (structs start empty; `grow` adds their fields)."""
    if tag == "N":
        return number_type(values.numbers or NumberStats())
    if tag == "M":
        return ColumnType(Kind.STRUCT)
    if tag == "NS":
        return ColumnType(Kind.LIST, element=number_type(values.set_numbers or NumberStats()))
    if tag == "L":
        # An array when every element of every list has one DynamoDB type, else JSON text.
        elements = values.elements
        element_tags = elements.tags() if elements is not None else []
        if len(element_tags) > 1:
            return JSON_TEXT
        if not element_tags:
            return ColumnType(Kind.LIST, element=STRING)
        assert elements is not None
        element = initial_type(element_tags[0], elements)
        # Elements that are themselves mixed lists would be JSON text, whose DynamoDB type an array cannot tell.
        return JSON_TEXT if element.kind is Kind.JSON else ColumnType(Kind.LIST, element=element)
    return FALLBACK_TYPES[tag]


def grow(column: Column, values: ValueProfile | None, *, max_type_length: int | None = GLUE_TYPE_MAX_LENGTH) -> Column:
    """Add the struct fields (at any depth) that the profiled values of the column's DynamoDB type bring, while the
    column's Glue type string stays within `max_type_length` (None: no limit).

    New fields go in whole, in sorted order, each if it still fits. A field left out is missing from the struct,
    so the values that have it are not held (`holds_all`) and go to the attribute's fallback column: the struct
    never outgrows what Glue stores, and nothing is lost.
    """
    room = None if max_type_length is None else _TypeRoom(max_type_length - glue_length(glue_type_string(column.type)))
    return _grow(column, values, room)


def _grow(column: Column, values: ValueProfile | None, room: _TypeRoom | None) -> Column:
    column_type = column.type
    if values is None or column.tag not in values.counts:
        return column
    if column_type.kind is Kind.LIST and column.tag == "L" and column_type.element is not None:
        element_tag = element_tag_of(column_type.element)
        assert element_tag is not None
        element = Column("element", "", element_tag, column_type.element)
        return replace(column, type=replace(column_type, element=_grow(element, values.elements, room).type))
    if column_type.kind is not Kind.STRUCT:
        return column
    nested = values.fields or {}
    fields = [_grow(existing, nested.get(existing.attribute), room) for existing in column_type.fields]
    known = {f.attribute for f in fields}
    new_fields = sorted(attribute for attribute in nested if attribute not in known)
    names = assign_column_names(new_fields, (f.name for f in fields))
    for attribute in new_fields:
        field = new_column(names[attribute], attribute, majority_tag(nested[attribute]), nested[attribute])
        if room is not None:
            cost = (1 if fields else 0) + glue_length(_glue_field(field))  # a comma before all but the first
            if cost > room.left:
                continue
            room.left -= cost
        fields.append(field)
    return replace(column, type=replace(column_type, fields=tuple(fields)))


def new_column(
    name: str, attribute: str, tag: str, values: ValueProfile, *, max_type_length: int | None = None
) -> Column:
    """A column (or struct field) for the `tag` values of a profile, with every struct field they bring.

    Maps with no fields at all (only `{}` so far) get JSON text: Parquet cannot store a struct of no fields. So
    does a map or list whose Glue type string would be longer than `max_type_length` (None: no limit): DynamoDB
    JSON text holds any of its values, and its type is `string`.
    """
    column = _grow(Column(name, attribute, tag, initial_type(tag, values)), values, None)
    if _holds_empty_struct(column.type):
        return replace(column, type=JSON_TEXT)
    if max_type_length is not None and glue_length(glue_type_string(column.type)) > max_type_length:
        assert tag in ("M", "L"), f"a {tag} column's type is short"
        return replace(column, type=JSON_TEXT)
    return column


def _holds_empty_struct(column_type: ColumnType) -> bool:
    if column_type.kind is Kind.STRUCT:
        return not column_type.fields or any(_holds_empty_struct(f.type) for f in column_type.fields)
    return column_type.element is not None and _holds_empty_struct(column_type.element)


def holds_all(column: Column, values: ValueProfile, tag: str) -> bool:
    """Whether `column` holds every `tag` value of a profile exactly (what decides fallback columns)."""
    if column.tag != tag:
        return False
    kind = column.type.kind
    if kind in (Kind.LONG, Kind.DECIMAL, Kind.NUMBER_TEXT):
        return number_fits(column.type, values.numbers or NumberStats())
    if kind is Kind.LIST and column.type.element is not None:
        if tag == "NS":
            return number_fits(column.type.element, values.set_numbers or NumberStats())
        if tag != "L" or values.elements is None:
            return True  # SS, BS, or lists with no element
        element_tag = element_tag_of(column.type.element)
        element = Column("element", "", str(element_tag), column.type.element)
        return all(holds_all(element, values.elements, t) for t in values.elements.counts)
    if kind is Kind.STRUCT:
        fields = column.type.field_by_attribute
        return all(
            attribute in fields and all(holds_all(fields[attribute], nested, t) for t in nested.counts)
            for attribute, nested in (values.fields or {}).items()
        )
    if kind in (Kind.STRING, Kind.BINARY, Kind.BOOLEAN, Kind.JSON):
        return True  # any value of their type
    # Saying yes to a kind not named above could put a value where it is not held exactly.
    raise TypeError(f"holds_all: no rule for column kind {kind!r}")


class _ListElementTag(ColumnTypeVisitor[str | None]):
    """The DynamoDB type of the elements of an array built from L, by the array's element type."""

    def visit_string(self) -> str:
        return "S"

    def visit_long(self) -> str:
        return "N"

    def visit_decimal(self, scale: int) -> str:
        return "N"

    def visit_number_text(self) -> str:
        return "N"

    def visit_boolean(self) -> str:
        return "BOOL"

    def visit_binary(self) -> str:
        return "B"

    def visit_json(self) -> None:
        return None  # lists of JSON text elements are JSON text themselves (`initial_type`)

    def visit_struct(self, fields: tuple[Column, ...]) -> str:
        return "M"

    def visit_list(self, element: ColumnType) -> str:
        return "L"

    def visit_timestamp(self) -> None:
        return None  # no DynamoDB value is a timestamp


_LIST_ELEMENT_TAG = _ListElementTag()


def element_tag_of(element_type: ColumnType) -> str | None:
    """The DynamoDB type an array column's elements have (for arrays built from L)."""
    return _LIST_ELEMENT_TAG.visit(element_type)


def majority_tag(values: ValueProfile | Iterable[DecodedValue]) -> str:
    """The DynamoDB type most values have; ties go to the earlier type in TAG_ORDER (order-independent)."""
    counts = values.counts if isinstance(values, ValueProfile) else Counter(filter(None, map(tag_of, values)))
    return min(counts, key=lambda tag: (-counts[tag], TAG_ORDER.index(tag)))


@dataclass(frozen=True)
class Layout:
    """The table's columns and which attribute (and DynamoDB type) each holds; stored with the table."""

    key_attributes: tuple[str, ...]
    columns: tuple[Column, ...]

    def to_json(self) -> str:
        return json.dumps({"keys": list(self.key_attributes), "columns": [c.to_json() for c in self.columns]})

    @classmethod
    def from_json(cls, text: str) -> Layout:
        data = json.loads(text)
        return cls(tuple(data["keys"]), tuple(Column.from_json(c) for c in data["columns"]))

    @cached_property
    def _by_attribute(self) -> dict[str, tuple[Column, ...]]:
        grouped: dict[str, list[Column]] = {}
        for column in self.columns:
            if column.tag:
                grouped.setdefault(column.attribute, []).append(column)
        return {attribute: tuple(columns) for attribute, columns in grouped.items()}

    def columns_of(self, attribute: str) -> tuple[Column, ...]:
        """The attribute's columns, primary first, then its fallback columns."""
        return self._by_attribute.get(attribute, ())

    @property
    def has_key_columns(self) -> bool:
        """False for a table created from an empty full export: its key columns come with its first item."""
        return bool(self.key_attributes) and all(self.columns_of(attribute) for attribute in self.key_attributes)

    @property
    def key_columns(self) -> tuple[Column, ...]:
        return tuple(self.columns_of(attribute)[0] for attribute in self.key_attributes)

    @property
    def item_columns(self) -> tuple[Column, ...]:
        """The columns that hold the item's attributes (all but the write time, which no image carries)."""
        return tuple(c for c in self.columns if c.name != WRITE_TIME_COLUMN)

    @property
    def image_type(self) -> ColumnType:
        """An item as a struct of its columns (`item_columns`): the change feed's before-image (no write time:
        DynamoDB's OldImage carries none; a version's write time is that of the feed's row that made it)."""
        return ColumnType(Kind.STRUCT, fields=self.item_columns)

    def with_fallback(self, attribute: str, tag: str) -> tuple[Layout, Column]:
        """This layout plus the fallback column that holds any `tag` value of `attribute`."""
        primary = self.columns_of(attribute)[0]
        name = with_suffix(primary.name, f"__{tag.lower()}")
        name = assign_column_names([name], (c.name for c in self.columns))[name]
        column = Column(name, attribute, tag, FALLBACK_TYPES[tag])
        return Layout(self.key_attributes, (*self.columns, column)), column


def plan_layout(
    existing: Layout | None,
    key_attributes: Sequence[str],
    items: ItemProfile | Iterable[Mapping[str, DecodedValue]],
    *,
    maps_as_json: bool = False,
) -> Layout:
    """`existing` grown by the columns, struct fields and fallback columns that the items (or their profile)
    need, so that every value has a column that holds it exactly: the final layout, before any row is built.
    With `maps_as_json`, a new map attribute's column is DynamoDB JSON text instead of a struct.

    An attribute's values that its primary column cannot hold (another type, a number out of range or scale,
    a map whose field changed type) go to a fallback column `<column>__<type>`, made here when none exists.
    """
    profile = items if isinstance(items, ItemProfile) else ItemProfile.of(items)
    layout = Layout(tuple(key_attributes), existing.columns if existing else ())
    if not layout.has_key_columns:
        base = layout.columns or (WRITE_TIME,)
        # Key columns are typed by their first values; until a first item comes there are none (an empty table).
        if any(attribute in profile for attribute in key_attributes):
            keys = tuple(_key_column(attribute, profile.get(attribute)) for attribute in key_attributes)
            base = keys + base
        layout = Layout(tuple(key_attributes), base)
    columns = list(layout.columns)
    attributes = sorted(a for a in profile if a not in layout.key_attributes)
    names = assign_column_names([a for a in attributes if not layout.columns_of(a)], (c.name for c in columns))
    for attribute in attributes:
        values = profile[attribute]
        if attribute in names:
            column = new_column(
                names[attribute], attribute, majority_tag(values), values, max_type_length=GLUE_TYPE_MAX_LENGTH
            )
            if maps_as_json and column.tag == "M":
                column = replace(column, type=JSON_TEXT)
            columns.append(column)
        else:
            index = columns.index(layout.columns_of(attribute)[0])
            columns[index] = grow(columns[index], values)
    layout = Layout(layout.key_attributes, tuple(columns))
    for attribute in attributes:
        values = profile[attribute]
        for tag in sorted(values.counts, key=TAG_ORDER.index):
            if not any(
                holds_all(column, values, tag) or _is_fallback_for(column, tag)
                for column in layout.columns_of(attribute)
            ):
                layout = layout.with_fallback(attribute, tag)[0]
    return layout


def _is_fallback_for(column: Column, tag: str) -> bool:
    return column.tag == tag and column.type == FALLBACK_TYPES[tag]


def _key_column(attribute: str, values: ValueProfile | None) -> Column:
    tags = values.tags() if values is not None else []
    if len(tags) != 1 or tags[0] not in ("S", "N", "B"):
        raise KeyTypeError(
            f"key attribute {attribute!r} must hold one scalar type (S, N or B) in every item; "
            f"found {tags or 'no values'}"
        )
    assert values is not None
    column_type = initial_type(tags[0], values)
    if column_type.kind is Kind.DECIMAL:
        column_type = NUMBER_TEXT  # a fractional key may later need any scale: exact text always holds it
    return Column(attribute_column_name(attribute), attribute, tags[0], column_type, required=True)


def attribute_column_name(attribute: str) -> str:
    return assign_column_names([attribute], [WRITE_TIME.name])[attribute]


def describe_changes(before: Layout | None, after: Layout) -> list[str]:
    """Human-readable schema changes between two layouts (new columns and new struct fields)."""
    old = {c.name: c for c in before.columns} if before else {}
    changes: list[str] = []
    for column in after.columns:
        previous = old.get(column.name)
        if previous is None and not column.tag:
            changes.append(f"added column {column.name} ({_describe_type(column.type)}), the engine's own")
        elif previous is None:
            changes.append(
                f"added column {column.name} ({_describe_type(column.type)}) "
                f"for {column.tag} attribute {column.attribute!r}"
            )
        elif previous != column:
            changes.extend(_describe_new_fields(column.name, previous.type, column.type))
    return changes


def _describe_new_fields(path: str, before: ColumnType, after: ColumnType) -> list[str]:
    if after.kind is Kind.LIST and before.element and after.element:
        return _describe_new_fields(f"{path}.element", before.element, after.element)
    old = {f.name: f for f in before.fields}
    changes: list[str] = []
    for nested in after.fields:
        if nested.name not in old:
            changes.append(f"added field {path}.{nested.name} ({_describe_type(nested.type)})")
        elif old[nested.name] != nested:
            changes.extend(_describe_new_fields(f"{path}.{nested.name}", old[nested.name].type, nested.type))
    return changes


class _TypeDescription(ColumnTypeVisitor[str]):
    """A column type as the run's report of schema changes names it."""

    def visit_string(self) -> str:
        return "string"

    def visit_long(self) -> str:
        return "long"

    def visit_decimal(self, scale: int) -> str:
        return f"decimal({MAX_DECIMAL_PRECISION}, {scale})"

    def visit_number_text(self) -> str:
        return "number_text"

    def visit_boolean(self) -> str:
        return "boolean"

    def visit_binary(self) -> str:
        return "binary"

    def visit_json(self) -> str:
        return "json"

    def visit_struct(self, fields: tuple[Column, ...]) -> str:
        return "struct"

    def visit_list(self, element: ColumnType) -> str:
        return f"array<{self.visit(element)}>"

    def visit_timestamp(self) -> str:
        return "timestamp"


_TYPE_DESCRIPTION = _TypeDescription()


def _describe_type(column_type: ColumnType) -> str:
    return _TYPE_DESCRIPTION.visit(column_type)
