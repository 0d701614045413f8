"""Table upkeep: compaction, snapshot expiry and orphan-file removal, done so that the ledger and syncs survive it.

A table synced every 15 minutes takes 35,000 commits a year; each merge-on-read window adds delete files and
small data files. Upkeep, in order:
0. when the request names partition fields, the table partitioned anew by them (engine.repartition): the
   explicit way to change an existing table's partitioning wherever upkeep runs (a job on EMR Serverless too);
1. compaction of data files (sorted by the key), rewriting those with position deletes, and removal of the
   delete files no data file needs any more;
2. compaction of the remaining position delete files;
3. `ddb-` tags older than the tag retention dropped (never the tag of the snapshot the ledger names), then
   snapshots older than the snapshot retention expired (tags and branches keep theirs);
4. files no snapshot references, older than a safe age, removed (a sync still writing is never that old).
The table's companions (the change feed, the item history) get the same, their rows kept (`_maintain_companion`).

The ledger survives: it is in the table property `ddb-iceberg.ledger` and found through snapshot ancestry
(`ledger.find_ledger`). Upkeep and syncs commit optimistically: a sync that loses to upkeep plans again
(`spark_table.retried_on_conflict`), and a step of upkeep that loses to a sync runs again, the same way.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from dataclasses import fields as dataclass_fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from ddb_iceberg.engine.change_feed import ChangeFeed
from ddb_iceberg.engine.companion import CompanionTable
from ddb_iceberg.engine.item_history import ItemHistory
from ddb_iceberg.engine.ledger import UPKEEP_PROPERTY
from ddb_iceberg.engine.naming import quote
from ddb_iceberg.engine.repartition import repartition_table
from ddb_iceberg.engine.request import Log, UpkeepRequest, UpkeepSettings
from ddb_iceberg.engine.spark_session import apply_engine_settings
from ddb_iceberg.engine.spark_table import SparkIcebergTable, retried_on_conflict
from ddb_iceberg.engine.spark_types import sql_string
from ddb_iceberg.engine.sync import TAG_PREFIX, tag_name
from ddb_iceberg.errors import SyncError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

_T = TypeVar("_T")


@dataclass(frozen=True)
class FileStats:
    """The files of the table's current snapshot."""

    data_files: int = 0
    data_bytes: int = 0
    delete_files: int = 0
    delete_bytes: int = 0
    snapshots: int = 0


@dataclass
class UpkeepResult:
    """What upkeep did; printed by the CLI and reported as the maintenance asset's metadata."""

    table: str
    before: FileStats = field(default_factory=FileStats)
    after: FileStats = field(default_factory=FileStats)
    data_files_rewritten: int = 0
    data_files_added: int = 0
    delete_files_removed: int = 0
    snapshots_expired: int = 0
    tags_dropped: list[str] = field(default_factory=list)
    orphan_files_removed: int = 0
    # The companions' upkeep (when the table has them): their data files and snapshots before and after.
    change_feed: dict[str, int] = field(default_factory=dict)
    item_history: dict[str, int] = field(default_factory=dict)
    # A repartition the request asked for, done first (engine.repartition.RepartitionResult's fields).
    repartitioned: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    phase_seconds: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    # Added by the launcher: where the job ran and what it was billed (an EMR Serverless job run's id, billed
    # resource utilization and estimated cost; empty for a local run).
    job_run: dict[str, float | str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_dict(cls, fields: Mapping[str, Any]) -> UpkeepResult:
        """The result a job reported (as `asdict` made it); fields this version does not know are left out."""
        known = {f.name for f in dataclass_fields(cls)}
        values = {name: value for name, value in fields.items() if name in known}
        for name in ("before", "after"):
            if isinstance(values.get(name), dict):
                stats = {f.name for f in dataclass_fields(FileStats)}
                values[name] = FileStats(**{k: v for k, v in values[name].items() if k in stats})
        return cls(**values)

    def describe(self) -> str:
        before, after = self.before, self.after
        lines = [
            f"{self.table}: upkeep done in {self.seconds:.1f}s",
            f"  data files {before.data_files} -> {after.data_files} ({_mb(before.data_bytes)} -> "
            f"{_mb(after.data_bytes)}); delete files {before.delete_files} -> {after.delete_files}",
            f"  compaction rewrote {self.data_files_rewritten} data file(s) into {self.data_files_added}, removed "
            f"{self.delete_files_removed} delete file(s)",
            f"  snapshots {before.snapshots} -> {after.snapshots} ({self.snapshots_expired} expired); tags dropped: "
            f"{', '.join(self.tags_dropped) or 'none'}; orphan files removed: {self.orphan_files_removed}",
            "  time: " + ", ".join(f"{name} {seconds:.1f}s" for name, seconds in self.phase_seconds.items()),
        ]
        if self.repartitioned:
            done = self.repartitioned
            lines.insert(
                1,
                f"  partitioned by {done['after']} (before: {done['before']}); time columns added: "
                f"{', '.join(done['time_columns_added']) or 'none'}; rows given their time columns: "
                f"{done['rows_given_times']}",
            )
        for what, done in (("change feed", self.change_feed), ("item history", self.item_history)):
            if done:
                lines.insert(
                    -1,
                    f"  {what}: data files {done['data_files_before']} -> {done['data_files_after']}; snapshots "
                    f"{done['snapshots_before']} -> {done['snapshots_after']}; orphan files removed: "
                    f"{done['orphan_files_removed']}",
                )
        lines += [f"  warning: {warning}" for warning in self.warnings]
        return "\n".join(lines)


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def maintain_table(
    spark: SparkSession,
    catalog: str,
    request: UpkeepRequest,
    *,
    now: datetime | None = None,
    log: Log = lambda _message: None,
) -> UpkeepResult:
    """Compact the table, expire old snapshots and tags, and remove orphan files (module docstring).

    Retention counts back from `now` (default: the clock); the age of orphan files always from the clock.
    The request's id (the launcher's name for it) is kept with the result in the table property
    `ddb-iceberg.upkeep`, so that a launcher that lost the job's result can still read it (`upkeep_result_of`)."""
    started = time.monotonic()
    settings = request.settings
    now = now or datetime.now(UTC)
    apply_engine_settings(spark)
    table = SparkIcebergTable(spark, catalog, request.table)
    result = UpkeepResult(table=f"{table.namespace}.{table.name}")
    if not table.exists():
        raise SyncError(f"table {result.table} does not exist: nothing to maintain (a sync creates it)")
    table.refresh()
    if table.layout() is None:
        raise SyncError(f"table {result.table} was not created by ddb_iceberg: refusing to touch it")
    result.before = file_stats(table)
    procedure = _Procedures(table, log)

    def phase(name: str, step: Callable[[], _T]) -> _T:
        phase_started = time.monotonic()
        value = step()
        result.phase_seconds[name] = round(time.monotonic() - phase_started, 2)
        return value

    if request.partition_by:
        # First, so that the compaction below rewrites the files written before into the new spec.
        repartitioned = phase(
            "repartition", lambda: repartition_table(spark, catalog, request.table, request.partition_by, log=log)
        )
        result.repartitioned = asdict(repartitioned)

    if result.before.snapshots:
        log(f"Compacting the data files of {result.table} ...")
        compacted = phase("compact data files", lambda: procedure.rewrite_data_files(settings))
        result.data_files_rewritten = int(compacted.get("rewritten_data_files_count", 0) or 0)
        result.data_files_added = int(compacted.get("added_data_files_count", 0) or 0)
        result.delete_files_removed = int(compacted.get("removed_delete_files_count", 0) or 0)
        log("Compacting the position delete files ...")
        deletes = phase("compact delete files", lambda: procedure.rewrite_position_delete_files(settings))
        rewritten_deletes = int(deletes.get("rewritten_delete_files_count", 0) or 0)
        result.delete_files_removed += rewritten_deletes - int(deletes.get("added_delete_files_count", 0) or 0)
    log("Expiring old tags and snapshots ...")
    result.tags_dropped = phase("drop old tags", lambda: _drop_old_tags(table, now - settings.tag_retention))
    snapshots = table.snapshot_count()
    phase("expire snapshots", lambda: procedure.expire_snapshots(now - settings.snapshot_retention))
    log("Removing orphan files ...")
    result.orphan_files_removed = phase(
        "remove orphan files", lambda: table.remove_orphan_files(older_than=datetime.now(UTC) - settings.orphan_age)
    )
    result.after = file_stats(table)
    result.snapshots_expired = snapshots - result.after.snapshots
    feed = ChangeFeed(table)
    result.change_feed = phase("change feed", lambda: _maintain_companion(feed, settings, now, log))
    history = ItemHistory(table, feed)
    result.item_history = phase("item history", lambda: _maintain_companion(history, settings, now, log))
    if table.ledger() is None and result.after.snapshots:
        # Cannot happen while the ledger property is there; say so loudly rather than let a sync find out.
        result.warnings.append("the table has no ledger after upkeep: the next sync will refuse it (re-baseline)")
    result.seconds = round(time.monotonic() - started, 2)
    if request.request_id:
        table.set_property(UPKEEP_PROPERTY, json.dumps({REQUEST_KEY: request.request_id, RESULT_KEY: asdict(result)}))
    return result


REQUEST_KEY, RESULT_KEY = "request-id", "result"


def upkeep_result_of(table_property: str | None, request_id: str) -> UpkeepResult | None:
    """The result the upkeep that served `request_id` kept in the table property `ddb-iceberg.upkeep` (None when
    the latest upkeep served another request, or none has run)."""
    try:
        stored = json.loads(table_property or "{}")
    except ValueError:
        return None
    if not isinstance(stored, dict) or stored.get(REQUEST_KEY) != request_id:
        return None
    result = stored.get(RESULT_KEY)
    return UpkeepResult.from_dict(result) if isinstance(result, dict) and "table" in result else None


def file_stats(table: SparkIcebergTable) -> FileStats:
    """Data and delete files of the current snapshot (from the manifests: no data file is read)."""
    snapshots = table.snapshot_count()
    rows = table.spark.sql(
        f"SELECT content, count(*) AS files, sum(file_size_in_bytes) AS size FROM {table.full_name}.files "
        "GROUP BY content"
    ).collect()
    by_content = {int(row["content"]): (int(row["files"]), int(row["size"])) for row in rows}
    data = by_content.get(0, (0, 0))
    # 1: position deletes, 2: equality deletes (ddb_iceberg writes none, another writer might)
    deletes = [by_content.get(kind, (0, 0)) for kind in (1, 2)]
    return FileStats(
        data_files=data[0],
        data_bytes=data[1],
        delete_files=sum(files for files, _ in deletes),
        delete_bytes=sum(size for _, size in deletes),
        snapshots=snapshots,
    )


def _maintain_companion(companion: CompanionTable, settings: UpkeepSettings, now: datetime, log: Log) -> dict[str, int]:
    """A companion's upkeep, when the table has it: its files compacted (the change feed's small appended files
    bin-packed; the item history's sorted, those with deletes rewritten, as the table's), its snapshots older than
    the retention expired (its branches keep theirs: an unpublished branch waits for the next sync), its orphan
    files removed. Its rows stay: they are the table's history."""
    table = companion.table
    if not table.exists():
        return {}
    table.refresh()
    procedure = _Procedures(table, log)
    before = file_stats(table)
    log(f"Compacting the {companion.what} {companion.name}, expiring its old snapshots ...")
    if before.snapshots and isinstance(companion, ChangeFeed):
        procedure.compact_appends(settings)
    elif before.snapshots:
        procedure.rewrite_data_files(settings)
        procedure.rewrite_position_delete_files(settings)
    procedure.expire_snapshots(now - settings.snapshot_retention)
    orphans = table.remove_orphan_files(older_than=datetime.now(UTC) - settings.orphan_age)
    after = file_stats(table)
    return {
        "data_files_before": before.data_files,
        "data_files_after": after.data_files,
        "snapshots_before": before.snapshots,
        "snapshots_after": after.snapshots,
        "orphan_files_removed": orphans,
    }


def _drop_old_tags(table: SparkIcebergTable, before: datetime) -> list[str]:
    """Drop the `ddb-` tags of snapshots committed before `before`, except the tag of the ledger's snapshot."""
    ledger = table.ledger()
    keep = tag_name(ledger.reflects) if ledger is not None else None
    dropped = [t for t in table.tags_committed_before(before) if t.startswith(TAG_PREFIX) and t != keep]
    table.drop_tags(dropped)
    return dropped


class _Procedures:
    """Iceberg's Spark procedures on one table, each retried when a sync commits first."""

    def __init__(self, table: SparkIcebergTable, log: Log) -> None:
        self.table = table
        self.log = log
        self.name = sql_string(f"{table.namespace}.{table.name}")
        self.system = f"{quote(table.catalog)}.system"

    def rewrite_data_files(self, settings: UpkeepSettings) -> dict[str, Any]:
        options = _options(
            {
                "min-input-files": settings.min_input_files,
                "delete-file-threshold": settings.delete_file_threshold,
                "remove-dangling-deletes": "true",
                # New files get the rewrite's own sequence number, so the delete files of the rows they replaced
                # are older than every data file left and are removed as dangling (with the default, a delete
                # file as new as the rewrite's starting point stays).
                "use-starting-sequence-number": "false",
                "partial-progress.enabled": "true",
            }
        )
        return self._call(f"rewrite_data_files(table => {self.name}, strategy => 'sort', options => {options})")

    def compact_appends(self, settings: UpkeepSettings) -> dict[str, Any]:
        """Bin-pack small files of an append-only table (the change feed: no sort order, no deletes)."""
        options = _options({"min-input-files": settings.min_input_files, "partial-progress.enabled": "true"})
        return self._call(f"rewrite_data_files(table => {self.name}, options => {options})")

    def rewrite_position_delete_files(self, settings: UpkeepSettings) -> dict[str, Any]:
        options = _options({"min-input-files": settings.min_input_files})
        return self._call(f"rewrite_position_delete_files(table => {self.name}, options => {options})")

    def expire_snapshots(self, older_than: datetime) -> dict[str, Any]:
        moment = older_than.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        return self._call(
            f"expire_snapshots(table => {self.name}, older_than => TIMESTAMP '{moment}', retain_last => 1)"
        )

    def _call(self, procedure: str) -> dict[str, Any]:
        def call() -> dict[str, Any]:
            self.table.refresh()
            rows = self.table.spark.sql(f"CALL {self.system}.{procedure}").collect()
            return rows[0].asDict() if rows else {}

        value, _ = retried_on_conflict(
            call, f"this step of upkeep of {self.table.namespace}.{self.table.name}", self.log
        )
        return value


def _options(options: Mapping[str, object]) -> str:
    return "map(" + ", ".join(f"{sql_string(k)}, {sql_string(str(v))}" for k, v in options.items()) + ")"
