"""Helpers for tests: a moto server on loopback, tampering with copies of exports, a simulated table written window
by window, and its companions read back (the change feed by window, the item history as of a time)."""

from __future__ import annotations

import itertools
import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from pyspark.sql import SparkSession

from ddb_iceberg.engine.change_feed import BEFORE_COLUMN, OPERATION_COLUMN, WINDOW_END_COLUMN
from ddb_iceberg.engine.request import SyncRequest, feed_identifier, history_identifier
from ddb_iceberg.engine.rows import canonical_item, item_reader
from ddb_iceberg.engine.spark_session import CatalogSettings, SparkSettings, configure_catalog
from ddb_iceberg.engine.spark_table import SparkIcebergTable
from ddb_iceberg.engine.sync import SyncResult, sync_table
from ddb_iceberg.exports import ExportSource
from ddb_iceberg.exports.manifest import DataFileEntry, ExportView, md5_base64, single_part_etag
from ddb_iceberg.exports.source import S3Options
from ddb_iceberg.loopback_aws import LoopbackAws
from ddb_iceberg.loopback_aws.dynamodb_rules import ListExportsNewestFirst
from ddb_iceberg.loopback_aws.glue_rules import GlueTableLimits
from ddb_iceberg.loopback_aws.s3_rules import MissingKeyIsAccessDenied
from ddb_iceberg.simulator import (
    ExportTarget,
    SimulatedTable,
    SimulationConfig,
    write_full_export,
    write_incremental_export,
)
from ddb_iceberg.simulator.writer import gzip_bytes

HOUR = timedelta(hours=1)
MOTO_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
MOTO_REGION = "us-east-1"


@dataclass
class MotoServer:
    """A running moto server with AWS's rules (`ddb_iceberg.loopback_aws`): its endpoint, the requests it received,
    and clients and S3 options pointed at it."""

    server: LoopbackAws
    endpoint_url: str
    # Buckets whose callers may not list them: a missing key is answered 403, as S3 does (see the rule).
    buckets_without_list_permission: MissingKeyIsAccessDenied

    def client(self, service: str) -> Any:
        return boto3.client(  # type: ignore[call-overload]
            service, endpoint_url=self.endpoint_url, region_name=MOTO_REGION, **MOTO_CREDENTIALS
        )

    @property
    def s3_options(self) -> S3Options:
        return S3Options(
            region=MOTO_REGION,
            endpoint_url=self.endpoint_url,
            access_key=MOTO_CREDENTIALS["aws_access_key_id"],
            secret_key=MOTO_CREDENTIALS["aws_secret_access_key"],
        )

    def upload_tree(self, local_root: Path, bucket: str, prefix: str = "") -> None:
        s3 = self.client("s3")
        for path in sorted(p for p in local_root.rglob("*") if p.is_file()):
            key = "/".join(filter(None, [prefix.strip("/"), path.relative_to(local_root).as_posix()]))
            s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())

    def source_without_list_permission(self, local_root: Path, bucket: str, prefix: str = "") -> ExportSource:
        """`local_root` uploaded to a new bucket whose caller may not list it (S3 answers a missing key 403), as
        an export source."""
        self.client("s3").create_bucket(Bucket=bucket)
        self.upload_tree(local_root, bucket, prefix)
        self.buckets_without_list_permission.buckets.add(bucket)
        return ExportSource.from_uri(f"s3://{bucket}/{prefix}".rstrip("/"), self.s3_options)

    def stop(self) -> None:
        self.server.stop()


def start_moto_server() -> MotoServer:
    no_list = MissingKeyIsAccessDenied()
    # Every Glue table a test writes, through boto3 or Iceberg's GlueCatalog in Spark, is held to Glue's limits.
    server = LoopbackAws(rules=[no_list, ListExportsNewestFirst(), GlueTableLimits()]).start()
    return MotoServer(server, server.endpoint_url, no_list)


def copy_tree(source: Path, destination: Path) -> Path:
    """A writable copy of a read-only fixture tree."""
    shutil.copytree(source, destination)
    for path in destination.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    destination.chmod(0o755)
    return destination


def add_incomplete_export(root: Path, export_id: str) -> Path:
    """An export folder with only `_started`: an export still running, or one that FAILED (its folder stays)."""
    folder = root / "AWSDynamoDB" / export_id
    folder.mkdir()
    (folder / "_started").write_bytes(b"")
    return folder


def read_manifest_files(export_dir: Path) -> list[DataFileEntry]:
    return [
        DataFileEntry.from_json_line(line, export="test", file="manifest-files.json", line_number=n)
        for n, line in enumerate((export_dir / "manifest-files.json").read_text().splitlines(), start=1)
    ]


def write_manifest_files(export_dir: Path, entries: list[DataFileEntry]) -> None:
    """Rewrite manifest-files.json and its .md5 so that only the change under test is wrong."""
    data = "".join(entry.to_json_line() for entry in entries).encode()
    (export_dir / "manifest-files.json").write_bytes(data)
    (export_dir / "manifest-files.md5").write_bytes(md5_base64(data).encode())


def replace_data_file(
    source_root: Path, export_dir: Path, index: int, data: bytes, *, item_count: int | None = None
) -> DataFileEntry:
    """Put `data` in place of the export's `index`-th data file and make the manifest agree with its bytes
    (md5 and etag; itemCount only when given), so that the data itself is what a reader must catch."""
    entries = read_manifest_files(export_dir)
    entry = entries[index]
    (source_root / entry.data_file_s3_key).write_bytes(data)
    entries[index] = DataFileEntry(
        entry.item_count if item_count is None else item_count,
        md5_base64(data),
        single_part_etag(data),
        entry.data_file_s3_key,
    )
    write_manifest_files(export_dir, entries)
    return entries[index]


def gzip_lines(lines: list[str]) -> bytes:
    return gzip_bytes("".join(line + "\n" for line in lines).encode())


def edit_summary(export_dir: Path, **changes: Any) -> None:
    summary = json.loads((export_dir / "manifest-summary.json").read_text())
    summary.update(changes)
    (export_dir / "manifest-summary.json").write_text(json.dumps(summary, separators=(",", ":")))


def spark_submit_jars(packages: tuple[str, ...]) -> list[str]:
    """spark-submit's options for `packages`: their files in Ivy's cache when all are there (as local sessions use
    them: no resolution at every start), else the packages, to resolve."""
    files = SparkSettings(packages=packages).jar_files()
    return ["--jars", ",".join(files)] if files else ["--packages", ",".join(packages)]


_catalog_counter = itertools.count()


@dataclass
class LocalWarehouse:
    """A local warehouse registered under a catalog name of its own in a shared Spark session."""

    spark: SparkSession
    path: Path
    catalog: str

    @classmethod
    def register(cls, spark: SparkSession, path: Path) -> LocalWarehouse:
        # Spark instantiates a catalog once per name, so each warehouse gets a name of its own (PyIceberg reads
        # it under the same name: the SQLite catalog keys its rows by catalog name).
        settings = CatalogSettings(warehouse=str(path), name=f"test_catalog_{next(_catalog_counter)}")
        configure_catalog(spark, settings)
        return cls(spark, path, settings.name)

    def table(self, identifier: str = "dynamodb.orders") -> SparkIcebergTable:
        return SparkIcebergTable(self.spark, self.catalog, identifier)

    def sync(
        self, source: Path | str | ExportSource, identifier: str = "dynamodb.orders", **options: Any
    ) -> SyncResult:
        """`options` are SyncRequest's fields; a `log` goes to the sync."""
        log = options.pop("log", lambda _message: None)
        if isinstance(source, ExportSource):
            s3 = source.s3
            if s3 is not None:
                options |= {"s3_region": s3.region, "s3_endpoint_url": s3.endpoint_url}
            source = source.uri
        if options.get("key_attributes") is not None:
            options["key_attributes"] = tuple(options["key_attributes"])
        else:
            options.pop("key_attributes", None)
        request = SyncRequest(table=identifier, source=str(source), **options)
        return sync_table(self.spark, self.catalog, request, log=log)

    def items(self, identifier: str = "dynamodb.orders", version: str | int | None = None) -> dict[Any, Any]:
        table = self.table(identifier)
        layout = table.layout()
        assert layout is not None
        return table.items(layout, version)

    def files(self) -> set[str]:
        return {p.relative_to(self.path).as_posix() for p in self.path.rglob("*") if p.is_file()}


class History:
    """A simulated table and its exports in one source, written window by window; its truth at any hour and each
    window's changes."""

    def __init__(
        self,
        root: Path,
        seed: int,
        items: int = 150,
        writes_per_hour: int = 400,
        *,
        type_drift: bool = False,
        view: ExportView = ExportView.NEW_AND_OLD_IMAGES,
    ) -> None:
        config = SimulationConfig(
            seed=seed, initial_items=items, writes_per_hour=writes_per_hour, type_drift=type_drift
        )
        self.table = SimulatedTable(config)
        self.start = self.table.config.start
        self.source = root / "exports"
        self.target = ExportTarget.for_source(ExportSource.from_uri(str(self.source)))
        self.view = view
        write_full_export(self.table, self.target, self.start)
        self.windows = 0

    def add_windows(self, count: int) -> None:
        for _ in range(count):
            window_start = self.start + self.windows * HOUR
            write_incremental_export(self.table, self.target, window_start, window_start + HOUR, view=self.view)
            self.windows += 1

    def time(self, hours: int) -> datetime:
        return self.start + hours * HOUR

    def truth(self, hours: int) -> dict[Any, Any]:
        return {key: canonical_item(item) for key, item in self.table.state_at(self.time(hours)).items()}

    def changes(self, hours: int) -> WindowChanges:
        """Window `hours - 1`'s changes as the difference of the table's states at its two ends: for each key its
        operation, and the item before and after."""
        before, after = self.truth(hours - 1), self.truth(hours)
        changes: WindowChanges = {}
        for key in before.keys() | after.keys():
            old, new = before.get(key), after.get(key)
            if old != new:
                operation = "insert" if old is None else "delete" if new is None else "update"
                changes[key] = (operation, old, new)
        return changes


Key = tuple[Any, ...]
# What the change feed says of one window: for each key its operation, and the item before and after.
WindowChanges = dict[Key, tuple[str, dict[str, Any] | None, dict[str, Any] | None]]


def feed_by_window(warehouse: LocalWarehouse, table: str) -> dict[datetime, WindowChanges]:
    """The change feed's rows of `table`, by window end, as DynamoDB items (the write time aside)."""
    layout = warehouse.table(table).layout()
    assert layout is not None
    read = item_reader(layout)
    keys = [c.attribute for c in layout.key_columns]
    windows: dict[datetime, WindowChanges] = {}
    for row in warehouse.spark.table(f"{warehouse.catalog}.{feed_identifier(table)}").collect():
        cells = row.asDict(recursive=True)
        after = read(cells) if cells[OPERATION_COLUMN] != "delete" else None
        before = read(cells[BEFORE_COLUMN]) if cells[BEFORE_COLUMN] is not None else None
        key = tuple(read(cells)[k] for k in keys)
        window = windows.setdefault(cells[WINDOW_END_COLUMN].astimezone(UTC), {})
        assert key not in window, f"key {key} twice in the window ending {cells[WINDOW_END_COLUMN]}"
        window[key] = (cells[OPERATION_COLUMN], before, after)
    return windows


def history_as_of(warehouse: LocalWarehouse, table: str, moment: datetime) -> dict[Key, Any]:
    """The README's point-in-time query of `table`'s item history: the items as of `moment`, by key."""
    layout = warehouse.table(table).layout()
    assert layout is not None
    read = item_reader(layout)
    at = moment.strftime("%Y-%m-%d %H:%M:%S")
    rows = warehouse.spark.sql(
        f"""SELECT * FROM {warehouse.catalog}.{history_identifier(table)}
        WHERE _ddb_valid_from <= TIMESTAMP '{at}' AND (_ddb_valid_to IS NULL OR _ddb_valid_to > TIMESTAMP '{at}')"""
    ).collect()
    items: dict[Key, Any] = {}
    for row in rows:
        item = read(row.asDict(recursive=True))
        key = tuple(item[c.attribute] for c in layout.key_columns)
        assert key not in items, f"two versions of {key} valid at {moment}"
        items[key] = item
    return items


def last_plan(spark: SparkSession, *naming: str) -> str:
    """The physical plan (as the Spark UI's SQL tab shows it, adaptive execution's final plan included) of the
    session's last SQL execution whose plan names each of `naming`."""
    executions = spark._jsparkSession.sharedState().statusStore().executionsList()
    for index in reversed(range(executions.size())):
        plan = str(executions.apply(index).physicalPlanDescription())
        if all(name in plan for name in naming):
            return plan
    raise AssertionError(f"no execution's plan names {naming}")


def operators_between(plan: str, node: str, above: tuple[str, ...]) -> list[str]:
    """The operators of the plan's tree from the first one naming `node` up to (not including) its nearest ancestor
    whose name starts with one of `above` (a join, say)."""
    lines = [line for line in plan.split("\n\n")[0].splitlines() if not line.lstrip().startswith("==")]
    depth = [len(line) - len(line.lstrip(" :+-")) for line in lines]
    index = next(i for i, line in enumerate(lines) if node in line)
    operators: list[str] = []
    for i in range(index, -1, -1):
        if i != index and depth[i] >= depth[index]:
            continue
        name = lines[i].lstrip(" :+-*")
        if i != index and name.startswith(above):
            return operators
        operators.append(name)
        index = i
    raise AssertionError(f"no {above} above {node} in:\n{plan}")
