"""What a sync or an upkeep run is asked to do, as one frozen value: built once where a request enters (the CLI,
a Dagster asset), validated there, and carried unchanged to the engine, whether it runs in this process or as a
Spark job elsewhere (`to_argv` and `from_argv` are the job's command line; a test round-trips every field).

Each field declares its command-line flag (`option`); the codec below reads the field's type, so a new field is
a new flag without a second list to keep in step.
"""

from __future__ import annotations

import argparse
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from ddb_iceberg.engine.partitioning import PartitionSpec
from ddb_iceberg.errors import SettingError
from ddb_iceberg.exports import ExportSource, S3Options

_Request = TypeVar("_Request")

# Where a run says what it is doing, line by line (the CLI's console, Dagster's log, the job's stderr).
Log = Callable[[str], None]

# A part of a table's identifier: what Spark SQL, the SQL catalog, Glue and Athena all accept as a name
# (Athena: "lowercase letters, numbers, and the underscore character"; capitals are kept for the local catalog).
_NAME_PART = re.compile(r"^[A-Za-z0-9_]{1,255}$")
# Files of a run that died before its commit are removed by a later sync at most once per this interval (the
# sweep lists the whole table).
ORPHAN_SWEEP_INTERVAL = timedelta(hours=24)
MAX_KEY_ATTRIBUTES = 2  # DynamoDB's primary key: a partition key and an optional sort key
MAX_BUCKETS = 1024
# How a table holds map attributes: a struct column each, or one DynamoDB JSON text column each.
MAPS_CHOICES = ("columns", "json")


def option(flag: str, *, default: Any = MISSING, unit: timedelta | None = None, repeated: bool = False) -> Any:
    """A request field and its command-line flag; `unit` is what a timedelta counts in on the command line;
    `repeated`: a tuple of texts given as the flag once per text (texts that may hold commas)."""
    return field(default=default, metadata={"flag": flag, "unit": unit, "repeated": repeated})


def parse_table_identifier(identifier: str, setting: str = "table") -> tuple[str, str]:
    """`<namespace>.<table>` as its two names; a SettingError names the setting, the value and the rule."""
    parts = identifier.split(".")
    if len(parts) != 2 or not all(_NAME_PART.match(part) for part in parts):
        raise SettingError(
            f"{setting} {identifier!r} is not <namespace>.<table> with each name of letters, digits and "
            "underscores (1 to 255 characters)"
        )
    return parts[0], parts[1]


# The change feed of `<namespace>.<table>` is `<namespace>.<table>__changes` (engine.change_feed), its item
# history `<namespace>.<table>__history` (engine.item_history).
FEED_SUFFIX = "__changes"
HISTORY_SUFFIX = "__history"


def feed_identifier(table: str) -> str:
    """The change feed's identifier: `<namespace>.<table>__changes`."""
    return companion_identifier(table, FEED_SUFFIX)


def history_identifier(table: str) -> str:
    """The item history's identifier: `<namespace>.<table>__history`."""
    return companion_identifier(table, HISTORY_SUFFIX)


def companion_identifier(table: str, suffix: str) -> str:
    """`<namespace>.<table><suffix>` (a SettingError when it is too long)."""
    namespace, name = parse_table_identifier(table)
    return f"{namespace}.{name}{suffix}"


def check_key_attributes(key_attributes: Sequence[str], setting: str = "key_attributes") -> None:
    """A DynamoDB key: a partition key and an optional sort key, none of them empty."""
    if len(key_attributes) > MAX_KEY_ATTRIBUTES or not all(key_attributes):
        raise SettingError(
            f"{setting} {','.join(key_attributes)!r} is not PARTITION_KEY[,SORT_KEY]: a DynamoDB key has one or two "
            "attributes"
        )


def check_buckets(buckets: int | None, setting: str = "buckets") -> None:
    """A new table's buckets of the partition key: 0 (not partitioned) to MAX_BUCKETS, or None (by size)."""
    if buckets is not None and not 0 <= buckets <= MAX_BUCKETS:
        raise SettingError(f"{setting} {buckets} is outside 0 to {MAX_BUCKETS}")


def check_maps(maps: str | None, setting: str = "maps") -> None:
    """How a new table holds map attributes: one of MAPS_CHOICES, or None (the table's own)."""
    if maps not in (None, *MAPS_CHOICES):
        raise SettingError(f"{setting} {maps!r} is not one of {', '.join(MAPS_CHOICES)}")


def utc_moment(text: str) -> datetime:
    """An ISO 8601 time (a trailing Z, or no zone: UTC) as an aware datetime."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise SettingError(f"{text!r} is not an ISO 8601 time such as 2026-01-01T00:00:00Z") from None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class SyncRequest:
    """Bring `table` up to the latest export under `source` (see `engine.sync.sync_table`)."""

    table: str = option("--table")
    source: str = option("--source")
    # The DynamoDB table's key attributes, partition key first (default: the incremental exports' `Keys`).
    key_attributes: tuple[str, ...] = option("--key", default=())
    allow_gaps: bool = option("--allow-gaps", default=False)
    # Replace the rows with the latest full export and the windows after it, in one commit.
    rebaseline: bool = option("--rebaseline", default=False)
    # Apply only exports that end by then; later ones are left for a later sync.
    up_to: datetime | None = option("--up-to", default=None)
    # For a new table: buckets of the partition key (0: not partitioned; None: by the full export's size).
    buckets: int | None = option("--buckets", default=None)
    # Table properties of a new table, over the defaults (`spark_table.TABLE_PROPERTIES`).
    table_properties: tuple[tuple[str, str], ...] = option("--table-property", default=())
    # Also keep the change feed `<table>__changes`: one row per key per applied export (engine.change_feed).
    change_feed: bool = option("--change-feed", default=False)
    # Also keep the item history `<table>__history` (SCD type 2), built from the change feed, which it turns on
    # (engine.item_history).
    history: bool = option("--history", default=False)
    # A new table's partition spec (engine.partitioning; none: buckets of the partition key). A sync never changes
    # an existing table's: it refuses one that asks for another (a repartition changes it: `UpkeepRequest`).
    partition_by: tuple[str, ...] = option("--partition", default=(), repeated=True)
    # A new table's maps: "columns" (a struct per map attribute) or "json" (one DynamoDB JSON text column each);
    # None: the table's own ("columns" for a new table).
    maps: str | None = option("--maps", default=None)
    # The launcher's name for this request, kept in the commit's ledger entry.
    request_id: str | None = option("--request-id", default=None)
    s3_region: str | None = option("--s3-region", default=None)
    s3_endpoint_url: str | None = option("--s3-endpoint-url", default=None)
    orphan_sweep_interval: timedelta = option(
        "--orphan-sweep-hours", default=ORPHAN_SWEEP_INTERVAL, unit=timedelta(hours=1)
    )

    def __post_init__(self) -> None:
        parse_table_identifier(self.table)
        if self.keeps_feed:
            parse_table_identifier(feed_identifier(self.table), "change feed")
        if self.history:
            parse_table_identifier(history_identifier(self.table), "item history")
        if not self.source:
            raise SettingError("source is empty: give a directory or s3://bucket/prefix that holds AWSDynamoDB/")
        ExportSource.check_uri(self.source)
        check_key_attributes(self.key_attributes, "key")
        if self.up_to is not None and self.up_to.tzinfo is None:
            raise SettingError(f"up_to {self.up_to.isoformat()} has no time zone")
        check_buckets(self.buckets)
        PartitionSpec.parse(self.partition_by)
        check_maps(self.maps)
        if self.orphan_sweep_interval < timedelta(0):
            raise SettingError("the orphan sweep interval is negative")

    @property
    def keeps_feed(self) -> bool:
        """Whether the sync writes the change feed: asked for, or needed by the item history."""
        return self.change_feed or self.history

    def export_source(self) -> ExportSource:
        return ExportSource.from_uri(self.source, S3Options(region=self.s3_region, endpoint_url=self.s3_endpoint_url))

    def to_argv(self) -> list[str]:
        return to_argv(self)

    @classmethod
    def from_argv(cls, argv: Sequence[str]) -> SyncRequest:
        return from_argv(cls, argv)


@dataclass(frozen=True)
class UpkeepSettings:
    """What upkeep keeps and when it compacts (the asset's config and the CLI give them in days)."""

    snapshot_retention: timedelta = option(
        "--snapshot-retention-days", default=timedelta(days=7), unit=timedelta(days=1)
    )
    tag_retention: timedelta = option("--tag-retention-days", default=timedelta(days=30), unit=timedelta(days=1))
    # Older than any run can take: a file younger than this may belong to a sync still writing.
    orphan_age: timedelta = option("--orphan-age-days", default=timedelta(days=3), unit=timedelta(days=1))
    # A file group is compacted once it has this many files (Iceberg's `min-input-files`) ...
    min_input_files: int = option("--min-input-files", default=5)
    # ... or any data file with at least this many delete files applying to it (`delete-file-threshold`).
    delete_file_threshold: int = option("--delete-file-threshold", default=1)

    def __post_init__(self) -> None:
        for name in ("snapshot_retention", "tag_retention"):
            if getattr(self, name) < timedelta(0):
                raise SettingError(f"{name} {getattr(self, name)} is negative")
        if self.orphan_age < timedelta(days=1):
            raise SettingError(
                f"orphan_age {self.orphan_age / timedelta(days=1):g} days is under 1 day: a younger file may belong "
                "to a sync still writing"
            )
        for name in ("min_input_files", "delete_file_threshold"):
            if getattr(self, name) < 1:
                raise SettingError(f"{name} {getattr(self, name)} is under 1")

    @classmethod
    def from_days(
        cls,
        snapshot_retention: float,
        tag_retention: float,
        orphan_age: float,
        min_input_files: int,
        delete_file_threshold: int = 1,
    ) -> UpkeepSettings:
        """The settings as users give them (CLI options, the asset's config): in days."""
        return cls(
            snapshot_retention=timedelta(days=snapshot_retention),
            tag_retention=timedelta(days=tag_retention),
            orphan_age=timedelta(days=orphan_age),
            min_input_files=min_input_files,
            delete_file_threshold=delete_file_threshold,
        )

    def in_days(self) -> dict[str, float]:
        """The arguments of `from_days` that give these settings back."""
        return {
            "snapshot_retention": self.snapshot_retention / timedelta(days=1),
            "tag_retention": self.tag_retention / timedelta(days=1),
            "orphan_age": self.orphan_age / timedelta(days=1),
            "min_input_files": self.min_input_files,
            "delete_file_threshold": self.delete_file_threshold,
        }


@dataclass(frozen=True)
class UpkeepRequest:
    """Compact, expire and clean `table` (see `engine.upkeep.maintain_table`)."""

    table: str = option("--table")
    settings: UpkeepSettings = field(default_factory=UpkeepSettings)
    # Partition the table by these fields first (engine.repartition), then compact it: the way to change an
    # existing table's partitioning where no `ddb-iceberg repartition` can reach it (a job on EMR Serverless).
    partition_by: tuple[str, ...] = option("--partition", default=(), repeated=True)
    # The launcher's name for this request, kept with the result on the table.
    request_id: str | None = option("--request-id", default=None)

    def __post_init__(self) -> None:
        parse_table_identifier(self.table)
        PartitionSpec.parse(self.partition_by)

    def to_argv(self) -> list[str]:
        return to_argv(self)

    @classmethod
    def from_argv(cls, argv: Sequence[str]) -> UpkeepRequest:
        return from_argv(cls, argv)


# The codec: a field's type says how it is written and read on a command line.


def to_argv(request: Any) -> list[str]:
    """The command line that `from_argv` turns back into `request` (fields at their default are left out)."""
    argv: list[str] = []
    for spec in fields(request):
        value = getattr(request, spec.name)
        if is_dataclass(value):
            argv += to_argv(value)
            continue
        if value == _default(spec):
            continue
        flag, kind = spec.metadata["flag"], _hints(type(request))[spec.name]
        if kind is bool:
            argv.append(flag)
        elif spec.metadata.get("repeated"):
            argv += [text for item in value for text in (flag, item)]
        elif _is_pairs(kind):
            argv += [text for key, item in value for text in (flag, f"{key}={item}")]
        else:
            argv += [flag, _encode(value, spec.metadata["unit"])]
    return argv


def from_argv(cls: type[_Request], argv: Sequence[str]) -> _Request:
    """The request that `to_argv` wrote; unknown flags are refused."""
    parser = argparse.ArgumentParser(prog=cls.__name__, add_help=False)
    add_arguments(parser, cls)
    return from_namespace(cls, parser.parse_args(list(argv)))


def add_arguments(parser: argparse.ArgumentParser, cls: type[Any]) -> None:
    """`cls`'s flags on `parser` (nested requests' flags too), for a command line that also carries others."""
    hints = _hints(cls)
    for spec in fields(cls):
        kind = hints[spec.name]
        if is_dataclass(kind):
            add_arguments(parser, kind)  # type: ignore[arg-type]
            continue
        flag, destination = spec.metadata["flag"], f"{cls.__name__}.{spec.name}"
        required = spec.default is MISSING and spec.default_factory is MISSING
        if kind is bool:
            parser.add_argument(flag, dest=destination, action="store_true")
        elif spec.metadata.get("repeated"):
            parser.add_argument(flag, dest=destination, action="append", default=[])
        elif _is_pairs(kind):
            parser.add_argument(flag, dest=destination, action="append", default=[], metavar="KEY=VALUE")
        else:
            parser.add_argument(flag, dest=destination, required=required, default=None)


def from_namespace(cls: type[_Request], namespace: argparse.Namespace) -> _Request:
    """The request of `cls` that `namespace` (parsed with `add_arguments`) holds."""
    hints = _hints(cls)
    values: dict[str, Any] = {}
    for spec in fields(cls):  # type: ignore[arg-type]
        kind = hints[spec.name]
        if is_dataclass(kind):
            values[spec.name] = from_namespace(kind, namespace)  # type: ignore[arg-type]
            continue
        raw = getattr(namespace, f"{cls.__name__}.{spec.name}")
        if kind is bool:
            values[spec.name] = bool(raw)
        elif spec.metadata.get("repeated"):
            values[spec.name] = tuple(raw)
        elif _is_pairs(kind):
            values[spec.name] = tuple(key_value_pair(text, spec.metadata["flag"]) for text in raw)
        elif raw is not None:
            values[spec.name] = _decode(raw, kind, spec.metadata["unit"], spec.metadata["flag"])
    return cls(**values)


def _default(spec: Any) -> Any:
    if spec.default is not MISSING:
        return spec.default
    return spec.default_factory() if spec.default_factory is not MISSING else MISSING


def _hints(cls: type[Any]) -> Mapping[str, Any]:
    return {name: _without_none(hint) for name, hint in typing.get_type_hints(cls).items()}


def _without_none(hint: Any) -> Any:
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        (kind,) = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return kind
    return hint


def _is_pairs(kind: Any) -> bool:
    return typing.get_origin(kind) is tuple and typing.get_origin(typing.get_args(kind)[0]) is tuple


def _encode(value: Any, unit: timedelta | None) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, timedelta):
        assert unit is not None, "a timedelta option declares the unit it counts in"
        return repr(value / unit)
    if isinstance(value, tuple):
        return ",".join(value)
    return str(value)


def _decode(text: str, kind: Any, unit: timedelta | None, flag: str) -> Any:
    try:
        if kind is datetime:
            return utc_moment(text)
        if kind is timedelta:
            assert unit is not None
            return float(text) * unit
        if typing.get_origin(kind) is tuple:
            return tuple(part.strip() for part in text.split(","))
        return kind(text)
    except ValueError:
        raise SettingError(f"{flag} {text!r} is not a {getattr(kind, '__name__', kind)}") from None


def key_value_pair(text: str, flag: str) -> tuple[str, str]:
    """`KEY=VALUE` as its two parts."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise SettingError(f"{flag} {text!r} is not KEY=VALUE")
    return key, value
