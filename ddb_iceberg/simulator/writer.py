"""Writes a simulated table's exports exactly as DynamoDB lays them out in S3.

Same folders and file names, manifest fields in AWS's order, compacted incremental lines, empty 20-byte
gzip files for quiet partitions, and `_started` first and manifest-summary.json last, as an export in
progress looks to a reader that lists the prefix.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyarrow.fs as pafs

from ddb_iceberg.exports.manifest import (
    DataFileEntry,
    ExportType,
    ExportView,
    ManifestSummary,
    OutputFormat,
    check_window_length,
    md5_base64,
    single_part_etag,
    to_micros,
)
from ddb_iceberg.exports.reader import FILES_MD5_FILE, STARTED_MARKER, SUMMARY_FILE, SUMMARY_MD5_FILE
from ddb_iceberg.exports.source import EXPORTS_FOLDER, ExportSource
from ddb_iceberg.exports.typed_values import TypedItem, encode_item, encode_value
from ddb_iceberg.simulator.workload import Key, SimulatedTable

# DynamoDB bills every incremental export for at least 10 MB.
MIN_INCREMENTAL_BILLED_BYTES = 10_000_000
# Exactly what DynamoDB writes for a partition with nothing in it.
EMPTY_GZIP = bytes.fromhex("1f8b08000000000000ff03000000000000000000")
_GZIP_HEADER = bytes.fromhex("1f8b08000000000000ff")


@dataclass(frozen=True)
class ExportTarget:
    """Where simulated exports go: a source (local directory or S3 prefix) and the bucket/prefix they name."""

    source: ExportSource
    s3_bucket: str
    s3_prefix: str | None = None
    partitions: int = 4

    @classmethod
    def for_source(cls, source: ExportSource, *, partitions: int = 4) -> ExportTarget:
        """Bucket and prefix from an S3 source; a local directory stands for bucket `simulated-exports`."""
        if isinstance(source.filesystem, pafs.S3FileSystem):
            bucket, _, prefix = source.root.partition("/")
            return cls(source, bucket, prefix or None, partitions)
        return cls(source, "simulated-exports", None, partitions)

    def key(self, relative: str) -> str:
        """A key from the bucket root, as manifests name files."""
        return f"{self.s3_prefix.strip('/')}/{relative}" if self.s3_prefix else relative

    def write(self, relative: str, data: bytes) -> None:
        path = f"{self.source.root}/{relative}"
        if not isinstance(self.source.filesystem, pafs.S3FileSystem):
            # On S3 DynamoDB writes no "folder" objects (pyarrow's create_dir would write empty `<folder>/` keys).
            self.source.filesystem.create_dir(path.rsplit("/", 1)[0], recursive=True)
        with self.source.filesystem.open_output_stream(path, compression=None) as stream:
            stream.write(data)


def gzip_bytes(data: bytes) -> bytes:
    """Gzip as DynamoDB does: no name, no mtime, OS byte 255."""
    if not data:
        return EMPTY_GZIP
    deflater = zlib.compressobj(6, zlib.DEFLATED, -15)
    body = deflater.compress(data) + deflater.flush()
    return _GZIP_HEADER + body + struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)


def write_full_export(table: SimulatedTable, target: ExportTarget, export_time: datetime) -> ManifestSummary:
    """Export the table as of `export_time` (millisecond precision, as DynamoDB's)."""
    export_time = _truncate_to_millis(export_time)
    state = table.state_at(export_time)
    lines = {key: _json_line({"Item": encode_item(item)}) for key, item in state.items()}
    rng = random.Random(f"{table.config.seed}:full:{to_micros(export_time)}")
    start_time = export_time
    end_time = start_time + timedelta(minutes=5, milliseconds=rng.randrange(60_000))
    export_id = _export_id(start_time, rng)
    return _write_export(
        target,
        table,
        export_id,
        lines,
        rng,
        export_type=ExportType.FULL,
        start_time=start_time,
        end_time=end_time,
        export_time=export_time,
        data_folder=f"{EXPORTS_FOLDER}/{export_id}/data",
        billed_size_bytes=sum(len(line) for line in lines.values()),
    )


def write_incremental_export(
    table: SimulatedTable,
    target: ExportTarget,
    export_from_time: datetime,
    export_to_time: datetime,
    view: ExportView = ExportView.NEW_AND_OLD_IMAGES,
) -> ManifestSummary:
    """Export the changes in [export_from_time, export_to_time), compacted to one line per changed item."""
    export_from_time = _truncate_to_millis(export_from_time)
    export_to_time = _truncate_to_millis(export_to_time)
    check_window_length(export_to_time - export_from_time)
    before = table.state_at(export_from_time)
    last_writes: dict[Key, tuple[int, TypedItem | None]] = {}
    for event in table.events_between(export_from_time, export_to_time):
        last_writes[event.key] = (
            event.timestamp_micros,
            None if event.item is None else encode_item(event.item),
        )
    lines: dict[Key, bytes] = {}
    for key, (timestamp, new_image) in last_writes.items():
        old_item = before.get(key)
        if old_item is None and new_image is None:
            continue  # created and deleted inside the window: DynamoDB writes nothing for it
        record: dict[str, object] = {
            "Metadata": {"WriteTimestampMicros": {"N": str(timestamp)}},
            "Keys": {name: encode_value(value) for name, value in zip(table.key_attributes, key, strict=True)},
        }
        if old_item is not None and view is ExportView.NEW_AND_OLD_IMAGES:
            record["OldImage"] = _sorted_attributes(encode_item(old_item))
        if new_image is not None:
            record["NewImage"] = _sorted_attributes(new_image)
        lines[key] = _json_line(record)
    rng = random.Random(f"{table.config.seed}:incremental:{to_micros(export_from_time)}:{to_micros(export_to_time)}")
    start_time = export_to_time + timedelta(seconds=rng.randrange(10, 120))
    end_time = start_time + timedelta(minutes=5, milliseconds=rng.randrange(60_000))
    export_id = _export_id(start_time, rng)
    payload_bytes = sum(len(line) for line in lines.values())
    return _write_export(
        target,
        table,
        export_id,
        lines,
        rng,
        export_type=ExportType.INCREMENTAL,
        start_time=start_time,
        end_time=end_time,
        export_from_time=export_from_time,
        export_to_time=export_to_time,
        output_view=view,
        data_folder=f"{EXPORTS_FOLDER}/data",
        billed_size_bytes=max(MIN_INCREMENTAL_BILLED_BYTES, payload_bytes),
    )


def _write_export(
    target: ExportTarget,
    table: SimulatedTable,
    export_id: str,
    lines: dict[Key, bytes],
    rng: random.Random,
    *,
    data_folder: str,
    **summary_fields: object,
) -> ManifestSummary:
    # Items land in the file of their table partition; a partition with nothing in it still gets a file.
    partitions: list[list[bytes]] = [[] for _ in range(target.partitions)]
    for key in sorted(lines, key=_stable_hash):
        partitions[_stable_hash(key) % target.partitions].append(lines[key])
    return write_export(
        target,
        export_id,
        partitions,
        rng,
        table_arn=table.config.table_arn,
        table_id=_table_id(table),
        data_folder=data_folder,
        **summary_fields,
    )


def write_export(
    target: ExportTarget,
    export_id: str,
    partitions: Iterable[Iterable[bytes]],
    rng: random.Random,
    *,
    table_arn: str,
    table_id: str,
    data_folder: str,
    **summary_fields: object,
) -> ManifestSummary:
    """Write one export: a data file per partition (its lines streamed through gzip, never all in memory),
    then the manifests, in the order DynamoDB writes them."""
    return write_gzipped_export(
        target,
        export_id,
        map(gzip_lines, partitions),
        rng,
        table_arn=table_arn,
        table_id=table_id,
        data_folder=data_folder,
        **summary_fields,
    )


def write_gzipped_export(
    target: ExportTarget,
    export_id: str,
    data_files: Iterable[tuple[bytes, int]],
    rng: random.Random,
    *,
    table_arn: str,
    table_id: str,
    data_folder: str,
    **summary_fields: object,
) -> ManifestSummary:
    """`write_export` for data files gzipped already (`gzip_lines`: the bytes and their number of lines), which a
    caller may have made in other processes."""
    export_folder = f"{EXPORTS_FOLDER}/{export_id}"
    target.write(f"{export_folder}/{STARTED_MARKER}", b"")
    entries: list[DataFileEntry] = []
    for data, count in data_files:
        relative = f"{data_folder}/{_data_file_name(rng)}.json.gz"
        target.write(relative, data)
        entries.append(DataFileEntry(count, md5_base64(data), single_part_etag(data), target.key(relative)))
    rng.shuffle(entries)  # manifest-files.json lists files in no particular order
    files_bytes = "".join(entry.to_json_line() for entry in entries).encode("utf-8")
    files_relative = f"{export_folder}/manifest-files.json"
    target.write(files_relative, files_bytes)
    target.write(f"{export_folder}/{FILES_MD5_FILE}", md5_base64(files_bytes).encode("ascii"))
    summary = ManifestSummary(
        export_arn=f"{table_arn}/export/{export_id}",
        table_arn=table_arn,
        table_id=table_id,
        s3_bucket=target.s3_bucket,
        s3_prefix=target.s3_prefix,
        s3_sse_algorithm="AES256",
        s3_sse_kms_key_id=None,
        manifest_files_s3_key=target.key(files_relative),
        item_count=sum(entry.item_count for entry in entries),
        output_format=OutputFormat.DYNAMODB_JSON.value,
        **summary_fields,  # type: ignore[arg-type]
    )
    summary_bytes = summary.to_json().encode("utf-8")
    target.write(f"{export_folder}/{SUMMARY_FILE}", summary_bytes)
    target.write(f"{export_folder}/{SUMMARY_MD5_FILE}", md5_base64(summary_bytes).encode("ascii"))
    return summary


def gzip_lines(lines: Iterable[bytes]) -> tuple[bytes, int]:
    """Gzip as DynamoDB does (see gzip_bytes), line by line; returns the bytes and the number of lines."""
    deflater = zlib.compressobj(6, zlib.DEFLATED, -15)
    body, crc, size, count = [], 0, 0, 0
    for line in lines:
        body.append(deflater.compress(line))
        crc, size, count = zlib.crc32(line, crc), size + len(line), count + 1
    if not count:
        return EMPTY_GZIP, 0
    body.append(deflater.flush())
    return _GZIP_HEADER + b"".join(body) + struct.pack("<II", crc, size & 0xFFFFFFFF), count


def _json_line(record: dict[str, object]) -> bytes:
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n"


def _sorted_attributes(item: TypedItem) -> TypedItem:
    # Incremental exports list an image's attributes by name, as the real fixtures show.
    return dict(sorted(item.items()))


def _stable_hash(key: Key) -> int:
    return int.from_bytes(hashlib.sha256(repr(key).encode("utf-8")).digest()[:8], "big")


def _data_file_name(rng: random.Random) -> str:
    return base64.b32encode(rng.randbytes(16)).decode("ascii").rstrip("=").lower()


def _export_id(start_time: datetime, rng: random.Random) -> str:
    return f"{to_micros(start_time) // 1000:014d}-{rng.randbytes(4).hex()}"


def _table_id(table: SimulatedTable) -> str:
    digest = hashlib.sha256(f"{table.config.seed}:{table.config.table_arn}".encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-4{digest[13:16]}-a{digest[17:20]}-{digest[20:32]}"


def _truncate_to_millis(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("export times must be timezone-aware (UTC)")
    moment = moment.astimezone(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)
