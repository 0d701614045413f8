"""Types, names and drift through the whole engine: what lands in the Iceberg table, exactly."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any, NamedTuple, cast

import pyarrow as pa
import pytest
from pyiceberg.types import BinaryType, BooleanType, DecimalType, ListType, LongType, StringType, StructType

from ddb_iceberg.catalog_access import local_catalog
from ddb_iceberg.engine.naming import assign_column_names
from ddb_iceberg.engine.rows import arrow_type, canonical_item, from_cell, typed_array, typed_cells
from ddb_iceberg.engine.schema import (
    BINARY,
    BOOLEAN,
    JSON_TEXT,
    LONG,
    NUMBER_TEXT,
    STRING,
    TIMESTAMP,
    WRITE_TIME,
    Column,
    ColumnType,
    Kind,
    glue_type_string,
    plan_layout,
)
from ddb_iceberg.engine.spark_table import _IcebergPrimitiveType
from ddb_iceberg.engine.spark_types import doc, glue_comment, spark_type
from ddb_iceberg.engine.sync import SyncResult
from ddb_iceberg.exports import ExportSource, ExportView
from ddb_iceberg.exports.typed_values import DecodedValue
from ddb_iceberg.simulator import ExportTarget, SimulatedTable, write_full_export, write_incremental_export
from ddb_iceberg_tests.helpers import LocalWarehouse

T0 = datetime(2026, 3, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
BIG = Decimal("12345678901234567890123456789012345678")  # 38 digits: beyond bigint and double


def _put(minutes: float, item: dict[str, Any]) -> tuple[datetime, dict[str, Any], tuple[Any, ...]]:
    return (T0 + timedelta(minutes=minutes), item, (item["pk"],))


def _delete(minutes: float, pk: str) -> tuple[datetime, None, tuple[Any, ...]]:
    return (T0 + timedelta(minutes=minutes), None, (pk,))


WRITES = [
    _put(
        -30,
        {
            "pk": "a",
            "first-name": "Ada",
            "a.b": "dotted",
            "Mixed Case": "x",
            "select": "reserved",
            "_ddb_write_time": "mine",
            "quantity": Decimal(3),
            "big": BIG,
            "price": Decimal("12.5"),
            "huge": Decimal("9.99E+125"),
            "tiny": Decimal("1E-130"),
            "flag": True,
            "blob": b"\x00\xff",
            "nothing": None,
            "tags": frozenset({"b", "a"}),
            "scores": frozenset({Decimal("1.5"), Decimal(-2)}),
            "blobs": frozenset({b"\x01", b"\x00"}),
            "profile": {"city": "Oslo", "zip": "0150", "geo": {"lat": Decimal("59.91")}},
            "lines": [{"sku": "X", "qty": Decimal(1)}, {"sku": "Y", "qty": Decimal(2)}],
            "mixed": ["one", Decimal(2), {"three": True}],
            "empty_list": [],
            "empty_text": "",
        },
    ),
    _put(-20, {"pk": "b", "First Name": "Grace", "first_name": "collides", "quantity": Decimal(5)}),
    _put(-10, {"pk": "gone", "quantity": Decimal(1)}),
    # In the first window: drift (quantity N -> S), a new nested field, an attribute removed, a delete.
    _put(
        10,
        {
            "pk": "a",
            "first-name": "Ada",
            "quantity": "three",
            "price": Decimal("12.55"),
            "profile": {"city": "Oslo", "zip": "0150", "geo": {"lat": Decimal("59.91")}, "floor": Decimal(4)},
            "big": -BIG,
        },
    ),
    _delete(20, "gone"),
    _put(30, {"pk": "c", "quantity": Decimal("2.5"), "price": Decimal("0.000000000000000000001")}),
    _delete(40, "never-existed"),
]


Synced = tuple[LocalWarehouse, SimulatedTable, SyncResult]


@pytest.fixture
def synced(warehouse: LocalWarehouse, tmp_path: Path) -> Synced:
    table = SimulatedTable.scripted(("pk",), WRITES)
    target = ExportTarget.for_source(ExportSource.from_uri(str(tmp_path / "exports")), partitions=3)
    write_full_export(table, target, T0)
    warehouse.sync(tmp_path / "exports", key_attributes=("pk",))
    write_incremental_export(table, target, T0, T0 + HOUR, ExportView.NEW_IMAGE)
    return warehouse, table, warehouse.sync(tmp_path / "exports")


def test_values_are_exact(synced: Synced) -> None:
    warehouse, table, _ = synced
    truth = {key: canonical_item(item) for key, item in table.state_at(T0 + HOUR).items()}
    assert warehouse.items() == truth
    assert ("gone",) not in warehouse.items() and ("never-existed",) not in warehouse.items()


def test_schema_names_types_and_docs(synced: Synced) -> None:
    warehouse, _, _ = synced
    schema = local_catalog(warehouse.path, warehouse.catalog).load_table("dynamodb.orders").schema()
    fields = {f.name: f for f in schema.fields}
    docs = {f.name: f.doc for f in schema.fields}
    assert docs["a_b"] == "a.b" and docs["mixed_case"] == "Mixed Case"
    assert docs["select_"] == "select" and docs["ddb_write_time"] == "_ddb_write_time"
    # Three attributes want first_name: the one already named so gets it, then the others in sorted order.
    assert (docs["first_name"], docs["first_name_2"], docs["first_name_3"]) == (
        "first_name",
        "First Name",
        "first-name",
    )
    assert all(name == name.lower() and all(c.isalnum() or c == "_" for c in name) for name in fields)
    assert fields["pk"].required and schema.identifier_field_names() == {"pk"}
    assert isinstance(fields["_ddb_write_time"].field_type, type(fields["_ddb_write_time"].field_type))
    assert isinstance(fields["quantity"].field_type, LongType)
    assert isinstance(fields["quantity__s"].field_type, StringType)  # the drifted S values
    assert isinstance(fields["big"].field_type, DecimalType) and fields["big"].field_type.precision == 38
    assert isinstance(fields["huge"].field_type, StringType)  # no decimal(38, s) holds 9.99E+125
    assert isinstance(fields["flag"].field_type, BooleanType) and isinstance(fields["blob"].field_type, BinaryType)
    assert isinstance(fields["tags"].field_type, ListType) and isinstance(fields["profile"].field_type, StructType)
    assert isinstance(fields["mixed"].field_type, StringType)  # a list of mixed types is DynamoDB JSON text
    assert "nothing" not in fields  # only ever NULL: no type to give it
    profile = fields["profile"].field_type
    assert isinstance(profile, StructType) and [f.name for f in profile.fields] == ["city", "geo", "zip", "floor"]


def test_cells_as_a_query_sees_them(synced: Synced) -> None:
    warehouse, _, _ = synced
    row = (
        warehouse.spark.sql(f"SELECT * FROM {warehouse.table().full_name} WHERE pk = 'a'")
        .collect()[0]
        .asDict(recursive=True)
    )
    assert row["quantity"] is None and row["quantity__s"] == "three"
    assert row["big"] == -BIG and row["price"] == Decimal("12.55")
    assert row["tags"] is None and row["first_name_3"] == "Ada"
    before = warehouse.spark.sql(
        f"SELECT huge, tiny, scores, blobs FROM {warehouse.table().full_name} VERSION AS OF 'ddb-20260301T000000Z' "
        "WHERE pk = 'a'"
    ).first()
    assert before is not None
    assert before["huge"] == "999" + "0" * 123 and before["tiny"] == "0." + "0" * 129 + "1"
    assert before["scores"] == [Decimal(-2), Decimal("1.5")] and before["blobs"] == [b"\x00", b"\x01"]
    mixed = warehouse.spark.sql(f"SELECT mixed FROM {warehouse.table().full_name} WHERE pk = 'a'").first()
    assert mixed is not None and mixed["mixed"] is None  # the update removed it: the row stays, the cell is NULL


def test_drift_and_schema_changes_are_reported(synced: Synced) -> None:
    _, _, result = synced
    assert "attribute 'quantity': 1 S value(s) kept in column quantity__s" in result.type_drift
    assert "attribute 'quantity': 1 N value(s) kept in column quantity__n" in result.type_drift
    assert any("added field profile.floor" in change for change in result.schema_changes)
    assert (result.rows_inserted, result.rows_updated, result.rows_deleted) == (1, 1, 1)


@pytest.mark.parametrize(
    ("attribute", "comment"),
    [
        ("first-name", "first-name"),
        ("tab\tkept", "tab\tkept"),
        ("two\nlines\r\n", "two\\nlines\\r\\n"),
        ("bell\x07 nul\x00 del\x7f", "bell\\u0007 nul\\u0000 del\x7f"),  # DEL is in Glue's pattern
        ("lone \ud800 surrogate, \ufffe", "lone \\ud800 surrogate, \\ufffe"),
        ("x" * 255, "x" * 255),
        ("x" * 256, "x" * 252 + "…"),
    ],
)
def test_docs_are_glue_comments(attribute: str, comment: str) -> None:
    assert doc(Column("c", attribute, "S", STRING)) == comment


def test_docs_are_cut_by_utf8_bytes_at_a_character_boundary() -> None:
    # Glue's guide counts bytes, its API reference characters; a JVM counts UTF-16 units: 255 bytes satisfy all.
    for attribute in ("😀" * 100, "é" * 200, "a" + "😀" * 70, "\n" * 200):
        comment = glue_comment(attribute)
        assert len(comment.encode()) <= 255 and len(comment.encode("utf-16-le")) // 2 <= 255
        assert comment.endswith("…") and comment[:-1] in attribute.replace("\n", "\\n")
    assert glue_comment("😀" * 100) == "😀" * 63 + "…"  # 252 bytes and the mark, no half character
    # Nested fields' docs (Spark DDL `COMMENT`, not sent to Glue) follow the same rule.
    struct = ColumnType(Kind.STRUCT, fields=(Column("f", "x" * 300, "S", STRING),))
    assert spark_type(struct) == f"STRUCT<`f`: STRING COMMENT '{'x' * 252}…'>"
    assert doc(WRITE_TIME).startswith("ddb_iceberg: time of the row's last write")


def test_column_names_stay_within_glues_255_characters() -> None:
    long = "attribute " + "n" * 300
    names = assign_column_names([long, long + " too", long + " three"], [])
    assert names == {
        long: "attribute_" + "n" * 245,
        long + " three": "attribute_" + "n" * 243 + "_2",  # sorted: " three" before " too"
        long + " too": "attribute_" + "n" * 243 + "_3",
    }
    layout = plan_layout(None, ["pk"], [{"pk": "a", long: "text"}, {"pk": "b", long: Decimal(1)}])
    primary, fallback = layout.columns_of(long)
    assert (primary.name, fallback.name) == ("attribute_" + "n" * 245, "attribute_" + "n" * 242 + "__n")
    assert all(1 <= len(c.name) <= 255 for c in layout.columns)


class KindCase(NamedTuple):
    """One column kind in each type system, and a DynamoDB value that a column of it holds."""

    column_type: ColumnType
    glue: str
    spark: str  # without comments
    arrow: pa.DataType
    iceberg: str | None  # Iceberg's name of the type; None: no primitive (key columns are added as primitives)
    value: tuple[str, DecodedValue] | None  # (DynamoDB type, value); None: the column holds no DynamoDB value


KIND_CASES = [
    KindCase(STRING, "string", "STRING", pa.string(), "string", ("S", "text")),
    KindCase(LONG, "bigint", "BIGINT", pa.int64(), "long", ("N", Decimal(-(2**63)))),
    KindCase(
        ColumnType(Kind.DECIMAL, scale=2),
        "decimal(38,2)",
        "DECIMAL(38, 2)",
        pa.decimal128(38, 2),
        "decimal(38, 2)",
        ("N", Decimal("-123456789012345678901234567890123456.25")),
    ),
    KindCase(NUMBER_TEXT, "string", "STRING", pa.string(), "string", ("N", Decimal("9.99E+125"))),
    KindCase(BOOLEAN, "boolean", "BOOLEAN", pa.bool_(), "boolean", ("BOOL", False)),
    KindCase(BINARY, "binary", "BINARY", pa.binary(), "binary", ("B", b"\x00\xff")),
    KindCase(JSON_TEXT, "string", "STRING", pa.string(), "string", ("L", ["one", Decimal("2.50"), {"three": True}])),
    KindCase(
        ColumnType(Kind.STRUCT, fields=(Column("f", "the f", "N", LONG),)),
        "struct<f:bigint>",
        "STRUCT<`f`: BIGINT>",
        pa.struct([pa.field("f", pa.int64())]),
        None,
        ("M", {"the f": Decimal(1)}),
    ),
    KindCase(
        ColumnType(Kind.LIST, element=STRING),
        "array<string>",
        "ARRAY<STRING>",
        pa.list_(pa.string()),
        None,
        ("SS", frozenset({"b", "a"})),
    ),
    KindCase(TIMESTAMP, "timestamp", "TIMESTAMP", pa.timestamp("us", tz="UTC"), "timestamptz", None),
]

# Iceberg's Java `Types` as the key columns' visitor calls them, each type made as its Iceberg name (no JVM needed).
ICEBERG_TYPES = SimpleNamespace(
    StringType=SimpleNamespace(get=lambda: "string"),
    LongType=SimpleNamespace(get=lambda: "long"),
    DecimalType=SimpleNamespace(of=lambda precision, scale: f"decimal({precision}, {scale})"),
    BooleanType=SimpleNamespace(get=lambda: "boolean"),
    BinaryType=SimpleNamespace(get=lambda: "binary"),
    TimestampType=SimpleNamespace(withZone=lambda: "timestamptz"),
)


def test_every_kind_has_a_case() -> None:
    # A new kind gets a row above, and with it a type in each type system and a conversion of its values.
    assert [case.column_type.kind for case in KIND_CASES] == list(Kind)


@pytest.mark.parametrize("case", KIND_CASES, ids=lambda case: case.column_type.kind.value)
def test_each_kind_in_each_type_system(case: KindCase) -> None:
    assert glue_type_string(case.column_type) == case.glue
    assert spark_type(case.column_type, comments=False) == case.spark
    assert arrow_type(case.column_type) == case.arrow
    iceberg = _IcebergPrimitiveType(ICEBERG_TYPES)
    if case.iceberg is None:
        with pytest.raises(TypeError, match="no primitive"):
            iceberg.visit(case.column_type)
    else:
        assert iceberg.visit(case.column_type) == case.iceberg


@pytest.mark.parametrize("case", KIND_CASES, ids=lambda case: case.column_type.kind.value)
def test_each_kind_holds_its_values_exactly(case: KindCase) -> None:
    if case.value is None:
        with pytest.raises(TypeError, match="timestamp column"):
            typed_cells(Column("c", "c", "S", case.column_type), typed_array(["x"]))
        with pytest.raises(TypeError, match="timestamp column"):
            from_cell(Column("c", "c", "S", case.column_type), datetime(2026, 3, 1, tzinfo=UTC))
        return
    tag, value = case.value
    column = Column("c", "c", tag, case.column_type)
    held_at, cells = typed_cells(column, typed_array([value]))
    assert held_at.to_pylist() == [True] and cells.type == arrow_type(case.column_type)
    held = from_cell(column, cells[0].as_py())
    assert held == value and type(held) is type(value)


# Every target of the kinds: each must refuse a kind it has no mapping for, never treat it as another kind.
KIND_TARGETS: dict[str, Callable[[ColumnType], object]] = {
    "glue": glue_type_string,
    "spark": spark_type,
    "arrow": arrow_type,
    "iceberg": _IcebergPrimitiveType(ICEBERG_TYPES).visit,
    "to cell": lambda column_type: typed_cells(Column("c", "c", "N", column_type), typed_array([Decimal(1)])),
    "from cell": lambda column_type: from_cell(Column("c", "c", "N", column_type), "1.5"),
    "in a list": lambda column_type: arrow_type(ColumnType(Kind.LIST, element=column_type)),
}


@pytest.mark.parametrize("target", KIND_TARGETS.values(), ids=KIND_TARGETS.keys())
def test_an_unknown_kind_is_an_error(target: Callable[[ColumnType], object]) -> None:
    with pytest.raises(TypeError, match="no mapping for column kind 'double'"):
        target(ColumnType(cast(Kind, "double")))
