from __future__ import annotations

import pytest

from ddb_iceberg.engine.naming import assign_column_names, base_column_name, quote


@pytest.mark.parametrize(
    ("attribute", "column"),
    [
        ("first-name", "first_name"),
        ("a.b", "a_b"),
        ("Mixed Case", "mixed_case"),
        ("Passenger ID", "passenger_id"),
        ("select", "select_"),
        ("order", "order_"),
        ("_ddb_write_time", "ddb_write_time"),
        ("2fa", "c_2fa"),
        ("Zoë", "zoe"),
        ("日本", "attribute"),
        ("x" * 300, "x" * 255),
    ],
)
def test_base_names_are_lowercase_athena_identifiers(attribute: str, column: str) -> None:
    assert base_column_name(attribute) == column


def test_collisions_resolve_the_same_whatever_the_order() -> None:
    attributes = ["first_name", "First Name", "first-name"]
    expected = {"first_name": "first_name", "First Name": "first_name_2", "first-name": "first_name_3"}
    assert assign_column_names(attributes, []) == expected
    assert assign_column_names(list(reversed(attributes)), []) == expected


def test_taken_names_are_avoided() -> None:
    assert assign_column_names(["status"], ["status", "status_2"]) == {"status": "status_3"}


def test_quote_escapes_backticks() -> None:
    assert quote("we`ird") == "`we``ird`"
