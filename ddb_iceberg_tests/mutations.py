"""Random, replayable damage to copies of the real exports, for the property-based tests.

Each mutation edits the decompressed lines of one data file and rewrites the file with a matching md5 (and,
mostly, matching item counts), so that what reaches the parser is the damage itself, not a checksum mismatch.
Some mutations keep the export valid (another value, another attribute, a line moved): those must give an
exact table; the rest must be refused.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from ddb_iceberg.exports.typed_values import format_number
from ddb_iceberg_tests.helpers import edit_summary, gzip_lines, read_manifest_files, replace_data_file

FULL_ID = "01768385930622-efd1a093"
INCREMENTAL_IDS = ("01768386924000-d339e52d", "01768388186000-4a2fc3ff")
WINDOWS = {  # exportFromTime and exportToTime of each incremental export, in microseconds
    "01768386924000-d339e52d": (1768386000000000, 1768386900000000),
    "01768388186000-4a2fc3ff": (1768386900000000, 1768387800000000),
}

Line = dict[str, Any]
Edit = Callable[[list[str]], list[str]]

_names = st.text(min_size=1, max_size=6)
_numbers = st.builds(
    lambda digits, exponent: format_number(Decimal(digits).scaleb(exponent)),
    st.integers(-(10**38) + 1, 10**38 - 1),
    st.integers(-90, 80),
)
_binary = st.binary(max_size=8).map(lambda data: base64.b64encode(data).decode("ascii"))
_scalars = st.one_of(
    st.builds(lambda text: {"S": text}, st.text(max_size=8)),
    st.builds(lambda number: {"N": number}, _numbers),
    st.builds(lambda data: {"B": data}, _binary),
    st.builds(lambda flag: {"BOOL": flag}, st.booleans()),
    st.just({"NULL": True}),
    st.builds(lambda items: {"SS": items}, st.lists(st.text(max_size=4), min_size=1, max_size=3, unique=True)),
    st.builds(lambda items: {"NS": items}, st.lists(_numbers, min_size=1, max_size=3, unique=True)),
    st.builds(lambda items: {"BS": items}, st.lists(_binary, min_size=1, max_size=3, unique=True)),
)
# Values DynamoDB could hold (an NS of equal numbers written differently aside, which the reader refuses).
typed_values = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.builds(lambda items: {"M": items}, st.dictionaries(_names, children, max_size=3)),
        st.builds(lambda items: {"L": items}, st.lists(children, max_size=3)),
    ),
    max_leaves=6,
)
# Anything JSON can say.
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=6)),
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=6,
)


@dataclass(frozen=True)
class Mutation:
    """One edit of one data file of one export, as hypothesis shows it when a property fails."""

    export_id: str
    description: str
    edit: Edit
    fix_counts: bool

    def apply(self, root: Path) -> None:
        export_dir = root / "AWSDynamoDB" / self.export_id
        entries = read_manifest_files(export_dir)
        index = next(i for i, entry in enumerate(entries) if entry.item_count)
        data = gzip.decompress((root / entries[index].data_file_s3_key).read_bytes()).decode("utf-8")
        lines = self.edit(data.splitlines())
        replace_data_file(
            root, export_dir, index, gzip_lines(lines), item_count=len(lines) if self.fix_counts else None
        )
        if self.fix_counts:
            edit_summary(export_dir, itemCount=sum(entry.item_count for entry in read_manifest_files(export_dir)))

    def __repr__(self) -> str:
        return f"Mutation({self.export_id}: {self.description}, counts fixed: {self.fix_counts})"


def _edit_line(index: int, change: Callable[[Line], None]) -> Edit:
    def edit(lines: list[str]) -> list[str]:
        position = index % len(lines)
        line = json.loads(lines[position])
        change(line)
        return [*lines[:position], json.dumps(line, ensure_ascii=False), *lines[position + 1 :]]

    return edit


def _set(section: str, name: str, value: Any) -> Callable[[Line], None]:
    def change(line: Line) -> None:
        if isinstance(line.get(section), dict):
            line[section][name] = value

    return change


def _drop(section: str, position: int) -> Callable[[Line], None]:
    def change(line: Line) -> None:
        attributes = line.get(section)
        if isinstance(attributes, dict) and attributes:
            del attributes[sorted(attributes)[position % len(attributes)]]

    return change


def _set_timestamp(value: Any) -> Callable[[Line], None]:
    def change(line: Line) -> None:
        if "Metadata" in line:
            line["Metadata"] = {"WriteTimestampMicros": {"N": str(value)}}

    return change


def _raw(position: int, replacement: str) -> Edit:
    def edit(lines: list[str]) -> list[str]:
        text = "\n".join(lines)
        cut = position % (len(text) + 1)
        return (text[:cut] + replacement + text[cut + 1 :]).split("\n")

    return edit


@st.composite
def mutations(draw: st.DrawFn) -> Mutation:
    export_id = draw(st.sampled_from((FULL_ID, *INCREMENTAL_IDS)))
    is_full = export_id == FULL_ID
    line = draw(st.integers(0, 10))
    images = ("Item",) if is_full else ("NewImage", "OldImage", "Keys")
    section = draw(st.sampled_from(images))
    kind = draw(
        st.sampled_from(
            ["value", "junk value", "drop attribute", "key", "timestamp", "raw", "surrogate", "duplicate", "delete",
             "replace line", "swap lines"]
        )
    )  # fmt: skip
    if kind == "value":
        name = draw(st.one_of(_names, st.sampled_from(["test", "number", "pk", "sk"])))
        value = draw(typed_values)
        description, edit = f"line {line}: {section}.{name} = {value}", _edit_line(line, _set(section, name, value))
    elif kind == "junk value":
        name, value = draw(_names), draw(json_values)
        description, edit = f"line {line}: {section}.{name} = {value!r}", _edit_line(line, _set(section, name, value))
    elif kind == "drop attribute":
        position = draw(st.integers(0, 10))
        description, edit = (
            f"line {line}: drop attribute {position} of {section}",
            _edit_line(line, _drop(section, position)),
        )
    elif kind == "key":
        key = draw(st.sampled_from(["pk", "sk"]))
        value = draw(st.one_of(typed_values, st.builds(lambda text: {"S": text}, st.text(max_size=3))))
        sections = ("Item",) if is_full else ("Keys", "NewImage", "OldImage")

        def change(parsed: Line, key: str = key, value: Any = value, sections: tuple[str, ...] = sections) -> None:
            for name in sections:
                if isinstance(parsed.get(name), dict):
                    parsed[name][key] = value

        description, edit = f"line {line}: key {key} = {value}", _edit_line(line, change)
    elif kind == "timestamp":
        start, end = WINDOWS.get(export_id, (0, 1))
        value = draw(st.one_of(st.integers(start - 2, start + 2), st.integers(end - 2, end + 2), st.integers(),
                               st.text(max_size=5)))  # fmt: skip
        description, edit = f"line {line}: WriteTimestampMicros = {value!r}", _edit_line(line, _set_timestamp(value))
    elif kind == "raw":
        position, replacement = draw(st.integers(0, 2000)), draw(st.text(max_size=3))
        description, edit = f"character {position} -> {replacement!r}", _raw(position, replacement)
    elif kind == "surrogate":
        position = draw(st.integers(0, 2000))
        description, edit = f"character {position} -> a lone surrogate escape", _raw(position, "\\udc80")
    elif kind == "duplicate":
        description = f"line {line} twice"
        edit = lambda lines: [*lines, lines[line % len(lines)]]  # noqa: E731
    elif kind == "delete":
        description = f"line {line} removed"
        edit = lambda lines: [text for i, text in enumerate(lines) if i != line % len(lines)] or [""]  # noqa: E731
    elif kind == "replace line":
        replacement = draw(st.one_of(st.text(max_size=20), json_values.map(json.dumps)))
        description = f"line {line} -> {replacement!r}"
        edit = lambda lines: [replacement if i == line % len(lines) else text for i, text in enumerate(lines)]  # noqa: E731
    else:
        description = "lines in reverse order"
        edit = lambda lines: list(reversed(lines))  # noqa: E731
    return Mutation(export_id, description, edit, fix_counts=draw(st.booleans()) or kind == "duplicate")
