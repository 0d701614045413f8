"""The DynamoDB export format: manifests, typed values, strict reading and discovery.

This package imports nothing from Dagster or Spark, so it ships with the Spark job.
"""

from ddb_iceberg.exports.discovery import (
    ExportListing,
    Gap,
    discover_exports,
    discover_from_latest_full,
    find_gaps,
    load_export,
)
from ddb_iceberg.exports.manifest import DataFileEntry, ExportType, ExportView, ManifestSummary, OutputFormat
from ddb_iceberg.exports.reader import ChangeRecord, Export, ExportRecord, FullExportItem
from ddb_iceberg.exports.source import ExportSource, S3Options

__all__ = [
    "ChangeRecord",
    "DataFileEntry",
    "Export",
    "ExportListing",
    "ExportRecord",
    "ExportSource",
    "ExportType",
    "ExportView",
    "FullExportItem",
    "Gap",
    "ManifestSummary",
    "OutputFormat",
    "S3Options",
    "discover_exports",
    "discover_from_latest_full",
    "find_gaps",
    "load_export",
]
