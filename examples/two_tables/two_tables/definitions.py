"""The code location: every component instance under `defs/`, one folder (and one defs.yaml) per table."""

from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
