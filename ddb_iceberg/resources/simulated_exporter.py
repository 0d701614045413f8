"""The local exporter: `SimulatedExporter`, a simulated table under traffic exported into a local directory."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field

from ddb_iceberg.engine.request import utc_moment
from ddb_iceberg.errors import ExportFailedError
from ddb_iceberg.exports import ExportSource, ExportView, discover_exports
from ddb_iceberg.exports.manifest import ExportType, ManifestSummary, format_timestamp
from ddb_iceberg.resources.exporter import ExportDescription, ExporterResource
from ddb_iceberg.simulator import (
    ExportTarget,
    KeyShape,
    SimulatedTable,
    SimulationConfig,
    write_full_export,
    write_incremental_export,
)
from ddb_iceberg.simulator.workload import DEFAULT_START


def _from_summary(summary: ManifestSummary, manifest_location: str, price_per_gb_usd: float) -> ExportDescription:
    return ExportDescription(
        export_arn=summary.export_arn,
        export_type=summary.export_type,
        export_time=summary.export_time,
        export_from_time=summary.export_from_time,
        export_to_time=summary.export_to_time,
        item_count=summary.item_count,
        billed_size_bytes=summary.billed_size_bytes,
        manifest_location=manifest_location,
        price_per_gb_usd=price_per_gb_usd,
    )


@lru_cache(maxsize=8)
def _simulated_table(config: SimulationConfig) -> SimulatedTable:
    # One history per configuration and process: windows asked for one by one replay it only once.
    return SimulatedTable(config)


class SimulatedExporter(ExporterResource):
    """The embedded default: a simulated table under traffic, exported into a local directory."""

    output_dir: str = Field(default=".ddb_iceberg/local/exports", description="Where AWSDynamoDB/ is written.")
    seed: int = Field(default=7, description="Same seed, same table history.")
    initial_items: int = Field(default=500, description="Items in the table at the simulation's start.")
    writes_per_hour: int = Field(default=120, description="Mean write rate.")
    start: str = Field(default=DEFAULT_START.isoformat(), description="When the simulated traffic starts (UTC).")
    live: bool = Field(
        default=False,
        description="The table is written in real time: a window can be exported only once it has closed, as "
        "DynamoDB's exports (the live local pipeline); otherwise its whole history is there at once (tests, bench).",
    )
    key_shape: str = Field(default=KeyShape.COMPOSITE.value, description="composite or simple keys.")
    view: str = Field(default=ExportView.NEW_AND_OLD_IMAGES.value, description="Incremental export view type.")

    @property
    def simulation(self) -> SimulationConfig:
        return SimulationConfig(
            seed=self.seed,
            initial_items=self.initial_items,
            writes_per_hour=self.writes_per_hour,
            start=utc_moment(self.start),
            key_shape=KeyShape(self.key_shape),
        )

    @property
    def table(self) -> SimulatedTable:
        return _simulated_table(self.simulation)

    @property
    def source_uri(self) -> str:
        return str(Path(self.output_dir).expanduser().resolve())

    def _target(self) -> ExportTarget:
        return ExportTarget.for_source(ExportSource.from_uri(self.source_uri))

    def _existing(self, export_type: ExportType, export_from: datetime, export_to: datetime) -> ManifestSummary | None:
        # An export of this window was requested after its end: only those are read, not the source's history.
        for export in discover_exports(ExportSource.from_uri(self.source_uri), after=export_to).exports:
            summary = export.summary
            covers = (summary.covers_from, summary.covers_to)
            if summary.export_type is export_type and covers == (export_from, export_to):
                return summary
        return None

    def _described(self, summary: ManifestSummary) -> ExportDescription:
        location = f"{self.source_uri}/{summary.manifest_files_s3_key}"
        return _from_summary(summary, location, self.export_price_per_gb_usd)

    def export_full(self, export_time: datetime | None, log: Any) -> ExportDescription:
        moment = export_time or self.simulation.start
        summary = self._existing(ExportType.FULL, moment, moment)
        if summary is None:
            log.info(f"Simulating a full export of {self.simulation.table_name} as of {format_timestamp(moment)}")
            summary = write_full_export(self.table, self._target(), moment)
        return self._described(summary)

    def baseline_for_a_new_table(self, log: Any) -> ExportDescription | None:
        return self.export_full(None, log)

    def export_incremental(self, start: datetime, end: datetime, log: Any) -> ExportDescription:
        if self.live and end > datetime.now(UTC):
            raise ExportFailedError(
                f"window [{format_timestamp(start)}, {format_timestamp(end)}) has not closed yet: the simulated "
                "table is written in real time, and an export can only cover the past (as DynamoDB's)"
            )
        summary = self._existing(ExportType.INCREMENTAL, start, end)
        if summary is None:
            log.info(f"Simulating the incremental export of [{format_timestamp(start)}, {format_timestamp(end)})")
            summary = write_incremental_export(self.table, self._target(), start, end, ExportView(self.view))
        else:
            log.info(f"Window [{format_timestamp(start)}, {format_timestamp(end)}) was exported already")
        return self._described(summary)
