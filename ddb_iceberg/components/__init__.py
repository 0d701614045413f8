"""Dagster components: `DynamoDBIcebergTable`, one table's assets, checks, jobs and schedules from YAML."""

from ddb_iceberg.components.dynamodb_iceberg_table.component import DynamoDBIcebergTable

__all__ = ["DynamoDBIcebergTable"]
