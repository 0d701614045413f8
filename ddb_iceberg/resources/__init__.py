"""Resources: one abstract ConfigurableResource per role, each with a local and an AWS implementation."""

from ddb_iceberg.resources.catalog import GlueIcebergCatalog, IcebergCatalogResource, LocalIcebergCatalog
from ddb_iceberg.resources.emr_serverless import EmrServerlessMergeRunner
from ddb_iceberg.resources.exporters import (
    DynamoDBExporter,
    ExportDescription,
    ExporterResource,
    SimulatedExporter,
)
from ddb_iceberg.resources.merge_runners import (
    LocalSparkMergeRunner,
    MergeRunnerResource,
    local_spark_config,
)

__all__ = [
    "DynamoDBExporter",
    "EmrServerlessMergeRunner",
    "ExportDescription",
    "ExporterResource",
    "GlueIcebergCatalog",
    "IcebergCatalogResource",
    "LocalIcebergCatalog",
    "LocalSparkMergeRunner",
    "MergeRunnerResource",
    "SimulatedExporter",
    "local_spark_config",
]
