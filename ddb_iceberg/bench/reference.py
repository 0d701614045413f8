"""The yardstick: a pipeline built the way the AWS Guidance sample for incremental exports is built.

That sample (aws-solutions-library-samples/guidance-for-incremental-data-exports-on-aws) runs one Spark job per
step: one infers a schema from the full export (`spark.read.json`), one creates the Iceberg table from the full
export (CTAS, each attribute's typed value as a column), and then one job per incremental export reads that
export's JSON and MERGEs its changes into the table with the table's defaults (copy-on-write: the data files a
change touches are rewritten). Its code cannot be shipped here, so this module follows its design, step for
step, with its cost structure: a Spark start per export, JSON schema inference, a copy-on-write MERGE. It keeps
values as the sample does (DynamoDB's typed JSON, numbers as text), not ddb_iceberg's exact typing.

Run as `python -m ddb_iceberg.bench.reference {detect|create|update} ...`, one process per step, as the
sample's jobs run.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ddb_iceberg.engine.naming import quote
from ddb_iceberg.engine.spark_session import CatalogSettings, SparkSettings, build_spark_session

if TYPE_CHECKING:
    from pyspark.sql import SparkSession
    from pyspark.sql.types import StructType

CATALOG = "reference"
TYPE_TAGS = ("S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS")


def _session(warehouse: str) -> SparkSession:
    # As a user of the sample starts Spark: no class data sharing archive, the JVM's default compilers.
    catalog = CatalogSettings(warehouse=warehouse, name=CATALOG)
    return build_spark_session(catalog, SparkSettings(class_data_sharing=False, quick_compiler_only=False))


def _struct(data_type: Any) -> StructType:
    from pyspark.sql.types import StructType

    assert isinstance(data_type, StructType), data_type
    return data_type


def _data_files(export_dir: Path) -> list[str]:
    source_root = export_dir.parent.parent  # the folder that holds AWSDynamoDB/
    lines = (export_dir / "manifest-files.json").read_text().splitlines()
    return [str(source_root / json.loads(line)["dataFileS3Key"]) for line in lines if line.strip()]


def detect(export_dir: Path, schema_file: Path, warehouse: str) -> None:
    """The schema: each attribute's DynamoDB type, inferred by Spark from the full export's JSON."""
    spark = _session(warehouse)
    item_type = _struct(spark.read.json(_data_files(export_dir)).schema["Item"].dataType)
    schema = {}
    for field in item_type.fields:
        tags = [nested.name for nested in _struct(field.dataType).fields if nested.name in TYPE_TAGS]
        schema[field.name] = tags[0] if tags else "S"
    schema_file.write_text(json.dumps(schema, indent=2))


def create(export_dir: Path, schema_file: Path, warehouse: str, table: str) -> None:
    """The table, from the full export, in one CTAS (the catalog's defaults: copy-on-write)."""
    spark = _session(warehouse)
    schema = json.loads(schema_file.read_text())
    spark.read.json(_data_files(export_dir)).createOrReplaceTempView("full_export")
    columns = ", ".join(f"Item.{quote(name)}.{tag} AS {quote(name)}" for name, tag in schema.items())
    namespace = table.split(".")[0]
    spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {CATALOG}.{namespace}")
    spark.sql(f"CREATE TABLE {CATALOG}.{table} USING iceberg AS SELECT {columns} FROM full_export")


def update(export_dir: Path, schema_file: Path, warehouse: str, table: str, keys: Sequence[str]) -> None:
    """One incremental export merged in: deletes, updates and inserts by key, in one MERGE."""
    spark = _session(warehouse)
    schema = json.loads(schema_file.read_text())
    changes = spark.read.json(_data_files(export_dir))
    if "Keys" not in changes.columns:
        return  # an export with no change at all
    image = _struct(changes.schema["NewImage"].dataType).fieldNames() if "NewImage" in changes.columns else []
    selected = [f"Keys.{quote(k)}.{schema[k]} AS {quote(k)}" for k in keys]
    selected += [
        f"NewImage.{quote(name)}.{tag} AS {quote(name)}" if name in image else f"NULL AS {quote(name)}"
        for name, tag in schema.items()
        if name not in keys
    ]
    deleted = "NewImage IS NULL" if "NewImage" in changes.columns else "TRUE"
    changes.selectExpr(*selected, f"{deleted} AS deleted").createOrReplaceTempView("changes")
    on = " AND ".join(f"t.{quote(k)} = s.{quote(k)}" for k in keys)
    names = ", ".join(quote(name) for name in schema)
    values = ", ".join(f"s.{quote(name)}" for name in schema)
    assignments = ", ".join(f"t.{quote(name)} = s.{quote(name)}" for name in schema)
    spark.sql(
        f"MERGE INTO {CATALOG}.{table} t USING changes s ON {on} WHEN MATCHED AND s.deleted THEN DELETE "
        f"WHEN MATCHED THEN UPDATE SET {assignments} "
        f"WHEN NOT MATCHED AND NOT s.deleted THEN INSERT ({names}) VALUES ({values})"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ddb_iceberg.bench.reference", description=__doc__)
    parser.add_argument("step", choices=["detect", "create", "update"])
    parser.add_argument("--export", type=Path, required=True, help="The export's folder (AWSDynamoDB/<id>)")
    parser.add_argument("--schema", type=Path, required=True)
    parser.add_argument("--warehouse", required=True)
    parser.add_argument("--table", default="reference.orders")
    parser.add_argument("--keys", default="customer_id,order_id")
    args = parser.parse_args(argv)
    if args.step == "detect":
        detect(args.export, args.schema, args.warehouse)
    elif args.step == "create":
        create(args.export, args.schema, args.warehouse, args.table)
    else:
        update(args.export, args.schema, args.warehouse, args.table, args.keys.split(","))
    return 0


if __name__ == "__main__":
    sys.exit(main())
