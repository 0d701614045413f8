"""DynamoDB JSON in Arrow: a data file's lines parsed by Arrow's JSON reader, and the format's rules checked and
its values read with Arrow compute, a column at a time.

A typed value (`{"S": "x"}`, `{"N": "1.5"}`, `{"M": {...}}`, ...) parses into a struct with one field per type
tag, and an attribute seen with several types into one struct with several fields; each tag fixes its payload's
JSON type (S, N and B text, BOOL and NULL booleans, M an object, L an array, sets arrays of text), so the inferred
types of valid lines never conflict. The rules `typed_values` states value by value hold here for whole columns:
`TypedValueCheck` finds the first line that breaks one, `numbers` reads number text exactly (the canonical text,
the digits on each side of the point, whether a long holds it), `key_parts` gives key values their canonical
text. Values no column rule covers (numbers with an exponent, a leading `+` or `.`, binaries to decode) are read
value by value by the reference functions in `typed_values`, which are few in real exports.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from ddb_iceberg.exports.typed_values import (
    BASE64_PATTERN,
    LONG_MAX,
    LONG_MIN,
    LONG_SAFE_DIGITS,
    MAX_MAGNITUDE_EXCLUSIVE,
    MAX_NESTING,
    MAX_SIGNIFICANT_DIGITS,
    MIN_MAGNITUDE,
    TYPE_TAGS,
    TypedValueError,
    format_number,
    number_shape_of,
    parse_number,
)

# DynamoDB's canonical form (`typed_values.format_number`: no leading or trailing zeros, no exponent, no "-0"),
# which DynamoDB writes and almost every export holds; then any number without an exponent.
_CANONICAL_NUMBER = r"^(?:0|-?[1-9][0-9]*(?:\.[0-9]*[1-9])?|-?0\.[0-9]*[1-9])$"
_PLAIN_NUMBER = r"^(?P<sign>-?)(?P<whole>[0-9]+)(?:\.(?P<fraction>[0-9]+))?$"
_LONG_MAX_TEXT, _LONG_MIN_TEXT = str(LONG_MAX), str(-LONG_MIN)  # 19 digits each: compared as text
# DynamoDB's range as the exponent of a number's leading digit: -130 .. 125.
_MIN_ADJUSTED, _MAX_ADJUSTED = MIN_MAGNITUDE.adjusted(), MAX_MAGNITUDE_EXCLUSIVE.adjusted() - 1
KEY_TAGS = ("S", "N", "B")


def _is_string(data_type: pa.DataType) -> bool:
    return bool(pa.types.is_string(data_type) or pa.types.is_large_string(data_type))


def _mask(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A boolean mask with NULL read as false."""
    return pc.fill_null(array, False)


def row_ids(length: int) -> pa.Array:
    return pa.array(range(length), pa.int64())


@dataclass(frozen=True)
class Numbers:
    """Number text read exactly, one entry per text (NULL where the text is NULL): whether DynamoDB could have
    written it, its canonical text (`typed_values.format_number`), its digits before and after the point once
    leading and trailing zeros go (`type_profile.number_shape`), and whether it is a whole number a long holds."""

    valid: pa.Array
    canonical: pa.Array
    digits: pa.Array
    scale: pa.Array
    is_long: pa.Array


def numbers(text: pa.Array) -> Numbers:
    """Number text read exactly (see `Numbers`): canonical numbers (DynamoDB's own form, almost all there are)
    and plain ones by Arrow compute, any other form by `typed_values.parse_number`, value by value."""
    if not _is_string(text.type):
        text = text.cast(pa.string())
    canonical = pc.and_(
        pc.match_substring_regex(text, _CANONICAL_NUMBER), pc.less_equal(pc.utf8_length(text), MAX_SIGNIFICANT_DIGITS)
    )
    return _each_its_way(text, canonical, _canonical_numbers, _plain_numbers)


_NUMBERS_FIELDS = ("valid", "canonical", "digits", "scale", "is_long")


def _each_its_way(
    text: pa.Array, mask: pa.Array, where_true: Callable[[pa.Array], Numbers], elsewhere: Callable[[pa.Array], Numbers]
) -> Numbers:
    """Numbers read by `where_true` where `mask` holds (NULL counts as true) and by `elsewhere` where it does not,
    each reading only its own part, then put back in place."""
    mask = _mask_true(mask)
    if pc.all(mask).as_py():
        return where_true(text)
    if not pc.any(mask).as_py():
        return elsewhere(text)
    first, second = pc.indices_nonzero(mask), pc.indices_nonzero(pc.invert(mask))
    parts = where_true(text.take(first)), elsewhere(text.take(second))
    back = pc.sort_indices(pa.concat_arrays([first, second]))
    return Numbers(
        *(pa.concat_arrays([getattr(parts[0], name), getattr(parts[1], name)]).take(back) for name in _NUMBERS_FIELDS)
    )


def _mask_true(array: pa.Array) -> pa.Array:
    return pc.fill_null(array, True)


def _canonical_numbers(text: pa.Array) -> Numbers:
    """Numbers in DynamoDB's canonical form of at most 38 characters: valid, their own canonical text, their
    shape read off the point's place."""
    length = pc.cast(pc.utf8_length(text), pa.int32())
    point = pc.cast(pc.find_substring(text, "."), pa.int32())
    negative = pc.starts_with(text, "-")
    has_point = pc.greater_equal(point, 0)
    whole_length = pc.subtract(pc.if_else(has_point, point, length), pc.cast(negative, pa.int32()))
    zero_whole = pc.or_(pc.starts_with(text, "0"), pc.starts_with(text, "-0"))
    digits = pc.if_else(zero_whole, 0, whole_length)
    scale = pc.if_else(has_point, pc.subtract(pc.subtract(length, point), 1), 0)
    long_bound = pc.if_else(negative, _LONG_MIN_TEXT, _LONG_MAX_TEXT)
    nineteen = pc.and_(pc.equal(digits, 19), pc.less_equal(pc.utf8_ltrim(text, "-"), long_bound))
    is_long = pc.and_(pc.invert(has_point), pc.or_(pc.less_equal(digits, LONG_SAFE_DIGITS), nineteen))
    valid = pc.if_else(pc.is_valid(text), True, None)
    return Numbers(valid, text, pc.cast(digits, pa.int32()), pc.cast(scale, pa.int32()), is_long)


def _plain_numbers(text: pa.Array) -> Numbers:
    """Numbers without an exponent by Arrow compute; any other form by `_other_numbers`."""
    return _each_its_way(text, pc.match_substring_regex(text, _PLAIN_NUMBER), _numbers_without_exponent, _other_numbers)


def _numbers_without_exponent(text: pa.Array) -> Numbers:
    parts = pc.extract_regex(text, _PLAIN_NUMBER)
    plain = _mask(pc.is_valid(parts))
    sign = pc.struct_field(parts, "sign")
    whole = pc.utf8_ltrim(pc.struct_field(parts, "whole"), "0")
    fraction_digits = pc.struct_field(parts, "fraction")
    fraction = pc.utf8_rtrim(fraction_digits, "0")
    digits = pc.cast(pc.utf8_length(whole), pa.int32())
    scale = pc.cast(pc.utf8_length(fraction), pa.int32())
    zero = pc.and_(pc.equal(digits, 0), pc.equal(scale, 0))
    significant = pc.utf8_length(pc.utf8_trim(pc.binary_join_element_wise(whole, fraction, ""), "0"))
    leading_zeros = pc.subtract(pc.utf8_length(fraction), pc.utf8_length(pc.utf8_ltrim(fraction, "0")))
    adjusted = pc.if_else(pc.greater(digits, 0), pc.subtract(digits, 1), pc.negate(pc.add(leading_zeros, 1)))
    in_range = pc.and_(pc.greater_equal(adjusted, _MIN_ADJUSTED), pc.less_equal(adjusted, _MAX_ADJUSTED))
    valid = pc.and_(
        plain,
        _mask(pc.and_(pc.less_equal(significant, MAX_SIGNIFICANT_DIGITS), pc.or_(zero, in_range))),
    )
    negative = pc.equal(sign, "-")
    whole_text = pc.if_else(pc.greater(digits, 0), whole, "0")
    point_fraction = pc.if_else(pc.greater(scale, 0), pc.binary_join_element_wise(".", fraction, ""), "")
    canonical = pc.if_else(zero, "0", pc.binary_join_element_wise(sign, whole_text, point_fraction, ""))
    long_bound = pc.if_else(negative, _LONG_MIN_TEXT, _LONG_MAX_TEXT)
    nineteen = pc.and_(pc.equal(digits, 19), pc.less_equal(whole, long_bound))
    is_long = pc.and_(pc.equal(scale, 0), pc.or_(pc.less_equal(digits, LONG_SAFE_DIGITS), nineteen))
    return Numbers(valid, canonical, digits, scale, is_long)


def _other_numbers(text: pa.Array) -> Numbers:
    """Numbers in any other form (an exponent, a leading `+` or `.`, a trailing `.`, or no number at all), few in
    real exports: read value by value by the reference parser."""
    valid: list[bool | None] = []
    canonical: list[str | None] = []
    digits: list[int | None] = []
    scale: list[int | None] = []
    is_long: list[bool | None] = []
    for value in text.to_pylist():
        ok: bool | None
        try:
            number = None if value is None else parse_number(value)
        except TypedValueError:
            number, ok = None, False
        else:
            ok = None if value is None else True
        shape = (None, None, None) if number is None else number_shape_of(number)
        valid.append(ok)
        canonical.append(None if number is None else format_number(number))
        digits.append(shape[0])
        scale.append(shape[1])
        is_long.append(shape[2])
    return Numbers(
        pa.array(valid, pa.bool_()),
        pa.array(canonical, pa.string()),
        pa.array(digits, pa.int32()),
        pa.array(scale, pa.int32()),
        pa.array(is_long, pa.bool_()),
    )


def base64_valid(text: pa.Array) -> pa.Array:
    """Whether each text is base64 as DynamoDB writes binaries (padded, no whitespace); NULL stays NULL."""
    return pc.match_substring_regex(text, BASE64_PATTERN)


def decode_base64(text: pa.Array) -> pa.Array:
    """Base64 text (already valid) to bytes. Arrow has no kernel for it: value by value, in C (binaries are few)."""
    return pa.array([None if t is None else base64.b64decode(t) for t in text.to_pylist()], pa.binary())


def tag_payload(typed: pa.Array, tag: str) -> pa.Array | None:
    """The payloads of the `tag` values of an array of typed values (NULL elsewhere); None when none has it."""
    if not pa.types.is_struct(typed.type) or typed.type.get_field_index(tag) < 0:
        return None
    return pc.struct_field(typed, tag)


def present_tags(typed: pa.Array) -> list[str]:
    """The tags some value of an array of typed values has (NULL included), in the struct's order."""
    if not pa.types.is_struct(typed.type):
        return []
    return [f.name for f in typed.type if f.name in TYPE_TAGS and not pa.types.is_null(f.type)]


def is_null_value(typed: pa.Array) -> pa.Array:
    """Where a typed value is DynamoDB's NULL (`{"NULL": true}`), which a table holds as SQL NULL."""
    payload = tag_payload(typed, "NULL")
    if payload is None or pa.types.is_null(payload.type):
        return pa.repeat(False, len(typed))
    return _mask(payload)


def holds_value(typed: pa.Array) -> pa.Array:
    """Where an array of typed values holds a value that is not NULL."""
    return pc.and_(_mask(pc.is_valid(typed)), pc.invert(is_null_value(typed)))


@dataclass(frozen=True)
class KeyParts:
    """Key values: their tag (S, N or B; NULL where the value is none of these), their canonical payload (text,
    canonical number text, canonical base64), and where the value cannot be a key (another type, or empty)."""

    tag: pa.Array
    payload: pa.Array
    unfit: pa.Array


def key_parts(typed: pa.Array) -> KeyParts:
    """The canonical parts of an array of key values (typed values already checked by `TypedValueCheck`)."""
    length = len(typed)
    tag = pa.nulls(length, pa.string())
    payload = pa.nulls(length, pa.string())
    for name in KEY_TAGS:
        values = tag_payload(typed, name)
        if values is None or not _is_string(values.type):
            continue  # none, or payloads of another JSON type (refused by `TypedValueCheck`)
        has = _mask(pc.is_valid(values))
        if name == "N":
            values = numbers(values).canonical
        elif name == "B":
            texts = values.to_pylist()
            values = pa.array([None if v is None else _canonical_base64(v) for v in texts], pa.string())
        tag = pc.if_else(has, name, tag)
        payload = pc.if_else(has, values.cast(pa.string()), payload)
    other_tags = [t for t in present_tags(typed) if t not in KEY_TAGS]
    unfit = pc.or_(pc.is_null(tag), _mask(pc.equal(pc.utf8_length(payload), 0)))
    for name in other_tags:
        values = tag_payload(typed, name)
        assert values is not None
        unfit = pc.or_(unfit, _mask(pc.is_valid(values)))
    return KeyParts(tag, payload, unfit)


def _canonical_base64(text: str) -> str:
    try:
        return base64.b64encode(base64.b64decode(text, validate=True)).decode("ascii")
    except ValueError:
        return text  # not base64 (refused by `TypedValueCheck`)


class TypedValueCheck:
    """Finds the first row that holds a value DynamoDB could not have written: the rules of
    `typed_values.decode_value` (one known type tag per value, its payload's type, numbers, base64, NULL true,
    non-empty sets without duplicates, nesting), over whole columns. Rows are numbered by the caller (`rows`:
    each value's row), so that values nested in lists still name their line."""

    def __init__(self) -> None:
        self.first_bad: int | None = None

    def flag(self, rows: pa.Array, bad: pa.Array) -> None:
        found = pc.min(pc.filter(rows, _mask(bad))).as_py()
        if found is not None and (self.first_bad is None or found < self.first_bad):
            self.first_bad = found

    def attributes(self, item: pa.Array, rows: pa.Array, depth: int = 0) -> None:
        """Each attribute of a map of attribute name to typed value (an item, Keys, an image or an M payload)."""
        if not pa.types.is_struct(item.type):
            self.flag(rows, pc.is_valid(item))
            return
        for field in item.type:
            self.value(pc.struct_field(item, field.name), rows, depth)

    def value(self, typed: pa.Array, rows: pa.Array, depth: int) -> None:
        """Typed values; NULL entries are absent ones (the caller checks those that must be there)."""
        present = pc.is_valid(typed)
        if not pa.types.is_struct(typed.type):
            self.flag(rows, present)
            return
        tags = pa.repeat(0, len(typed))
        for field in typed.type:
            payload = pc.struct_field(typed, field.name)
            has = pc.is_valid(payload)
            if field.name not in TYPE_TAGS:
                self.flag(rows, has)
                continue
            tags = pc.add(tags, pc.cast(has, pa.int64()))
            if not pa.types.is_null(field.type):
                self._payload(field.name, payload, has, rows, depth)
        self.flag(rows, pc.and_(present, pc.not_equal(tags, 1)))

    def _payload(self, tag: str, payload: pa.Array, has: pa.Array, rows: pa.Array, depth: int) -> None:
        data_type = payload.type
        if tag == "S":
            if not _is_string(data_type):
                self.flag(rows, has)
        elif tag == "N":
            if not _is_string(data_type):
                self.flag(rows, has)
            else:
                self.flag(rows, pc.and_(has, pc.invert(numbers(payload).valid)))
        elif tag == "B":
            if not _is_string(data_type):
                self.flag(rows, has)
            else:
                self.flag(rows, pc.and_(has, pc.invert(_mask(base64_valid(payload)))))
        elif tag in ("BOOL", "NULL"):
            if not pa.types.is_boolean(data_type):
                self.flag(rows, has)
            elif tag == "NULL":
                self.flag(rows, pc.and_(has, pc.invert(_mask(payload))))
        elif tag == "M":
            if not pa.types.is_struct(data_type) or depth + 1 > MAX_NESTING:
                self.flag(rows, has)
            else:
                self.attributes(payload, rows, depth + 1)
        elif tag == "L":
            if not pa.types.is_list(data_type) or depth + 1 > MAX_NESTING:
                self.flag(rows, has)
                return
            elements, element_rows = _flatten(payload, rows)
            self.flag(element_rows, pc.is_null(elements))
            self.value(elements, element_rows, depth + 1)
        else:
            self._set(tag, payload, has, rows)

    def _set(self, tag: str, payload: pa.Array, has: pa.Array, rows: pa.Array) -> None:
        if not pa.types.is_list(payload.type):
            self.flag(rows, has)
            return
        self.flag(rows, pc.and_(has, pc.equal(pc.list_value_length(payload), 0)))
        elements, element_rows = _flatten(payload, rows)
        if not len(elements):
            return
        if not _is_string(elements.type):
            self.flag(element_rows, pc.is_valid(elements))  # no set holds anything but text elements
            self.flag(element_rows, pc.is_null(elements))
            return
        self.flag(element_rows, pc.is_null(elements))
        if tag == "NS":
            parsed = numbers(elements)
            self.flag(element_rows, pc.invert(_mask(parsed.valid)))
            distinct = parsed.canonical
        elif tag == "BS":
            self.flag(element_rows, pc.invert(_mask(base64_valid(elements))))
            distinct = elements
        else:
            distinct = elements
        # A set holds each element once (numbers compared by value): count each (set, element) pair.
        parents = pc.list_parent_indices(payload)
        pairs = pa.table({"set": parents, "element": distinct, "row": element_rows})
        counted = pairs.group_by(["set", "element"]).aggregate([("row", "count"), ("row", "min")])
        self.flag(counted.column("row_min"), pc.greater(counted.column("row_count"), 1))


def _flatten(lists: pa.Array, rows: pa.Array) -> tuple[pa.Array, pa.Array]:
    """The elements of a list array, and the row each belongs to."""
    return lists.flatten(), pc.take(rows, pc.list_parent_indices(lists))


def first_null_line(parsed: ParsedLines) -> int | None:
    """The index of the first line whose JSON holds a null, which DynamoDB JSON never does (its NULL is
    `{"NULL": true}`). Arrow reads a null member as an absent one, so the lines that mention `null` at all are
    parsed again to look."""
    if b"null" not in parsed.text:
        return None
    lines = parsed.lines
    candidates = pc.indices_nonzero(_mask(pc.match_substring(lines, "null"))).to_pylist()
    for index in candidates:
        if _holds_null(json.loads(lines[index].as_py())):
            return int(index)
    return None


def _holds_null(value: object) -> bool:
    stack = [value]
    while stack:
        current = stack.pop()
        if current is None:
            return True
        if isinstance(current, dict):
            stack.extend(current.values())
        elif isinstance(current, list):
            stack.extend(current)
    return False


@dataclass(frozen=True)
class ParsedLines:
    """Lines of a data file parsed by Arrow: `table` has one row per line, `lines` their text."""

    lines: pa.Array
    table: pa.Table
    text: bytes


class LinesRefused(Exception):  # noqa: N818 (a signal: the reader words it as an ExportError)
    """Arrow could not read these lines as one JSON object each; `index` is the first it refused, when known."""

    def __init__(self, problem: str, index: int | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.index = index


def parse_lines(text: bytes, *, checked: bool = False) -> ParsedLines:
    """Lines of JSON objects (UTF-8, one per line) parsed by Arrow into one row each; raises `LinesRefused` for
    text that is not UTF-8, a blank line, a line that is not one JSON object, or types that conflict. Lines
    `checked` already (read from an export by `reader.check_lines`) skip the UTF-8 check."""
    if not checked and not text.isascii():
        # Arrow's JSON reader takes any bytes inside strings, and its own check costs ten times Python's.
        try:
            text.decode("utf-8")
        except UnicodeDecodeError as error:
            raise LinesRefused(f"is not valid UTF-8 ({error.reason} at byte {error.start})") from None
    whole = _one_string(text)
    lines = pc.split_pattern(whole, "\n")[0].values
    if len(lines) and lines[len(lines) - 1].as_py() == "":
        lines = lines.slice(0, len(lines) - 1)
    blank = pc.indices_nonzero(pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(lines)), 0))
    if len(blank):
        raise LinesRefused("is blank", blank[0].as_py())
    options = pj.ReadOptions(use_threads=False, block_size=max(len(text) + 1, 1 << 16))
    try:
        table = pj.read_json(pa.BufferReader(text), read_options=options)
    except pa.ArrowInvalid as error:
        raise LinesRefused(str(error).removeprefix("JSON parse error: ")) from None
    if table.num_rows != len(lines):
        raise LinesRefused("holds more than one JSON value on a line")
    return ParsedLines(lines, table.combine_chunks(), text)


def _one_string(text: bytes) -> pa.Array:
    """`text` as an array of one string, without a copy (`pa.array` copies byte by byte)."""
    offsets = pa.array([0, len(text)], pa.int32()).buffers()[1]
    return pa.Array.from_buffers(pa.string(), 1, [None, offsets, pa.py_buffer(text)])


def lines_text(lines: Sequence[str | None] | pa.Array) -> bytes:
    """Lines (NULL skipped) as JSON-lines text: what `parse_lines` reads."""
    if isinstance(lines, pa.Array):
        present = pc.drop_null(lines)
        if not len(present):
            return b""
        joined = pc.binary_join(pa.ListArray.from_arrays(pa.array([0, len(present)], pa.int32()), present), "\n")
        text: bytes = joined[0].as_buffer().to_pybytes()
        return text + b"\n"
    return "".join(f"{line}\n" for line in lines if line is not None).encode("utf-8")


def split_at_lines(chunks: Iterator[bytes], piece_bytes: int) -> Iterator[bytes]:
    """Decompressed bytes regrouped into pieces of whole lines of at most `piece_bytes` (unless one line is
    longer; the last piece may lack its newline): a piece is what the reader parses and holds at once."""
    pending = bytearray()
    for chunk in chunks:
        pending += chunk
        while len(pending) >= piece_bytes:
            cut = pending.rfind(b"\n", 0, piece_bytes) + 1 or pending.find(b"\n", piece_bytes) + 1
            if not cut:
                break  # one line longer than a piece, not yet whole
            yield bytes(pending[:cut])
            del pending[:cut]
    while pending:
        cut = pending.rfind(b"\n", 0, piece_bytes) + 1 or pending.find(b"\n", piece_bytes) + 1 or len(pending)
        yield bytes(pending[:cut])
        del pending[:cut]
