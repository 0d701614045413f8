"""Column names Athena and Glue accept, derived deterministically from DynamoDB attribute names."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

# The engine's own columns start with `_ddb_`, which no attribute's column name can (`base_column_name`).
WRITE_TIME_COLUMN = "_ddb_write_time"
# Glue's limit on a column name (1 to 255, Column.Name in the Glue API); names are ASCII, so characters = bytes.
MAX_NAME_LENGTH = 255

# Athena DDL/DML reserved words (https://docs.aws.amazon.com/athena/latest/ug/reserved-words.html) and
# Spark SQL's ANSI reserved words: a column named after one would need quoting in every query.
RESERVED_WORDS = frozenset(
    """
    all alter and any array as asc at authorization between bigint binary boolean both by case cast char column
    commit constraint create cross cube current current_date current_time current_timestamp current_user
    date day deallocate decimal delete desc describe distinct double drop else end escape except execute exists
    extract false fetch filter float following for foreign from full function grant group grouping having hour
    if in inner insert int integer intersect interval into is join last lateral left like limit localtime
    localtimestamp macro map minute month natural none normalize not null numeric of on only or order out outer
    over partition percent preceding primary procedure range reads real recursive references regexp revoke right
    rlike rollback rollup row rows second select set smallint some start table tablesample then time timestamp
    to trim true truncate unbounded union unique unknown unnest update user using utc_date utc_time
    utc_timestamp values varchar view when where window with year
    """.split()
)


def base_column_name(attribute: str) -> str:
    """The name an attribute would get before collisions are resolved: lowercase `[a-z0-9_]`.

    Leading underscores are dropped, so no attribute can take a name of the engine's own `_ddb_` columns.
    """
    ascii_text = unicodedata.normalize("NFKD", attribute).encode("ascii", "ignore").decode("ascii")
    name = re.sub(r"[^a-z0-9_]+", "_", ascii_text.lower()).strip("_") or "attribute"
    if name[0].isdigit():
        name = f"c_{name}"
    if name in RESERVED_WORDS:
        name = f"{name}_"
    return name[:MAX_NAME_LENGTH]


def assign_column_names(attributes: Iterable[str], taken: Iterable[str]) -> dict[str, str]:
    """Names for new attributes, avoiding names already taken. Attributes whose name is already a valid
    column name go first, then the rest in sorted order, so the result does not depend on the order items
    arrive in (`a_b` gets `a_b`, then `A B` gets `a_b_2`, then `a-b` gets `a_b_3`)."""
    used = set(taken)
    assigned: dict[str, str] = {}
    for attribute in sorted(set(attributes), key=lambda a: (base_column_name(a) != a, a)):
        base = base_column_name(attribute)
        name, suffix = base, 2
        while name in used:
            name, suffix = with_suffix(base, f"_{suffix}"), suffix + 1
        used.add(name)
        assigned[attribute] = name
    return assigned


def with_suffix(name: str, suffix: str) -> str:
    """`name` + `suffix`, the name cut short so that the whole stays within MAX_NAME_LENGTH (the suffix is what
    tells the names apart)."""
    return name[: MAX_NAME_LENGTH - len(suffix)] + suffix


def quote(identifier: str) -> str:
    """Quote one SQL identifier for Spark SQL."""
    return "`" + identifier.replace("`", "``") + "`"


def quote_path(*parts: str) -> str:
    return ".".join(quote(part) for part in parts)
