"""Glue's limits on a table's columns and parameters, which moto does not check: it stores any of them.

The Table API, Column structure (AWS Glue Developer Guide,
https://docs.aws.amazon.com/glue/latest/dg/aws-glue-api-catalog-tables.html#aws-glue-api-catalog-tables-Column),
and the same structures in the AWS Glue API Reference (https://docs.aws.amazon.com/glue/latest/webapi/API_Column.html,
https://docs.aws.amazon.com/glue/latest/webapi/API_TableInput.html,
https://docs.aws.amazon.com/glue/latest/webapi/API_PartitionInput.html):

- Column `Name`: "Minimum length of 1. Maximum length of 255.", matching the single-line pattern;
- Column `Type`: "Minimum length of 0. Maximum length of 131072.", single-line;
- Column `Comment`: "Minimum length of 0. Maximum length of 255.", single-line;
- `Parameters` (of a column, a table, a partition): "Key Length Constraints: Minimum length of 1. Maximum length
  of 255.", single-line keys; "Value Length Constraints: Maximum length of 512000.";
- TableInput `Name`: 1 to 255, single-line; `Description`: 0 to 2048, the multi-line pattern (which also allows
  line breaks);
- the single-line pattern: `[\\u0020-\\uD7FF\\uE000-\\uFFFD\\uD800\\uDC00-\\uDBFF\\uDFFF\\t]*`: no control
  character but tab, no lone surrogate, no U+FFFE or U+FFFF.

The developer guide words its lengths in bytes (a table's Name: "UTF-8 string, not less than 1 or more than 255
bytes long"), the API reference as lengths (characters, or UTF-16 units to a Java service). A UTF-8 byte count is
never smaller than either, so this rule counts bytes: whatever it accepts, Glue accepts under either reading.

Glue answers a request that breaks one with 400 ValidationException, "N validation error(s) detected: Value at
'<path>' failed to satisfy constraint: Member must ..."; so does this rule (naming the column too), before moto
stores anything. Checked: CreateTable, UpdateTable (what Iceberg's GlueCatalog sends on every commit: every
top-level column's name, its type string and its doc as the comment), CreatePartition and BatchCreatePartition.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ddb_iceberg.loopback_aws import AwsRequest, Response, json_error

NAME_MAX = 255
TYPE_MAX = 131_072
COMMENT_MAX = 255
PARAMETER_KEY_MAX = 255
PARAMETER_VALUE_MAX = 512_000
DESCRIPTION_MAX = 2048
SINGLE_LINE_PATTERN = "[\\u0020-\\uD7FF\\uE000-\\uFFFD\\uD800\\uDC00-\\uDBFF\\uDFFF\\t]*"
MULTI_LINE_PATTERN = "[\\u0020-\\uD7FF\\uE000-\\uFFFD\\uD800\\uDC00-\\uDBFF\\uDFFF\\r\\n\\t]*"
_SINGLE_LINE = re.compile(r"[\t\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*")
_MULTI_LINE = re.compile(r"[\t\r\n\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*")
# The answers name the column (and a parameter) by the first characters of its name, never repeat a value (a type
# string may be 131,072 characters long).
_SHOWN = 60


@dataclass(frozen=True)
class _Limit:
    minimum: int
    maximum: int
    pattern: re.Pattern[str] | None
    pattern_text: str = SINGLE_LINE_PATTERN


_NAME = _Limit(1, NAME_MAX, _SINGLE_LINE)
_TYPE = _Limit(0, TYPE_MAX, _SINGLE_LINE)
_COMMENT = _Limit(0, COMMENT_MAX, _SINGLE_LINE)
_PARAMETER_KEY = _Limit(1, PARAMETER_KEY_MAX, _SINGLE_LINE)
_PARAMETER_VALUE = _Limit(0, PARAMETER_VALUE_MAX, None)
_DESCRIPTION = _Limit(0, DESCRIPTION_MAX, _MULTI_LINE, MULTI_LINE_PATTERN)


class GlueTableLimits:
    """CreateTable, UpdateTable, CreatePartition and BatchCreatePartition requests that break a limit of Glue's
    on a column's name, type or comment, a parameter, or the table's name or description are refused with 400
    ValidationException, as Glue refuses them."""

    def before(self, request: AwsRequest) -> Response | None:
        if request.service != "glue" or not isinstance(request.body, Mapping):
            return None
        errors = list(violations(request.operation, request.body))
        if not errors:
            return None
        count = f"{len(errors)} validation error{'s' if len(errors) > 1 else ''} detected"
        return json_error("400 Bad Request", "ValidationException", f"{count}: {'; '.join(errors)}")

    def after(self, request: AwsRequest, response: Response) -> Response | None:
        return None


def violations(operation: str, body: Mapping[str, Any]) -> Iterator[str]:
    """What a request to `operation` breaks of Glue's limits, one message each (nothing for other operations)."""
    if operation in ("CreateTable", "UpdateTable"):
        yield from _table_input(body.get("TableInput"), "tableInput")
    elif operation == "CreatePartition":
        yield from _partition_input(body.get("PartitionInput"), "partitionInput")
    elif operation == "BatchCreatePartition":
        for index, partition in enumerate(_list(body.get("PartitionInputList")), start=1):
            yield from _partition_input(partition, f"partitionInputList.{index}.member")


def _table_input(table: Any, path: str) -> Iterator[str]:
    if not isinstance(table, Mapping):
        return
    yield from _check(table.get("Name"), _NAME, f"{path}.name")
    yield from _check(table.get("Description"), _DESCRIPTION, f"{path}.description")
    yield from _parameters(table.get("Parameters"), f"{path}.parameters")
    yield from _storage_descriptor(table.get("StorageDescriptor"), f"{path}.storageDescriptor")
    yield from _columns(table.get("PartitionKeys"), f"{path}.partitionKeys")


def _partition_input(partition: Any, path: str) -> Iterator[str]:
    if not isinstance(partition, Mapping):
        return
    yield from _parameters(partition.get("Parameters"), f"{path}.parameters")
    yield from _storage_descriptor(partition.get("StorageDescriptor"), f"{path}.storageDescriptor")


def _storage_descriptor(descriptor: Any, path: str) -> Iterator[str]:
    if isinstance(descriptor, Mapping):
        yield from _columns(descriptor.get("Columns"), f"{path}.columns")


def _columns(columns: Any, path: str) -> Iterator[str]:
    for index, column in enumerate(_list(columns), start=1):
        if not isinstance(column, Mapping):
            continue
        member = f"{path}.{index}.member"
        name = column.get("Name")
        about = f" (column {_shown(name)})" if isinstance(name, str) else ""
        yield from _check(name, _NAME, f"{member}.name", about)
        yield from _check(column.get("Type"), _TYPE, f"{member}.type", about)
        yield from _check(column.get("Comment"), _COMMENT, f"{member}.comment", about)
        yield from _parameters(column.get("Parameters"), f"{member}.parameters", about)


def _parameters(parameters: Any, path: str, about: str = "") -> Iterator[str]:
    if not isinstance(parameters, Mapping):
        return
    for key, value in parameters.items():
        yield from _check(key, _PARAMETER_KEY, f"{path}.key", about)
        yield from _check(value, _PARAMETER_VALUE, f"{path}.{_shown(key)}.value", about)


def _check(value: Any, limit: _Limit, path: str, about: str = "") -> Iterator[str]:
    if not isinstance(value, str):
        return
    length = len(value.encode("utf-8", "surrogatepass"))
    where = f"Value at '{path}'{about} failed to satisfy constraint: Member must"
    if length > limit.maximum:
        yield f"{where} have length less than or equal to {limit.maximum} (it is {length} bytes in UTF-8)"
    if length < limit.minimum:
        yield f"{where} have length greater than or equal to {limit.minimum}"
    if limit.pattern is not None and not limit.pattern.fullmatch(value):
        refused = next(c for c in value if not limit.pattern.fullmatch(c))
        yield f"{where} satisfy regular expression pattern: {limit.pattern_text} (U+{ord(refused):04X} does not)"


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _shown(text: Any) -> str:
    text = str(text)
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "...")
