"""Assets: the DynamoDB full export, the incremental export of each window, and the Iceberg table."""

from ddb_iceberg.assets.exports import build_incremental_export, ddb_full_export
from ddb_iceberg.assets.iceberg_table import build_iceberg_table

__all__ = ["build_iceberg_table", "build_incremental_export", "ddb_full_export"]
