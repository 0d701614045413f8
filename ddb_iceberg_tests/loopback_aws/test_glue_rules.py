"""Glue's limits on columns and parameters, as the loopback server enforces them on boto3's requests."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from ddb_iceberg.loopback_aws import LoopbackAws
from ddb_iceberg.loopback_aws.glue_rules import SINGLE_LINE_PATTERN, GlueTableLimits, violations
from ddb_iceberg_tests.helpers import MOTO_CREDENTIALS, MOTO_REGION, MotoServer

DATABASE = "limits"
_tables = itertools.count()


@pytest.fixture(scope="module")
def glue() -> Iterator[Any]:
    """A glue client of a loopback server with Glue's limits alone, and a database in it."""
    server = LoopbackAws(rules=[GlueTableLimits()]).start()
    try:
        client = boto3.client(  # type: ignore[call-overload]
            "glue", endpoint_url=server.endpoint_url, region_name=MOTO_REGION, **MOTO_CREDENTIALS
        )
        client.create_database(DatabaseInput={"Name": DATABASE})
        yield client
    finally:
        server.stop()


def _table(*columns: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "Name": f"t{next(_tables)}",
        "StorageDescriptor": {"Columns": list(columns), "Location": "s3://bucket/t"},
        "Parameters": {"table_type": "ICEBERG"},
        **fields,
    }


def _refusal(glue: Any, table_input: dict[str, Any]) -> str:
    with pytest.raises(ClientError) as raised:
        glue.create_table(DatabaseName=DATABASE, TableInput=table_input)
    error = raised.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(glue.exceptions.EntityNotFoundException):  # refused before moto stored anything
        glue.get_table(DatabaseName=DATABASE, Name=table_input["Name"])
    return str(error["Message"])


def test_a_table_at_every_limit_is_accepted(glue: Any) -> None:
    columns: list[dict[str, Any]] = [
        {"Name": "n" * 255, "Type": "string", "Comment": "c" * 255},
        {"Name": "wide", "Type": "struct<" + "x" * (131_072 - 8) + ">", "Comment": "tab\tand 😀 and é"},
        {"Name": "plain", "Type": "bigint", "Parameters": {"k" * 255: "v" * 512_000}},
    ]
    table_input = _table(*columns, Description="two\nlines")
    glue.create_table(DatabaseName=DATABASE, TableInput=table_input)
    stored = glue.get_table(DatabaseName=DATABASE, Name=table_input["Name"])["Table"]
    assert [c["Name"] for c in stored["StorageDescriptor"]["Columns"]] == ["n" * 255, "wide", "plain"]
    table_input["StorageDescriptor"]["Columns"][0]["Comment"] = "changed"
    glue.update_table(DatabaseName=DATABASE, TableInput=table_input)


def test_a_comment_over_255_is_refused_naming_the_column(glue: Any) -> None:
    message = _refusal(glue, _table({"Name": "ok", "Type": "string"}, {"Name": "long_doc", "Comment": "c" * 256}))
    assert message == (
        "1 validation error detected: Value at 'tableInput.storageDescriptor.columns.2.member.comment' "
        "(column 'long_doc') failed to satisfy constraint: Member must have length less than or equal to 255 "
        "(it is 256 bytes in UTF-8)"
    )


def test_characters_are_counted_as_utf8_bytes(glue: Any) -> None:
    # 255 characters, but 256 UTF-16 units (the emoji is a surrogate pair to the JVM) and 258 bytes.
    message = _refusal(glue, _table({"Name": "emoji", "Type": "string", "Comment": "a" * 254 + "😀"}))
    assert "less than or equal to 255 (it is 258 bytes in UTF-8)" in message
    assert "less than or equal to 255" in _refusal(glue, _table({"Name": "é" * 128, "Type": "string"}))


@pytest.mark.parametrize("character", ["\n", "\r", "\x00", "\x1f", "\ufffe"])
def test_a_character_outside_the_single_line_pattern_is_refused(glue: Any, character: str) -> None:
    message = _refusal(glue, _table({"Name": "doc", "Type": "string", "Comment": f"line{character}break"}))
    assert "'tableInput.storageDescriptor.columns.1.member.comment' (column 'doc')" in message
    assert f"satisfy regular expression pattern: {SINGLE_LINE_PATTERN} (U+{ord(character):04X} does not)" in message


def test_a_type_over_131072_is_refused(glue: Any) -> None:
    wide = "struct<" + "x" * (131_073 - 8) + ">"
    message = _refusal(glue, _table({"Name": "wide", "Type": wide}))
    assert "'tableInput.storageDescriptor.columns.1.member.type' (column 'wide')" in message
    assert "less than or equal to 131072 (it is 131073 bytes in UTF-8)" in message
    assert "Value at" in message and wide not in message  # Glue does not echo the value


def test_names_partition_keys_and_parameters_are_held_too(glue: Any) -> None:
    message = _refusal(
        glue,
        _table(
            {"Name": "x" * 256, "Type": "string", "Parameters": {"iceberg.field.id": "1", "big": "v" * 512_001}},
            PartitionKeys=[{"Name": "day", "Type": "date", "Comment": "bad\ncomment"}],
            Parameters={"k" * 256: "v"},
        ),
    )
    assert message.startswith("4 validation errors detected: ")
    assert "'tableInput.parameters.key' failed" in message
    assert "'tableInput.storageDescriptor.columns.1.member.name' (column 'xxxx" in message
    assert "'tableInput.storageDescriptor.columns.1.member.parameters.'big'.value'" in message
    assert "'tableInput.partitionKeys.1.member.comment' (column 'day')" in message


def test_an_update_that_breaks_a_limit_leaves_the_table_as_it_was(glue: Any) -> None:
    table_input = _table({"Name": "a", "Type": "string", "Comment": "fine"})
    glue.create_table(DatabaseName=DATABASE, TableInput=table_input)
    table_input["StorageDescriptor"]["Columns"][0]["Comment"] = "c" * 300
    with pytest.raises(ClientError, match="ValidationException"):
        glue.update_table(DatabaseName=DATABASE, TableInput=table_input)
    stored = glue.get_table(DatabaseName=DATABASE, Name=table_input["Name"])["Table"]
    assert stored["StorageDescriptor"]["Columns"][0]["Comment"] == "fine"


def test_partitions_are_held_to_the_same_column_limits(glue: Any) -> None:
    table_input = _table({"Name": "a", "Type": "string"}, PartitionKeys=[{"Name": "day", "Type": "string"}])
    glue.create_table(DatabaseName=DATABASE, TableInput=table_input)
    bad = {"Values": ["2026"], "StorageDescriptor": {"Columns": [{"Name": "a", "Type": "string", "Comment": "\n"}]}}
    with pytest.raises(ClientError, match=re.escape("partitionInput.storageDescriptor.columns.1.member.comment")):
        glue.create_partition(DatabaseName=DATABASE, TableName=table_input["Name"], PartitionInput=bad)
    with pytest.raises(
        ClientError, match=re.escape("partitionInputList.2.member.storageDescriptor.columns.1.member.comment")
    ):
        glue.batch_create_partition(
            DatabaseName=DATABASE, TableName=table_input["Name"], PartitionInputList=[{"Values": ["2025"]}, bad]
        )


def test_what_botocore_refuses_itself_is_checked_as_well() -> None:
    # botocore checks minimum lengths before it sends: another client (the JVM's SDK) does not.
    body = {"TableInput": {"Name": "", "StorageDescriptor": {"Columns": [{"Name": "", "Parameters": {"": "v"}}]}}}
    assert [message.split(" failed")[0] for message in violations("UpdateTable", body)] == [
        "Value at 'tableInput.name'",
        "Value at 'tableInput.storageDescriptor.columns.1.member.name' (column '')",
        "Value at 'tableInput.storageDescriptor.columns.1.member.parameters.key' (column '')",
    ]
    assert list(violations("GetTable", {"Name": "\n"})) == []


def test_the_suites_moto_server_holds_glue_to_its_limits(moto_server: MotoServer) -> None:
    client = moto_server.client("glue")
    client.create_database(DatabaseInput={"Name": "rule_is_on"})
    with pytest.raises(ClientError, match="ValidationException"):
        client.create_table(DatabaseName="rule_is_on", TableInput=_table({"Name": "a", "Comment": "c" * 256}))
