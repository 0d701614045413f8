"""Assets: the DynamoDB full export, the incremental export of each window, the Iceberg table and its upkeep."""

from ddb_iceberg.assets.exports import build_full_export, build_incremental_export, ddb_full_export
from ddb_iceberg.assets.iceberg_table import build_iceberg_table
from ddb_iceberg.assets.maintenance import build_table_maintenance
from ddb_iceberg.table_names import TABLE_GROUP

__all__ = [
    "TABLE_GROUP",
    "build_full_export",
    "build_iceberg_table",
    "build_incremental_export",
    "build_table_maintenance",
    "ddb_full_export",
]
