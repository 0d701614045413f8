"""Type profiles: what the values of each attribute were, summed up so that profiles of parts add up.

Each Spark task profiles the items it reads; the driver merges the profiles (merging is associative and
commutative, so the order tasks finish in does not matter) and chooses the table's layout from the result
(`schema.plan_layout`). A profile grows with the number of distinct attribute paths, never with the number of
items.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ddb_iceberg.exports.arrow_json import numbers, tag_payload
from ddb_iceberg.exports.typed_values import TYPE_TAGS, DecodedValue, is_long, number_shape

_TAG_BY_TYPE: dict[type, str] = {str: "S", Decimal: "N", bytes: "B", bool: "BOOL", dict: "M", list: "L"}
_SET_TAG_BY_ELEMENT_TYPE: dict[type, str] = {str: "SS", Decimal: "NS", bytes: "BS"}


def tag_of(value: DecodedValue) -> str | None:
    """The DynamoDB type of a decoded value (None for NULL)."""
    if value is None:
        return None
    tag = _TAG_BY_TYPE.get(type(value))
    if tag is not None:
        return tag
    if type(value) is frozenset:
        return _SET_TAG_BY_ELEMENT_TYPE[type(next(iter(value)))]
    raise TypeError(f"not a decoded DynamoDB value: {type(value).__name__}")


class NumberStats:
    """Enough of a set of numbers to choose the narrowest exact type that holds them all."""

    __slots__ = ("all_long", "max_digits", "max_scale")

    def __init__(self) -> None:
        self.all_long = True
        self.max_scale = 0
        self.max_digits = 0

    def add(self, number: Decimal) -> None:
        shape = digits, places = number_shape(number)
        if self.all_long and not is_long(number, shape):
            self.all_long = False
        if places > self.max_scale:
            self.max_scale = places
        if digits > self.max_digits:
            self.max_digits = digits

    def merge(self, other: NumberStats) -> None:
        self.all_long = self.all_long and other.all_long
        self.max_scale = max(self.max_scale, other.max_scale)
        self.max_digits = max(self.max_digits, other.max_digits)

    def __getstate__(self) -> tuple[bool, int, int]:
        return self.all_long, self.max_scale, self.max_digits

    def __setstate__(self, state: tuple[bool, int, int]) -> None:
        self.all_long, self.max_scale, self.max_digits = state

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NumberStats) and self.__getstate__() == other.__getstate__()

    def __repr__(self) -> str:
        return f"NumberStats(all_long={self.all_long}, max_scale={self.max_scale}, max_digits={self.max_digits})"


class ValueProfile:
    """The values at one attribute path: how many of each DynamoDB type, and, inside them, the numbers of N and
    NS values, the fields of M values and the elements of L values (each profiled in turn). NULLs count as
    nothing: they are SQL NULL in any column."""

    __slots__ = ("counts", "elements", "fields", "numbers", "set_numbers")

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.numbers: NumberStats | None = None
        self.set_numbers: NumberStats | None = None
        self.fields: dict[str, ValueProfile] | None = None
        self.elements: ValueProfile | None = None

    def add(self, value: DecodedValue) -> None:
        tag = tag_of(value)
        if tag is None:
            return
        self.counts[tag] = self.counts.get(tag, 0) + 1
        if tag == "N":
            if self.numbers is None:
                self.numbers = NumberStats()
            self.numbers.add(value)
        elif tag == "M":
            if self.fields is None:
                self.fields = {}
            for name, nested in value.items():
                if nested is not None:
                    field = self.fields.get(name)
                    if field is None:
                        field = self.fields[name] = ValueProfile()
                    field.add(nested)
        elif tag == "L":
            if self.elements is None:
                self.elements = ValueProfile()
            for element in value:
                self.elements.add(element)
        elif tag == "NS":
            if self.set_numbers is None:
                self.set_numbers = NumberStats()
            for number in value:
                self.set_numbers.add(number)

    def merge(self, other: ValueProfile) -> None:
        for tag, count in other.counts.items():
            self.counts[tag] = self.counts.get(tag, 0) + count
        for attribute in ("numbers", "set_numbers"):
            theirs = getattr(other, attribute)
            if theirs is not None:
                mine = getattr(self, attribute)
                if mine is None:
                    setattr(self, attribute, mine := NumberStats())
                mine.merge(theirs)
        if other.fields is not None:
            if self.fields is None:
                self.fields = {}
            for name, field in other.fields.items():
                self.fields.setdefault(name, ValueProfile()).merge(field)
        if other.elements is not None:
            if self.elements is None:
                self.elements = ValueProfile()
            self.elements.merge(other.elements)

    def tags(self) -> list[str]:
        return sorted(self.counts)

    def __getstate__(self) -> tuple[Any, ...]:
        return self.counts, self.numbers, self.set_numbers, self.fields, self.elements

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        self.counts, self.numbers, self.set_numbers, self.fields, self.elements = state

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ValueProfile) and self.__getstate__() == other.__getstate__()

    def __repr__(self) -> str:
        return f"ValueProfile({self.counts})"


class ItemProfile(dict[str, ValueProfile]):
    """Attribute name to the profile of its values, over many items."""

    @classmethod
    def of(cls, items: Iterable[Mapping[str, DecodedValue]]) -> ItemProfile:
        profile = cls()
        for item in items:
            profile.add(item)
        return profile

    def add(self, item: Mapping[str, DecodedValue]) -> None:
        for name, value in item.items():
            if value is not None:
                values = self.get(name)
                if values is None:
                    values = self[name] = ValueProfile()
                values.add(value)

    def merge(self, other: Mapping[str, ValueProfile]) -> ItemProfile:
        for name, values in other.items():
            self.setdefault(name, ValueProfile()).merge(values)
        return self


def profile_of(items: pa.Array) -> ItemProfile:
    """The profile of an array of items as Arrow reads DynamoDB JSON (`exports.arrow_json`: attribute name to a
    struct with a field per type tag), computed a column at a time; equal to `ItemProfile.of` the decoded items."""
    profile = ItemProfile()
    if pa.types.is_struct(items.type):
        for field in items.type:
            values = _value_profile(pc.struct_field(items, field.name))
            if values.counts:
                profile[field.name] = values
    return profile


def _value_profile(typed: pa.Array) -> ValueProfile:
    values = ValueProfile()
    for tag in TYPE_TAGS:
        payload = tag_payload(typed, tag)
        if tag == "NULL" or payload is None or pa.types.is_null(payload.type):
            continue
        count = len(payload) - payload.null_count
        if not count:
            continue
        values.counts[tag] = count
        if tag == "N":
            values.numbers = _number_stats(payload)
        elif tag == "M":
            values.fields = {}
            for field in payload.type:
                nested = _value_profile(pc.struct_field(payload, field.name))
                if nested.counts:
                    values.fields[field.name] = nested
        elif tag == "L":
            values.elements = _value_profile(payload.flatten())
        elif tag == "NS":
            values.set_numbers = _number_stats(payload.flatten())
    return values


def _number_stats(text: pa.Array) -> NumberStats:
    stats = NumberStats()
    present = pc.drop_null(text)
    if len(present):
        parsed = numbers(present)
        stats.all_long = bool(pc.all(parsed.is_long).as_py())
        stats.max_scale = int(pc.max(parsed.scale).as_py())
        stats.max_digits = int(pc.max(parsed.digits).as_py())
    return stats
