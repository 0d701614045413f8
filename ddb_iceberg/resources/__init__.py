"""Resources: one abstract ConfigurableResource per role, each with a local and an AWS implementation."""

from ddb_iceberg.resources.dynamodb_exporter import DynamoDBExporter
from ddb_iceberg.resources.emr_serverless import EmrServerlessMergeRunner
from ddb_iceberg.resources.exporter import ExportDescription, ExporterResource
from ddb_iceberg.resources.merge_runners import (
    LocalSparkMergeRunner,
    MergeRunnerResource,
    local_spark_config,
)
from ddb_iceberg.resources.simulated_exporter import SimulatedExporter
from ddb_iceberg.resources.table import GlueIcebergTable, IcebergTableResource, LocalIcebergTable

__all__ = [
    "DynamoDBExporter",
    "EmrServerlessMergeRunner",
    "ExportDescription",
    "ExporterResource",
    "GlueIcebergTable",
    "IcebergTableResource",
    "LocalIcebergTable",
    "LocalSparkMergeRunner",
    "MergeRunnerResource",
    "SimulatedExporter",
    "local_spark_config",
]
