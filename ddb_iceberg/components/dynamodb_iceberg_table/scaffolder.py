"""`dg scaffold defs ddb_iceberg.components.DynamoDBIcebergTable <name>`: a table's defs.yaml, ready to run locally."""

from typing import Any

import dagster as dg

from ddb_iceberg.definitions import Deployment
from ddb_iceberg.partitions import DEFAULT_WINDOW_MINUTES


class DynamoDBIcebergTableScaffolder(dg.Scaffolder[Any]):
    """Writes a defs.yaml for a simulated table named after its folder, merged by local Spark."""

    def scaffold(self, request: dg.ScaffoldRequest[Any]) -> None:
        name = request.target_path.name
        dg.scaffold_component(
            request,
            {
                "name": name,
                "source": {"kind": "simulated", "seed": 7, "initial_items": 500},
                "table": {"kind": "local", "identifier": f"dynamodb.{name}"},
                "window_minutes": DEFAULT_WINDOW_MINUTES,
                "lag_minutes": Deployment.lag_minutes,
                "merge_runner": {"kind": "local"},
            },
        )
