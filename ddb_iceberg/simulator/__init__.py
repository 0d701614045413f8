"""A simulated DynamoDB table under traffic that writes full and incremental exports in AWS's exact format.

It stands in for DynamoDB where there is none (the embedded local default, tests, the demo) and reports the
table's true state at any time, the ground truth the Iceberg table is checked against. Imports nothing
from Dagster or Spark.
"""

from ddb_iceberg.simulator.series import write_series
from ddb_iceberg.simulator.workload import KeyShape, SimulatedTable, SimulationConfig, WriteEvent
from ddb_iceberg.simulator.writer import ExportTarget, write_full_export, write_incremental_export

__all__ = [
    "ExportTarget",
    "KeyShape",
    "SimulatedTable",
    "SimulationConfig",
    "WriteEvent",
    "write_full_export",
    "write_incremental_export",
    "write_series",
]
