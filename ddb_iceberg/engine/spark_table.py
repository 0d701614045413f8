"""The Iceberg table, through Spark: ledger, layout, creation, schema evolution, the merge and tags."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from ddb_iceberg.engine.ledger import (
    LAYOUT_PROPERTY,
    LEDGER_PROPERTY,
    MAPS_PROPERTY,
    PROPERTY_PREFIX,
    SYNC_ID,
    Ancestor,
    LedgerEntry,
    find_ledger,
)
from ddb_iceberg.engine.naming import WRITE_TIME_COLUMN, quote, quote_path
from ddb_iceberg.engine.partitioning import (
    PARTITION_SPEC_PROPERTY,
    PartitionSpec,
    TimeColumn,
    time_column_ddl,
    time_columns_of,
)
from ddb_iceberg.engine.records import DELETE, OP_COLUMN, UPSERT, key_texts
from ddb_iceberg.engine.request import Log, parse_table_identifier
from ddb_iceberg.engine.rows import item_reader
from ddb_iceberg.engine.schema import MAX_DECIMAL_PRECISION, Column, ColumnType, ColumnTypeVisitor, Kind, Layout
from ddb_iceberg.engine.spark_types import column_ddl, doc, spark_type, sql_string
from ddb_iceberg.errors import SyncError
from ddb_iceberg.exports.typed_values import DecodedItem

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

_T = TypeVar("_T")
# Times a sync plans, or a step of upkeep runs, when another writer keeps committing first.
MAX_ATTEMPTS = 4
MAIN_BRANCH = "main"
# Branches of one sync attempt each (see `SparkIcebergTable.publish`).
BRANCH_PREFIX = "ddb_sync_"
SNAPSHOT_PROPERTY_CONF = "spark.sql.iceberg.snapshot-property."

# Table defaults, chosen on measurements (BENCHMARKS.md): format v2 (what Athena reads), merge-on-read so a
# window's merge writes only its changes (delete files plus new rows) instead of rewriting the table; rows
# clustered by bucket of the partition key and sorted by key, so a merge joins bucket to bucket (no shuffle of
# the table) and files stay near the target size.
TABLE_PROPERTIES = {
    "format-version": "2",
    "write.delete.mode": "merge-on-read",
    "write.update.mode": "merge-on-read",
    "write.merge.mode": "merge-on-read",
    "write.parquet.compression-codec": "zstd",
    "write.target-file-size-bytes": str(128 * 1024 * 1024),
    "write.distribution-mode": "hash",
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "50",
}
# How many buckets of the partition key the table has (its key columns may come later: an empty table).
BUCKETS_PROPERTY = "ddb-iceberg.buckets"
# Fallback columns always get value counts in the file metadata: the run's type drift is read from them.
_COUNTS_METRICS = "write.metadata.metrics.column."


class SparkIcebergTable:
    """One Iceberg table in a Spark catalog."""

    def __init__(self, spark: SparkSession, catalog: str, identifier: str) -> None:
        self.spark = spark
        self.catalog = catalog
        self.namespace, self.name = parse_table_identifier(identifier)
        self.full_name = quote_path(catalog, self.namespace, self.name)

    def exists(self) -> bool:
        return bool(self.spark.catalog.tableExists(f"{self.catalog}.{self.namespace}.{self.name}"))

    def refresh(self) -> None:
        """Forget what Spark's catalog cached of the table: another writer may have committed since."""
        self.spark.sql(f"REFRESH TABLE {self.full_name}")

    def _java_table(self) -> Any:
        """The table through Iceberg's Java API, at its latest metadata (metadata reads need no Spark job)."""
        jvm = self.spark.sparkContext._jvm
        assert jvm is not None
        spark_catalog = self.spark._jsparkSession.sessionState().catalogManager().catalog(self.catalog)
        identifier = jvm.org.apache.iceberg.catalog.TableIdentifier.parse(f"{self.namespace}.{self.name}")
        table = spark_catalog.icebergCatalog().loadTable(identifier)
        table.refresh()
        return table

    def properties(self) -> dict[str, str]:
        return dict(self._java_table().properties())

    def layout(self) -> Layout | None:
        text = self.properties().get(LAYOUT_PROPERTY)
        return Layout.from_json(text) if text else None

    def ledger_history(self, *, latest_only: bool = False) -> list[LedgerEntry]:
        """The ledger entries that describe the current snapshot, newest first (see `ledger.find_ledger`)."""
        table = self._java_table()

        def ancestry() -> Iterator[Ancestor]:
            snapshot = table.currentSnapshot()
            while snapshot is not None:
                parent = snapshot.parentId()
                yield Ancestor(snapshot.snapshotId(), snapshot.summary(), snapshot.sequenceNumber(), parent)
                snapshot = table.snapshot(parent) if parent is not None else None

        def sequence_number_of(snapshot_id: int) -> int | None:
            snapshot = table.snapshot(snapshot_id)
            return int(snapshot.sequenceNumber()) if snapshot is not None else None

        return find_ledger(
            ancestry(), table.properties().get(LEDGER_PROPERTY), sequence_number_of, latest_only=latest_only
        )

    def ledger(self) -> LedgerEntry | None:
        history = self.ledger_history(latest_only=True)
        return history[0] if history else None

    def current_snapshot_id(self) -> int | None:
        snapshot = self._java_table().currentSnapshot()
        return int(snapshot.snapshotId()) if snapshot is not None else None

    def create(
        self,
        layout: Layout,
        properties: Mapping[str, str] | None = None,
        *,
        buckets: int = 1,
        spec: PartitionSpec | None = None,
        maps: str = "columns",
    ) -> None:
        """Create the table, empty: columns with docs, identifier fields, the partition spec (`spec`, or
        `buckets` buckets of the partition key; 0: none) and sort order (the key), defaults, the layout and how it
        holds maps."""
        self.spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {quote_path(self.catalog, self.namespace)}")
        times = time_columns_of(spec, layout, f"{self.namespace}.{self.name}")
        columns = ",\n  ".join([*(column_ddl(c) for c in layout.columns), *(time_column_ddl(t) for t in times)])
        properties = {
            **TABLE_PROPERTIES,
            **(properties or {}),
            LAYOUT_PROPERTY: layout.to_json(),
            BUCKETS_PROPERTY: str(0 if spec is not None else buckets),
            MAPS_PROPERTY: maps,
            **({PARTITION_SPEC_PROPERTY: spec.to_json()} if spec is not None else {}),
            **_metrics_properties(layout),
        }
        rendered = ", ".join(f"{sql_string(k)} = {sql_string(v)}" for k, v in properties.items())
        partitioning = ""
        if spec is not None:
            partitioning = f"PARTITIONED BY ({spec.sql(layout, f'{self.namespace}.{self.name}')}) "
        elif layout.has_key_columns and buckets:
            partitioning = f"PARTITIONED BY (bucket({buckets}, {quote(layout.key_columns[0].name)})) "
        self.spark.sql(
            f"CREATE TABLE {self.full_name} (\n  {columns}\n) USING iceberg {partitioning}TBLPROPERTIES ({rendered})"
        )
        if layout.has_key_columns:
            self._key_by(layout, partitioned=True)

    def _key_by(self, layout: Layout, *, partitioned: bool) -> None:
        """Identifier fields and sort order (and, unless `partitioned`, the bucket partition) from the key."""
        keys = ", ".join(quote(c.name) for c in layout.key_columns)
        properties = self.properties()
        buckets = int(properties.get(BUCKETS_PROPERTY, "1"))
        if not partitioned and buckets:
            partition_key = quote(layout.key_columns[0].name)
            self.spark.sql(f"ALTER TABLE {self.full_name} ADD PARTITION FIELD bucket({buckets}, {partition_key})")
        self.spark.sql(f"ALTER TABLE {self.full_name} SET IDENTIFIER FIELDS {keys}")
        # Clustered by bucket and sorted inside each task: `WRITE ORDERED BY` would choose range distribution,
        # which samples the whole input (building every row twice) before it shuffles.
        distribution = "DISTRIBUTED BY PARTITION " if buckets or PARTITION_SPEC_PROPERTY in properties else ""
        self.spark.sql(f"ALTER TABLE {self.full_name} WRITE {distribution}LOCALLY ORDERED BY {keys}")

    def evolve(self, layout: Layout) -> None:
        """Add the columns and struct fields `layout` has and the table lacks; then record the layout.

        Columns are compared with the table's real schema, so an evolution interrupted between its commits is
        completed, not repeated.
        """
        if layout.has_key_columns and self._add_key_columns(layout):
            self._key_by(layout, partitioned=False)
        self.add_missing_columns(layout.columns)
        properties = {LAYOUT_PROPERTY: layout.to_json(), **_metrics_properties(layout)}
        rendered = ", ".join(f"{sql_string(k)} = {sql_string(v)}" for k, v in properties.items())
        self.spark.sql(f"ALTER TABLE {self.full_name} SET TBLPROPERTIES ({rendered})")

    def time_columns(self, layout: Layout) -> list[TimeColumn]:
        """The time columns the table's partition spec needs, computed in every write (engine.partitioning)."""
        spec = PartitionSpec.from_json(self.properties().get(PARTITION_SPEC_PROPERTY))
        return time_columns_of(spec, layout, f"{self.namespace}.{self.name}")

    def add_missing_columns(self, columns: tuple[Column, ...], *, nullable: bool = False) -> None:
        """Add the columns, and the struct fields of columns, the table lacks (compared with its real schema, so an
        addition interrupted between commits is completed, not repeated); `nullable` drops new key columns' NOT
        NULL."""
        self.refresh()
        existing = self.spark.table(self.full_name).schema
        additions: list[str] = []
        for column in columns:
            if column.name not in existing.fieldNames():
                additions.append(column_ddl(column, nullable=nullable))
            else:
                additions.extend(_nested_additions([column.name], column.type, existing[column.name].dataType))
        if additions:
            self.spark.sql(f"ALTER TABLE {self.full_name} ADD COLUMNS (\n  {', '.join(additions)}\n)")

    def _add_key_columns(self, layout: Layout) -> bool:
        """Give a table made from an empty full export its key columns, once its first item brings their types.

        Spark SQL cannot add a required column, so this goes through Iceberg's API; it is safe because a table
        without key columns cannot hold a row yet.
        """
        table = self._java_table()
        schema = table.schema()
        missing = [c for c in layout.key_columns if schema.findField(c.name) is None]
        if not missing:
            return False
        jvm = self.spark.sparkContext._jvm
        assert jvm is not None
        iceberg_type = _IcebergPrimitiveType(jvm.org.apache.iceberg.types.Types)
        update = table.updateSchema().allowIncompatibleChanges()
        for column in missing:
            update = update.addRequiredColumn(column.name, iceberg_type.visit(column.type), doc(column))
            update = update.moveBefore(column.name, WRITE_TIME_COLUMN)
        identifier_fields = jvm.java.util.ArrayList()
        for column in layout.key_columns:
            identifier_fields.add(column.name)
        update.setIdentifierFields(identifier_fields).commit()
        return True

    @contextmanager
    def snapshot_properties(self, properties: Mapping[str, str]) -> Iterator[None]:
        """Attach `properties` to the snapshots committed inside the block (and to nothing else). Inside a block
        that set them already (a sync's writes at once), it leaves them to that block."""
        conf = self.spark.conf
        mine = [key for key, value in properties.items() if conf.get(SNAPSHOT_PROPERTY_CONF + key, None) != value]
        for key in mine:
            conf.set(SNAPSHOT_PROPERTY_CONF + key, properties[key])
        try:
            yield
        finally:
            for key in mine:
                conf.unset(SNAPSHOT_PROPERTY_CONF + key)

    # A sync commits to a branch of its own, started at the snapshot it planned from, then publishes it:
    # main fast-forwards to the branch only if main is still where the sync found it. So another writer's
    # commit in between (another sync, upkeep) fails the publish, never interleaves with it, and the sync plans
    # again from what that writer left (see sync.sync_table).

    def _target(self, branch: str) -> str:
        return f"{self.full_name}.{quote('branch_' + branch)}"

    def start_branch(self, snapshot_id: int | None) -> str:
        """A new branch for one sync attempt, at `snapshot_id` (None: the table has no snapshot yet)."""
        branch = f"{BRANCH_PREFIX}{uuid.uuid4().hex}"
        table = self._java_table()
        if snapshot_id is None:
            table.newAppend().toBranch(branch).commit()  # a branch needs a snapshot: an empty one
        else:
            table.manageSnapshots().createBranch(branch, snapshot_id).commit()
        self.refresh()
        return branch

    def branch_head(self, branch: str) -> tuple[int, dict[str, str]]:
        """The id and summary of the branch's latest snapshot."""
        table = self._java_table()
        snapshot = table.snapshot(table.refs().get(branch).snapshotId())
        return int(snapshot.snapshotId()), dict(snapshot.summary())

    def publish(self, branch: str, entry: LedgerEntry, tag: str, *, stale_before: datetime) -> None:
        """Make the branch's commit the table's current state, in one commit with its tag and its ledger in the
        table properties; the branch goes, with other syncs' branches abandoned before `stale_before`.
        Fails (CommitFailed or Validation exception) if main moved since the branch started."""
        table = self._java_table()
        transaction = table.newTransaction()
        snapshots = transaction.manageSnapshots().fastForwardBranch(MAIN_BRANCH, branch).removeBranch(branch)
        snapshots = _set_tag(snapshots, table, tag, entry.snapshot_id)
        for stale in _stale_branches(table, stale_before):
            snapshots = snapshots.removeBranch(stale)
        snapshots.commit()
        transaction.updateProperties().set(LEDGER_PROPERTY, entry.table_property()).commit()
        transaction.commitTransaction()
        self.refresh()

    def fast_forward(self, branch: str, properties: Mapping[str, str], *, stale_before: datetime | None = None) -> bool:
        """Make the branch's head main's, with `properties` set on the table, and remove the branch with other syncs'
        branches abandoned before `stale_before`, in one commit; False (nothing done) when another writer moved
        main since the branch started (upkeep compacting a companion table)."""
        table = self._java_table()
        head = table.snapshot(table.refs().get(branch).snapshotId())
        main = table.currentSnapshot()
        if main is not None and not self._is_ancestor(table, main.snapshotId(), head.snapshotId()):
            return False
        transaction = table.newTransaction()
        snapshots = transaction.manageSnapshots().fastForwardBranch(MAIN_BRANCH, branch).removeBranch(branch)
        for stale in _stale_branches(table, stale_before) if stale_before is not None else []:
            snapshots = snapshots.removeBranch(stale)
        snapshots.commit()
        _set_properties(transaction.updateProperties(), properties).commit()
        transaction.commitTransaction()
        self.refresh()
        return True

    def _is_ancestor(self, table: Any, ancestor_id: int, snapshot_id: int) -> bool:
        jvm = self.spark.sparkContext._jvm
        assert jvm is not None
        return bool(jvm.org.apache.iceberg.util.SnapshotUtil.isAncestorOf(table, snapshot_id, ancestor_id))

    def publish_appends(
        self, branch: str, properties: Mapping[str, str], *, stale_before: datetime | None = None
    ) -> None:
        """Put what an append-only branch added on main, with `properties` set on the table (`fast_forward`). When
        another writer moved main since the branch started, the branch's data files are appended to main instead, in
        one commit carrying the branch head's `ddb-iceberg.` summary and setting `properties`, and the branch is
        removed in a second one (a run that dies between them leaves a branch whose sync main already has: removed
        once stale)."""
        if self.fast_forward(branch, properties, stale_before=stale_before):
            return
        table = self._java_table()
        head = table.snapshot(table.refs().get(branch).snapshotId())
        main = table.currentSnapshot()
        transaction = table.newTransaction()
        append = transaction.newAppend()
        snapshot = head
        while snapshot is not None and not self._is_ancestor(table, snapshot.snapshotId(), main.snapshotId()):
            files = snapshot.addedDataFiles(table.io()).iterator()
            while files.hasNext():
                append = append.appendFile(files.next())
            parent = snapshot.parentId()
            snapshot = table.snapshot(parent) if parent is not None else None
        for key, value in dict(head.summary()).items():
            if key.startswith(PROPERTY_PREFIX):
                append = append.set(key, value)
        append.commit()
        _set_properties(transaction.updateProperties(), properties).commit()
        transaction.commitTransaction()
        table = self._java_table()
        snapshots = table.manageSnapshots().removeBranch(branch)
        for stale in _stale_branches(table, stale_before) if stale_before is not None else []:
            snapshots = snapshots.removeBranch(stale)
        snapshots.commit()
        self.refresh()

    def branch_heads(self, prefix: str) -> dict[str, str | None]:
        """The branches named `prefix...`, each with the sync id of its head."""
        table = self._java_table()
        heads: dict[str, str | None] = {}
        for name, ref in table.refs().items():
            if name.startswith(prefix) and ref.isBranch():
                snapshot = table.snapshot(ref.snapshotId())
                heads[name] = snapshot.summary().get(SYNC_ID) if snapshot is not None else None
        return heads

    def snapshot_summary(self, snapshot_id: int) -> dict[str, str]:
        return dict(self._java_table().snapshot(snapshot_id).summary())

    def drop_branch(self, branch: str) -> None:
        """Remove a branch an attempt will not publish (best effort: a later sync removes it once stale)."""
        try:
            table = self._java_table()
            if table.refs().get(branch) is not None:
                table.manageSnapshots().removeBranch(branch).commit()
        except Exception:  # the attempt's own failure is what the caller reports
            pass

    def append(self, rows: DataFrame, properties: Mapping[str, str], branch: str) -> None:
        """Append rows to `branch` in one commit carrying `properties` (the baseline into a new table)."""
        with self.snapshot_properties(properties):
            rows.drop(OP_COLUMN).writeTo(f"{self.catalog}.{self.namespace}.{self.name}.branch_{branch}").append()

    def merge(
        self, changes: DataFrame, layout: Layout, properties: Mapping[str, str], branch: str, *, replace: bool = False
    ) -> None:
        """One MERGE, one commit to `branch`: upserts become exactly their image, deletes remove their row, and
        no row is changed by a write older than the one it already shows. With `replace` (a re-baseline), the
        changes are the whole truth: rows they do not name are deleted, and the rows they name take their
        image whatever the table's write time."""
        with self.registered(changes) as view:
            keys = [c.name for c in layout.key_columns]
            columns = [c.name for c in layout.columns] + [t.name for t in self.time_columns(layout)]
            on = " AND ".join(f"t.{quote(k)} = s.{quote(k)}" for k in keys)
            newer = "true" if replace else f"s.{quote(WRITE_TIME_COLUMN)} >= t.{quote(WRITE_TIME_COLUMN)}"
            assignments = ", ".join(f"t.{quote(c)} = s.{quote(c)}" for c in columns if c not in keys)
            names = ", ".join(quote(c) for c in columns)
            values = ", ".join(f"s.{quote(c)}" for c in columns)
            statement = (
                f"MERGE INTO {self._target(branch)} t USING {view} s ON {on} "
                f"WHEN MATCHED AND s.{OP_COLUMN} = '{DELETE}' AND {newer} THEN DELETE "
                f"WHEN MATCHED AND s.{OP_COLUMN} = '{UPSERT}' AND {newer} THEN UPDATE SET {assignments} "
                f"WHEN NOT MATCHED AND s.{OP_COLUMN} = '{UPSERT}' THEN INSERT ({names}) VALUES ({values})"
                + (" WHEN NOT MATCHED BY SOURCE THEN DELETE" if replace else "")
            )
            with self.snapshot_properties(properties):
                self.spark.sql(statement)

    def commit_empty(self, properties: Mapping[str, str], branch: str) -> None:
        """Commit to `branch` a snapshot that changes no row but carries `properties` (nothing to apply)."""
        append = self._java_table().newAppend().toBranch(branch)
        for key, value in properties.items():
            append = append.set(key, value)
        append.commit()
        self.refresh()

    def ensure_commit(self, properties: Mapping[str, str], branch: str) -> None:
        """Commit an empty snapshot carrying `properties` to `branch` unless its head is the commit of the same sync
        (a write that changed nothing commits nothing)."""
        ref = self._java_table().refs().get(branch)
        if ref is None or self.snapshot_summary(int(ref.snapshotId())).get(SYNC_ID) != properties[SYNC_ID]:
            self.commit_empty(properties, branch)

    def mark(self, entry: LedgerEntry, tag: str | None) -> None:
        """Keep `entry` in the table properties and tag its snapshot `tag` (unless None), in one commit: repairs
        what a run that died just after publishing its commit left undone."""
        table = self._java_table()
        transaction = table.newTransaction()
        transaction.updateProperties().set(LEDGER_PROPERTY, entry.table_property()).commit()
        if tag is not None:
            _set_tag(transaction.manageSnapshots(), table, tag, entry.snapshot_id).commit()
        transaction.commitTransaction()
        self.refresh()

    def set_property(self, name: str, value: str) -> None:
        """Set one table property (a metadata-only commit: no snapshot)."""
        self._java_table().updateProperties().set(name, value).commit()
        self.refresh()

    def has_snapshot(self, snapshot_id: int) -> bool:
        return self._java_table().snapshot(snapshot_id) is not None

    def remove_orphan_files(self, older_than: datetime) -> int:
        """Delete files in the table's location that no snapshot references and that are older than
        `older_than`: what a run killed before its commit left behind. Returns how many."""
        moment = older_than.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        rows = self.spark.sql(
            f"CALL {quote(self.catalog)}.system.remove_orphan_files("
            f"table => {sql_string(f'{self.namespace}.{self.name}')}, older_than => TIMESTAMP '{moment}', "
            # List through the table's FileIO (S3FileIO on AWS) rather than a Hadoop file system for s3://.
            "prefix_listing => true)"
        ).collect()
        return len(rows)

    def tags(self) -> dict[str, int]:
        refs = self._java_table().refs()
        return {name: int(ref.snapshotId()) for name, ref in refs.items() if ref.isTag()}

    def tags_committed_before(self, before: datetime) -> list[str]:
        """The tags whose snapshot was committed before `before`, by name."""
        table, cutoff = self._java_table(), int(before.timestamp() * 1000)
        old = []
        for name, snapshot_id in sorted(self.tags().items()):
            snapshot = table.snapshot(snapshot_id)
            if snapshot is not None and snapshot.timestampMillis() < cutoff:
                old.append(name)
        return old

    def drop_tags(self, names: list[str]) -> None:
        """Drop the tags in one commit."""
        if not names:
            return
        snapshots = self._java_table().manageSnapshots()
        for name in names:
            snapshots = snapshots.removeTag(name)
        snapshots.commit()
        self.refresh()

    def snapshot_count(self) -> int:
        return sum(1 for _ in self._java_table().snapshots())

    def read(self, version: str | int | None = None) -> DataFrame:
        if version is None:
            return self.spark.table(f"{self.catalog}.{self.namespace}.{self.name}")
        option = "versionAsOf"
        return self.spark.read.option(option, str(version)).table(f"{self.catalog}.{self.namespace}.{self.name}")

    def items(self, layout: Layout, version: str | int | None = None) -> dict[tuple[Any, ...], DecodedItem]:
        """The DynamoDB items the table holds (at a tag or snapshot), by key: for checks against the truth."""
        items: dict[tuple[Any, ...], DecodedItem] = {}
        read = item_reader(layout)
        for row in self.read(version).toLocalIterator():
            item = read(row.asDict(recursive=True))
            items[tuple(item[c.attribute] for c in layout.key_columns)] = item
        return items

    def rows_written_between(self, layout: Layout, start_micros: int, end_micros: int, snapshot_id: int) -> DataFrame:
        """The rows (key text, write time) last written in [start, end) microseconds, as of a snapshot."""
        written = quote(WRITE_TIME_COLUMN)
        keys = ", ".join(quote(c.name) for c in layout.key_columns) if layout.has_key_columns else ""
        if not keys:
            return self.spark.createDataFrame([], "key STRING, written BIGINT")  # no row yet
        rows = self.spark.sql(
            f"SELECT {keys}, unix_micros({written}) AS written FROM {self.full_name} VERSION AS OF {int(snapshot_id)} "
            f"WHERE {written} >= timestamp_micros({int(start_micros)}) "
            f"AND {written} < timestamp_micros({int(end_micros)})"
        )
        return rows.mapInArrow(key_texts(layout), "key STRING, written BIGINT")

    def fallback_values(self, layout: Layout, snapshot_id: int) -> list[tuple[Column, int]]:
        """How many values the commit `snapshot_id` wrote to each fallback column (its type drift), from the
        value counts in the metadata of the data files it added: no data is read."""
        fallbacks = [column for column in layout.columns if column.tag and column not in layout.key_columns]
        fallbacks = [c for c in fallbacks if c is not layout.columns_of(c.attribute)[0]]
        if not fallbacks:
            return []
        table = self._java_table()
        ids = {column.name: table.schema().findField(column.name).fieldId() for column in fallbacks}
        counts = dict.fromkeys(ids, 0)
        files = table.snapshot(snapshot_id).addedDataFiles(table.io()).iterator()
        while files.hasNext():
            data_file = files.next()
            values, nulls = data_file.valueCounts(), data_file.nullValueCounts()
            for name, field_id in ids.items():
                counts[name] += int(values.get(field_id) or 0) - int(nulls.get(field_id) or 0)
        return [(column, counts[column.name]) for column in fallbacks if counts[column.name]]

    @contextmanager
    def registered(self, changes: DataFrame) -> Iterator[str]:
        """`changes` as a temporary view for the duration of a statement (nothing is left in the session)."""
        view = f"ddb_iceberg_changes_{self.name}"
        changes.createOrReplaceTempView(view)
        try:
            yield quote(view)
        finally:
            self.spark.catalog.dropTempView(view)


class _IcebergPrimitiveType(ColumnTypeVisitor[Any]):
    """The Iceberg type (a Java object of `types`, Iceberg's `org.apache.iceberg.types.Types`) that Spark makes of a
    primitive column type: for columns added through Iceberg's API, key columns, which are never lists or structs
    (an identifier field is a primitive)."""

    def __init__(self, types: Any) -> None:
        self.types = types

    def visit_string(self) -> Any:
        return self.types.StringType.get()

    def visit_long(self) -> Any:
        return self.types.LongType.get()

    def visit_decimal(self, scale: int) -> Any:
        return self.types.DecimalType.of(MAX_DECIMAL_PRECISION, scale)

    def visit_number_text(self) -> Any:
        return self.types.StringType.get()

    def visit_boolean(self) -> Any:
        return self.types.BooleanType.get()

    def visit_binary(self) -> Any:
        return self.types.BinaryType.get()

    def visit_json(self) -> Any:
        return self.types.StringType.get()

    def visit_struct(self, fields: tuple[Column, ...]) -> Any:
        raise TypeError("a struct is no primitive column type")

    def visit_list(self, element: ColumnType) -> Any:
        raise TypeError("a list is no primitive column type")

    def visit_timestamp(self) -> Any:
        return self.types.TimestampType.withZone()  # Spark's TIMESTAMP


def _nested_additions(path: list[str], wanted: ColumnType, actual: Any) -> list[str]:
    """`ADD COLUMNS` entries for struct fields in `wanted` that the Spark type `actual` lacks."""
    from pyspark.sql.types import ArrayType, StructType

    if wanted.kind is Kind.LIST and wanted.element is not None and isinstance(actual, ArrayType):
        return _nested_additions([*path, "element"], wanted.element, actual.elementType)
    if wanted.kind is not Kind.STRUCT or not isinstance(actual, StructType):
        return []
    additions: list[str] = []
    for nested in wanted.fields:
        if nested.name not in actual.fieldNames():
            additions.append(
                f"{quote_path(*path, nested.name)} {spark_type(nested.type)} COMMENT {sql_string(doc(nested))}"
            )
        else:
            additions.extend(_nested_additions([*path, nested.name], nested.type, actual[nested.name].dataType))
    return additions


# What Iceberg says when another writer committed first: a commit that lost the race (metadata moved on, files
# it read were changed, the table it creates exists). Iceberg checks before it commits, so nothing was written.
_CONFLICT_MARKERS = (
    "org.apache.iceberg.exceptions.CommitFailedException",
    "org.apache.iceberg.exceptions.CommitStateUnknownException",
    "Found conflicting files",
    "Found new conflicting delete files",
    "Found conflicting deleted files",
    "Missing required files to delete",
    "Cannot fast-forward",
    "org.apache.iceberg.exceptions.AlreadyExistsException",
    "TableAlreadyExistsException",
    "TABLE_OR_VIEW_ALREADY_EXISTS",
)


def retried_on_conflict(step: Callable[[], _T], what: str, log: Log) -> tuple[_T, int]:
    """`step`'s value and the attempt that gave it: `step` runs again, after a pause, each time its commit loses
    to another writer's (a sync, upkeep), at most MAX_ATTEMPTS times; then a SyncError says so."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            return step(), attempt
        except Exception as error:
            conflict = commit_conflict(error)
            if conflict is None:
                raise
            if attempt == MAX_ATTEMPTS:
                raise SyncError(
                    f"another writer committed first before each of {MAX_ATTEMPTS} attempts of {what} ({conflict}); "
                    "nothing of it was written. Run it again once the other writer is done."
                ) from None
            log(f"Another writer committed first ({conflict}); {what} runs again from its commit")
            time.sleep(random.uniform(0.5, 2.0) * attempt)
    raise AssertionError("unreachable")


def commit_conflict(error: BaseException) -> str | None:
    """The first line of what Iceberg said, if `error` is a commit that lost to another writer's."""
    texts = [str(error)]
    java = getattr(error, "java_exception", None) or getattr(error, "_origin", None)
    for _ in range(8):  # the Java exception and its causes
        if java is None:
            break
        try:
            texts.append(str(java.toString()))
            java = java.getCause()
        except Exception:  # a Java object of a stopped session, or not a Throwable
            break
    for text in texts:
        for line in text.splitlines():
            if any(marker in line for marker in _CONFLICT_MARKERS):
                return line.strip()[:300]
    return None


def _set_properties(update: Any, properties: Mapping[str, str]) -> Any:
    for key, value in properties.items():
        update = update.set(key, value)
    return update


def _set_tag(snapshots: Any, table: Any, tag: str, snapshot_id: int) -> Any:
    ref = table.refs().get(tag)
    if ref is None:
        return snapshots.createTag(tag, snapshot_id)
    if ref.snapshotId() != snapshot_id:
        return snapshots.replaceTag(tag, snapshot_id)
    return snapshots


def _stale_branches(table: Any, before: datetime) -> list[str]:
    """Branches of sync attempts that died before publishing, last written before `before`."""
    cutoff = int(before.timestamp() * 1000)
    stale = []
    for name, ref in table.refs().items():
        if name.startswith(BRANCH_PREFIX) and ref.isBranch():
            snapshot = table.snapshot(ref.snapshotId())
            if snapshot is None or snapshot.timestampMillis() < cutoff:
                stale.append(name)
    return stale


def _metrics_properties(layout: Layout) -> dict[str, str]:
    """Value counts for every fallback column (beyond 100 columns Iceberg keeps no metrics by default)."""
    return {
        _COUNTS_METRICS + column.name: "counts"
        for attribute in {c.attribute for c in layout.columns if c.tag}
        for column in layout.columns_of(attribute)[1:]
    }
