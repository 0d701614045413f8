"""The Spark job as EMR Serverless runs it: an entry point and one zip for `--py-files`, content-addressed.

The zip holds only what the job imports: `ddb_iceberg.engine`, `ddb_iceberg.exports`, `ddb_iceberg.errors` and
`dagster_pipes` (pure Python, no dependencies), so the job needs nothing of Dagster on the cluster. The bytes
depend only on the sources (fixed timestamps, sorted entries), so the same code always gets the same digest and
is uploaded once.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

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
