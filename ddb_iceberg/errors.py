"""Every error a user can act on, in one module on one base (as pyiceberg's `exceptions.py`).

Each says what is wrong; how to fix it depends on where the user is (a CLI flag, a Dagster job or config), so an
error names its remedies (`Fix`) and each surface words them (`how_to_fix`). Every entry point (the CLI, the
Dagster assets, the Spark job) catches `DdbIcebergError` and shows its message: nothing else reaches a user as a
traceback unless it is a bug. The Spark job writes an error as one JSON line (`to_record`) and its launcher
raises it again as the same class (`from_record`), found among this base's subclasses.

Signals that never leave their module (`exports.typed_values.TypedValueError`, `engine.rows.NotHeld`) are not
errors a user sees: the reader turns the first into an `ExportError` naming the export, the file and the line.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from ddb_iceberg.exports.discovery import Gap

# The line before a job's error record in its driver's log, so that a launcher finds it among Spark's output.
ERROR_RECORD_PREFIX = "DDB_ICEBERG_ERROR "


class Fix(StrEnum):
    """A way out that a surface words in its own terms (`how_to_fix`)."""

    REBASELINE = "rebaseline"  # replace the rows from a new full export
    ALLOW_GAPS = "allow_gaps"  # apply across the gap and record it
    NAME_KEY = "name_key"  # name the DynamoDB table's key attributes
    REPARTITION = "repartition"  # partition an existing table anew


class DdbIcebergError(Exception):
    """Something a user can act on: bad export data, a sync that must not run, a setting that cannot work."""

    fixes: ClassVar[tuple[Fix, ...]] = ()

    def __init__(self, message: str, *, fixes: Sequence[Fix] | None = None) -> None:
        super().__init__(message)
        if fixes:  # else the class's own
            self.fixes = tuple(fixes)  # type: ignore[misc]

    def fields(self) -> dict[str, Any]:
        """What `from_fields` needs to make the same error again (in another process)."""
        return {"message": str(self), "fixes": [str(fix) for fix in self.fixes]}

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> DdbIcebergError:
        return cls(fields["message"], fixes=[Fix(fix) for fix in fields.get("fixes", ())])

    def __reduce__(self) -> tuple[Any, ...]:
        # Spark's executors send errors to the driver pickled; keyword-only arguments need this.
        return _from_fields, (type(self).__name__, self.fields())


class SettingError(DdbIcebergError, ValueError):
    """A setting that cannot work (a table name, a window, a retention): raised where the setting enters, before
    anything starts, naming the setting, the value and the rule. A ValueError too, so that pydantic (Dagster's
    config, a component's YAML) reports it at the field that holds the value."""


class JavaMissingError(DdbIcebergError):
    """Spark cannot start: no suitable Java."""


class ExportError(DdbIcebergError):
    """An export that cannot be applied; the message names the export, the file and the problem."""

    def __init__(
        self,
        *,
        export: str,
        problem: str,
        file: str | None = None,
        line: int | None = None,
        fixes: Sequence[Fix] | None = None,
    ) -> None:
        self.export, self.file, self.line, self.problem = export, file, line, problem
        where = f"export {export}"
        if file is not None:
            where += f", file {file}"
        if line is not None:
            where += f", line {line}"
        super().__init__(f"{where}: {problem}", fixes=fixes)

    def fields(self) -> dict[str, Any]:
        return super().fields() | {"export": self.export, "problem": self.problem, "file": self.file, "line": self.line}

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> ExportError:
        return cls(
            export=fields["export"],
            problem=fields["problem"],
            file=fields.get("file"),
            line=fields.get("line"),
            fixes=[Fix(fix) for fix in fields.get("fixes", ())],
        )


class ExportFailedError(DdbIcebergError):
    """DynamoDB refused or failed an export (or the simulated exporter could not take one)."""


class SyncError(DdbIcebergError):
    """A sync or upkeep run that must not go on; nothing has been written."""


class GapError(SyncError):
    """Windows that leave time uncovered: the writes in it would be lost."""

    fixes = (Fix.REBASELINE, Fix.ALLOW_GAPS)

    def __init__(self, gaps: Sequence[Gap], incomplete: Sequence[str] = ()) -> None:
        self.gaps = tuple(gaps)
        self.incomplete = tuple(incomplete)
        listed = "; ".join(str(gap) for gap in gaps)
        unfinished = (
            f" Exports not complete (still running, or FAILED), which may be the missing window(s): "
            f"{', '.join(self.incomplete)}."
            if self.incomplete
            else ""
        )
        super().__init__(
            f"refusing to apply exports across a gap: no export covers {listed}. Writes in that time would be "
            f"lost.{unfinished} Export the missing window(s), re-baseline the table from a new full export, or "
            "apply anyway and record the gap."
        )

    def fields(self) -> dict[str, Any]:
        from ddb_iceberg.exports.manifest import format_timestamp

        gaps = [[format_timestamp(gap.start), format_timestamp(gap.end)] for gap in self.gaps]
        return super().fields() | {"gaps": gaps, "incomplete": list(self.incomplete)}

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> GapError:
        from ddb_iceberg.exports.discovery import Gap
        from ddb_iceberg.exports.manifest import parse_timestamp

        gaps = [Gap(parse_timestamp(start), parse_timestamp(end)) for start, end in fields["gaps"]]
        return cls(gaps, fields.get("incomplete", ()))


class KeyTypeError(DdbIcebergError):
    """A key value the table's key column cannot hold."""


def error_types() -> dict[str, type[DdbIcebergError]]:
    """Every error class by name: the base and all its subclasses, wherever defined."""
    found: dict[str, type[DdbIcebergError]] = {}
    pending: list[type[DdbIcebergError]] = [DdbIcebergError]
    while pending:
        cls = pending.pop()
        found[cls.__name__] = cls
        pending += cls.__subclasses__()
    return found


def to_record(error: DdbIcebergError) -> str:
    """One line that `from_record` turns back into the same error."""
    return ERROR_RECORD_PREFIX + json.dumps({"type": type(error).__name__, **error.fields()})


def from_record(line: str) -> DdbIcebergError:
    fields = json.loads(line.removeprefix(ERROR_RECORD_PREFIX))
    return _from_fields(fields.pop("type"), fields)


def _from_fields(name: str, fields: Mapping[str, Any]) -> DdbIcebergError:
    # An error of a newer job than this launcher knows comes back as the base, with its message.
    return error_types().get(name, DdbIcebergError).from_fields(fields)


def how_to_fix(error: BaseException, wording: Mapping[Fix, str]) -> str:
    """The error's remedies in a surface's own terms, one per line (empty when it names none)."""
    fixes = getattr(error, "fixes", ())
    return "\n".join(f"To fix it: {wording[fix]}" for fix in fixes if fix in wording)


def described(error: BaseException, message: str | None = None, wording: Mapping[Fix, str] | None = None) -> str:
    """The error's message (or `message`), the notes a runner added to it (where a remote job ran, its logs) and,
    given a surface's `wording`, how to fix it there."""
    lines = [message or str(error), *getattr(error, "__notes__", ())]
    remedy = how_to_fix(error, wording) if wording else ""
    return "\n".join([*lines, remedy] if remedy else lines)
