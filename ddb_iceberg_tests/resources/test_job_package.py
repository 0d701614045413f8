"""The job package EMR Serverless runs: the same sources give the same bytes, and nothing of Dagster ships."""

from __future__ import annotations

import io
import zipfile

from ddb_iceberg.resources.job_package import build_job_package


def test_the_job_package_is_content_addressed_and_free_of_dagster() -> None:
    first, second = build_job_package(), build_job_package()
    assert first.digest == second.digest and first.archive == second.archive
    names = zipfile.ZipFile(io.BytesIO(first.archive)).namelist()
    assert "ddb_iceberg/engine/job.py" in names and "dagster_pipes/__init__.py" in names
    assert not [n for n in names if n.startswith(("dagster/", "ddb_iceberg/resources", "ddb_iceberg/assets"))]
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
