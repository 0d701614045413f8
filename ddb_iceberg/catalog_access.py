"""Reading the table without Spark: its ledger through PyIceberg, its rows through DuckDB.

PyIceberg reads the same catalog Spark writes (the SQLite file of the local warehouse, or Glue), so status,
checks and metadata need no JVM. DuckDB is the local stand-in for Athena.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ddb_iceberg.engine.ledger import (
    LAYOUT_PROPERTY,
    LEDGER_PROPERTY,
    REBASELINE_OF,
    UPKEEP_PROPERTY,
    Ancestor,
    LedgerEntry,
    find_ledger,
)
from ddb_iceberg.engine.rows import item_reader
from ddb_iceberg.engine.schema import Layout
from ddb_iceberg.engine.spark_session import CATALOG_NAME
from ddb_iceberg.engine.sync import SyncResult, tag_name
from ddb_iceberg.engine.upkeep import UpkeepResult, upkeep_result_of
from ddb_iceberg.exports.manifest import format_timestamp
from ddb_iceberg.exports.typed_values import DecodedItem

if TYPE_CHECKING:
    import duckdb
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table


def local_catalog(warehouse: str | Path, name: str = CATALOG_NAME) -> Catalog:
    """The local SQL catalog in `<warehouse>/catalog.db`, as PyIceberg sees it."""
    from pyiceberg.catalog.sql import SqlCatalog

    path = Path(warehouse).expanduser().resolve()
    if not (path / "catalog.db").exists():
        raise FileNotFoundError(f"no catalog at {path / 'catalog.db'}: run `ddb-iceberg sync` first")
    return SqlCatalog(name, uri=f"sqlite:///{path / 'catalog.db'}", warehouse=path.as_uri())


@dataclass
class TableStatus:
    """What the table's ledger says: baseline, exports applied, the time it reflects, gaps accepted."""

    table: str
    baseline_export: str | None = None
    reflects: str | None = None
    exports_applied: list[str] = field(default_factory=list)
    commits: list[dict[str, Any]] = field(default_factory=list)
    accepted_gaps: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    current_snapshot_id: int | None = None
    rows: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def ledger_history(table: Table) -> list[LedgerEntry]:
    """The ledger entries that describe the current snapshot, newest first (see `ledger.find_ledger`)."""

    def ancestry() -> Iterator[Ancestor]:
        snapshot = table.current_snapshot()
        while snapshot is not None:
            summary = dict(snapshot.summary.additional_properties) if snapshot.summary else {}
            parent = snapshot.parent_snapshot_id
            yield Ancestor(snapshot.snapshot_id, summary, snapshot.sequence_number or 0, parent)
            snapshot = table.snapshot_by_id(parent) if parent is not None else None

    def sequence_number_of(snapshot_id: int) -> int | None:
        snapshot = table.snapshot_by_id(snapshot_id)
        return (snapshot.sequence_number or 0) if snapshot is not None else None

    return find_ledger(ancestry(), table.properties.get(LEDGER_PROPERTY), sequence_number_of)


def table_status(catalog: Catalog, identifier: str) -> TableStatus:
    table = catalog.load_table(identifier)
    status = TableStatus(table=identifier)
    history = ledger_history(table)
    current = table.current_snapshot()
    if current is not None:
        status.current_snapshot_id = current.snapshot_id
        summary = current.summary.additional_properties if current.summary else {}
        # Rows in data files less the rows position deletes remove (the engine deletes each row once).
        status.rows = int(summary.get("total-records", 0)) - int(summary.get("total-position-deletes", 0))
    if history:
        status.baseline_export = history[0].baseline_export
        status.reflects = format_timestamp(history[0].reflects)
    for entry in reversed(history):
        status.exports_applied.extend(entry.applied_exports)
        status.accepted_gaps.extend(entry.accepted_gaps)
        status.commits.append(
            {
                "snapshot_id": entry.snapshot_id,
                "reflects": format_timestamp(entry.reflects),
                "exports": list(entry.applied_exports),
                "rows_inserted": entry.rows_inserted,
                "rows_updated": entry.rows_updated,
                "rows_deleted": entry.rows_deleted,
            }
        )
    status.tags = sorted(name for name, ref in table.refs().items() if ref.snapshot_ref_type.value == "tag")
    return status


LEDGER_RESULT_WARNING = "the job's result did not arrive; this result was read from the table's ledger"


def result_from_ledger(catalog: Catalog, identifier: str, request_id: str, up_to: datetime | None) -> SyncResult | None:
    """What a sync that made the request `request_id` did, as its ledger recorded it: its commit's entry; or,
    when it committed nothing, "up to date" if the table reflects `up_to` already. None if the ledger shows
    neither (the work cannot be confirmed)."""
    table = catalog.load_table(identifier)
    history = ledger_history(table)
    result = SyncResult(table=identifier, warnings=[LEDGER_RESULT_WARNING])
    entry = next((entry for entry in history if entry.request_id == request_id), None)
    if entry is None:
        latest = history[0] if history else None
        if latest is None or up_to is None or latest.reflects < up_to:
            return None
        result.snapshot_id, result.reflects = latest.snapshot_id, format_timestamp(latest.reflects)
        return result
    result.snapshot_id, result.reflects = entry.snapshot_id, format_timestamp(entry.reflects)
    result.tag = tag_name(entry.reflects) if tag_name(entry.reflects) in table.refs() else None
    result.applied_exports = [{"export_id": export_id} for export_id in entry.applied_exports]
    result.rows_inserted, result.rows_updated = entry.rows_inserted, entry.rows_updated
    result.rows_deleted = entry.rows_deleted
    result.accepted_gaps = list(entry.accepted_gaps)
    result.rebaseline_of = entry.properties.get(REBASELINE_OF)
    return result


UPKEEP_RESULT_WARNING = "the job's result did not arrive; this result was read from the table's properties"


def upkeep_result_from_table(catalog: Catalog, identifier: str, request_id: str) -> UpkeepResult | None:
    """What the upkeep that served `request_id` did, as it recorded it on the table (None if it did not)."""
    table = catalog.load_table(identifier)
    result = upkeep_result_of(table.properties.get(UPKEEP_PROPERTY), request_id)
    if result is not None:
        result.warnings.append(UPKEEP_RESULT_WARNING)
    return result


def table_items(
    catalog: Catalog, identifier: str, snapshot_id: int | None = None
) -> dict[tuple[Any, ...], DecodedItem]:
    """The DynamoDB items the table holds (at a snapshot), by key, read through PyIceberg."""
    table = catalog.load_table(identifier)
    layout_text = table.properties.get(LAYOUT_PROPERTY)
    if layout_text is None:
        raise ValueError(f"table {identifier} was not written by ddb_iceberg (no {LAYOUT_PROPERTY} property)")
    layout = Layout.from_json(layout_text)
    items: dict[tuple[Any, ...], DecodedItem] = {}
    read = item_reader(layout)
    for row in table.scan(snapshot_id=snapshot_id).to_arrow().to_pylist():
        item = read(row)
        items[tuple(item[attribute] for attribute in layout.key_attributes)] = item
    return items


def duckdb_connection() -> duckdb.DuckDBPyConnection:
    """DuckDB with its iceberg extension loaded from the PyPI packages (never from the network)."""
    import duckdb
    import duckdb_extension_avro
    import duckdb_extension_iceberg

    def extension(module: Any, name: str) -> str:
        return str(Path(module.__file__).parent / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension")

    connection = duckdb.connect()
    connection.execute("SET autoinstall_known_extensions = false")
    connection.load_extension(extension(duckdb_extension_avro, "avro"))  # iceberg reads manifests with it
    connection.load_extension(extension(duckdb_extension_iceberg, "iceberg"))
    return connection


def duckdb_with_tables(catalog: Catalog) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection where every table of the catalog is a view `<namespace>.<table>`."""
    connection = duckdb_connection()
    for namespace in catalog.list_namespaces():
        schema = ".".join(namespace)
        connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        for identifier in catalog.list_tables(namespace):
            location = catalog.load_table(identifier).metadata_location
            escaped = location.replace("'", "''")
            connection.execute(
                f'CREATE VIEW "{schema}"."{identifier[-1]}" AS SELECT * FROM iceberg_scan(\'{escaped}\')'
            )
    return connection
