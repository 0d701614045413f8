"""Partition evolution: an existing table's partition spec changed on request, never as a side effect of a sync.

Iceberg evolves a spec in metadata: files written before keep the spec they were written with (queries prune them
by it), new files take the new one, and upkeep's compaction rewrites old files into it. In order:
1. the time columns the new spec needs are added to the table (nullable; syncs ignore columns they do not know);
2. one commit replaces the spec's fields and records it in `ddb-iceberg.partition-spec`, so every later sync
   computes the time columns;
3. rows written before get their time columns (one UPDATE of the rows that lack them: also those a sync wrote
   between steps 1 and 2).
Each step can be run again: a run that dies after any of them is completed by running the command again.
It runs from `ddb-iceberg repartition`, or as the first step of upkeep when the request names partition fields
(`UpkeepRequest.partition_by`: Dagster's repartition job, on EMR Serverless as well).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from ddb_iceberg.engine.naming import quote
from ddb_iceberg.engine.partitioning import (
    PARTITION_SPEC_PROPERTY,
    PartitionField,
    PartitionSpec,
    Transform,
    time_column_ddl,
    time_columns_of,
)
from ddb_iceberg.engine.request import Log
from ddb_iceberg.engine.spark_session import apply_engine_settings
from ddb_iceberg.engine.spark_table import BUCKETS_PROPERTY, SparkIcebergTable, retried_on_conflict
from ddb_iceberg.errors import SyncError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@dataclass
class RepartitionResult:
    """What a repartition did; printed by the CLI."""

    table: str
    before: str
    after: str
    time_columns_added: list[str] = field(default_factory=list)
    rows_given_times: int = 0
    seconds: float = 0.0

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def describe(self) -> str:
        if self.before == self.after and not self.rows_given_times:
            return f"{self.table} is already partitioned by {self.after}: nothing changed."
        lines = [
            f"{self.table}: partitioned by {self.after} (before: {self.before}) in {self.seconds:.1f}s",
            "  files written before keep their partitioning until upkeep compacts them (ddb-iceberg maintain)",
        ]
        if self.time_columns_added:
            lines.append(f"  time columns added: {', '.join(self.time_columns_added)}")
        if self.rows_given_times:
            lines.append(f"  rows given their time columns: {self.rows_given_times}")
        return "\n".join(lines)


def repartition_table(
    spark: SparkSession, catalog: str, identifier: str, partition_by: tuple[str, ...], log: Log = lambda _m: None
) -> RepartitionResult:
    """Partition the table by `partition_by` (engine.partitioning's fields) from now on (module docstring)."""
    started = time.monotonic()
    spec = PartitionSpec.parse(partition_by)
    if not spec.fields:
        raise SyncError("name at least one partition field (--partition)")
    apply_engine_settings(spark)
    table = SparkIcebergTable(spark, catalog, identifier)
    name = f"{table.namespace}.{table.name}"
    if not table.exists():
        raise SyncError(f"table {name} does not exist: a sync creates it (with `--partition` for its first spec)")
    table.refresh()
    layout = table.layout()
    if layout is None:
        raise SyncError(f"table {name} was not created by ddb_iceberg: refusing to touch it")
    properties = table.properties()
    before = PartitionSpec.from_json(properties.get(PARTITION_SPEC_PROPERTY))
    result = RepartitionResult(name, str(before) if before else "the default (buckets of the partition key)", str(spec))
    times = time_columns_of(spec, layout, name)

    existing = table.spark.table(table.full_name).schema.fieldNames()
    missing = [column for column in times if column.name not in existing]
    if missing:
        log(f"Adding the time columns {', '.join(c.name for c in missing)} ...")
        additions = ", ".join(time_column_ddl(column) for column in missing)
        spark.sql(f"ALTER TABLE {table.full_name} ADD COLUMNS ({additions})")
        result.time_columns_added = [column.name for column in missing]
    if before != spec:
        log(f"Partitioning {name} by {spec} ...")
        _replace_spec(table, spec, layout, name)
    if times:
        log("Giving the rows written before their time columns ...")
        assignments = ", ".join(f"{quote(c.name)} = {c.expression}" for c in times)
        lacking = " OR ".join(f"({quote(c.name)} IS NULL AND ({c.expression}) IS NOT NULL)" for c in times)

        def fill() -> int:
            table.refresh()
            spark.sql(f"UPDATE {table.full_name} SET {assignments} WHERE {lacking}")
            snapshot = table.current_snapshot_id()
            summary = table.snapshot_summary(snapshot) if snapshot is not None else {}
            return int(summary.get("spark.merge-into.num-target-rows-updated", summary.get("added-records", 0)))

        if spark.table(table.full_name).where(lacking).limit(1).count():
            result.rows_given_times, _ = retried_on_conflict(fill, f"the repartition of {name}", log)
    result.seconds = round(time.monotonic() - started, 2)
    return result


def _replace_spec(table: SparkIcebergTable, spec: PartitionSpec, layout: Any, name: str) -> None:
    """One commit: the spec's fields replaced (those kept stay), the spec recorded, writes clustered by it."""
    jvm = table.spark.sparkContext._jvm
    assert jvm is not None
    expressions = jvm.org.apache.iceberg.expressions.Expressions
    iceberg = table._java_table()
    schema = iceberg.schema()
    current = {
        (str(f.transform()), str(schema.findColumnName(f.sourceId()))): str(f.name()) for f in iceberg.spec().fields()
    }
    wanted: dict[tuple[str, str], Any] = {}
    for partition_field, column in zip(spec.fields, spec.source_columns(layout, name), strict=True):
        wanted[(_transform_name(partition_field), column)] = _term(expressions, partition_field, column)
    transaction = iceberg.newTransaction()
    update = transaction.updateSpec()
    for key, field_name in current.items():
        if key not in wanted:
            update = update.removeField(field_name)
    for key, term in wanted.items():
        if key not in current:
            update = update.addField(term)
    update.commit()
    settings = transaction.updateProperties().set(PARTITION_SPEC_PROPERTY, spec.to_json()).set(BUCKETS_PROPERTY, "0")
    settings.commit()
    transaction.commitTransaction()
    table.refresh()
    if layout.has_key_columns:
        keys = ", ".join(quote(c.name) for c in layout.key_columns)
        table.spark.sql(f"ALTER TABLE {table.full_name} WRITE DISTRIBUTED BY PARTITION LOCALLY ORDERED BY {keys}")


def _transform_name(partition_field: PartitionField) -> str:
    """The field's transform as Iceberg names it (`bucket[16]`, `day`)."""
    if partition_field.transform is Transform.BUCKET:
        return f"bucket[{partition_field.buckets}]"
    return str(partition_field.transform)


def _term(expressions: Any, partition_field: PartitionField, column: str) -> Any:
    transform = partition_field.transform
    if transform is Transform.BUCKET:
        return expressions.bucket(column, partition_field.buckets)
    if transform is Transform.IDENTITY:
        return expressions.ref(column)
    return getattr(expressions, str(transform))(column)
