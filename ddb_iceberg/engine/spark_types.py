"""Spark SQL DDL of the table's columns (no Spark needed to write it)."""

from __future__ import annotations

import re

from ddb_iceberg.engine.naming import WRITE_TIME_COLUMN, quote
from ddb_iceberg.engine.schema import MAX_DECIMAL_PRECISION, Column, ColumnType, ColumnTypeVisitor, glue_length

# Glue's limit on a column comment (Column.Comment in the Glue API, 255; its developer guide counts bytes); Iceberg's
# GlueCatalog sends each top-level column's doc as its comment on every commit.
GLUE_COMMENT_MAX_LENGTH = 255
# What Glue's single-line string pattern refuses: [\u0020-\uD7FF\uE000-\uFFFD\uD800\uDC00-\uDBFF\uDFFF\t]* (line
# breaks and other control characters but tab, lone surrogates, U+FFFE and U+FFFF).
_NOT_SINGLE_LINE = re.compile(r"[^\t\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ESCAPES = {"\n": "\\n", "\r": "\\r"}
_CUT_MARK = "…"


class _SparkType(ColumnTypeVisitor[str]):
    """Spark SQL DDL types; `comments` adds the attribute each struct field holds."""

    def __init__(self, *, comments: bool) -> None:
        self.comments = comments

    def visit_string(self) -> str:
        return "STRING"

    def visit_long(self) -> str:
        return "BIGINT"

    def visit_decimal(self, scale: int) -> str:
        return f"DECIMAL({MAX_DECIMAL_PRECISION}, {scale})"

    def visit_number_text(self) -> str:
        return "STRING"

    def visit_boolean(self) -> str:
        return "BOOLEAN"

    def visit_binary(self) -> str:
        return "BINARY"

    def visit_json(self) -> str:
        return "STRING"

    def visit_struct(self, fields: tuple[Column, ...]) -> str:
        rendered = ", ".join(
            f"{quote(f.name)}: {self.visit(f.type)}" + (f" COMMENT {sql_string(doc(f))}" if self.comments else "")
            for f in fields
        )
        return f"STRUCT<{rendered}>"

    def visit_list(self, element: ColumnType) -> str:
        return f"ARRAY<{self.visit(element)}>"

    def visit_timestamp(self) -> str:
        return "TIMESTAMP"


def spark_type(column_type: ColumnType, *, comments: bool = True) -> str:
    """Spark SQL DDL type of a column type."""
    return _SparkType(comments=comments).visit(column_type)


def doc(column: Column) -> str:
    """The column's doc: the attribute it holds, as a comment Glue accepts (`glue_comment`). The exact attribute
    name is in the layout (`ddb-iceberg.layout`); the doc is for people reading the schema."""
    if column.name == WRITE_TIME_COLUMN:
        return "ddb_iceberg: time of the row's last write (for rows of a full export: that export's exportTime)"
    return glue_comment(column.attribute)


def glue_comment(text: str) -> str:
    """`text` as a Glue column comment: each character Glue's single-line pattern refuses written as an escape
    (`\\n`, `\\u0007`), then cut, with `…`, to at most 255 bytes of UTF-8 (no fewer than its characters or
    UTF-16 units, whichever Glue counts)."""
    escaped = _NOT_SINGLE_LINE.sub(lambda match: _escape(match.group()), text)
    if glue_length(escaped) <= GLUE_COMMENT_MAX_LENGTH:
        return escaped
    room = GLUE_COMMENT_MAX_LENGTH - glue_length(_CUT_MARK)
    return escaped.encode("utf-8")[:room].decode("utf-8", "ignore") + _CUT_MARK


def _escape(character: str) -> str:
    return _ESCAPES.get(character) or f"\\u{ord(character):04x}"


def sql_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def column_ddl(column: Column, *, comments: bool = True, nullable: bool = False) -> str:
    """A column's definition; `comments` adds the attribute each column and struct field holds; `nullable` drops
    a key column's NOT NULL."""
    not_null = " NOT NULL" if column.required and not nullable else ""
    comment = f" COMMENT {sql_string(doc(column))}" if comments else ""
    return f"{quote(column.name)} {spark_type(column.type, comments=comments)}{not_null}{comment}"
