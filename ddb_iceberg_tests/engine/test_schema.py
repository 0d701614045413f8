"""Type inference and evolution, as pure functions."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from ddb_iceberg.engine.rows import canonical_item, row_to_item, rows_of_items
from ddb_iceberg.engine.schema import (
    BINARY,
    BOOLEAN,
    GLUE_TYPE_MAX_LENGTH,
    JSON_TEXT,
    LONG,
    NUMBER_TEXT,
    STRING,
    TIMESTAMP,
    Column,
    ColumnType,
    Kind,
    Layout,
    describe_changes,
    glue_length,
    glue_type_string,
    number_type,
    plan_layout,
)
from ddb_iceberg.errors import KeyTypeError


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
    table = rows_of_items(layout, items)
    return layout, [row_to_item(layout, row) for row in table.to_pylist()]


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
        rows_of_items(layout, [{"pk": "not a number"}])
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


def test_glue_type_strings_are_what_icebergs_glue_catalog_writes() -> None:
    # IcebergToGlueConverter.toTypeString (Iceberg 1.11) of the Iceberg types Spark makes of these: no spaces, no
    # docs, decimal with its precision, timestamptz as `timestamp`.
    def field(name: str, column_type: ColumnType) -> Column:
        return Column(name, f"the {name}", "S", column_type)

    geo = ColumnType(Kind.STRUCT, fields=(field("lat", ColumnType(Kind.DECIMAL, scale=18)),))
    column_type = ColumnType(
        Kind.STRUCT,
        fields=(
            field("city", STRING),
            field("geo", geo),
            field("tags", ColumnType(Kind.LIST, element=STRING)),
            field("lines", ColumnType(Kind.LIST, element=geo)),
            field("n", LONG),
            field("at", TIMESTAMP),
            field("blob", BINARY),
            field("flag", BOOLEAN),
            field("json", JSON_TEXT),
            field("exact", NUMBER_TEXT),
        ),
    )
    assert glue_type_string(column_type) == (
        "struct<city:string,geo:struct<lat:decimal(38,18)>,tags:array<string>,lines:array<struct<lat:decimal(38,18)>>,"
        "n:bigint,at:timestamp,blob:binary,flag:boolean,json:string,exact:string>"
    )
    assert glue_length("é😀") == 6  # UTF-8 bytes: never fewer than characters or UTF-16 units


def _wide_map(first: int, count: int, value: Any = "v") -> dict[str, Any]:
    """`count` keys of about 240 characters: a struct field costs some 250 characters of Glue type string."""
    return {f"key {n:05d} " + "k" * 230: value for n in range(first, first + count)}


def test_a_new_map_or_list_of_maps_too_wide_for_glue_is_json_text() -> None:
    items: list[dict[str, Any]] = [
        {
            "pk": str(n),
            "wide": _wide_map(n * 30, 30),
            "wide_list": [_wide_map(n * 30, 15), _wide_map(n * 30 + 15, 15, Decimal(n))],
            "narrow": _wide_map(n * 30, 1),
        }
        for n in range(20)  # 600 keys in all, about 150,000 characters of struct type
    ]
    layout = plan_layout(None, ["pk"], items)
    assert [(c.name, c.type.kind) for c in layout.columns if c.tag and c.name != "pk"] == [
        ("narrow", Kind.STRUCT),
        ("wide", Kind.JSON),
        ("wide_list", Kind.JSON),
    ]
    assert all(len(glue_type_string(c.type)) <= GLUE_TYPE_MAX_LENGTH for c in layout.columns)
    assert _round_trip(layout, items)[1] == [canonical_item(item) for item in items]
    # Within the limit, a map of as many keys is a struct still.
    assert plan_layout(None, ["pk"], items[:17]).columns_of("wide")[0].type.kind is Kind.STRUCT


def test_a_struct_grows_up_to_glues_limit_and_the_rest_of_its_values_go_to_its_fallback() -> None:
    first = plan_layout(None, ["pk"], [{"pk": "a", "m": {"first": "1"}, "l": [{"first": "1"}]}])
    later: list[dict[str, Any]] = [
        {"pk": str(n), "m": _wide_map(n * 30, 30, Decimal(n)), "l": [{"first": "2"}, _wide_map(n * 30, 30)]}
        for n in range(20)
    ]
    second = plan_layout(first, ["pk"], list(reversed(later)))
    assert second == plan_layout(first, ["pk"], later)  # decided from the profile, whatever the order
    (m, m_fallback), (lists, lists_fallback) = second.columns_of("m"), second.columns_of("l")
    for grown, fallback, added_type in ((m, m_fallback, "bigint"), (lists, lists_fallback, "string")):
        length = len(glue_type_string(grown.type))
        next_field = 1 + len(_wide_map(0, 1).popitem()[0]) + 1 + len(added_type)
        assert GLUE_TYPE_MAX_LENGTH - next_field < length <= GLUE_TYPE_MAX_LENGTH  # filled, not past
        assert fallback.type.kind is Kind.JSON and fallback.name == f"{grown.name}__{grown.tag.lower()}"
    assert [f.attribute for f in m.type.fields[:2]] == ["first", "key 00000 " + "k" * 230]  # in sorted order
    items = _round_trip(second, later)[1]
    assert items == [canonical_item(item) for item in later]
    # The struct holds the items whose keys all fit; the others are whole in the fallback column.
    rows = rows_of_items(second, later).to_pylist()
    assert rows[0]["m"] is not None and rows[0].get("m__m") is None
    assert rows[-1].get("m") is None and rows[-1]["m__m"] is not None
    # A full struct takes no key longer than the room it has left: its values keep going to the fallback column.
    third = plan_layout(second, ["pk"], [{"pk": "z", "m": {"z" * 200: "new"}}])
    assert third.columns_of("m") == (m, m_fallback)
    with_short_key = plan_layout(second, ["pk"], [{"pk": "z", "m": {"z": "new"}}]).columns_of("m")[0]
    assert with_short_key.type.fields[:-1] == m.type.fields  # a short one still fits


def test_a_nested_field_goes_in_whole_or_not_at_all() -> None:
    first = plan_layout(None, ["pk"], [{"pk": "a", "m": {"inner": {"x": "1"}}}])
    # Inside the existing struct: a new map field too wide to fit, and a short one after it in sorted order.
    items: list[dict[str, Any]] = [
        {"pk": str(n), "m": {"inner": {"x": "1", "y": "2"}, "huge": _wide_map(n * 30, 30), "z": "3"}} for n in range(20)
    ]
    grown = plan_layout(first, ["pk"], items).columns_of("m")
    assert [f.attribute for f in grown[0].type.fields] == ["inner", "z"]  # `huge` left out, whole
    assert [f.attribute for f in grown[0].type.field_by_attribute["inner"].type.fields] == ["x", "y"]
    assert grown[1].name == "m__m"
