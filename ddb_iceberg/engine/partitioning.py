"""A table's partition spec, chosen per table: identity, bucket, and time transforms of an attribute that holds a
time as epoch seconds, epoch milliseconds or ISO 8601 text.

The default (no spec given) is what the bench measured best: buckets of the partition key, so that a window's
MERGE joins bucket to bucket. A spec is written as fields, each one of

    ATTRIBUTE                      identity(ATTRIBUTE)
    bucket(N, ATTRIBUTE)           year|month|day|hour(ATTRIBUTE, epoch_seconds|epoch_millis|iso)

where ATTRIBUTE is the DynamoDB attribute's name. Iceberg's time transforms take only timestamps and dates, so a
time field gets a column of its own, `_ddb_<column>_time` (a timestamp, UTC), computed from the attribute's column
in every write (NULL when a value is not a time in the stated encoding, or drifted into a fallback column). The spec
is kept in the table property `ddb-iceberg.partition-spec`; a sync never changes it (`ddb-iceberg repartition`
does).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum

from ddb_iceberg.engine.ledger import PROPERTY_PREFIX
from ddb_iceberg.engine.naming import quote, with_suffix
from ddb_iceberg.engine.schema import Column, Kind, Layout
from ddb_iceberg.engine.spark_types import glue_comment, sql_string
from ddb_iceberg.errors import SettingError, SyncError

PARTITION_SPEC_PROPERTY = PROPERTY_PREFIX + "partition-spec"
MAX_BUCKETS = 1 << 20
_FIELD = re.compile(r"^\s*(?P<transform>[A-Za-z]+)\s*\((?P<arguments>.*)\)\s*$", re.DOTALL)
_SYNTAX = (
    "ATTRIBUTE, identity(ATTRIBUTE), bucket(N, ATTRIBUTE) or year|month|day|hour(ATTRIBUTE, "
    "epoch_seconds|epoch_millis|iso)"
)


class Transform(StrEnum):
    IDENTITY = "identity"
    BUCKET = "bucket"
    YEAR = "year"
    MONTH = "month"
    DAY = "day"
    HOUR = "hour"


class TimeEncoding(StrEnum):
    EPOCH_SECONDS = "epoch_seconds"
    EPOCH_MILLIS = "epoch_millis"
    ISO = "iso"


TIME_TRANSFORMS = (Transform.YEAR, Transform.MONTH, Transform.DAY, Transform.HOUR)
# Columns a time field can be computed from: numbers (epoch) and text (epoch digits, or ISO 8601).
_TIME_SOURCES = {
    TimeEncoding.EPOCH_SECONDS: (Kind.LONG, Kind.DECIMAL, Kind.NUMBER_TEXT, Kind.STRING),
    TimeEncoding.EPOCH_MILLIS: (Kind.LONG, Kind.DECIMAL, Kind.NUMBER_TEXT, Kind.STRING),
    TimeEncoding.ISO: (Kind.STRING,),
}
# Columns identity and bucket can partition by: Iceberg's primitive types.
_PRIMITIVES = (Kind.STRING, Kind.LONG, Kind.DECIMAL, Kind.NUMBER_TEXT, Kind.BOOLEAN, Kind.BINARY)


@dataclass(frozen=True)
class PartitionField:
    """One field of a partition spec, on a DynamoDB attribute."""

    transform: Transform
    attribute: str
    buckets: int = 0
    encoding: TimeEncoding | None = None

    @classmethod
    def parse(cls, text: str) -> PartitionField:
        """A field as written (module docstring); a SettingError names the field and the syntax."""
        match = _FIELD.match(text)
        if match is None:
            if not text.strip():
                raise SettingError(f"partition field {text!r} is empty: write {_SYNTAX}")
            return cls(Transform.IDENTITY, text.strip())
        name, arguments = match["transform"].lower(), match["arguments"]
        try:
            transform = Transform(name)
        except ValueError:
            raise SettingError(f"partition field {text!r}: unknown transform {name!r}; write {_SYNTAX}") from None
        if transform is Transform.IDENTITY:
            return cls(transform, _attribute(arguments, text))
        if transform is Transform.BUCKET:
            count, _, attribute = arguments.partition(",")
            if not count.strip().isdigit() or not 1 <= int(count) <= MAX_BUCKETS:
                raise SettingError(f"partition field {text!r}: N must be a whole number from 1 to {MAX_BUCKETS:,}")
            return cls(transform, _attribute(attribute, text), buckets=int(count))
        attribute, _, encoding = arguments.rpartition(",")
        try:
            time_encoding = TimeEncoding(encoding.strip().lower())
        except ValueError:
            raise SettingError(
                f"partition field {text!r}: a time transform names how the attribute holds the time: "
                f"{transform}(ATTRIBUTE, epoch_seconds|epoch_millis|iso)"
            ) from None
        return cls(transform, _attribute(attribute, text), encoding=time_encoding)

    def __str__(self) -> str:
        if self.transform is Transform.BUCKET:
            return f"bucket({self.buckets}, {self.attribute})"
        if self.encoding is not None:
            return f"{self.transform}({self.attribute}, {self.encoding})"
        return f"identity({self.attribute})"


def _attribute(text: str, field: str) -> str:
    if not text.strip():
        raise SettingError(f"partition field {field!r} names no attribute: write {_SYNTAX}")
    return text.strip()


@dataclass(frozen=True)
class PartitionSpec:
    """A table's partition spec as chosen (None of it: the default, buckets of the partition key)."""

    fields: tuple[PartitionField, ...]

    @classmethod
    def parse(cls, texts: tuple[str, ...] | list[str]) -> PartitionSpec:
        fields = tuple(PartitionField.parse(text) for text in texts)
        seen = [str(field) for field in fields]
        if len(set(seen)) != len(seen):
            raise SettingError(f"partition spec {', '.join(seen)} names a field twice")
        return cls(fields)

    def to_json(self) -> str:
        return json.dumps([str(field) for field in self.fields])

    @classmethod
    def from_json(cls, text: str | None) -> PartitionSpec | None:
        """The spec a table property holds (None: the table has the default)."""
        return cls.parse(json.loads(text)) if text else None

    def __str__(self) -> str:
        return ", ".join(str(field) for field in self.fields)

    def source_columns(self, layout: Layout, table: str) -> list[str]:
        """The column each field partitions by (a time field: its time column); a SyncError names an attribute the
        table has no suitable column for."""
        names = []
        for field in self.fields:
            if field.encoding is not None:
                names.append(time_column_name(_column_of(layout, field, table, _TIME_SOURCES[field.encoding])))
            else:
                names.append(_column_of(layout, field, table, _PRIMITIVES).name)
        return names

    def sql(self, layout: Layout, table: str) -> str:
        """The spec in Spark SQL's `PARTITIONED BY (...)` terms."""
        terms = []
        for field, column in zip(self.fields, self.source_columns(layout, table), strict=True):
            if field.encoding is not None:
                terms.append(f"{field.transform}s({quote(column)})")
            else:
                terms.append(f"bucket({field.buckets}, {quote(column)})" if field.buckets else quote(column))
        return ", ".join(terms)


@dataclass(frozen=True)
class TimeColumn:
    """A column computed in every write from an attribute's column, for a time field of the spec."""

    name: str
    # Spark SQL over the table's columns.
    expression: str
    attribute: str
    encoding: TimeEncoding


def time_columns_of(spec: PartitionSpec | None, layout: Layout, table: str) -> list[TimeColumn]:
    """The time columns a spec needs (none for the default)."""
    columns: dict[str, TimeColumn] = {}
    for field in spec.fields if spec is not None else ():
        if field.encoding is not None:
            source = _column_of(layout, field, table, _TIME_SOURCES[field.encoding])
            name = time_column_name(source)
            expression = time_expression(quote(source.name), source.type.kind, field.encoding)
            columns[name] = TimeColumn(name, expression, field.attribute, field.encoding)
    return list(columns.values())


def time_column_ddl(column: TimeColumn) -> str:
    comment = f"ddb_iceberg: attribute {column.attribute} as a time ({column.encoding}), for partitioning"
    return f"{quote(column.name)} TIMESTAMP COMMENT {sql_string(glue_comment(comment))}"


def _column_of(layout: Layout, field: PartitionField, table: str, kinds: tuple[Kind, ...]) -> Column:
    """The attribute's primary column, of one of `kinds`."""
    columns = layout.columns_of(field.attribute)
    if not columns:
        raise SyncError(
            f"table {table}: the partition field {field} names attribute {field.attribute!r}, which no item has "
            "had yet: a table is partitioned by attributes its full export holds"
        )
    if columns[0].type.kind not in kinds:
        raise SyncError(
            f"table {table}: the partition field {field} cannot use attribute {field.attribute!r}, whose column "
            f"{columns[0].name} holds {columns[0].type.kind} values ({', '.join(kinds)} wanted)"
        )
    return columns[0]


def time_column_name(source: Column) -> str:
    """The name of the time column computed from `source`: `_ddb_<column>_time`."""
    return with_suffix("_ddb_" + source.name, "_time")


def time_expression(column: str, kind: Kind, encoding: TimeEncoding) -> str:
    """Spark SQL that makes a timestamp of `column`'s values in `encoding` (NULL for a value that is not one)."""
    if encoding is TimeEncoding.ISO:
        return f"try_cast({column} AS TIMESTAMP)"
    exact = column if kind is Kind.DECIMAL else f"try_cast({column} AS DECIMAL(38, 6))"
    scale = 1_000_000 if encoding is TimeEncoding.EPOCH_SECONDS else 1_000
    return f"timestamp_micros(try_cast(try_multiply({exact}, {scale}) AS BIGINT))"
