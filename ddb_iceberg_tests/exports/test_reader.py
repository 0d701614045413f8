"""The strict reader against the real exports, and every way an export can fail verification."""

from __future__ import annotations

import gzip
import json
import pickle
import re
from decimal import Decimal
from pathlib import Path

import pytest

from ddb_iceberg.errors import ExportError
from ddb_iceberg.exports import ChangeRecord, Export, ExportSource, FullExportItem
from ddb_iceberg.exports.reader import read_data_file
from ddb_iceberg.exports.typed_values import decode_item
from ddb_iceberg_tests.helpers import (
    copy_tree,
    edit_summary,
    gzip_lines,
    read_manifest_files,
    replace_data_file,
    write_manifest_files,
)

FULL_ID = "01768385930622-efd1a093"
FIRST_INCREMENTAL_ID = "01768386924000-d339e52d"
SECOND_INCREMENTAL_ID = "01768388186000-4a2fc3ff"


def _load(root: Path, export_id: str) -> Export:
    source = ExportSource.from_uri(str(root))
    return Export.load(source, f"{source.exports_root}/{export_id}")


def test_reads_the_real_full_export_including_empty_first_file(test_table_source: Path) -> None:
    export = _load(test_table_source, FULL_ID)
    assert export.data_files[0].item_count == 0  # the first data file is one of the empty ones
    items = [record.item for record in export.records() if isinstance(record, FullExportItem)]
    assert items == [
        {"pk": "1", "sk": "1", "test": "test"},
        {"pk": "1", "sk": "2", "test": "test2"},
        {"pk": "1", "sk": "3", "test2": "2", "test1": "1"},
    ]


def test_reads_the_real_incremental_exports(test_table_source: Path) -> None:
    records = [r for r in _load(test_table_source, SECOND_INCREMENTAL_ID).records() if isinstance(r, ChangeRecord)]
    by_key = {(r.keys["pk"], r.keys["sk"]): r for r in records}
    assert len(records) == 5
    assert by_key[("2", "3")].is_delete and by_key[("2", "3")].old_image == {
        "pk": "2",
        "sk": "3",
        "test": "test",
    }
    removed = by_key[("3", "2")]
    assert removed.old_image is not None and removed.new_image is not None
    assert removed.old_image["number"] == Decimal("12") and "number" not in removed.new_image
    added = by_key[("1", "3")].new_image
    assert added is not None and added["bin_update"] == frozenset({b"\xd3M4", b"\xd3M5"})
    assert by_key[("4", "2")].write_timestamp_micros == 1768387634507675


def test_redacted_summary_checksum_is_a_warning_not_a_failure(test_table_source: Path) -> None:
    export = _load(test_table_source, FULL_ID)
    assert export.warnings == ("manifest-summary.md5 does not match manifest-summary.json (edited after export?)",)
    assert export.verify() == 3


def test_all_real_values_decode(test_table_source: Path) -> None:
    records = [r for r in _load(test_table_source, FIRST_INCREMENTAL_ID).records() if isinstance(r, ChangeRecord)]
    image = next(r.new_image for r in records if r.keys == {"pk": "3", "sk": "1"})
    assert image == {
        "b": b"\xd3M4",
        "bset": frozenset({b"\xd3M4", b"\xd7]u"}),
        "list": ["test", "1"],
        "mapp": {"test": b"\xb5\xeb-"},
        "nset": frozenset({Decimal(1), Decimal(2)}),
        "null": None,
        "number": Decimal(12),
        "pk": "3",
        "sk": "1",
        "sset": frozenset({"test", "test2"}),
        "string": "test",
    }


# Verification failures: each on a writable copy, with the manifests made consistent except for the fault.


@pytest.fixture
def tampered(tmp_path: Path, test_table_source: Path) -> Path:
    return copy_tree(test_table_source, tmp_path / "table")


def _nonempty_index(export_dir: Path) -> int:
    return next(i for i, e in enumerate(read_manifest_files(export_dir)) if e.item_count > 0)


def _verify_fails(root: Path, export_id: str, *expected: str) -> ExportError:
    with pytest.raises(ExportError) as caught:
        _load(root, export_id).verify()
    message = str(caught.value)
    assert message.startswith(f"export {export_id}"), message
    for fragment in expected:
        assert fragment in message, message
    return caught.value


def test_checksum_mismatch(tampered: Path) -> None:
    export_dir = tampered / "AWSDynamoDB" / FULL_ID
    entry = read_manifest_files(export_dir)[_nonempty_index(export_dir)]
    data_path = tampered / entry.data_file_s3_key
    # Same lines, different compression: only the checksum can tell.
    data_path.write_bytes(gzip.compress(gzip.decompress(data_path.read_bytes()), compresslevel=1))
    _verify_fails(tampered, FULL_ID, f"file {entry.data_file_s3_key}", "md5Checksum mismatch", entry.md5_checksum)


def test_item_count_mismatch(tampered: Path) -> None:
    export_dir = tampered / "AWSDynamoDB" / FIRST_INCREMENTAL_ID
    index = _nonempty_index(export_dir)
    entry = read_manifest_files(export_dir)[index]
    lines = gzip.decompress((tampered / entry.data_file_s3_key).read_bytes()).decode().splitlines()
    replace_data_file(tampered, export_dir, index, gzip_lines(lines[:-1]))
    _verify_fails(tampered, FIRST_INCREMENTAL_ID, entry.data_file_s3_key, "holds 2 lines", "itemCount 3")


@pytest.mark.parametrize(
    ("bad_line", "problem"),
    [
        ('{"Item":{"pk":{"S":"1"},"sk":{"S":"9"}', "is not valid JSON"),
        ('{"Item":{"pk":{"S":"1"},"n":{"N":"1.2.3"}}}', "Item.n: N value '1.2.3' is not a number"),
        ('{"Item":{"pk":{"S":"1"}},"Extra":{}}', "a full export line holds only 'Item'"),
        ('["Item"]', "is not a JSON object"),
        ("", "is not valid JSON"),
    ],
)
def test_malformed_line_is_never_dropped(tampered: Path, bad_line: str, problem: str) -> None:
    export_dir = tampered / "AWSDynamoDB" / FULL_ID
    index = _nonempty_index(export_dir)
    entry = read_manifest_files(export_dir)[index]
    lines = gzip.decompress((tampered / entry.data_file_s3_key).read_bytes()).decode().splitlines()
    replace_data_file(tampered, export_dir, index, gzip_lines([lines[0], bad_line, lines[2]]))
    error = _verify_fails(tampered, FULL_ID, entry.data_file_s3_key, "line 2", problem)
    assert error.line == 2


def test_incremental_line_without_timestamp(tampered: Path) -> None:
    export_dir = tampered / "AWSDynamoDB" / FIRST_INCREMENTAL_ID
    index = _nonempty_index(export_dir)
    bad = '{"Metadata":{},"Keys":{"pk":{"S":"9"},"sk":{"S":"9"}},"NewImage":{"pk":{"S":"9"},"sk":{"S":"9"}}}'
    replace_data_file(tampered, export_dir, index, gzip_lines([bad]), item_count=1)
    entries = read_manifest_files(export_dir)
    edit_summary(export_dir, itemCount=sum(e.item_count for e in entries))
    _verify_fails(tampered, FIRST_INCREMENTAL_ID, "line 1", "WriteTimestampMicros")


def test_image_that_contradicts_keys(tampered: Path) -> None:
    export_dir = tampered / "AWSDynamoDB" / FIRST_INCREMENTAL_ID
    index = _nonempty_index(export_dir)
    bad = (
        '{"Metadata":{"WriteTimestampMicros":{"N":"1768386096366933"}},"Keys":{"pk":{"S":"2"},"sk":{"S":"1"}},'
        '"NewImage":{"pk":{"S":"2"},"sk":{"S":"other"}}}'
    )
    replace_data_file(tampered, export_dir, index, gzip_lines([bad]), item_count=1)
    edit_summary(export_dir, itemCount=sum(e.item_count for e in read_manifest_files(export_dir)))
    _verify_fails(tampered, FIRST_INCREMENTAL_ID, "NewImage disagrees with Keys")


def test_missing_data_file(tampered: Path) -> None:
    entry = read_manifest_files(tampered / "AWSDynamoDB" / SECOND_INCREMENTAL_ID)[2]
    (tampered / entry.data_file_s3_key).unlink()
    _verify_fails(tampered, SECOND_INCREMENTAL_ID, entry.data_file_s3_key, "missing")


def test_truncated_gzip(tampered: Path) -> None:
    export_dir = tampered / "AWSDynamoDB" / FULL_ID
    index = _nonempty_index(export_dir)
    entry = read_manifest_files(export_dir)[index]
    data = (tampered / entry.data_file_s3_key).read_bytes()
    replace_data_file(tampered, export_dir, index, data[: len(data) - 12])
    _verify_fails(tampered, FULL_ID, entry.data_file_s3_key, "truncated or corrupt gzip")


def test_not_gzip_at_all(tampered: Path) -> None:
    export_dir = tampered / "AWSDynamoDB" / FULL_ID
    index = _nonempty_index(export_dir)
    replace_data_file(tampered, export_dir, index, b'{"Item":{"pk":{"S":"1"}}}\n')
    _verify_fails(tampered, FULL_ID, "not a valid gzip file")


def test_summary_total_disagrees_with_files(tampered: Path) -> None:
    export_dir = tampered / "AWSDynamoDB" / FULL_ID
    edit_summary(export_dir, itemCount=4)
    with pytest.raises(ExportError, match=re.escape("hold 3 items in all but manifest-summary.json says itemCount 4")):
        _load(tampered, FULL_ID)


def test_manifest_files_checksum_mismatch(tampered: Path) -> None:
    export_dir = tampered / "AWSDynamoDB" / FULL_ID
    path = export_dir / "manifest-files.json"
    path.write_text(path.read_text().replace('"itemCount":3', '"itemCount":2'))
    with pytest.raises(ExportError, match=r"manifest-files.json: does not match manifest-files.md5"):
        _load(tampered, FULL_ID)


def test_missing_manifest_files(tampered: Path) -> None:
    (tampered / "AWSDynamoDB" / FULL_ID / "manifest-files.json").unlink()
    with pytest.raises(ExportError, match=f"export {FULL_ID}, file .*manifest-files.json: is missing"):
        _load(tampered, FULL_ID)


def test_ion_exports_are_refused_not_misread(tampered: Path) -> None:
    export_dir = tampered / "AWSDynamoDB" / FULL_ID
    edit_summary(export_dir, outputFormat="ION")
    _verify_fails(tampered, FULL_ID, "outputFormat ION is not supported", "DYNAMODB_JSON")


def test_manifest_lists_a_file_twice(tampered: Path) -> None:
    export_dir = tampered / "AWSDynamoDB" / FULL_ID
    entries = read_manifest_files(export_dir)
    write_manifest_files(export_dir, [*entries, entries[0]])
    with pytest.raises(ExportError, match="lists a data file more than once"):
        _load(tampered, FULL_ID)


def test_data_key_outside_the_exports_folder(tampered: Path) -> None:
    export_dir = tampered / "AWSDynamoDB" / FULL_ID
    entries = read_manifest_files(export_dir)
    entries[0] = type(entries[0])(0, entries[0].md5_checksum, entries[0].etag, "../../etc/passwd.json.gz")
    write_manifest_files(export_dir, entries)
    _verify_fails(tampered, FULL_ID, "does not lie under AWSDynamoDB/")


def test_airline_manifests_resolve_keys_through_the_prefix(airline_source: Path) -> None:
    export = _load(airline_source, "01693467621041-039fcf72")
    assert export.summary.item_count == 59_871 == sum(e.item_count for e in export.data_files)
    path = export.data_file_path(export.data_files[0])
    assert (
        path
        == f"{airline_source.as_posix()}/AWSDynamoDB/01693467621041-039fcf72/data/jhg6wb6v7u6dxdgwnn4c55ciq4.json.gz"
    )
    # Its data files were not published: verification says which one is missing, it does not skip it.
    with pytest.raises(
        ExportError, match=re.escape("jhg6wb6v7u6dxdgwnn4c55ciq4.json.gz: is listed in manifest-files.json but missing")
    ):
        export.verify()


def test_airline_sample_line_parses(airline_source: Path) -> None:
    sample = next(airline_source.glob("AWSDynamoDB/*/data/ONE_LINE_FROM_SOME_DATA_FILE.json"))
    item = json.loads(sample.read_text())["Item"]
    decoded = decode_item(item)
    assert decoded["Passenger ID"] == Decimal(49010)
    assert decoded["First Name"] == "Isak"


# What a data line can hold that DynamoDB never writes: each is refused naming export, file and line.

FIRST_WINDOW_START, FIRST_WINDOW_END = 1768386000000000, 1768386900000000  # 10:20:00Z, 10:35:00Z


def _change_line(timestamp: object, keys: str = '{"pk":{"S":"9"},"sk":{"S":"9"}}', image: str | None = None) -> str:
    new_image = image if image is not None else keys
    return f'{{"Metadata":{{"WriteTimestampMicros":{{"N":"{timestamp}"}}}},"Keys":{keys},"NewImage":{new_image}}}'


def _with_first_incremental_lines(tampered: Path, lines: list[str]) -> None:
    export_dir = tampered / "AWSDynamoDB" / FIRST_INCREMENTAL_ID
    index = _nonempty_index(export_dir)
    replace_data_file(tampered, export_dir, index, gzip_lines(lines), item_count=len(lines))
    edit_summary(export_dir, itemCount=sum(e.item_count for e in read_manifest_files(export_dir)))


@pytest.mark.parametrize(
    ("timestamp", "problem"),
    [
        (FIRST_WINDOW_END, f"WriteTimestampMicros {FIRST_WINDOW_END}, outside the export's window"),
        (FIRST_WINDOW_START - 1, "outside the export's window [2026-01-14T10:20:00.000Z, 2026-01-14T10:35:00.000Z)"),
        (4102444800000000, "outside the export's window"),  # 2100: would block every later update of the item
        ("9" * 40, "outside the export's window"),  # beyond any timestamp: not an OverflowError
        ("١٢٣", "lacks Metadata.WriteTimestampMicros as an integer N value"),  # digits, but not ASCII ones
        ("-5", "lacks Metadata.WriteTimestampMicros"),
    ],
)
def test_a_change_must_be_written_inside_its_window(tampered: Path, timestamp: object, problem: str) -> None:
    inside = _change_line(FIRST_WINDOW_START, '{"pk":{"S":"8"},"sk":{"S":"8"}}')
    _with_first_incremental_lines(tampered, [inside, _change_line(timestamp)])
    error = _verify_fails(tampered, FIRST_INCREMENTAL_ID, problem)
    assert error.line == 2 and error.file is not None and error.file.endswith(".json.gz")


def test_the_window_bounds_are_inclusive_then_exclusive(tampered: Path) -> None:
    _with_first_incremental_lines(tampered, [_change_line(FIRST_WINDOW_START), _change_line(FIRST_WINDOW_END - 1)])
    assert _load(tampered, FIRST_INCREMENTAL_ID).verify() == 5  # 3 lines of the other file, these 2


@pytest.mark.parametrize(
    ("keys", "problem"),
    [
        ('{"pk":{"M":{"a":{"S":"1"}}},"sk":{"S":"9"}}', "Keys.pk is a M (map) value; key attributes hold S, N or B"),
        ('{"pk":{"L":[]},"sk":{"S":"9"}}', "Keys.pk is a L (list) value"),
        ('{"pk":{"SS":["a"]},"sk":{"S":"9"}}', "Keys.pk is a set (SS, NS or BS) value"),
        ('{"pk":{"S":""},"sk":{"S":"9"}}', "Keys.pk is an empty string; DynamoDB keys are never empty"),
        ('{"pk":{"S":"9"},"sk":{"B":""}}', "Keys.sk is an empty binary"),
        ('{"pk":{"NULL":true},"sk":{"S":"9"}}', "Keys.pk is a NULL value"),
    ],
)
def test_key_values_must_be_non_empty_scalars(tampered: Path, keys: str, problem: str) -> None:
    _with_first_incremental_lines(tampered, [_change_line(FIRST_WINDOW_START, keys)])
    _verify_fails(tampered, FIRST_INCREMENTAL_ID, "line 1", problem)


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (_change_line(FIRST_WINDOW_START, image='{"pk":{"S":"9"},"sk":{"S":"9"},"s":{"S":"\\udc80"}}'),
         "not valid Unicode (a lone surrogate \\udc80)"),
        (_change_line(FIRST_WINDOW_START, image='{"pk":{"S":"9"},"sk":{"S":"9"},"\\ud800":{"S":"x"}}'),
         "lone surrogate \\ud800"),
        ('{"Item":' * 3000, "nested too deeply"),
        (_change_line(FIRST_WINDOW_START, image='{"pk":{"S":"9"},"sk":{"S":"9"},"m":' + '{"L":[' * 40
         + '{"S":"x"}' + "]}" * 40 + "}"), "nest deeper than DynamoDB's 32 levels"),
    ],
)  # fmt: skip
def test_lines_no_dynamodb_table_holds_are_refused(tampered: Path, line: str, problem: str) -> None:
    _with_first_incremental_lines(tampered, [line])
    _verify_fails(tampered, FIRST_INCREMENTAL_ID, "line 1", problem)


def test_a_surrogate_pair_is_a_character_not_an_error(tampered: Path) -> None:
    emoji = _change_line(FIRST_WINDOW_START, image='{"pk":{"S":"9"},"sk":{"S":"9"},"s":{"S":"\\ud83d\\ude00"}}')
    _with_first_incremental_lines(tampered, [emoji])
    (record,) = [r for r in _load(tampered, FIRST_INCREMENTAL_ID).records() if isinstance(r, ChangeRecord)][:1]
    assert record.new_image is not None and record.new_image["s"] == "\N{GRINNING FACE}"


def test_bytes_that_are_not_utf8_are_refused(tampered: Path) -> None:
    export_dir = tampered / "AWSDynamoDB" / FULL_ID
    index = _nonempty_index(export_dir)
    bad = b'{"Item":{"pk":{"S":"1"},"sk":{"S":"\xed\xa0\x80"}}}\n'  # a surrogate encoded as UTF-8 bytes
    replace_data_file(tampered, export_dir, index, gzip.compress(bad), item_count=1)
    edit_summary(export_dir, itemCount=1)
    _verify_fails(tampered, FULL_ID, "line 1", "is not valid UTF-8")


def test_a_data_file_is_described_by_value_and_read_anywhere(test_table_source: Path) -> None:
    export = _load(test_table_source, SECOND_INCREMENTAL_ID)
    described = [pickle.loads(pickle.dumps(export.data_file(entry))) for entry in export.data_files]
    records = [record for data_file in described for record in read_data_file(data_file)]
    assert records == list(export.records()) and len(records) == 5
    assert described[0].key == export.data_files[0].data_file_s3_key


def _write_full_export_lines(tampered: Path, lines: list[str]) -> None:
    """The full export's first non-empty data file replaced by these lines, the manifests made to agree."""
    export_dir = tampered / "AWSDynamoDB" / FULL_ID
    data = "\n".join(lines).encode() + b"\n"
    replace_data_file(tampered, export_dir, _nonempty_index(export_dir), gzip.compress(data), item_count=len(lines))
    edit_summary(export_dir, itemCount=len(lines))


def test_an_item_is_read_however_its_line_is_written(tampered: Path) -> None:
    lines = [
        '{"Item":{"pk":{"S":"1"},"sk":{"S":"1"}}}',
        ' { "Item" : {"pk":{"S":"1"},"sk":{"S":"2"}} } ',
        '{"Item":{"pk":{"S":"1"},"sk":{"S":"3"},"Item":{"S":"an attribute named Item"}}}',
        '{"\\u0049tem":{"pk":{"S":"1"},"sk":{"S":"4"}}}',
        '{"Item":{"pk":{"S":"1"},"sk":{"S":"6"},"q":{"S":"say \\"hi\\" \\u00e9 \\u2028"}}}',
    ]
    _write_full_export_lines(tampered, lines)
    records = [r for r in _load(tampered, FULL_ID).records() if isinstance(r, FullExportItem)]
    assert [r.item["sk"] for r in records] == ["1", "2", "3", "4", "6"]
    assert records[2].item["Item"] == "an attribute named Item"
    assert records[4].item["q"] == 'say "hi" \N{LATIN SMALL LETTER E WITH ACUTE} \u2028'


def test_a_member_named_twice_is_refused_at_its_line(tampered: Path) -> None:
    # DynamoDB never writes one; Python's JSON would keep the last, silently.
    lines = [
        '{"Item":{"pk":{"S":"1"},"sk":{"S":"1"}}}',
        '{"Item":{"pk":{"S":"0"},"sk":{"S":"0"}},"Item":{"pk":{"S":"1"},"sk":{"S":"5"}}}',
    ]
    _write_full_export_lines(tampered, lines)
    _verify_fails(tampered, FULL_ID, "line 2", "is not DynamoDB JSON", "Item) was specified twice")
