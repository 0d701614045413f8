"""The table resources: what they ask the engine for."""

from __future__ import annotations

from pathlib import Path

import pytest

from ddb_iceberg.engine.request import UpkeepSettings
from ddb_iceberg.errors import SettingError
from ddb_iceberg.resources import LocalIcebergTable


def test_a_repartition_takes_its_fields_from_the_table_resource_and_needs_some(tmp_path: Path) -> None:
    by_day = ["day(created_at, epoch_millis)"]
    table = LocalIcebergTable(warehouse=str(tmp_path), partition_by=by_day)
    assert table.upkeep_request(UpkeepSettings(), repartition=True).partition_by == tuple(by_day)
    assert table.upkeep_request(UpkeepSettings()).partition_by == ()  # plain upkeep never repartitions
    with pytest.raises(SettingError, match="set the table resource's partition_by"):
        LocalIcebergTable(warehouse=str(tmp_path)).upkeep_request(UpkeepSettings(), repartition=True)
