"""The Arrow reading of DynamoDB JSON against the reference decoder (`typed_values`), value by value: the same
lines refused, and for the rest the same profile, the same key text and rows that read back as the same items."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ddb_iceberg.engine.records import key_text, key_text_column
from ddb_iceberg.engine.rows import canonical_item, item_reader, rows_of_items
from ddb_iceberg.engine.schema import plan_layout
from ddb_iceberg.engine.type_profile import ItemProfile, profile_of
from ddb_iceberg.errors import ExportError
from ddb_iceberg.exports.arrow_json import key_parts, numbers, parse_lines
from ddb_iceberg.exports.manifest import DataFileEntry, OutputFormat
from ddb_iceberg.exports.reader import DataFile, check_lines
from ddb_iceberg.exports.typed_values import (
    TypedValueError,
    decode_item,
    decode_value,
    encode_value,
    format_number,
    key_value_problem,
    number_shape_of,
    parse_number,
)

_NUMBER_TEXTS = st.one_of(
    st.from_regex(r"-?[0-9]{1,45}(\.[0-9]{1,45})?", fullmatch=True),
    st.from_regex(r"[+-]?([0-9]{1,5}\.?[0-9]{0,5}|\.[0-9]{1,5})([eE][+-]?[0-9]{1,3})?", fullmatch=True),
    st.sampled_from(["0", "-0", "0.000", "1E+125", "1E+126", "1E-130", "1E-131", "9223372036854775807",
                     "9223372036854775808", "-9223372036854775808", "-9223372036854775809", "007.50", "1e", "", "x",
                     "1.2.3", "\u0661"]),
)  # fmt: skip
_BINARIES = st.one_of(
    st.binary(max_size=6).map(lambda data: base64.b64encode(data).decode("ascii")),
    st.sampled_from(["QR==", "A", "AB", "AB=", "ABC", "not base64!", "AAAA===="]),
)
_TEXTS = st.text(max_size=6)


def _sets(tag: str, elements: st.SearchStrategy[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.lists(elements, max_size=4).map(lambda values: {tag: values})


def _typed(depth: int) -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        _TEXTS.map(lambda text: {"S": text}),
        _NUMBER_TEXTS.map(lambda text: {"N": text}),
        _BINARIES.map(lambda text: {"B": text}),
        st.booleans().map(lambda value: {"BOOL": value}),
        st.booleans().map(lambda value: {"NULL": value}),
        _sets("SS", _TEXTS),
        _sets("NS", _NUMBER_TEXTS),
        _sets("BS", _BINARIES),
        st.sampled_from([{"X": "1"}, {"S": "a", "N": "1"}, {"S": 1}, {"BOOL": "true"}, {}, "bare", {"SS": [1]}]),
    )
    if depth >= 3:
        return scalars
    nested = _typed(depth + 1)
    return st.one_of(
        scalars,
        scalars,
        st.dictionaries(st.sampled_from(["a", "b", "c d", "é"]), nested, max_size=3).map(lambda m: {"M": m}),
        st.lists(nested, max_size=3).map(lambda values: {"L": values}),
    )


_ITEMS = st.dictionaries(st.sampled_from(["pk", "n", "m", "l", "s", "x"]), _typed(0), min_size=1, max_size=4)


def _data_file(full: bool = True) -> DataFile:
    entry = DataFileEntry(item_count=0, md5_checksum="", etag="", data_file_s3_key="data/file.json.gz")
    return DataFile("export", entry, "file.json.gz", None, full, None, 0, 2**62, OutputFormat.DYNAMODB_JSON)


def _reference_first_bad(items: list[dict[str, Any]]) -> int | None:
    for index, item in enumerate(items):
        try:
            if not decode_item(item):
                return index
        except TypedValueError:
            return index
    return None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=st.lists(_ITEMS, min_size=1, max_size=8))
def test_arrow_refuses_exactly_the_lines_the_reference_decoder_refuses(items: list[dict[str, Any]]) -> None:
    text = "".join(json.dumps({"Item": item}, ensure_ascii=False) + "\n" for item in items).encode("utf-8")
    expected = _reference_first_bad(items)
    try:
        checked = check_lines(_data_file(), text, 1)
    except ExportError as error:
        assert error.line == (expected or 0) + 1, (error, expected)
        return
    assert expected is None
    decoded = [decode_item(item) for item in items]
    images = checked.table.column("Item").combine_chunks()
    assert profile_of(images) == ItemProfile.of(decoded)
    layout = plan_layout(None, [], ItemProfile.of(decoded))
    read = item_reader(layout)
    assert [read(row) for row in rows_of_items(layout, decoded).to_pylist()] == [canonical_item(i) for i in decoded]


@settings(max_examples=300, deadline=None)
@given(texts=st.lists(_NUMBER_TEXTS, min_size=1, max_size=20))
def test_numbers_read_as_the_reference_parser_reads_them(texts: list[str]) -> None:
    parsed = numbers(pa.array(texts, pa.string()))
    for index, text in enumerate(texts):
        try:
            number = parse_number(text)
        except TypedValueError:
            assert parsed.valid[index].as_py() is False, text
            continue
        assert parsed.valid[index].as_py() is True, text
        assert parsed.canonical[index].as_py() == format_number(number), text
        digits, scale, is_long = number_shape_of(number)
        assert (parsed.digits[index].as_py(), parsed.scale[index].as_py(), parsed.is_long[index].as_py()) == (
            digits,
            scale,
            is_long,
        ), text


@settings(max_examples=200, deadline=None)
@given(
    keys=st.lists(
        st.tuples(
            st.one_of(
                st.text(min_size=1, max_size=8).map(lambda text: {"S": text}),
                st.from_regex(r"-?[0-9]{1,20}(\.[0-9]{1,10})?", fullmatch=True).map(lambda text: {"N": text}),
                st.binary(min_size=1, max_size=6).map(lambda data: {"B": base64.b64encode(data).decode("ascii")}),
            ),
            st.text(min_size=1, max_size=8).map(lambda text: {"S": text}),
        ),
        min_size=1,
        max_size=10,
    )
)
def test_key_text_a_column_at_a_time_is_key_text_value_by_value(keys: list[tuple[Any, Any]]) -> None:
    lines = "".join(json.dumps({"Keys": {"a": first, "b": second}}) + "\n" for first, second in keys).encode()
    typed = parse_lines(lines).table.column("Keys").combine_chunks()
    column = key_text_column([key_parts(pc.struct_field(typed, name)) for name in ("a", "b")])
    assert column.to_pylist() == [key_text((decode_value(first), decode_value(second))) for first, second in keys]


@settings(max_examples=300, deadline=None)
@given(values=st.lists(_typed(1), min_size=1, max_size=10))
def test_a_value_fits_a_key_exactly_when_the_reference_says_so(values: list[Any]) -> None:
    valid = []
    for value in values:
        try:
            valid.append(decode_value(value))
        except TypedValueError:
            continue
    lines = "".join(json.dumps({"Keys": {"k": encode_value(value)}}) + "\n" for value in valid).encode()
    if not valid:
        return
    typed = pc.struct_field(parse_lines(lines).table.column("Keys").combine_chunks(), "k")
    assert key_parts(typed).unfit.to_pylist() == [key_value_problem(value) is not None for value in valid]


@pytest.mark.parametrize(
    "line",
    [
        '{"Item":{"pk":{"S":"1"},"x":{"S":null}}}',
        '{"Item":{"pk":{"S":"1"},"x":{"S":"a","N":null}}}',
        '{"Item":{"pk":{"S":"1"},"x":null}}',
        '{"Item":{"pk":{"S":"1"},"x":{"L":[null]}}}',
    ],
)
def test_a_json_null_anywhere_is_refused(line: str) -> None:
    # Arrow reads a null member as an absent one; DynamoDB JSON never holds one (its NULL is {"NULL": true}).
    with pytest.raises(ExportError, match="line 2"):
        check_lines(_data_file(), b'{"Item":{"pk":{"S":"0"}}}\n' + line.encode() + b"\n", 1)


def test_sets_of_numbers_equal_in_value_are_duplicates() -> None:
    with pytest.raises(ExportError, match="duplicate"):
        check_lines(_data_file(), b'{"Item":{"pk":{"S":"0"},"ns":{"NS":["1","1.0"]}}}\n', 1)


def test_decimal_values_are_never_floats() -> None:
    parsed = numbers(pa.array(["0.1", "12345678901234567890123456789012345678", "-1E-130"]))
    assert parsed.canonical.to_pylist() == [
        "0.1",
        "12345678901234567890123456789012345678",
        "-0." + "0" * 129 + "1",
    ]
    assert Decimal(parsed.canonical[2].as_py()) == Decimal("-1E-130")
