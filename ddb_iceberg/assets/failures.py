"""How an error a user can act on ends an asset's step: a `dg.Failure` with the error's message and its remedies
worded for Dagster (a job to run, a config to set), instead of a traceback."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg

from ddb_iceberg.errors import DdbIcebergError, Fix, GapError, described
from ddb_iceberg.table_names import TableNames


def dagster_fixes(names: TableNames) -> dict[Fix, str]:
    """Each remedy an error names, as done in Dagster for the table `names` names."""
    return {
        Fix.REBASELINE: f"materialize the full export ({names.qualified('full_export_job')}), then run "
        f"{names.qualified('rebaseline_job')} for the window (one commit replaces the rows; the history stays)",
        Fix.ALLOW_GAPS: "or launch the window's run with the table asset's config `allow_gaps: true` to apply anyway "
        "and record the gap",
        Fix.NAME_KEY: "set the table resource's key_attributes to the DynamoDB table's whole primary key",
        Fix.REPARTITION: f"run {names.qualified('repartition_job')}, which partitions the table anew by the table "
        "resource's partition_by (then the syncs go on)",
    }


@contextmanager
def failures_reported(names: TableNames) -> Iterator[None]:
    """A `DdbIcebergError` raised inside becomes the step's `dg.Failure`."""
    try:
        yield
    except DdbIcebergError as error:
        metadata: dict[str, Any] = {"error": type(error).__name__}
        message = None
        if isinstance(error, GapError):
            metadata["gaps"] = [str(gap) for gap in error.gaps]
            message = f"A window before this one is missing: {error}"
        description = described(error, message, wording=dagster_fixes(names))
        raise dg.Failure(description=description, metadata=metadata) from None
