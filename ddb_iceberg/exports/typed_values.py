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
import binascii
import decimal
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeAlias

DecodedValue: TypeAlias = Any
TypedValue: TypeAlias = dict[str, Any]
TypedItem: TypeAlias = dict[str, TypedValue]
DecodedItem: TypeAlias = dict[str, DecodedValue]

TYPE_TAGS = ("S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS")

# DynamoDB numbers: up to 38 significant digits, magnitude 1E-130 .. 9.99..E+125 (or zero).
MAX_SIGNIFICANT_DIGITS = 38
_NUMBER_TEXT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_MIN_MAGNITUDE = decimal.Decimal("1E-130")
_MAX_MAGNITUDE_EXCLUSIVE = decimal.Decimal("1E+126")
# A context wide enough that no DynamoDB number is ever rounded by arithmetic or normalization.
EXACT_CONTEXT = decimal.Context(prec=60, Emin=-999, Emax=999, traps=[decimal.Inexact, decimal.InvalidOperation])


class TypedValueError(ValueError):
    """A typed value that DynamoDB could not have written; the message starts with the attribute path."""


_PLAIN_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)")


def parse_number(text: object, path: str = "N") -> decimal.Decimal:
    """Parse DynamoDB number text exactly, enforcing DynamoDB's own limits."""
    # Fast path: up to 38 characters without an exponent cannot break DynamoDB's digit or range limits.
    if type(text) is str and len(text) <= MAX_SIGNIFICANT_DIGITS and _PLAIN_NUMBER.fullmatch(text):
        return decimal.Decimal(text)
    if not isinstance(text, str) or not _NUMBER_TEXT.match(text):
        raise TypedValueError(f"{path}: N value {text!r} is not a number")
    value = decimal.Decimal(text)
    if value != 0:
        magnitude = value.copy_abs()
        if magnitude < _MIN_MAGNITUDE or magnitude >= _MAX_MAGNITUDE_EXCLUSIVE:
            raise TypedValueError(f"{path}: N value {text!r} is outside DynamoDB's range 1E-130 .. 9.9E+125")
        if len(value.normalize(EXACT_CONTEXT).as_tuple().digits) > MAX_SIGNIFICANT_DIGITS:
            raise TypedValueError(f"{path}: N value {text!r} has more than 38 significant digits")
    return value


def format_number(value: decimal.Decimal | int) -> str:
    """The canonical text DynamoDB returns for a number: no exponent, no trailing zeros."""
    number = decimal.Decimal(value).normalize(EXACT_CONTEXT)
    if number == 0:
        return "0"
    return format(number, "f")


def _parse_binary(text: object, path: str) -> bytes:
    if not isinstance(text, str):
        raise TypedValueError(f"{path}: binary value must be base64 text, got {type(text).__name__}")
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as error:
        raise TypedValueError(f"{path}: binary value {text[:40]!r} is not valid base64 ({error})") from None


def _decode_set(tag: str, elements: object, path: str) -> frozenset[Any]:
    if not isinstance(elements, list) or not elements:
        raise TypedValueError(f"{path}: {tag} must be a non-empty list")
    decoded: list[Any]
    if tag == "SS":
        if not all(isinstance(e, str) for e in elements):
            raise TypedValueError(f"{path}: SS elements must be strings")
        decoded = list(elements)
    elif tag == "NS":
        decoded = [parse_number(e, f"{path}[]") for e in elements]
    else:
        decoded = [_parse_binary(e, f"{path}[]") for e in elements]
    result = frozenset(decoded)
    if len(result) != len(decoded):
        raise TypedValueError(f"{path}: {tag} holds duplicate elements")
    return result


def decode_value(typed: object, path: str = "$") -> DecodedValue:
    """Validate one typed value and decode it exactly (see the module docstring for the mapping)."""
    if type(typed) is not dict or len(typed) != 1:
        raise TypedValueError(f"{path}: expected an object with exactly one type tag, got {_preview(typed)}")
    ((tag, payload),) = typed.items()
    # The common types first, without a function call each.
    if tag == "S" and type(payload) is str:
        return payload
    if tag == "N":
        return parse_number(payload, path)
    decoder = _DECODERS.get(tag)
    if decoder is None:
        raise TypedValueError(f"{path}: unknown type tag {tag!r} (expected one of {', '.join(TYPE_TAGS)})")
    return decoder(payload, path)


def _decode_string(payload: object, path: str) -> str:
    if not isinstance(payload, str):
        raise TypedValueError(f"{path}: S value must be a string, got {_preview(payload)}")
    return payload


def _decode_bool(payload: object, path: str) -> bool:
    if not isinstance(payload, bool):
        raise TypedValueError(f"{path}: BOOL value must be true or false, got {_preview(payload)}")
    return payload


def _decode_null(payload: object, path: str) -> None:
    if payload is not True:
        raise TypedValueError(f"{path}: NULL value must be true, got {_preview(payload)}")


def _decode_map(payload: object, path: str) -> dict[str, DecodedValue]:
    if not isinstance(payload, dict):
        raise TypedValueError(f"{path}: M value must be an object, got {_preview(payload)}")
    return _decode_attributes(payload, path)


def _decode_list(payload: object, path: str) -> list[DecodedValue]:
    if not isinstance(payload, list):
        raise TypedValueError(f"{path}: L value must be a list, got {_preview(payload)}")
    try:
        return [decode_value(value) for value in payload]
    except TypedValueError:
        return [decode_value(value, f"{path}[{index}]") for index, value in enumerate(payload)]


_DECODERS: dict[str, Callable[[Any, str], DecodedValue]] = {
    "S": _decode_string,
    "B": _parse_binary,
    "BOOL": _decode_bool,
    "NULL": _decode_null,
    "M": _decode_map,
    "L": _decode_list,
    "SS": lambda payload, path: _decode_set("SS", payload, path),
    "NS": lambda payload, path: _decode_set("NS", payload, path),
    "BS": lambda payload, path: _decode_set("BS", payload, path),
}


def decode_item(typed_item: object, path: str = "Item") -> DecodedItem:
    """Validate and decode a whole item (a map of attribute name to typed value)."""
    if not isinstance(typed_item, dict):
        raise TypedValueError(f"{path}: expected an object of attributes, got {_preview(typed_item)}")
    return _decode_attributes(typed_item, path)


def _decode_attributes(attributes: dict[str, Any], path: str) -> DecodedItem:
    """Decode a map of attribute name to typed value; strings and plain numbers, most of any item, inline."""
    decoded: DecodedItem = {}
    plain_number = _PLAIN_NUMBER.fullmatch
    try:
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
                    decoded[name] = decode_value(typed)
            else:
                decoded[name] = decode_value(typed)
    except TypedValueError:
        # Decode again, naming each value's path, only to say exactly where the problem is.
        return {name: decode_value(typed, f"{path}.{name}") for name, typed in attributes.items()}
    return decoded


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
