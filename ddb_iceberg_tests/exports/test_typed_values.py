from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from ddb_iceberg.exports.typed_values import (
    TypedValueError,
    decode_item,
    decode_value,
    encode_item,
    encode_value,
    format_number,
    key_value_problem,
    parse_number,
)


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ({"S": ""}, ""),
        ({"S": "Zoë"}, "Zoë"),
        ({"N": "12"}, Decimal("12")),
        ({"N": "-0.5"}, Decimal("-0.5")),
        ({"B": "AAEC"}, b"\x00\x01\x02"),
        ({"B": ""}, b""),
        ({"BOOL": False}, False),
        ({"NULL": True}, None),
        ({"M": {"a": {"N": "1"}, "b": {"M": {}}}}, {"a": Decimal(1), "b": {}}),
        ({"L": [{"S": "x"}, {"N": "2"}, {"L": []}]}, ["x", Decimal(2), []]),
        ({"SS": ["b", "a"]}, frozenset({"a", "b"})),
        ({"NS": ["1", "2.5"]}, frozenset({Decimal(1), Decimal("2.5")})),
        ({"BS": ["AA==", "AQ=="]}, frozenset({b"\x00", b"\x01"})),
    ],
)
def test_decodes_every_type(typed: dict[str, Any], expected: Any) -> None:
    assert decode_value(typed) == expected


def test_numbers_are_exact_to_38_digits_and_never_floats() -> None:
    text = "12345678901234567890.123456789012345678"
    value = parse_number(text)
    assert isinstance(value, Decimal)
    assert str(value) == text
    assert float(text) != value  # what a float would have done to it
    assert format_number(value) == text


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("1E-130", "0." + "0" * 129 + "1"),
        ("-1E-130", "-0." + "0" * 129 + "1"),
        ("9.9999999999999999999999999999999999999E+125", "9" * 38 + "0" * 88),
        ("0", "0"),
        ("-0.0", "0"),
    ],
)
def test_accepts_dynamodb_number_limits(text: str, canonical: str) -> None:
    # At DynamoDB's limits a number is still kept exactly: the same value, and the text DynamoDB returns for it.
    value = parse_number(text)
    assert isinstance(value, Decimal) and value == Decimal(text)
    assert format_number(value) == canonical


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("1E+126", "outside"),
        ("1E-131", "outside"),
        ("123456789012345678901234567890123456789", "38 significant"),
        ("NaN", "not a number"),
        ("Infinity", "not a number"),
        ("1,5", "not a number"),
        ("", "not a number"),
        (12, "not a number"),
    ],
)
def test_rejects_numbers_dynamodb_cannot_hold(text: Any, problem: str) -> None:
    with pytest.raises(TypedValueError, match=problem):
        parse_number(text, "Item.n")


@pytest.mark.parametrize(
    ("typed", "problem"),
    [
        ({"X": "1"}, "unknown type tag 'X'"),
        ({"S": "a", "N": "1"}, "exactly one type tag"),
        ({"S": 1}, "S value must be a string"),
        ({"B": "not base64!"}, "not valid base64"),
        ({"BOOL": "true"}, "BOOL value"),
        ({"NULL": False}, "NULL value must be true"),
        ({"SS": []}, "non-empty"),
        ({"SS": ["a", "a"]}, "duplicate"),
        ({"NS": ["1", "x"]}, "not a number"),
        ({"M": {"inner": {"N": "one"}}}, r"\$\.inner: N value 'one'"),
        ({"L": [{"S": "ok"}, {"BOOL": 1}]}, r"\$\[1\]: BOOL"),
    ],
)
def test_rejects_malformed_values_naming_the_path(typed: dict[str, Any], problem: str) -> None:
    with pytest.raises(TypedValueError, match=problem):
        decode_value(typed)


def test_encoding_round_trips_through_decoding() -> None:
    item = {
        "pk": "a",
        "n": Decimal("-1.50"),
        "big": Decimal("99999999999999999999999999999999999999"),
        "tiny": Decimal("1E-130"),
        "bin": b"\xff\x00",
        "flag": True,
        "nothing": None,
        "nested": {"list": [Decimal(1), "two", {"three": frozenset({"x"})}]},
        "ss": frozenset({"x", "y"}),
        "ns": frozenset({Decimal("1.5"), Decimal(2)}),
        "bs": frozenset({b"a", b"b"}),
    }
    assert decode_item(encode_item(item)) == item
    assert encode_value(Decimal("-1.50")) == {"N": "-1.5"}


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"S": "leaf"}
    for level in range(depth):
        value = {"M": {"m": value}} if level % 2 else {"L": [value]}
    return value


def test_nesting_up_to_dynamodbs_32_levels_and_not_deeper() -> None:
    assert decode_item({"a": _nested(32)})["a"] is not None
    with pytest.raises(TypedValueError, match="nest deeper than DynamoDB's 32 levels"):
        decode_item({"a": _nested(33)})
    with pytest.raises(TypedValueError, match="nest deeper"):
        decode_item({"a": _nested(5000)})  # refused, not a RecursionError


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "is an empty string; DynamoDB keys are never empty"),
        (b"", "is an empty binary"),
        ({"a": Decimal(1)}, "is a M (map) value; key attributes hold S, N or B"),
        (["a"], "is a L (list) value"),
        (frozenset({"a"}), "is a set (SS, NS or BS) value"),
        (True, "is a BOOL value"),
        (None, "is a NULL value"),
    ],
)
def test_key_values_are_non_empty_scalars(value: Any, problem: str) -> None:
    assert (key_value_problem(value) or "").startswith(problem)
    assert key_value_problem("a") is key_value_problem(Decimal("-1.5")) is key_value_problem(b"\x00") is None


def test_a_problem_deep_inside_is_found_in_linear_time_and_named_by_its_path() -> None:
    deep: dict[str, Any] = {"N": "x"}
    for _ in range(30):
        deep = {"M": {"m": deep}}
    with pytest.raises(TypedValueError) as caught:  # re-decoding each level to name the path would take 2**30 steps
        decode_item({"a": deep})
    assert str(caught.value) == "Item.a" + ".m" * 30 + ": N value 'x' is not a number"


@pytest.mark.parametrize("text", ["\u0661\u0662", "\uff11\uff12", "1e\u0663"])  # Arabic-Indic, fullwidth
def test_numbers_are_ascii_digits_only(text: str) -> None:
    with pytest.raises(TypedValueError, match="is not a number"):
        parse_number(text)
