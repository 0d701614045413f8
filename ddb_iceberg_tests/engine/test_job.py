"""The Spark job's errors travel as one line each and come back as the same errors (what the EMR runner does)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ddb_iceberg.engine.job import error_from_record, error_record
from ddb_iceberg.engine.plan import GapError, SyncError
from ddb_iceberg.engine.schema import KeyTypeError
from ddb_iceberg.errors import DdbIcebergError
from ddb_iceberg.exports import ExportError, Gap


@pytest.mark.parametrize(
    "error",
    [
        ExportError(export="01-x", file="AWSDynamoDB/data/a.json.gz", line=7, problem="is not valid JSON"),
        ExportError(export="01-x", problem="has no manifest-summary.json"),
        GapError([Gap(datetime(2026, 1, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 2, tzinfo=UTC))]),
        SyncError("table t exists but was not created by ddb_iceberg"),
        KeyTypeError("key attribute 'pk' must hold one scalar type"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_an_error_comes_back_as_itself(error: DdbIcebergError) -> None:
    line = error_record(error)
    assert "\n" not in line
    again = error_from_record(line)
    assert type(again) is type(error) and str(again) == str(error)
    assert vars(again) == vars(error)
