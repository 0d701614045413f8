"""DynamoDB typed values (`{"S": "x"}`, `{"N": "1.5"}`, ...): strict validation, exact decoding, encoding.

Decoded Python values:

| DynamoDB | Python                         |
|----------|--------------------------------|
| S        | str                            |
| N        | decimal.Decimal (never float)  |
| B        | bytes                          |
| BOOL     | bool                           |
| NULL     | None                           |
| M        | dict[str, value]               |
| L        | list[value]                    |
| SS/NS/BS | frozenset of str/Decimal/bytes |
"""

from __future__ import annotations

import base64
import decimal
import re
from collections.abc import Mapping
from typing import Any, TypeAlias

DecodedValue: TypeAlias = Any
TypedValue: TypeAlias = dict[str, Any]
TypedItem: TypeAlias = dict[str, TypedValue]
DecodedItem: TypeAlias = dict[str, DecodedValue]

TYPE_TAGS = ("S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS")

# DynamoDB numbers: up to 38 significant digits, magnitude 1E-130 .. 9.99..E+125 (or zero).
MAX_SIGNIFICANT_DIGITS = 38
_NUMBER_TEXT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
MIN_MAGNITUDE = decimal.Decimal("1E-130")
MAX_MAGNITUDE_EXCLUSIVE = decimal.Decimal("1E+126")
# A context wide enough that no DynamoDB number is ever rounded by arithmetic or normalization.
EXACT_CONTEXT = decimal.Context(prec=60, Emin=-999, Emax=999, traps=[decimal.Inexact, decimal.InvalidOperation])

# DynamoDB nests maps and lists at most 32 levels deep; a deeper value cannot come from DynamoDB.
MAX_NESTING = 32


class TypedValueError(ValueError):
    """A typed value that DynamoDB could not have written; the message starts with the attribute path."""

    def __init__(self, problem: str, path: str = "") -> None:
        super().__init__(problem)
        self.problem = problem
        self.path = path

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}" if self.path else self.problem

    def within(self, segment: str) -> TypedValueError:
        """The same error, its path prefixed by `segment` (paths are built on the way out, never re-decoded)."""
        self.path = segment + self.path
        return self


# DynamoDB writes numbers with ASCII digits only (Python's `\d` and Decimal also take other scripts' digits).
_PLAIN_NUMBER = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)")


def parse_number(text: object, path: str = "N") -> decimal.Decimal:
    """Parse DynamoDB number text exactly, enforcing DynamoDB's own limits."""
    try:
        return _parse_number(text)
    except TypedValueError as error:
        raise error.within(path) from None


def _parse_number(text: object) -> decimal.Decimal:
    # Fast path: up to 38 characters without an exponent cannot break DynamoDB's digit or range limits.
    if type(text) is str and len(text) <= MAX_SIGNIFICANT_DIGITS and _PLAIN_NUMBER.fullmatch(text):
        return decimal.Decimal(text)
    if not isinstance(text, str) or not _NUMBER_TEXT.fullmatch(text):
        raise TypedValueError(f"N value {_preview(text)} is not a number")
    value = decimal.Decimal(text)
    if value != 0:
        magnitude = value.copy_abs()
        if magnitude < MIN_MAGNITUDE or magnitude >= MAX_MAGNITUDE_EXCLUSIVE:
            raise TypedValueError(f"N value {_preview(text)} is outside DynamoDB's range 1E-130 .. 9.9E+125")
        if len(value.normalize(EXACT_CONTEXT).as_tuple().digits) > MAX_SIGNIFICANT_DIGITS:
            raise TypedValueError(f"N value {_preview(text)} has more than 38 significant digits")
    return value


def format_number(value: decimal.Decimal | int) -> str:
    """The canonical text DynamoDB returns for a number: no exponent, no trailing zeros."""
    number = decimal.Decimal(value).normalize(EXACT_CONTEXT)
    if number == 0:
        return "0"
    return format(number, "f")


LONG_SAFE_DIGITS = 18
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1


def number_shape(number: decimal.Decimal) -> tuple[int, int]:
    """(digits before the point, digits after it) of a finite number, without leading or trailing zeros: what
    decides the exact types that hold it. Read off the number's digits."""
    _, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int), "DynamoDB numbers are finite"
    if digits == (0,):
        return 0, 0
    if exponent >= 0:
        return len(digits) + exponent, 0
    scale, index = -exponent, len(digits) - 1
    while scale and digits[index] == 0:
        scale -= 1
        index -= 1
    return max(len(digits) + exponent, 0), scale


def is_long(number: decimal.Decimal, shape: tuple[int, int]) -> bool:
    """Whether a number of this `number_shape` is a whole number in the range of a long."""
    digits, places = shape
    return not places and (digits <= LONG_SAFE_DIGITS or LONG_MIN <= number <= LONG_MAX)


def number_shape_of(number: decimal.Decimal) -> tuple[int, int, bool]:
    """`number_shape` and `is_long` at once."""
    shape = number_shape(number)
    return shape[0], shape[1], is_long(number, shape)


# Base64 as DynamoDB writes binaries: padded to whole quartets, nothing after the padding, no whitespace.
BASE64_PATTERN = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
_BASE64 = re.compile(BASE64_PATTERN)


def _parse_binary(text: object) -> bytes:
    if not isinstance(text, str):
        raise TypedValueError(f"binary value must be base64 text, got {type(text).__name__}")
    if not _BASE64.fullmatch(text):
        raise TypedValueError(f"binary value {text[:40]!r} is not valid base64")
    return base64.b64decode(text)


def _decode_set(tag: str, elements: object) -> frozenset[Any]:
    if not isinstance(elements, list) or not elements:
        raise TypedValueError(f"{tag} must be a non-empty list")
    decoded: list[Any]
    try:
        if tag == "SS":
            if not all(isinstance(e, str) for e in elements):
                raise TypedValueError("SS elements must be strings")
            decoded = list(elements)
        elif tag == "NS":
            decoded = [_parse_number(e) for e in elements]
        else:
            decoded = [_parse_binary(e) for e in elements]
    except TypedValueError as error:
        raise error.within("[]") from None
    result = frozenset(decoded)
    if len(result) != len(decoded):
        raise TypedValueError(f"{tag} holds duplicate elements")
    return result


def decode_value(typed: object, path: str = "$") -> DecodedValue:
    """Validate one typed value and decode it exactly (see the module docstring for the mapping)."""
    try:
        return _decode(typed, 0)
    except TypedValueError as error:
        raise error.within(path) from None


def decode_item(typed_item: object, path: str = "Item") -> DecodedItem:
    """Validate and decode a whole item (a map of attribute name to typed value)."""
    try:
        if not isinstance(typed_item, dict):
            raise TypedValueError(f"expected an object of attributes, got {_preview(typed_item)}")
        return _decode_attributes(typed_item, 0)
    except TypedValueError as error:
        raise error.within(path) from None


def _decode(typed: object, depth: int) -> DecodedValue:
    """One typed value, `depth` maps and lists deep."""
    if type(typed) is not dict or len(typed) != 1:
        raise TypedValueError(f"expected an object with exactly one type tag, got {_preview(typed)}")
    ((tag, payload),) = typed.items()
    # The common types first, without a function call each.
    if tag == "S" and type(payload) is str:
        return payload
    if tag == "N":
        return _parse_number(payload)
    if tag == "M":
        if not isinstance(payload, dict):
            raise TypedValueError(f"M value must be an object, got {_preview(payload)}")
        _check_depth(depth + 1)
        return _decode_attributes(payload, depth + 1)
    if tag == "L":
        if not isinstance(payload, list):
            raise TypedValueError(f"L value must be a list, got {_preview(payload)}")
        _check_depth(depth + 1)
        return _decode_list(payload, depth + 1)
    if tag == "S":
        raise TypedValueError(f"S value must be a string, got {_preview(payload)}")
    if tag == "B":
        return _parse_binary(payload)
    if tag == "BOOL":
        if not isinstance(payload, bool):
            raise TypedValueError(f"BOOL value must be true or false, got {_preview(payload)}")
        return payload
    if tag == "NULL":
        if payload is not True:
            raise TypedValueError(f"NULL value must be true, got {_preview(payload)}")
        return None
    if tag in ("SS", "NS", "BS"):
        return _decode_set(tag, payload)
    raise TypedValueError(f"unknown type tag {_preview(tag)} (expected one of {', '.join(TYPE_TAGS)})")


def _check_depth(depth: int) -> None:
    if depth > MAX_NESTING:
        raise TypedValueError(f"maps and lists nest deeper than DynamoDB's {MAX_NESTING} levels")


def _decode_list(values: list[Any], depth: int) -> list[DecodedValue]:
    decoded = []
    for index, value in enumerate(values):
        try:
            decoded.append(_decode(value, depth))
        except TypedValueError as error:
            raise error.within(f"[{index}]") from None
    return decoded


def _decode_attributes(attributes: dict[str, Any], depth: int) -> DecodedItem:
    """Decode a map of attribute name to typed value; strings and plain numbers, most of any item, inline."""
    decoded: DecodedItem = {}
    plain_number = _PLAIN_NUMBER.fullmatch
    for name, typed in attributes.items():
        if type(typed) is dict and len(typed) == 1:
            for tag, payload in typed.items():
                if tag == "S" and type(payload) is str:
                    decoded[name] = payload
                    break
                if (
                    tag == "N"
                    and type(payload) is str
                    and len(payload) <= MAX_SIGNIFICANT_DIGITS
                    and plain_number(payload)
                ):
                    decoded[name] = decimal.Decimal(payload)
                    break
                try:
                    decoded[name] = _decode(typed, depth)
                except TypedValueError as error:
                    raise error.within(f".{name}") from None
        else:
            try:
                decoded[name] = _decode(typed, depth)
            except TypedValueError as error:
                raise error.within(f".{name}") from None
    return decoded


def key_value_problem(value: DecodedValue) -> str | None:
    """Why a decoded value cannot be a key attribute's (None if it can): keys are S, N or B, never empty."""
    if type(value) is str or type(value) is bytes:
        kind = "string" if type(value) is str else "binary"
        return None if value else f"is an empty {kind}; DynamoDB keys are never empty"
    if type(value) is decimal.Decimal:
        return None
    kind = "NULL" if value is None else _KIND_NAMES.get(type(value), type(value).__name__)
    return f"is a {kind} value; key attributes hold S, N or B values"


_KIND_NAMES: dict[type, str] = {bool: "BOOL", dict: "M (map)", list: "L (list)", frozenset: "set (SS, NS or BS)"}


def encode_value(value: DecodedValue) -> TypedValue:
    """Encode a decoded Python value as a DynamoDB typed value (the inverse of `decode_value`)."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, decimal.Decimal | int):
        return {"N": format_number(value)}
    if isinstance(value, bytes):
        return {"B": base64.b64encode(value).decode("ascii")}
    if isinstance(value, Mapping):
        return {"M": {name: encode_value(v) for name, v in value.items()}}
    if isinstance(value, list):
        return {"L": [encode_value(v) for v in value]}
    if isinstance(value, frozenset | set):
        return _encode_set(value)
    raise TypeError(f"cannot encode {type(value).__name__} as a DynamoDB value")


def _encode_set(value: frozenset[Any] | set[Any]) -> TypedValue:
    if not value:
        raise TypeError("DynamoDB sets cannot be empty")
    elements = list(value)
    if all(isinstance(e, str) for e in elements):
        return {"SS": sorted(elements)}
    if all(isinstance(e, decimal.Decimal | int) and not isinstance(e, bool) for e in elements):
        return {"NS": [format_number(e) for e in sorted(elements)]}
    if all(isinstance(e, bytes) for e in elements):
        return {"BS": [base64.b64encode(e).decode("ascii") for e in sorted(elements)]}
    raise TypeError("a DynamoDB set holds only strings, only numbers or only binaries")


def encode_item(item: Mapping[str, DecodedValue]) -> TypedItem:
    """Encode a decoded item attribute by attribute."""
    return {name: encode_value(value) for name, value in item.items()}


def _preview(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
