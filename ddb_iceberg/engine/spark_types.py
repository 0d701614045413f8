"""Spark SQL DDL of the table's columns (no Spark needed to write it)."""

from __future__ import annotations

from ddb_iceberg.engine.naming import WRITE_TIME_COLUMN, quote
from ddb_iceberg.engine.schema import Column, ColumnType, Kind


def spark_type(column_type: ColumnType, *, comments: bool = True) -> str:
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
        return f"ARRAY<{spark_type(column_type.element, comments=comments)}>"
    fields = ", ".join(
        f"{quote(f.name)}: {spark_type(f.type, comments=comments)}"
        + (f" COMMENT {sql_string(doc(f))}" if comments else "")
        for f in column_type.fields
    )
    return f"STRUCT<{fields}>"


def doc(column: Column) -> str:
    if column.name == WRITE_TIME_COLUMN:
        return "ddb_iceberg: time of the row's last write (for rows of a full export: that export's exportTime)"
    return column.attribute


def sql_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def column_ddl(column: Column, *, comments: bool = True) -> str:
    """A column's definition; `comments` adds the attribute each column and struct field holds."""
    not_null = " NOT NULL" if column.required else ""
    comment = f" COMMENT {sql_string(doc(column))}" if comments else ""
    return f"{quote(column.name)} {spark_type(column.type, comments=comments)}{not_null}{comment}"
