"""A strict reader of one DynamoDB export: manifests, checksums, item counts and every data line.

Nothing is trusted: each data file's bytes are checked against the manifest's md5Checksum, its lines against
itemCount, every line is parsed and every typed value validated, and the files' counts must add up to the
summary's itemCount. Any violation raises `ExportError` naming the export, the file and the problem.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import zlib
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs

from ddb_iceberg.errors import ExportError
from ddb_iceberg.exports.arrow_json import (
    LinesRefused,
    TypedValueCheck,
    first_null_line,
    key_parts,
    parse_lines,
    row_ids,
    split_at_lines,
)
from ddb_iceberg.exports.manifest import (
    DataFileEntry,
    ExportView,
    ManifestSummary,
    OutputFormat,
    format_micros,
    md5_base64,
    to_micros,
)
from ddb_iceberg.exports.source import ExportSource, S3Options
from ddb_iceberg.exports.typed_values import (
    DecodedItem,
    TypedValueError,
    decode_item,
    key_value_problem,
)

SUMMARY_FILE = "manifest-summary.json"
SUMMARY_MD5_FILE = "manifest-summary.md5"
FILES_MD5_FILE = "manifest-files.md5"
# DynamoDB's documentation names the checksum files `.checksum`; real exports (January 2026, the fixtures) have
# `.md5`. Either is read (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/S3DataExport.Output.html).
SUMMARY_CHECKSUM_FILES = (SUMMARY_MD5_FILE, "manifest-summary.checksum")
FILES_CHECKSUM_FILES = (FILES_MD5_FILE, "manifest-files.checksum")
STARTED_MARKER = "_started"
_READ_CHUNK = 1 << 20
_DIGITS = re.compile(r"[0-9]+")
_DIGITS_PATTERN = "^[0-9]+$"
# JSON escapes of UTF-16 surrogates: only through them can a line decode to a string that is not Unicode.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


@dataclass(frozen=True, slots=True)
class FullExportItem:
    """One line of a full export: the item as of exportTime."""

    item: DecodedItem


@dataclass(frozen=True, slots=True)
class ChangeRecord:
    """One line of an incremental export: an item's final state in the window (compacted by DynamoDB)."""

    write_timestamp_micros: int
    keys: DecodedItem
    old_image: DecodedItem | None
    new_image: DecodedItem | None

    @property
    def is_delete(self) -> bool:
        return self.new_image is None


ExportRecord = FullExportItem | ChangeRecord


@dataclass(frozen=True)
class Export:
    """One export whose manifests have been read and cross-checked; data is read on demand."""

    source: ExportSource
    directory: str
    summary: ManifestSummary
    data_files: tuple[DataFileEntry, ...]
    warnings: tuple[str, ...] = ()

    @property
    def export_id(self) -> str:
        return self.summary.export_id

    @classmethod
    def load(cls, source: ExportSource, directory: str, contents: Collection[str] | None = None) -> Export:
        """Read and cross-check both manifests of the export in `directory` (a path in the source).

        `contents` names what the folder holds (from a listing the caller made already; else it is listed here):
        which files exist is decided from the listing, never by asking for a file that may be missing.
        """
        directory = directory.rstrip("/")
        export_id = directory.rsplit("/", 1)[-1]
        present = set(source.list_folder(directory) if contents is None else contents)

        def fail(problem: str, file: str | None = None) -> ExportError:
            return ExportError(export=export_id, file=file, problem=problem)

        def read(name: str) -> bytes:
            try:
                return source.read_bytes(f"{directory}/{name}")
            except OSError as error:
                raise fail(unreadable(error), name) from None

        if SUMMARY_FILE not in present:
            raise fail(f"has no {SUMMARY_FILE}: the export is still in progress, or failed", SUMMARY_FILE)
        summary_bytes = read(SUMMARY_FILE)
        summary = ManifestSummary.from_json(summary_bytes, export=export_id, file=SUMMARY_FILE)
        if summary.export_id != export_id:
            raise fail(f"exportArn names export {summary.export_id}, not its folder {export_id}", SUMMARY_FILE)

        warnings: list[str] = []
        for name in SUMMARY_CHECKSUM_FILES:
            if name in present and not _checksum_matches(read(name), summary_bytes):
                # Redacting account ids or bucket names (as published fixtures do) breaks this checksum, and
                # every field that matters is checked again below, so a mismatch is reported, not fatal.
                warnings.append(f"{name} does not match {SUMMARY_FILE} (edited after export?)")

        files_key = summary.manifest_files_s3_key
        try:
            files_path = source.path_for_key(files_key, summary.s3_prefix)
        except ValueError as error:
            raise fail(str(error), SUMMARY_FILE) from None
        folder, files_name = files_path.rsplit("/", 1)
        if folder != directory:
            raise fail(f"manifestFilesS3Key {files_key!r} lies outside the export's folder", SUMMARY_FILE)
        if files_name not in present:
            raise fail("is missing", files_key)
        files_bytes = read(files_name)
        for name in FILES_CHECKSUM_FILES:
            if name not in present:
                continue
            expected = read(name)
            if not _checksum_matches(expected, files_bytes):
                written = expected.decode("ascii", "replace").strip()
                raise fail(f"does not match {name} ({written} != {md5_base64(files_bytes)})", files_key)
        try:
            files_text = files_bytes.decode("utf-8")
        except UnicodeDecodeError as error:
            raise fail(f"is not UTF-8 ({error})", files_key) from None
        entries = tuple(
            DataFileEntry.from_json_line(line, export=export_id, file=files_key, line_number=number)
            for number, line in enumerate(files_text.splitlines(), start=1)
            if line.strip()
        )
        keys = [entry.data_file_s3_key for entry in entries]
        if len(set(keys)) != len(keys):
            raise fail("lists a data file more than once", files_key)
        listed = sum(entry.item_count for entry in entries)
        if listed != summary.item_count:
            raise fail(
                f"data files hold {listed} items in all but manifest-summary.json says itemCount {summary.item_count}",
                files_key,
            )
        return cls(source, directory, summary, entries, tuple(warnings))

    @cached_property
    def window_micros(self) -> tuple[int, int]:
        """The export's window [exportFromTime, exportToTime) in microseconds (a full export: its exportTime)."""
        return to_micros(self.summary.covers_from), to_micros(self.summary.covers_to)

    def data_file_path(self, entry: DataFileEntry) -> str:
        try:
            return self.source.path_for_key(entry.data_file_s3_key, self.summary.s3_prefix)
        except ValueError as error:
            raise ExportError(export=self.export_id, file=entry.data_file_s3_key, problem=str(error)) from None

    def records(self) -> Iterator[ExportRecord]:
        """Every record of every data file, verified as it is read.

        A file's checksum and count are only known once its last byte is read, so a caller must consume the
        whole iterator before acting on what it yielded (the merge collects everything before committing).
        """
        for entry in self.data_files:
            yield from self.file_records(entry)

    def verify(self) -> int:
        """Read and verify everything; return the number of records."""
        return sum(1 for _ in self.records())

    def data_file(self, entry: DataFileEntry) -> DataFile:
        """The description of one of the export's data files that `read_data_file` (anywhere) reads."""
        window_start, window_end = self.window_micros
        return DataFile(
            export_id=self.export_id,
            entry=entry,
            path=self.data_file_path(entry),
            s3=self.source.s3,
            full=self.summary.is_full,
            view=self.summary.output_view,
            window_start=window_start,
            window_end=window_end,
            output_format=self.summary.output_format,
        )

    def file_records(self, entry: DataFileEntry) -> Iterator[ExportRecord]:
        """Records of one data file, verified against its manifest entry."""
        return read_data_file(self.data_file(entry))


@dataclass(frozen=True)
class DataFile:
    """One data file of an export, described by value: all a Spark executor needs to read and verify it."""

    export_id: str
    entry: DataFileEntry
    path: str  # in the source's file system: a local path, or bucket/key
    s3: S3Options | None  # how to reach S3; None for a local file
    full: bool
    view: ExportView | None
    window_start: int  # the export's window [exportFromTime, exportToTime) in microseconds
    window_end: int
    output_format: str

    @property
    def key(self) -> str:
        return self.entry.data_file_s3_key

    def fail(self, problem: str, line: int | None = None) -> ExportError:
        return ExportError(export=self.export_id, file=self.key, line=line, problem=problem)


@dataclass(frozen=True)
class CheckedLines:
    """Consecutive lines of a data file, parsed by Arrow (`exports.arrow_json`) and checked against every rule of
    the format: `table` has one row per line (`Item`; or `Metadata`, `Keys`, `OldImage`, `NewImage`), `lines`
    their text, `written` each change's WriteTimestampMicros (None for a full export)."""

    first_line: int  # the number of the first line in its file
    lines: pa.Array
    table: pa.Table
    written: pa.Array | None

    def __len__(self) -> int:
        return len(self.lines)


# The decompressed bytes parsed at once: what a reader holds of a file (an item is at most 400 KB).
PIECE_BYTES = 4 * 2**20


def read_checked_lines(data_file: DataFile, piece_bytes: int = PIECE_BYTES) -> Iterator[CheckedLines]:
    """Every line of one data file, parsed and checked a piece at a time: its bytes against md5Checksum, its
    lines against itemCount, every line and value against the format's rules (`check_lines`).

    A file's checksum and count are only known once its last byte is read, so a caller must consume the whole
    iterator before acting on what it yielded.
    """
    if data_file.output_format != OutputFormat.DYNAMODB_JSON:
        raise data_file.fail(
            f"outputFormat {data_file.output_format} is not supported: ddb_iceberg reads DYNAMODB_JSON "
            "exports (export again with ExportFormat=DYNAMODB_JSON)"
        )
    if not data_file.key.endswith(".json.gz"):
        raise data_file.fail("is not a .json.gz data file")
    digest = hashlib.md5()
    inflater = zlib.decompressobj(wbits=31)
    try:
        stream = _filesystem(data_file.s3).open_input_stream(data_file.path, compression=None)
    except FileNotFoundError:
        raise data_file.fail("is listed in manifest-files.json but missing") from None
    except OSError as error:
        raise data_file.fail(unreadable(error)) from None

    def inflated() -> Iterator[bytes]:
        with stream:
            while True:
                chunk = stream.read(_READ_CHUNK)
                if not chunk:
                    break
                digest.update(chunk)
                try:
                    # Bounded: a megabyte of gzip can hold a gigabyte of text.
                    yield inflater.decompress(chunk, piece_bytes)
                    while inflater.unconsumed_tail:
                        yield inflater.decompress(inflater.unconsumed_tail, piece_bytes)
                except zlib.error as error:
                    raise data_file.fail(f"is not a valid gzip file ({error})") from None
        # Before the last line is parsed: a cut file's last line is cut too, and the cut is the error to report.
        if not inflater.eof or inflater.unused_data:
            raise data_file.fail("is a truncated or corrupt gzip file")

    line_number = 0
    for piece in split_at_lines(inflated(), piece_bytes):
        checked = check_lines(data_file, piece, line_number + 1)
        line_number += len(checked)
        yield checked
    actual_md5 = base64.b64encode(digest.digest()).decode("ascii")
    if actual_md5 != data_file.entry.md5_checksum:
        raise data_file.fail(
            f"md5Checksum mismatch: manifest says {data_file.entry.md5_checksum}, the bytes give {actual_md5}"
        )
    expected = data_file.entry.item_count
    if line_number != expected:
        raise data_file.fail(f"holds {line_number} lines but manifest-files.json says itemCount {expected}")


def check_lines(data_file: DataFile, text: bytes, first_line: int) -> CheckedLines:
    """Lines of a data file (`first_line` is the first one's number) parsed by Arrow and checked against every
    rule of the format; raises `ExportError` naming the first line that breaks one. Arrow decides; the message
    comes from `explain_line`, the rules worded line by line, or, should it find nothing, from Arrow."""
    try:
        parsed = parse_lines(text)
    except LinesRefused as refused:
        raise _refusal(data_file, text.split(b"\n"), first_line, refused.index, refused.problem) from None
    table, rows = parsed.table, row_ids(parsed.table.num_rows)
    check = TypedValueCheck()
    written = None
    if data_file.full:
        item = _top_level(table, check, rows, ("Item",), ("Item",))["Item"]
        check.attributes(item, rows)
        if pa.types.is_struct(item.type):
            attributes = [pc.is_valid(pc.struct_field(item, f.name)) for f in item.type]
            check.flag(rows, pc.invert(_any(attributes, len(rows))))
        problem = "breaks a rule of full export lines"
    else:
        parts = _top_level(table, check, rows, _CHANGE_PARTS, ("Metadata", "Keys"))
        written = _write_times(data_file, parts["Metadata"], check, rows)
        keys = parts["Keys"]
        check.attributes(keys, rows)
        key_names = [f.name for f in keys.type] if pa.types.is_struct(keys.type) else []
        check.flag(rows, pc.invert(_any([pc.is_valid(pc.struct_field(keys, n)) for n in key_names], len(rows))))
        for image in (parts["OldImage"], parts["NewImage"]):
            check.attributes(image, rows)
        if data_file.view is ExportView.NEW_AND_OLD_IMAGES:
            check.flag(rows, pc.and_(pc.is_null(parts["NewImage"]), pc.is_null(parts["OldImage"])))
        _check_images_agree_with_keys(keys, key_names, parts, check, rows)
        problem = "breaks a rule of incremental export lines"
    null_line = first_null_line(parsed)
    if null_line is not None:
        check.flag(rows.slice(null_line, 1), pa.array([True]))
    if check.first_bad is not None:
        raise _refusal(data_file, None, first_line, check.first_bad, problem, parsed.lines)
    return CheckedLines(first_line, parsed.lines, table, written)


_CHANGE_PARTS = ("Metadata", "Keys", "OldImage", "NewImage")


def _any(masks: list[pa.Array], length: int) -> pa.Array:
    result = pa.repeat(False, length)
    for mask in masks:
        result = pc.or_(result, pc.fill_null(mask, False))
    return result


def _top_level(
    table: pa.Table, check: TypedValueCheck, rows: pa.Array, allowed: tuple[str, ...], required: tuple[str, ...]
) -> dict[str, pa.Array]:
    """The line's members by name (NULL where absent); flags lines with another member or without a required one."""
    length = table.num_rows
    for name in table.column_names:
        if name not in allowed:
            check.flag(rows, pc.is_valid(table.column(name)))
    members = {}
    for name in allowed:
        member = table.column(name).combine_chunks() if name in table.column_names else pa.nulls(length)
        if name in required:
            check.flag(rows, pc.is_null(member))
        members[name] = member
    return members


def _write_times(data_file: DataFile, metadata: pa.Array, check: TypedValueCheck, rows: pa.Array) -> pa.Array:
    """Each change's Metadata.WriteTimestampMicros, in microseconds; flags lines without it as an integer N
    value, or with one outside the export's window."""
    text = pa.nulls(len(rows), pa.string())
    if pa.types.is_struct(metadata.type) and metadata.type.get_field_index("WriteTimestampMicros") >= 0:
        timestamp = pc.struct_field(metadata, "WriteTimestampMicros")
        if pa.types.is_struct(timestamp.type) and timestamp.type.get_field_index("N") >= 0:
            number = pc.struct_field(timestamp, "N")
            if pa.types.is_string(number.type):
                text = number
    # More digits than a long's are outside any window.
    digits = pc.and_(pc.match_substring_regex(text, _DIGITS_PATTERN), pc.less_equal(pc.utf8_length(text), 18))
    check.flag(rows, pc.invert(pc.fill_null(digits, False)))
    written = pc.cast(pc.if_else(pc.fill_null(digits, False), text, None), pa.int64())
    outside = pc.or_(pc.less(written, data_file.window_start), pc.greater_equal(written, data_file.window_end))
    check.flag(rows, outside)
    return written


def _check_images_agree_with_keys(
    keys: pa.Array, key_names: list[str], parts: dict[str, pa.Array], check: TypedValueCheck, rows: pa.Array
) -> None:
    """Flags lines whose Keys hold a value that is no key's, or whose images disagree with Keys on a key."""
    for name in key_names:
        key = key_parts(pc.struct_field(keys, name))
        held = pc.is_valid(key.tag)
        check.flag(rows, pc.and_(pc.is_valid(pc.struct_field(keys, name)), key.unfit))
        for image_name in ("NewImage", "OldImage"):
            image = parts[image_name]
            if not pa.types.is_struct(image.type):
                continue
            if image.type.get_field_index(name) < 0:
                check.flag(rows, pc.and_(pc.is_valid(image), held))
                continue
            theirs = key_parts(pc.struct_field(image, name))
            same = pc.and_(pc.equal(theirs.tag, key.tag), pc.equal(theirs.payload, key.payload))
            check.flag(rows, pc.and_(pc.and_(pc.is_valid(image), held), pc.invert(pc.fill_null(same, False))))


def _refusal(
    data_file: DataFile,
    raw_lines: list[bytes] | None,
    first_line: int,
    index: int | None,
    problem: str,
    lines: pa.Array | None = None,
) -> ExportError:
    """The error for lines Arrow refused: at the line it names (or the first that `explain_line` refuses), worded
    by `explain_line`, else by Arrow's `problem`."""
    if raw_lines is None:
        assert lines is not None
        raw_lines = [line.encode("utf-8") for line in lines.to_pylist()]
    if index is not None:
        return explain_line(data_file, raw_lines[index], first_line + index) or data_file.fail(
            problem, first_line + index
        )
    if raw_lines and not raw_lines[-1]:
        raw_lines = raw_lines[:-1]  # the piece's final newline
    for offset, raw_line in enumerate(raw_lines):
        explained = explain_line(data_file, raw_line, first_line + offset)
        if explained is not None:
            return explained
    # Lines the rules taken one at a time accept, but Arrow does not (a member named twice, which DynamoDB never
    # writes and Python's JSON reads as the last one): the first Arrow refuses alone.
    for offset, raw_line in enumerate(raw_lines):
        try:
            parse_lines(raw_line)
        except LinesRefused as refused:
            return data_file.fail(f"is not DynamoDB JSON ({refused.problem})", first_line + offset)
    return data_file.fail(f"is not DynamoDB JSON ({problem})")


def explain_line(data_file: DataFile, raw_line: bytes, line_number: int) -> ExportError | None:
    """What is wrong with one line, in the words of the format's rules taken one at a time (None: nothing)."""
    try:
        (_parse_full_line if data_file.full else _parse_change_line)(data_file, raw_line, line_number)
    except ExportError as error:
        return error
    return None


def read_data_file(data_file: DataFile) -> Iterator[ExportRecord]:
    """Every record of one data file as Python values, checked as `read_checked_lines` checks them.

    A file's checksum and count are only known once its last byte is read, so a caller must consume the whole
    iterator before acting on what it yielded.
    """
    parse_line = _parse_full_line if data_file.full else _parse_change_line
    for checked in read_checked_lines(data_file):
        for offset, line in enumerate(checked.lines.to_pylist()):
            yield parse_line(data_file, line.encode("utf-8"), checked.first_line + offset)


@cache
def _filesystem(s3: S3Options | None) -> pafs.FileSystem:
    # One per process and setting: an executor reads many files with it.
    return s3.filesystem() if s3 is not None else pafs.LocalFileSystem()


def _load_line(data_file: DataFile, raw_line: bytes, line_number: int) -> dict[str, object]:
    try:
        text = raw_line.decode("utf-8")
    except UnicodeDecodeError as error:
        raise data_file.fail(f"is not valid UTF-8 ({error.reason} at byte {error.start})", line_number) from None
    try:
        parsed = json.loads(text)
    except ValueError as error:
        raise data_file.fail(f"is not valid JSON ({error})", line_number) from None
    except RecursionError:
        raise data_file.fail("is not valid JSON (nested too deeply to parse)", line_number) from None
    if not isinstance(parsed, dict):
        raise data_file.fail("is not a JSON object", line_number)
    if _SURROGATE_ESCAPE.search(text):
        lone = _lone_surrogate(parsed)
        if lone is not None:
            raise data_file.fail(f"holds a string that is not valid Unicode (a lone surrogate {lone})", line_number)
    return parsed


def _parse_full_line(data_file: DataFile, raw_line: bytes, line_number: int) -> FullExportItem:
    parsed = _load_line(data_file, raw_line, line_number)
    if set(parsed) != {"Item"}:
        raise data_file.fail(f"has keys {sorted(parsed)}; a full export line holds only 'Item'", line_number)
    try:
        item = decode_item(parsed["Item"], "Item")
    except TypedValueError as error:
        raise data_file.fail(str(error), line_number) from None
    if not item:
        raise data_file.fail("holds an empty Item", line_number)
    return FullExportItem(item)


def _parse_change_line(data_file: DataFile, raw_line: bytes, line_number: int) -> ChangeRecord:
    parsed = _load_line(data_file, raw_line, line_number)
    fail = data_file.fail
    unexpected = set(parsed) - {"Metadata", "Keys", "OldImage", "NewImage"}
    if unexpected or "Metadata" not in parsed or "Keys" not in parsed:
        raise fail(
            f"has keys {sorted(parsed)}; an incremental line holds Metadata, Keys, OldImage and/or NewImage",
            line_number,
        )
    metadata = parsed["Metadata"]
    timestamp = metadata.get("WriteTimestampMicros") if isinstance(metadata, dict) else None
    if not (isinstance(timestamp, dict) and isinstance(timestamp.get("N"), str) and _DIGITS.fullmatch(timestamp["N"])):
        raise fail("lacks Metadata.WriteTimestampMicros as an integer N value", line_number)
    written = int(timestamp["N"])
    if not data_file.window_start <= written < data_file.window_end:
        raise fail(
            f"has WriteTimestampMicros {written}, outside the export's window "
            f"[{format_micros(data_file.window_start)}, {format_micros(data_file.window_end)}): "
            "DynamoDB writes only changes made inside the window",
            line_number,
        )
    try:
        keys = decode_item(parsed["Keys"], "Keys")
        old_image = decode_item(parsed["OldImage"], "OldImage") if "OldImage" in parsed else None
        new_image = decode_item(parsed["NewImage"], "NewImage") if "NewImage" in parsed else None
    except TypedValueError as error:
        raise fail(str(error), line_number) from None
    if not keys:
        raise fail("has empty Keys", line_number)
    for name, value in keys.items():
        problem = key_value_problem(value)
        if problem is not None:
            raise fail(f"Keys.{name} {problem}", line_number)
    if new_image is None and old_image is None and data_file.view is ExportView.NEW_AND_OLD_IMAGES:
        raise fail("is a delete without OldImage, impossible in a NEW_AND_OLD_IMAGES export", line_number)
    for name, image in (("NewImage", new_image), ("OldImage", old_image)):
        if image is not None and any(image.get(key) != value for key, value in keys.items()):
            raise fail(f"{name} disagrees with Keys on a key attribute", line_number)
    return ChangeRecord(written, keys, old_image, new_image)


def _lone_surrogate(value: Any) -> str | None:
    """The first string (or name) in a parsed JSON value that UTF-8 cannot encode, shown escaped."""
    stack = [value]
    while stack:
        current = stack.pop()
        if isinstance(current, str):
            try:
                current.encode("utf-8")
            except UnicodeEncodeError as error:
                return current[error.start : error.end].encode("unicode_escape").decode("ascii")
        elif isinstance(current, dict):
            stack.extend(current.keys())
            stack.extend(current.values())
        elif isinstance(current, list):
            stack.extend(current)
    return None


def _checksum_matches(checksum_file: bytes, data: bytes) -> bool:
    """Whether a checksum file holds the MD5 of `data`: base64, as the `.md5` files of real exports do, or hex."""
    written = checksum_file.decode("ascii", "replace").strip()
    digest = hashlib.md5(data)
    return written in (base64.b64encode(digest.digest()).decode("ascii"), digest.hexdigest())


def unreadable(error: OSError) -> str:
    """What a file that exists in a listing but cannot be read means (S3's 403 included)."""
    return (
        f"cannot be read ({error}). On S3 an access denied may also be a key that is missing, when the role may "
        "not list the bucket there: check that the file is there and that the role may s3:GetObject it"
    )
