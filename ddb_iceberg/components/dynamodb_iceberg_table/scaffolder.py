"""`dg scaffold defs ddb_iceberg.components.DynamoDBIcebergTable <name>`: a table's defs.yaml, ready to run locally."""

from typing import Any

import dagster as dg


class DynamoDBIcebergTableScaffolder(dg.Scaffolder[Any]):
    """Writes a defs.yaml for a simulated table named after its folder, merged by local Spark."""

    def scaffold(self, request: dg.ScaffoldRequest[Any]) -> None:
        name = request.target_path.name
        dg.scaffold_component(
            request,
            {
                "name": name,
                "source": {"kind": "simulated", "seed": 7, "initial_items": 500},
                "iceberg_table": f"dynamodb.{name}",
                "window_minutes": 60,
                "lag_minutes": 20,
                "merge_runner": {"kind": "local"},
            },
        )
