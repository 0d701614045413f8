"""The exporter role: the abstract `ExporterResource` and the `ExportDescription` it returns."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import dagster as dg
from pydantic import Field

from ddb_iceberg.exports import ExportSource
from ddb_iceberg.exports.manifest import ExportType, format_timestamp
from ddb_iceberg.resources.prices import PRICE_SOURCE, export_cost_usd

# US East (N. Virginia) list price of a DynamoDB export to S3, full and incremental alike.
DEFAULT_EXPORT_PRICE_PER_GB_USD = 0.10


def export_price_source(price_per_gb_usd: float) -> str:
    return f"DynamoDB export to S3 at {price_per_gb_usd:g} USD per GB: {PRICE_SOURCE}"


@dataclass(frozen=True)
class ExportDescription:
    """A completed export, as asset metadata shows it."""

    export_arn: str
    export_type: ExportType
    export_time: datetime | None
    export_from_time: datetime | None
    export_to_time: datetime | None
    item_count: int
    billed_size_bytes: int
    manifest_location: str
    price_per_gb_usd: float = DEFAULT_EXPORT_PRICE_PER_GB_USD

    @property
    def estimated_cost_usd(self) -> float:
        return export_cost_usd(self.billed_size_bytes, self.price_per_gb_usd)

    @property
    def price_source(self) -> str:
        return export_price_source(self.price_per_gb_usd)

    def metadata(self) -> dict[str, Any]:
        times = (
            {"export_time": format_timestamp(self.export_time)}
            if self.export_time
            else {
                "export_from_time": format_timestamp(self.export_from_time) if self.export_from_time else None,
                "export_to_time": format_timestamp(self.export_to_time) if self.export_to_time else None,
            }
        )
        return {
            "export_arn": self.export_arn,
            "export_type": self.export_type.value,
            **times,
            "item_count": dg.MetadataValue.int(self.item_count),
            "billed_size_bytes": dg.MetadataValue.int(self.billed_size_bytes),
            "estimated_cost_usd": dg.MetadataValue.float(self.estimated_cost_usd),
            "price_source": self.price_source,
            "manifest_location": self.manifest_location,
        }


class ExporterResource(dg.ConfigurableResource, ABC):  # type: ignore[type-arg]
    """Takes full and incremental exports of one table into one S3 prefix (or local directory)."""

    export_price_per_gb_usd: float = Field(
        default=DEFAULT_EXPORT_PRICE_PER_GB_USD,
        description="Price of a DynamoDB export per GB processed, for the cost estimate in the asset metadata "
        "(default: the US East list price, the same for full and incremental exports).",
    )

    @property
    @abstractmethod
    def source_uri(self) -> str:
        """Where the exports land: what the merge reads."""

    def export_source(self) -> ExportSource:
        """The exports' location, to read them from this process (checks, export housekeeping)."""
        return ExportSource.from_uri(self.source_uri)

    @abstractmethod
    def export_full(self, export_time: datetime | None, log: Any) -> ExportDescription:
        """Export the whole table as of `export_time` (default: now) and wait for it."""

    @abstractmethod
    def export_incremental(self, start: datetime, end: datetime, log: Any) -> ExportDescription:
        """Export the changes of [start, end) and wait for it; retrying the same window never exports twice."""

    def export_incrementals(self, windows: Sequence[tuple[datetime, datetime]], log: Any) -> list[ExportDescription]:
        """Export each window [start, end) and wait for all of them; the descriptions come back in window order."""
        return [self.export_incremental(start, end, log) for start, end in windows]

    def baseline_for_a_new_table(self, log: Any) -> ExportDescription | None:
        """The full export a table that does not exist yet starts from, when the exporter takes it by itself
        (a simulated table); None when it is the user's deliberate step (`full_export_job` on AWS)."""
        return None
