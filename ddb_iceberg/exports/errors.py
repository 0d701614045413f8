"""The one error type for exports that cannot be read or do not verify."""

from __future__ import annotations

from ddb_iceberg.errors import DdbIcebergError


class ExportError(DdbIcebergError):
    """An export that cannot be applied; the message names the export, the file and the problem."""

    def __init__(self, *, export: str, problem: str, file: str | None = None, line: int | None = None) -> None:
        self.export = export
        self.file = file
        self.line = line
        self.problem = problem
        where = f"export {export}"
        if file is not None:
            where += f", file {file}"
        if line is not None:
            where += f", line {line}"
        super().__init__(f"{where}: {problem}")

    def __reduce__(self) -> tuple[object, tuple[str, str, str | None, int | None]]:
        # Spark's executors send it to the driver pickled; the keyword-only arguments need this.
        return _export_error, (self.export, self.problem, self.file, self.line)


def _export_error(export: str, problem: str, file: str | None, line: int | None) -> ExportError:
    return ExportError(export=export, problem=problem, file=file, line=line)
