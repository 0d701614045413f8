"""Benchmark 6: what upkeep buys readers. A table after many one-window syncs (one commit each, as the schedule
makes them), read by DuckDB (Athena's local stand-in) and Spark, before and after `maintain_table`."""

from __future__ import annotations

import os
import shutil
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ddb_iceberg.engine.request import Log

TABLE = "bench.orders"
KEYS = ("customer_id", "order_id")
READS = 3


def upkeep_figures(
    exports: Path, full_export_id: str, window_ids: list[str], workdir: Path, key: tuple[str, int], log: Log
) -> dict[str, str]:
    """Sync the full export, then each window in a sync of its own (in one Spark session: the figures are about
    the table, not the syncs), then time reads before and after upkeep."""
    from ddb_iceberg.catalog_access import duckdb_with_tables, local_catalog
    from ddb_iceberg.engine.request import SyncRequest, UpkeepRequest
    from ddb_iceberg.engine.spark_session import CATALOG_NAME, CatalogSettings, build_spark_session
    from ddb_iceberg.engine.spark_table import SparkIcebergTable
    from ddb_iceberg.engine.sync import sync_table
    from ddb_iceberg.engine.upkeep import file_stats, maintain_table

    source, warehouse = workdir / "source", workdir / "warehouse"
    (source / "AWSDynamoDB").mkdir(parents=True)
    shutil.copytree(exports / "AWSDynamoDB" / "data", source / "AWSDynamoDB" / "data", copy_function=os.link)
    spark = build_spark_session(CatalogSettings.local(warehouse))

    def add(export_id: str) -> None:
        shutil.copytree(exports / "AWSDynamoDB" / export_id, source / "AWSDynamoDB" / export_id, copy_function=os.link)
        sync_table(spark, CATALOG_NAME, SyncRequest(table=TABLE, source=str(source), key_attributes=KEYS))

    add(full_export_id)
    started = time.perf_counter()
    for index, export_id in enumerate(window_ids, start=1):
        add(export_id)
        if index % 20 == 0:
            log(f"   {index} of {len(window_ids)} windows synced")
    sync_seconds = (time.perf_counter() - started) / len(window_ids)
    table = SparkIcebergTable(spark, CATALOG_NAME, TABLE)

    def reads() -> dict[str, float]:
        duck = duckdb_with_tables(local_catalog(warehouse))
        scan = "SELECT count(*), sum(quantity) FROM bench.orders"
        lookup = f"SELECT * FROM bench.orders WHERE customer_id = '{key[0]}' AND order_id = {key[1]}"
        spark_name = f"{CATALOG_NAME}.{TABLE}"
        return {
            "DuckDB full scan": _median(lambda: duck.execute(scan).fetchall()),
            "DuckDB point lookup": _median(lambda: duck.execute(lookup).fetchall()),
            "Spark full scan": _median(lambda: spark.sql(scan.replace("bench.orders", spark_name)).collect()),
            "Spark point lookup": _median(lambda: spark.sql(lookup.replace("bench.orders", spark_name)).collect()),
        }

    before, read_before = file_stats(table), reads()
    upkeep = maintain_table(spark, CATALOG_NAME, UpkeepRequest(TABLE), now=datetime.now(UTC) + timedelta(days=40))
    after, read_after = file_stats(table), reads()
    spark.stop()
    figures = {
        "syncs": f"{len(window_ids)} one-window syncs, {sync_seconds:.1f} s each (in one warm session)",
        "data files": f"{before.data_files} -> {after.data_files}",
        "delete files": f"{before.delete_files} -> {after.delete_files}",
        "snapshots": f"{before.snapshots} -> {after.snapshots}",
        "upkeep": f"{upkeep.seconds:.1f} s ({', '.join(f'{k} {v:.1f} s' for k, v in upkeep.phase_seconds.items())})",
    }
    for name in read_before:
        figures[name] = f"{read_before[name]:.2f} s -> {read_after[name]:.2f} s (median of {READS})"
    return figures


def _median(read: Callable[[], object]) -> float:
    seconds = []
    for _ in range(READS):
        started = time.perf_counter()
        read()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)
