"""The Spark job as EMR Serverless runs it: an entry point and one zip for `--py-files`, content-addressed.

The zip holds only what the job imports: `ddb_iceberg.engine`, `ddb_iceberg.exports`, `ddb_iceberg.errors` and
`dagster_pipes` (pure Python, no dependencies), so the job needs nothing of Dagster on the cluster. The bytes
depend only on the sources (fixed timestamps, sorted entries), so the same code always gets the same digest and
is uploaded once.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import io
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ddb_iceberg.errors import DdbIcebergError

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
ENTRY_POINT = PACKAGE_ROOT / "engine" / "job.py"
JOB_SUBPACKAGES = ("engine", "exports")
JOB_MODULES = ("__init__.py", "errors.py")
BUNDLED_LIBRARIES = ("dagster_pipes",)
ARCHIVE_NAME = "ddb_iceberg.zip"
ENTRY_POINT_NAME = "job.py"
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_SKIPPED_SUFFIXES = (".pyc", ".pyo")


@dataclass(frozen=True)
class JobPackage:
    """The job's entry point and its `--py-files` archive."""

    entry_point: bytes
    archive: bytes

    @property
    def digest(self) -> str:
        """Names the upload: a new version of the code gets a new folder, an old one is found in place."""
        hasher = hashlib.sha256(self.entry_point)
        hasher.update(self.archive)
        return hasher.hexdigest()[:20]

    def files(self) -> dict[str, bytes]:
        return {ENTRY_POINT_NAME: self.entry_point, ARCHIVE_NAME: self.archive}


def build_job_package() -> JobPackage:
    files = {f"ddb_iceberg/{module}": (PACKAGE_ROOT / module).read_bytes() for module in JOB_MODULES}
    for subpackage in JOB_SUBPACKAGES:
        files |= _package_files(PACKAGE_ROOT / subpackage, "ddb_iceberg/" + subpackage)
    for library in BUNDLED_LIBRARIES:
        spec = importlib.util.find_spec(library)
        if spec is None or spec.origin is None:
            raise RuntimeError(f"{library} is not installed; the job package needs it")
        files |= _package_files(Path(spec.origin).parent, library)
    return JobPackage(entry_point=ENTRY_POINT.read_bytes(), archive=_deterministic_zip(files))


def _package_files(directory: Path, archive_prefix: str) -> dict[str, bytes]:
    return {
        f"{archive_prefix}/{path.relative_to(directory).as_posix()}": path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in _SKIPPED_SUFFIXES
    }


def _deterministic_zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, files[name])
    return buffer.getvalue()


# What the job imports beyond the standard library and PySpark (which the EMR image brings): pyarrow, and pandas
# for PySpark's Arrow path (numpy and the rest follow as their dependencies). The versions this package is
# tested with.
JOB_PYTHON_REQUIREMENTS = ("pyarrow", "pandas")
# Wheel platforms of EMR Serverless's architectures (its images run Amazon Linux 2023, glibc 2.34).
WHEEL_PLATFORMS = {
    "arm64": ("manylinux_2_28_aarch64", "manylinux2014_aarch64"),
    "x86_64": ("manylinux_2_28_x86_64", "manylinux2014_x86_64"),
}


def build_python_dependencies(architecture: str, output: Path, python_version: str = "3.11") -> Path:
    """The job's Python dependencies as one zip for `spark.archives`, built from PyPI's wheels for the target
    platform: no Docker, no emulation. EMR unpacks it beside the job; the image's own Python runs the job with
    it on `PYTHONPATH` (EmrServerlessMergeRunner's `python_dependencies`)."""
    if architecture not in WHEEL_PLATFORMS:
        raise DdbIcebergError(f"unknown architecture {architecture!r}: use one of {', '.join(WHEEL_PLATFORMS)}")
    requirements = [f"{name}=={importlib.metadata.version(name)}" for name in JOB_PYTHON_REQUIREMENTS]
    platforms = [option for platform in WHEEL_PLATFORMS[architecture] for option in ("--platform", platform)]
    with tempfile.TemporaryDirectory(prefix="ddb-iceberg-python-") as folder:
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile"]
        command += [*platforms, "--only-binary=:all:", "--implementation", "cp", "--python-version", python_version]
        command += ["--target", folder, *requirements]
        completed = subprocess.run(command, capture_output=True, text=True, check=False)
        if completed.returncode != 0:
            wanted = " ".join(requirements)
            raise DdbIcebergError(f"pip could not fetch the job's wheels ({wanted}): {completed.stderr.strip()}")
        output.parent.mkdir(parents=True, exist_ok=True)
        files = {
            path.relative_to(folder).as_posix(): path
            for path in sorted(Path(folder).rglob("*"))
            if path.is_file() and "__pycache__" not in path.parts
        }
        with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
            for name, path in files.items():
                info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                # Keep the executable bits (shared libraries, scripts) when Spark unpacks it.
                info.external_attr = (path.stat().st_mode & 0o777) << 16
                archive.writestr(info, path.read_bytes())
    return output
