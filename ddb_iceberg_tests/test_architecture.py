"""The layout shows the architecture: the export format and the Spark job import nothing of Dagster, and the
job's package holds everything the job imports."""

from __future__ import annotations

import ast
import io
import sys
import zipfile
from pathlib import Path

import pytest

from ddb_iceberg.resources.job_package import build_job_package

PACKAGE = Path(__file__).resolve().parent.parent / "ddb_iceberg"


def _imports(package: str) -> dict[str, set[str]]:
    """Every module of `package` (a folder of ddb_iceberg) and the top-level names of what it imports."""
    found: dict[str, set[str]] = {}
    for path in sorted((PACKAGE / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
        found[path.relative_to(PACKAGE).as_posix()] = names
    return found


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("exports", ("ddb_iceberg.engine", "ddb_iceberg.simulator", "dagster", "pyspark", "pyiceberg", "duckdb")),
        ("engine", ("dagster", "ddb_iceberg.resources", "ddb_iceberg.assets", "ddb_iceberg.simulator", "pyiceberg")),
        ("simulator", ("ddb_iceberg.engine", "dagster", "pyspark")),
    ],
)
def test_layers_import_only_what_they_may(package: str, forbidden: tuple[str, ...]) -> None:
    def is_forbidden(name: str) -> bool:
        return any(name == module or name.startswith(module + ".") for module in forbidden)

    offending = {
        module: sorted(filter(is_forbidden, names))
        for module, names in _imports(package).items()
        if any(map(is_forbidden, names))
    }
    assert offending == {}  # dagster_pipes, in the job's package, is not dagster


def test_the_job_package_holds_every_module_the_job_imports() -> None:
    shipped = {
        name.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        for name in zipfile.ZipFile(io.BytesIO(build_job_package().archive)).namelist()
        if name.endswith(".py")
    }
    needed = {
        name
        for package in ("engine", "exports")
        for names in _imports(package).values()
        for name in names
        if name.startswith("ddb_iceberg")
    }
    assert needed - shipped == set()


def test_no_module_of_the_job_shadows_the_standard_library() -> None:
    # spark-submit runs engine/job.py as a script, so engine/ comes first on sys.path: an engine/profile.py
    # would be what `import profile` (in cProfile, which PySpark imports) finds.
    shipped = {path.stem for package in ("engine", "exports") for path in (PACKAGE / package).glob("*.py")}
    assert shipped & sys.stdlib_module_names == set()


def test_only_the_bench_uses_the_aws_stand_ins() -> None:
    # moto is a development dependency: an installed ddb_iceberg never imports it, nor the stand-ins built on it.
    imports = _imports(".")
    offending = {
        module: sorted(
            name for name in names if name.split(".")[0] == "moto" or name.startswith("ddb_iceberg.loopback")
        )
        for module, names in imports.items()
        if module.split("/")[0] not in ("bench", "loopback_aws")
    }
    assert len(imports) > 50  # every module of the package was read
    assert {module: names for module, names in offending.items() if names} == {}


# Signals that never leave their module: the reader turns a TypedValueError into an ExportError naming the export,
# the file and the line, and LinesRefused, when Arrow cannot read some lines.
INTERNAL_SIGNALS = {("exports/typed_values.py", "TypedValueError"), ("exports/arrow_json.py", "LinesRefused")}


def test_every_error_class_is_defined_in_errors_py() -> None:
    defined_elsewhere = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        module = path.relative_to(PACKAGE).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ClassDef):
                continue
            bases = {base.id if isinstance(base, ast.Name) else getattr(base, "attr", "") for base in node.bases}
            if any(base.endswith(("Error", "Exception", "Failure")) for base in bases) and module != "errors.py":
                defined_elsewhere.add((module, node.name))
    assert defined_elsewhere == INTERNAL_SIGNALS
