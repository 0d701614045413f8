"""One sync: discover the exports, plan what the table lacks, verify and collapse it, apply it in one commit."""

from __future__ import annotations

import json
import resource
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from dataclasses import fields as dataclass_fields
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ddb_iceberg.engine.change_feed import (
    ChangeFeed,
    check_before_fits_glue,
    export_windows,
    feed_rows,
    rebaseline_rows,
)
from ddb_iceberg.engine.changes import Changes, collect_changes, key_attributes_from, reads_on_driver
from ddb_iceberg.engine.companion import CompanionTable
from ddb_iceberg.engine.concurrent_writes import write_together
from ddb_iceberg.engine.item_history import ItemHistory
from ddb_iceberg.engine.ledger import ADDED_RECORDS, LEDGER_PROPERTY, MAPS_PROPERTY, LedgerEntry
from ddb_iceberg.engine.partitioning import PARTITION_SPEC_PROPERTY, PartitionSpec
from ddb_iceberg.engine.plan import SyncPlan, plan_sync
from ddb_iceberg.engine.records import OLD_IMAGE_COLUMN, OP_COLUMN, UPSERT
from ddb_iceberg.engine.request import MAX_BUCKETS, Log, SyncRequest
from ddb_iceberg.engine.schema import Layout, describe_changes, plan_layout
from ddb_iceberg.engine.spark_session import apply_engine_settings
from ddb_iceberg.engine.spark_table import SparkIcebergTable, retried_on_conflict
from ddb_iceberg.errors import Fix, SyncError
from ddb_iceberg.exports import ExportListing, ExportSource, discover_exports, discover_from_latest_full
from ddb_iceberg.exports.manifest import format_timestamp
from ddb_iceberg.exports.reader import SUMMARY_FILE

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


# Files of a run that died before its commit are removed by a later sync once they are this old (so that a
# run still writing is never disturbed; Iceberg refuses less than 24 hours), at most once per
# `SyncRequest.orphan_sweep_interval`.
ORPHAN_MIN_AGE = timedelta(hours=25)
# A new table's rows are bucketed by partition key, about one bucket per this much DynamoDB data (see README).
BUCKET_BYTES = 512 * 1024 * 1024


# The table's write among a sync's writes; the companions' are named as in messages (their phases).
_TABLE_WRITE = "table"
_COMPANION_PHASES = (ChangeFeed.what, ItemHistory.what)

# Tags of the snapshots syncs commit (upkeep drops old ones, never the ledger's).
TAG_PREFIX = "ddb-"


def tag_name(moment: datetime) -> str:
    """The tag of the snapshot that reflects the DynamoDB table as of `moment` (UTC)."""
    return TAG_PREFIX + moment.strftime("%Y%m%dT%H%M%SZ")


@dataclass
class SyncResult:
    """What a sync did; printed by the CLI and reported as asset metadata."""

    table: str
    applied_exports: list[dict[str, Any]] = field(default_factory=list)
    skipped_exports: list[str] = field(default_factory=list)
    rows_inserted: int = 0
    rows_updated: int = 0
    rows_deleted: int = 0
    records_read: int = 0
    records_already_reflected: int = 0
    # Export folders under the source, and how many of them this sync opened: only those that may still apply,
    # so a sync costs what it applies, not the history under its source.
    exports_listed: int = 0
    exports_read: int = 0
    snapshot_id: int | None = None
    reflects: str | None = None
    tag: str | None = None
    schema_changes: list[str] = field(default_factory=list)
    type_drift: list[str] = field(default_factory=list)
    accepted_gaps: list[str] = field(default_factory=list)
    # Set by a re-baseline that replaced the table's rows: the time the table reflected before ("unknown" when
    # its ledger was lost).
    rebaseline_of: str | None = None
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    # By phase; "change feed" and "item history" are their writes, which run inside "collapse, write and commit"
    # at once with the table's (so the phases add up to more than `seconds`).
    phase_seconds: dict[str, float] = field(default_factory=dict)
    # Where the exports were read: "executors", or "driver" for a small plan (engine.changes.SMALL_PLAN_ITEMS).
    read_on: str = ""
    # The change feed this sync wrote to (`SyncRequest.change_feed`), and the rows it added there.
    change_feed: str | None = None
    change_feed_rows: int = 0
    # The item history this sync wrote to (`SyncRequest.history`).
    item_history: str | None = None
    # Peak memory of the driver's Python process so far (what must not grow with the table: BENCHMARKS.md).
    driver_peak_mb: float = 0.0
    # Added by the launcher: where the job ran and what it was billed (an EMR Serverless job run's id, billed
    # resource utilization and estimated cost; empty for a local run).
    job_run: dict[str, float | str] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.applied_exports)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_dict(cls, fields: Mapping[str, Any]) -> SyncResult:
        """The result a job reported (as `asdict` made it), e.g. through Dagster Pipes from EMR Serverless; a
        field this version does not know (a newer job's) is left out."""
        known = {f.name for f in dataclass_fields(cls)}
        return cls(**{name: value for name, value in fields.items() if name in known})

    def _phases(self) -> str:
        """The phases, the companions' writes as part of the last (they run at once with the table's)."""
        companions = {name: self.phase_seconds[name] for name in _COMPANION_PHASES if name in self.phase_seconds}
        phases = [f"{name} {seconds:.1f}s" for name, seconds in self.phase_seconds.items() if name not in companions]
        if companions and phases:
            phases[-1] += (
                " (at once with the table's write: "
                + ", ".join(f"{name} {seconds:.1f}s" for name, seconds in companions.items())
                + ")"
            )
        return ", ".join(phases)

    def describe(self) -> str:
        if not self.changed:
            return f"{self.table} is up to date: it reflects {self.reflects}; no new exports, no new snapshot."
        lines = [
            f"{self.table}: applied {len(self.applied_exports)} export(s) in one commit "
            f"(snapshot {self.snapshot_id}, tag {self.tag}) in {self.seconds:.1f}s",
            f"  rows inserted {self.rows_inserted}, updated {self.rows_updated}, deleted {self.rows_deleted} "
            f"({self.records_read} records read, {self.records_already_reflected} already reflected; "
            f"{self.exports_read} of {self.exports_listed} exports under the source opened)",
            f"  the table now reflects the DynamoDB table as of {self.reflects}",
            "  time: " + self._phases(),
        ]
        if self.rebaseline_of is not None:
            lines.append(
                f"  re-baselined: the rows were replaced by full export {self.applied_exports[0]['export_id']} "
                f"(before, the table reflected {self.rebaseline_of})"
            )
        lines += [f"  schema: {change}" for change in self.schema_changes]
        lines += [f"  type drift: {drift}" for drift in self.type_drift]
        lines += [f"  accepted gap: {gap}" for gap in self.accepted_gaps]
        lines += [f"  warning: {warning}" for warning in self.warnings]
        return "\n".join(lines)


def sync_table(
    spark: SparkSession,
    catalog: str,
    request: SyncRequest,
    *,
    log: Log = lambda _message: None,
) -> SyncResult:
    """Bring the request's table up to the latest export under its source, in one commit (or none).

    The request's `up_to` leaves exports that end later for a later sync; its `table_properties` override the
    defaults (`spark_table.TABLE_PROPERTIES`) of a table this sync creates, `buckets` its number of buckets of
    the partition key (None: from the full export's size, see `bucket_count`).

    `rebaseline` replaces the rows of the table with the latest full export and the windows after it, in one
    commit (history and tags stay): the way out of a gap or a lost ledger (`plan.plan_sync`).

    When another writer commits first (another sync, table upkeep), Iceberg refuses this sync's commit; the
    sync then plans again from the table as the other writer left it (`spark_table.retried_on_conflict`).

    The request's `request_id` (the launcher's name for it) is recorded in the commit's ledger entry, so that a
    launcher that lost the job's result can still find what it did (`LedgerEntry.request_id`).
    """
    started = time.monotonic()
    apply_engine_settings(spark)
    table = SparkIcebergTable(spark, catalog, request.table)
    source = request.export_source()
    result, attempts = retried_on_conflict(
        lambda: _sync_once(table, source, request, log), f"the sync of {request.table}", log
    )
    if attempts > 1:
        result.warnings.append(f"planned {attempts} times: another writer committed first")
    result.seconds = time.monotonic() - started
    result.driver_peak_mb = driver_peak_mb()
    return result


def driver_peak_mb() -> float:
    """This process's peak resident memory. Linux's `getrusage` keeps the high-water mark across `exec`, so a sync
    started by a process that had grown (the bench, after decoding in-process) would report its parent's peak;
    /proc's VmHWM is this program's own."""
    try:
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _sync_once(table: SparkIcebergTable, source: ExportSource, request: SyncRequest, log: Log) -> SyncResult:
    result = SyncResult(table=f"{table.namespace}.{table.name}")
    exists = table.exists()
    layout = ledger = planned_from = None
    if exists:
        table.refresh()
        layout = table.layout()
        if layout is None:
            raise SyncError(f"table {result.table} exists but was not created by ddb_iceberg: refusing to touch it")
        # The snapshot this sync plans from: its commit is published only if the table is still there.
        planned_from = table.current_snapshot_id()
        ledger = table.ledger()
        if ledger is None and planned_from is not None and not request.rebaseline:
            raise missing_ledger_error(result.table)
    spec, maps = _layout_choices(table.properties() if exists else None, request, result.table)

    feed = ChangeFeed(table) if request.keeps_feed else None
    history = ItemHistory(table, feed) if request.history and feed is not None else None
    # The feed first: the history's recovery reads it.
    companions: list[CompanionTable] = [c for c in (feed, history) if c is not None]
    caught_up = [warning for c in companions if (warning := c.catch_up(ledger))]
    rebaseline = request.rebaseline and planned_from is not None
    # Only the exports that may still apply are read: those requested after the point the table reflects, or
    # (a new table, a re-baseline) the latest full export and what follows it (exports.discovery).
    if ledger is not None and not rebaseline:
        listing = discover_exports(source, after=ledger.reflects, applied=ledger.applied_exports)
    else:
        listing = discover_from_latest_full(source, up_to=request.up_to)
    result.exports_listed, result.exports_read = listing.folders, listing.read
    plan = plan_sync(listing, ledger, allow_gaps=request.allow_gaps, up_to=request.up_to, rebaseline=rebaseline)
    keys = _resolve_keys(layout, request.key_attributes, listing)
    result.skipped_exports = [e.export_id for e in plan.skipped]
    result.warnings = [f"{e.export_id}: {w}" for e in plan.exports for w in e.warnings]
    result.warnings += [
        f"{export_id}: no {SUMMARY_FILE} yet (the export is still running, or FAILED): not applied"
        for export_id in listing.incomplete
    ]
    result.warnings += caught_up
    if plan.is_noop:
        if ledger is not None:
            result.reflects = format_timestamp(ledger.reflects)
            result.snapshot_id = ledger.snapshot_id
            result.tag = _ensure_marked(table, ledger)
        return result

    on_driver = reads_on_driver(table.spark, plan)
    log(f"Reading and verifying {len(plan.exports)} export(s) on the {'driver' if on_driver else 'executors'} ...")
    phase_started = time.monotonic()
    table_rows = None
    if layout is not None and planned_from is not None and plan.baseline is None:
        existing, snapshot = layout, planned_from
        table_rows = lambda start, end: table.rows_written_between(existing, start, end, snapshot)  # noqa: E731
    by_export = feed is not None and not plan.rebaseline
    # The feed's before-images from the exports' OldImages where they are the table's rows (else a join to the
    # table): no scan of the table of its own.
    old_images = by_export and plan.old_images_are_the_tables
    changes = collect_changes(
        table.spark, plan, keys, layout, table_rows, on_driver, by_export=by_export, old_images=old_images
    )
    result.read_on = "driver" if changes.on_driver else "executors"
    try:
        result.phase_seconds["read and verify"] = time.monotonic() - phase_started
        new_layout = plan_layout(layout, keys, changes.profile, maps_as_json=maps == "json")
        if spec is not None and not exists:
            spec.source_columns(new_layout, result.table)  # its attributes have columns it can use
        if feed is not None:
            check_before_fits_glue(new_layout, f"{feed.table.namespace}.{feed.table.name}")
        result.schema_changes = describe_changes(layout, new_layout)
        result.records_read = changes.records_read
        result.records_already_reflected = changes.records_stale
        result.warnings += changes.warnings
        if changes.overlap_deletes:
            result.warnings.append(
                f"{changes.overlap_deletes} row(s) deleted because an overlapping window showed they were created "
                "and deleted inside it"
            )
        # Nothing is written before every export has been read and verified.
        log(f"Writing {changes.records_to_apply} change record(s) to {result.table} in one commit ...")
        phase_started = time.monotonic()
        if not exists:
            buckets = bucket_count(plan) if request.buckets is None else request.buckets
            table.create(new_layout, dict(request.table_properties), buckets=buckets, spec=spec, maps=maps)
        elif new_layout != layout:
            table.evolve(new_layout)
        if feed is not None:
            feed.prepare(new_layout, ledger)
        seed_history = history.prepare(new_layout, ledger) if history is not None else False
        swept_at = _sweep_orphans(table, ledger, request.orphan_sweep_interval, result)
        branch = table.start_branch(planned_from)
        branches = {companion.name: companion.start_branch() for companion in companions}
        published = False
        try:
            sync_id = uuid.uuid4().hex
            properties = plan.snapshot_properties(swept_at, sync_id, source.location, request.request_id)
            # The three writes run at once (engine.concurrent_writes), each to its own branch.
            writes: dict[str, Callable[[], None]] = {}
            if feed is not None:
                # The table as the sync found it is main's: the table's own write goes to its branch meanwhile,
                # and main moves only by another writer's commit, which refuses this sync's publish.
                before = table.read() if planned_from is not None else None
                changed = _feed_rows(plan, changes, new_layout, before, sync_id)
                if history is not None:
                    # The history is built from the same rows: computed once when they read the table.
                    reads_table = before is not None and not changes.old_images
                    changed = changes.kept(changed, local=changes.on_driver and not reads_table)
                writes[feed.what] = partial(feed.write, changed, properties, branches[feed.name])
                if history is not None:
                    if seed_history and ledger is not None and before is not None:
                        history.seed(before, new_layout, ledger.reflects, branches[history.name])
                    one_window = len(export_windows(plan)) == 1
                    writes[history.what] = partial(
                        history.write, changed, new_layout, properties, branches[history.name], one_window=one_window
                    )
            empty_table = planned_from is None
            writes[_TABLE_WRITE] = partial(_apply, table, plan, changes, new_layout, properties, branch, empty_table)
            # The snapshot properties are the session's, and the same for the three commits: set once around them.
            with table.snapshot_properties(properties):
                seconds = write_together(table.spark, writes)
            result.phase_seconds.update((name, seconds[name]) for name in writes if name != _TABLE_WRITE)
            committed = LedgerEntry.from_summary(*table.branch_head(branch))
            assert committed is not None and committed.sync_id == sync_id, "the branch lacks this sync's commit"
            result.tag = tag_name(plan.reflects_after)
            stale_before = datetime.now(UTC) - ORPHAN_MIN_AGE
            table.publish(branch, committed, result.tag, stale_before=stale_before)
            published = True
            if feed is not None:
                result.change_feed_rows = int(feed.table.branch_head(branches[feed.name])[1].get(ADDED_RECORDS, 0))
            # A run that dies here leaves the companions' branches for the next sync to publish (catch_up).
            for companion in companions:
                companion.publish(branches[companion.name], committed, stale_before=stale_before)
            result.change_feed = feed.name if feed is not None else None
            result.item_history = history.name if history is not None else None
        except BaseException:
            if not published:
                table.drop_branch(branch)
                for companion in companions:
                    if companion.name in branches:
                        companion.drop_branch(branches[companion.name])
            raise
        result.type_drift = [
            f"attribute {column.attribute!r}: {count} {column.tag} value(s) kept in column {column.name}"
            for column, count in table.fallback_values(new_layout, committed.snapshot_id)
        ]
    finally:
        changes.release()
    result.rows_inserted, result.rows_updated = committed.rows_inserted, committed.rows_updated
    result.rows_deleted = committed.rows_deleted
    # The whole phase: the change feed's and item history's writes (their own seconds above) ran in it, at once
    # with the table's.
    result.phase_seconds["collapse, write and commit"] = time.monotonic() - phase_started
    result.snapshot_id = committed.snapshot_id
    result.reflects = format_timestamp(plan.reflects_after)
    result.accepted_gaps = [str(gap) for gap in plan.gaps]
    if plan.rebaseline:
        result.rebaseline_of = format_timestamp(plan.rebaseline_of) if plan.rebaseline_of else "unknown"
    result.applied_exports = [
        {
            "export_id": e.export_id,
            "type": e.summary.export_type.value,
            "from": format_timestamp(e.summary.covers_from),
            "to": format_timestamp(e.summary.covers_to),
            "item_count": e.summary.item_count,
        }
        for e in plan.exports
    ]
    return result


def missing_ledger_error(table: str) -> SyncError:
    return SyncError(
        f"table {table} holds data but no ddb_iceberg ledger describes its current snapshot, so what it "
        "reflects is unknown (another tool rolled it back, or replaced its snapshots and expired ours along with "
        "the ddb-iceberg.ledger table property). Refusing to guess: merging a full export onto it could keep rows "
        "DynamoDB deleted. To recover, re-baseline the table from a new full export: one commit replaces its rows, "
        "and its history stays.",
        fixes=[Fix.REBASELINE],
    )


def _layout_choices(
    properties: Mapping[str, str] | None, request: SyncRequest, table: str
) -> tuple[PartitionSpec | None, str]:
    """The table's partition spec and how it holds maps: a new table's as requested, an existing table's own. A
    request for others is refused (a sync never changes them)."""
    requested = PartitionSpec.parse(request.partition_by) if request.partition_by else None
    if properties is None:
        return requested, request.maps or "columns"
    spec = PartitionSpec.from_json(properties.get(PARTITION_SPEC_PROPERTY))
    maps = properties.get(MAPS_PROPERTY, "columns")
    if requested is not None and requested != spec:
        raise SyncError(
            f"table {table} is partitioned by {spec or 'the default (buckets of its partition key)'}, not "
            f"{requested}: a sync never changes a table's partitioning",
            fixes=[Fix.REPARTITION],
        )
    if request.maps is not None and request.maps != maps:
        raise SyncError(
            f"table {table} holds maps as {maps}, not {request.maps}: that is chosen when a table is made (sync "
            "without --maps, or into a new table)"
        )
    return spec, maps


def _resolve_keys(layout: Layout | None, requested: Sequence[str] | None, listing: ExportListing) -> tuple[str, ...]:
    """The table's key attributes: the table's own, else the requested ones, else the `Keys` of incremental
    records; requested ones must agree with both (a key attribute left out would merge distinct items into one
    row)."""
    known = layout.key_attributes if layout is not None else ()
    if known and requested and tuple(requested) != known:
        raise SyncError(
            f"the requested key attributes {','.join(requested)} differ from the table's keys {','.join(known)}",
            fixes=[Fix.NAME_KEY],
        )
    if known:
        return known  # every record a sync reads is checked against them
    found = key_attributes_from(listing) or ()
    keys = tuple(requested or ()) or found
    if keys and found and set(keys) != set(found):
        raise SyncError(
            f"the exports' records name the keys {', '.join(found)} in `Keys`, not {', '.join(keys)} "
            "(the requested key attributes): the key must be the DynamoDB table's whole primary key",
            fixes=[Fix.NAME_KEY],
        )
    if not keys and any(e.summary.item_count for e in listing.full_exports):
        raise SyncError(
            "the table's key attributes are needed: no incremental export names them (their records carry `Keys`)",
            fixes=[Fix.NAME_KEY],
        )
    return keys


def _sweep_orphans(
    table: SparkIcebergTable, ledger: LedgerEntry | None, interval: timedelta, result: SyncResult
) -> datetime:
    """Now and then, delete the files of runs that died before committing; returns when it last happened."""
    now = datetime.now(UTC)
    if ledger is None:
        return now  # a new table has nothing to sweep
    if ledger.orphans_swept_at is not None and now - ledger.orphans_swept_at < interval:
        return ledger.orphans_swept_at
    removed = table.remove_orphan_files(older_than=now - ORPHAN_MIN_AGE)
    if removed:
        result.warnings.append(f"removed {removed} orphan file(s) left by runs that died before committing")
    return now


def _apply(
    table: SparkIcebergTable,
    plan: SyncPlan,
    changes: Changes,
    layout: Layout,
    properties: dict[str, str],
    branch: str,
    empty_table: bool,
) -> None:
    """Write the changes to the sync's branch in one commit that carries the ledger (the counts come from the
    commit's own summary); a plan with no effective change still commits an empty snapshot, so the ledger
    records the exports and the time the table now reflects."""
    rows = changes.rows(layout).drop(OLD_IMAGE_COLUMN)  # the feed's
    times = table.time_columns(layout)
    if times:
        from pyspark.sql import functions as sql

        rows = rows.withColumns({column.name: sql.expr(column.expression) for column in times})
    if plan.baseline is not None and (empty_table or not layout.has_key_columns):
        table.append(rows.where(f"{OP_COLUMN} = '{UPSERT}'"), properties, branch)
    elif plan.rebaseline:
        table.merge(rows, layout, properties, branch, replace=True)
    elif changes.records_to_apply:
        table.merge(rows, layout, properties, branch)
    table.ensure_commit(properties, branch)


def _feed_rows(plan: SyncPlan, changes: Changes, layout: Layout, before: DataFrame | None, sync_id: str) -> DataFrame:
    """The change feed's rows of this sync: each export's changes, or a re-baseline's differences."""
    windows = export_windows(plan)
    if plan.rebaseline and before is not None:
        return rebaseline_rows(changes.rows(layout), layout, before, windows[0], sync_id)
    return feed_rows(changes.rows_by_export(layout), layout, before, windows, sync_id, small=changes.on_driver)


def bucket_count(plan: SyncPlan) -> int:
    """Buckets of the partition key for a new table: about one per 512 MB of its full export, a power of two."""
    size = plan.baseline.summary.billed_size_bytes if plan.baseline is not None else 0
    buckets = 1
    while buckets * BUCKET_BYTES < size and buckets < MAX_BUCKETS:
        buckets *= 2
    return buckets


def _ensure_marked(table: SparkIcebergTable, entry: LedgerEntry) -> str | None:
    """Tag the entry's snapshot and keep the entry in the table properties; also repairs both when a run died
    between its commit and this step. Returns the tag (None when the snapshot is gone: expired by upkeep)."""
    name = tag_name(entry.reflects)
    tag = name if table.has_snapshot(entry.snapshot_id) else None
    tag_missing = tag is not None and table.tags().get(tag) != entry.snapshot_id
    if tag_missing or table.properties().get(LEDGER_PROPERTY) != entry.table_property():
        table.mark(entry, tag)
    return tag
