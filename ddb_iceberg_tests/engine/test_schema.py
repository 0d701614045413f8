"""Type inference and evolution, as pure functions."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from ddb_iceberg.engine.rows import RowBuilder, canonical_item, row_to_item, rows_table
from ddb_iceberg.engine.schema import (
    ColumnType,
    KeyTypeError,
    Kind,
    Layout,
    describe_changes,
    number_type,
    plan_layout,
)


@pytest.mark.parametrize(
    ("numbers", "expected"),
    [
        (["1", "-42", "9223372036854775807"], ColumnType(Kind.LONG)),
        (["1E+3", "2.000"], ColumnType(Kind.LONG)),
        (["9223372036854775808"], ColumnType(Kind.DECIMAL, scale=18)),
        (["12.5", "3"], ColumnType(Kind.DECIMAL, scale=18)),
        (["12345678901234567890123456789012345678"], ColumnType(Kind.DECIMAL, scale=0)),
        (["1234567890123456789012345678.9012345678"], ColumnType(Kind.DECIMAL, scale=10)),
        (["1E+38"], ColumnType(Kind.NUMBER_TEXT)),
        (["1E-39"], ColumnType(Kind.NUMBER_TEXT)),
        (["12345678901234567890123456789012345678", "0.5"], ColumnType(Kind.NUMBER_TEXT)),
    ],
)
def test_number_types_never_lose_a_digit(numbers: list[str], expected: ColumnType) -> None:
    assert number_type(Decimal(n) for n in numbers) == expected


def _round_trip(layout: Layout, items: list[dict[str, Any]]) -> tuple[Layout, list[dict[str, Any]]]:
    builder = RowBuilder(layout)
    rows = [builder.row(item) | {"_ddb_write_time": 0} for item in items]
    table = rows_table(builder.layout, rows)
    return builder.layout, [row_to_item(builder.layout, row) for row in table.to_pylist()]


ITEMS: list[dict[str, Any]] = [
    {
        "pk": "a",
        "n": Decimal(1),
        "m": {"x": "1", "deep": {"y": Decimal("2.5")}},
        "l": [{"k": "v"}],
        "ss": frozenset({"b", "a"}),
    },
    {"pk": "b", "n": Decimal(2), "m": {"x": "2", "z": True}, "l": [], "nul": None, "bs": frozenset({b"\x00"})},
    {"pk": "c", "n": "two", "m": {"x": Decimal(3)}, "l": ["mixed", Decimal(1)], "ns": frozenset({Decimal("1.25")})},
]


def test_every_value_round_trips_through_arrow() -> None:
    layout = plan_layout(None, ["pk"], ITEMS)
    final, items = _round_trip(layout, ITEMS)
    assert items == [canonical_item(item) for item in ITEMS]
    names = [c.name for c in final.columns]
    assert names[:2] == ["pk", "_ddb_write_time"]
    # The minority type of n, and the map whose field x changed type, land in fallback columns.
    assert {"n__s", "m__m"} <= set(names)
    # Lists whose elements differ in type are DynamoDB JSON text.
    assert final.columns_of("l")[0].type.kind is Kind.JSON


def test_majority_type_wins_and_ties_are_broken_by_type_order() -> None:
    layout = plan_layout(None, ["pk"], [{"pk": "a", "v": "x"}, {"pk": "b", "v": Decimal(1)}])
    primary, fallback = layout.columns_of("v")
    assert primary.tag == "S"  # S before N in TAG_ORDER
    assert (fallback.name, fallback.tag) == ("v__n", "N")  # planned with the layout, before any row is built


def test_layout_evolves_by_adding_only() -> None:
    first = plan_layout(None, ["pk"], ITEMS[:1])
    second = plan_layout(first, ["pk"], [{"pk": "d", "m": {"x": "4", "new": Decimal(1)}, "extra": b"\x01"}])
    assert [c.name for c in second.columns[: len(first.columns)]] == [c.name for c in first.columns]
    assert describe_changes(first, second) == [
        "added field m.new (long)",
        "added column extra (binary) for B attribute 'extra'",
    ]
    assert Layout.from_json(second.to_json()) == second


def test_key_values_must_fit_the_key_column() -> None:
    layout = plan_layout(None, ["pk"], [{"pk": Decimal(1)}])
    with pytest.raises(KeyTypeError, match="key attribute 'pk'"):
        RowBuilder(layout).row({"pk": "not a number"})
    with pytest.raises(KeyTypeError, match="one scalar type"):
        plan_layout(None, ["pk"], [{"pk": {"map": "not a key"}}])


def test_maps_with_no_fields_and_lists_of_mixed_lists_are_json_text() -> None:
    # Parquet cannot store a struct of no fields, and an array of JSON text could not say its elements' type.
    items: list[dict[str, Any]] = [
        {"pk": "a", "empty": {}, "holder": {"inner": {}, "n": Decimal(1)}, "lists": [["x", Decimal(1)]]},
        {"pk": "b", "empty": {}, "maps": [{}], "deep": [[["y", True]]]},
    ]
    layout = plan_layout(None, ["pk"], items)
    kinds = {c.attribute: c.type.kind for c in layout.columns if c.tag}
    assert kinds == {
        "pk": Kind.STRING,
        "empty": Kind.JSON,
        "holder": Kind.STRUCT,
        "lists": Kind.JSON,
        "maps": Kind.JSON,
        "deep": Kind.JSON,
    }
    assert layout.columns_of("holder")[0].type.field_by_attribute["inner"].type.kind is Kind.JSON
    assert _round_trip(layout, items)[1] == [canonical_item(item) for item in items]
