"""The Iceberg table, through Spark: ledger, layout, creation, schema evolution, the merge and tags."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ddb_iceberg.engine.ledger import LAYOUT_PROPERTY, LedgerEntry
from ddb_iceberg.engine.naming import WRITE_TIME_COLUMN, quote, quote_path
from ddb_iceberg.engine.rows import from_cell, row_to_item
from ddb_iceberg.engine.schema import Column, ColumnType, Kind, Layout
from ddb_iceberg.exports.typed_values import DecodedItem

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

OP_COLUMN = "_ddb_op"
UPSERT, DELETE = "U", "D"
SNAPSHOT_PROPERTY_CONF = "spark.sql.iceberg.snapshot-property."

# Table defaults, chosen on measurements (BENCHMARKS.md): format v2 (what Athena reads), merge-on-read so a
# window's merge writes only its changes (delete files plus new rows) instead of rewriting the table.
TABLE_PROPERTIES = {
    "format-version": "2",
    "write.delete.mode": "merge-on-read",
    "write.update.mode": "merge-on-read",
    "write.merge.mode": "merge-on-read",
    "write.parquet.compression-codec": "zstd",
    "write.target-file-size-bytes": str(128 * 1024 * 1024),
    "write.distribution-mode": "none",
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "50",
}


def spark_type(column_type: ColumnType) -> str:
    """Spark SQL DDL type of a column type."""
    kind = column_type.kind
    if kind in (Kind.STRING, Kind.NUMBER_TEXT, Kind.JSON):
        return "STRING"
    if kind is Kind.LONG:
        return "BIGINT"
    if kind is Kind.DECIMAL:
        return f"DECIMAL(38, {column_type.scale})"
    if kind is Kind.BOOLEAN:
        return "BOOLEAN"
    if kind is Kind.BINARY:
        return "BINARY"
    if kind is Kind.TIMESTAMP:
        return "TIMESTAMP"
    if kind is Kind.LIST:
        assert column_type.element is not None
        return f"ARRAY<{spark_type(column_type.element)}>"
    fields = ", ".join(
        f"{quote(f.name)}: {spark_type(f.type)} COMMENT {_sql_string(_doc(f))}" for f in column_type.fields
    )
    return f"STRUCT<{fields}>"


def _doc(column: Column) -> str:
    if column.name == WRITE_TIME_COLUMN:
        return "ddb_iceberg: time of the row's last write (for rows of a full export: that export's exportTime)"
    return column.attribute


def _sql_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _column_ddl(column: Column) -> str:
    not_null = " NOT NULL" if column.required else ""
    return f"{quote(column.name)} {spark_type(column.type)}{not_null} COMMENT {_sql_string(_doc(column))}"


@dataclass(frozen=True)
class MergeCounts:
    inserted: int = 0
    updated: int = 0
    deleted: int = 0


class SparkIcebergTable:
    """One Iceberg table in a Spark catalog."""

    def __init__(self, spark: SparkSession, catalog: str, identifier: str) -> None:
        parts = identifier.split(".")
        if len(parts) != 2 or not all(parts):
            raise ValueError(f"table {identifier!r} must be <namespace>.<table>")
        self.spark = spark
        self.catalog = catalog
        self.namespace, self.name = parts
        self.full_name = quote_path(catalog, self.namespace, self.name)

    def _metadata_table(self, kind: str) -> str:
        return f"{self.full_name}.{quote(kind)}"

    def exists(self) -> bool:
        return bool(self.spark.catalog.tableExists(f"{self.catalog}.{self.namespace}.{self.name}"))

    def properties(self) -> dict[str, str]:
        rows = self.spark.sql(f"SHOW TBLPROPERTIES {self.full_name}").collect()
        return {row["key"]: row["value"] for row in rows}

    def layout(self) -> Layout | None:
        text = self.properties().get(LAYOUT_PROPERTY)
        return Layout.from_json(text) if text else None

    def ledger_history(self) -> list[LedgerEntry]:
        """Ledger entries of the current snapshot's ancestry, newest first."""
        rows = self.spark.sql(
            f"SELECT s.snapshot_id, s.summary FROM {self._metadata_table('snapshots')} s "
            f"JOIN {self._metadata_table('history')} h ON s.snapshot_id = h.snapshot_id "
            "WHERE h.is_current_ancestor ORDER BY h.made_current_at DESC"
        ).collect()
        entries = (LedgerEntry.from_summary(row["snapshot_id"], row["summary"] or {}) for row in rows)
        return [entry for entry in entries if entry is not None]

    def ledger(self) -> LedgerEntry | None:
        history = self.ledger_history()
        return history[0] if history else None

    def current_snapshot_id(self) -> int | None:
        rows = self.spark.sql(
            f"SELECT snapshot_id FROM {self._metadata_table('history')} WHERE is_current_ancestor "
            "ORDER BY made_current_at DESC LIMIT 1"
        ).collect()
        return int(rows[0]["snapshot_id"]) if rows else None

    def row_count(self) -> int:
        return int(self.spark.sql(f"SELECT count(*) AS n FROM {self.full_name}").collect()[0]["n"])

    def create(self, layout: Layout, properties: Mapping[str, str] | None = None) -> None:
        """Create the table, empty: columns with docs, identifier fields, defaults and the layout."""
        self.spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {quote_path(self.catalog, self.namespace)}")
        columns = ",\n  ".join(_column_ddl(c) for c in layout.columns)
        properties = {**TABLE_PROPERTIES, **(properties or {}), LAYOUT_PROPERTY: layout.to_json()}
        rendered = ", ".join(f"{_sql_string(k)} = {_sql_string(v)}" for k, v in properties.items())
        self.spark.sql(f"CREATE TABLE {self.full_name} (\n  {columns}\n) USING iceberg TBLPROPERTIES ({rendered})")
        keys = ", ".join(quote(c.name) for c in layout.key_columns)
        self.spark.sql(f"ALTER TABLE {self.full_name} SET IDENTIFIER FIELDS {keys}")

    def evolve(self, layout: Layout) -> None:
        """Add the columns and struct fields `layout` has and the table lacks; then record the layout.

        Columns are compared with the table's real schema, so an evolution interrupted between its two
        commits is completed, not repeated.
        """
        existing = self.spark.table(self.full_name).schema
        additions: list[str] = []
        for column in layout.columns:
            if column.name not in existing.fieldNames():
                additions.append(_column_ddl(column))
            else:
                additions.extend(_nested_additions([column.name], column.type, existing[column.name].dataType))
        if additions:
            self.spark.sql(f"ALTER TABLE {self.full_name} ADD COLUMNS (\n  {', '.join(additions)}\n)")
        rendered = f"{_sql_string(LAYOUT_PROPERTY)} = {_sql_string(layout.to_json())}"
        self.spark.sql(f"ALTER TABLE {self.full_name} SET TBLPROPERTIES ({rendered})")

    @contextmanager
    def snapshot_properties(self, properties: Mapping[str, str]) -> Iterator[None]:
        """Attach `properties` to the snapshot committed inside the block (and to nothing else)."""
        for key, value in properties.items():
            self.spark.conf.set(SNAPSHOT_PROPERTY_CONF + key, value)
        try:
            yield
        finally:
            for key in properties:
                self.spark.conf.unset(SNAPSHOT_PROPERTY_CONF + key)

    def append(self, rows: DataFrame, properties: Mapping[str, str]) -> None:
        """Append rows in one commit carrying `properties` (the baseline into a new, empty table)."""
        with self.snapshot_properties(properties):
            rows.drop(OP_COLUMN).writeTo(f"{self.catalog}.{self.namespace}.{self.name}").append()

    def count_merge(self, changes: DataFrame, layout: Layout) -> MergeCounts:
        """What `merge` will do: rows inserted, updated and deleted (deletes of absent rows change nothing)."""
        with self._registered(changes) as view:
            keys = [c.name for c in layout.key_columns]
            on = " AND ".join(f"t.{quote(k)} = s.{quote(k)}" for k in keys)
            target_columns = ", ".join(quote(c) for c in [*keys, WRITE_TIME_COLUMN])
            rows = self.spark.sql(
                f"SELECT s.{OP_COLUMN} AS op, t.{quote(keys[0])} IS NOT NULL AS matched, count(*) AS n "
                f"FROM {view} s LEFT JOIN (SELECT {target_columns} FROM {self.full_name}) t ON {on} "
                f"WHERE t.{quote(keys[0])} IS NULL OR s.{quote(WRITE_TIME_COLUMN)} >= t.{quote(WRITE_TIME_COLUMN)} "
                "GROUP BY 1, 2"
            ).collect()
        counts = {(row["op"], row["matched"]): int(row["n"]) for row in rows}
        return MergeCounts(
            inserted=counts.get((UPSERT, False), 0),
            updated=counts.get((UPSERT, True), 0),
            deleted=counts.get((DELETE, True), 0),
        )

    def merge(self, changes: DataFrame, layout: Layout, properties: Mapping[str, str]) -> None:
        """One MERGE, one commit: upserts become exactly their image, deletes remove their row, and no row is
        changed by a write older than the one it already shows."""
        with self._registered(changes) as view:
            keys = [c.name for c in layout.key_columns]
            columns = [c.name for c in layout.columns]
            on = " AND ".join(f"t.{quote(k)} = s.{quote(k)}" for k in keys)
            newer = f"s.{quote(WRITE_TIME_COLUMN)} >= t.{quote(WRITE_TIME_COLUMN)}"
            assignments = ", ".join(f"t.{quote(c)} = s.{quote(c)}" for c in columns if c not in keys)
            names = ", ".join(quote(c) for c in columns)
            values = ", ".join(f"s.{quote(c)}" for c in columns)
            statement = (
                f"MERGE INTO {self.full_name} t USING {view} s ON {on} "
                f"WHEN MATCHED AND s.{OP_COLUMN} = '{DELETE}' AND {newer} THEN DELETE "
                f"WHEN MATCHED AND s.{OP_COLUMN} = '{UPSERT}' AND {newer} THEN UPDATE SET {assignments} "
                f"WHEN NOT MATCHED AND s.{OP_COLUMN} = '{UPSERT}' THEN INSERT ({names}) VALUES ({values})"
            )
            with self.snapshot_properties(properties):
                self.spark.sql(statement)

    def commit_empty(self, properties: Mapping[str, str]) -> None:
        """Commit a snapshot that changes no row but carries `properties` (exports with nothing to apply)."""
        jvm = self.spark.sparkContext._jvm
        assert jvm is not None
        spark_catalog = self.spark._jsparkSession.sessionState().catalogManager().catalog(self.catalog)
        identifier = jvm.org.apache.iceberg.catalog.TableIdentifier.parse(f"{self.namespace}.{self.name}")
        append = spark_catalog.icebergCatalog().loadTable(identifier).newAppend()
        for key, value in properties.items():
            append = append.set(key, value)
        append.commit()
        self.spark.sql(f"REFRESH TABLE {self.full_name}")

    def remove_orphan_files(self, older_than: datetime) -> int:
        """Delete files in the table's location that no snapshot references and that are older than
        `older_than`: what a run killed before its commit left behind. Returns how many."""
        moment = older_than.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        rows = self.spark.sql(
            f"CALL {quote(self.catalog)}.system.remove_orphan_files("
            f"table => {_sql_string(f'{self.namespace}.{self.name}')}, older_than => TIMESTAMP '{moment}')"
        ).collect()
        return len(rows)

    def tag(self, name: str, snapshot_id: int) -> None:
        self.spark.sql(f"ALTER TABLE {self.full_name} CREATE OR REPLACE TAG {quote(name)} AS OF VERSION {snapshot_id}")

    def tags(self) -> dict[str, int]:
        rows = self.spark.sql(
            f"SELECT name, snapshot_id FROM {self._metadata_table('refs')} WHERE type = 'TAG'"
        ).collect()
        return {row["name"]: int(row["snapshot_id"]) for row in rows}

    def read(self, version: str | int | None = None) -> DataFrame:
        if version is None:
            return self.spark.table(f"{self.catalog}.{self.namespace}.{self.name}")
        option = "versionAsOf"
        return self.spark.read.option(option, str(version)).table(f"{self.catalog}.{self.namespace}.{self.name}")

    def items(self, layout: Layout, version: str | int | None = None) -> dict[tuple[Any, ...], DecodedItem]:
        """The DynamoDB items the table holds (at a tag or snapshot), by key: for checks against the truth."""
        items: dict[tuple[Any, ...], DecodedItem] = {}
        for row in self.read(version).toLocalIterator():
            item = row_to_item(layout, row.asDict(recursive=True))
            items[tuple(item[c.attribute] for c in layout.key_columns)] = item
        return items

    def rows_written_between(self, layout: Layout, start_micros: int, end_micros: int) -> list[tuple[Any, ...]]:
        """Keys (decoded) and write times of the rows last written in [start, end) microseconds."""
        key_columns = layout.key_columns
        keys = ", ".join(quote(c.name) for c in key_columns)
        written = quote(WRITE_TIME_COLUMN)
        rows = self.spark.sql(
            f"SELECT {keys}, unix_micros({written}) AS written FROM {self.full_name} "
            f"WHERE {written} >= timestamp_micros({int(start_micros)}) "
            f"AND {written} < timestamp_micros({int(end_micros)})"
        ).collect()
        return [(tuple(from_cell(c, row[c.name]) for c in key_columns), int(row["written"])) for row in rows]

    @contextmanager
    def _registered(self, changes: DataFrame) -> Iterator[str]:
        """`changes` as a temporary view for the duration of a statement (nothing is left in the session)."""
        view = f"ddb_iceberg_changes_{self.name}"
        changes.createOrReplaceTempView(view)
        try:
            yield quote(view)
        finally:
            self.spark.catalog.dropTempView(view)


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
                f"{quote_path(*path, nested.name)} {spark_type(nested.type)} COMMENT {_sql_string(_doc(nested))}"
            )
        else:
            additions.extend(_nested_additions([*path, nested.name], nested.type, actual[nested.name].dataType))
    return additions
