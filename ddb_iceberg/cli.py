"""The `ddb-iceberg` command line."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ddb_iceberg.bench import OPTIONAL_SCENARIOS, SCENARIOS
from ddb_iceberg.console import SparkProgress
from ddb_iceberg.engine.export_housekeeping import DEFAULT_EXPORT_RETENTION
from ddb_iceberg.engine.request import (
    MAPS_CHOICES,
    SyncRequest,
    UpkeepRequest,
    UpkeepSettings,
    key_value_pair,
    parse_table_identifier,
    utc_moment,
)
from ddb_iceberg.engine.spark_session import SparkSettings
from ddb_iceberg.errors import DdbIcebergError, Fix, described
from ddb_iceberg.exports import ExportSource, ExportView, S3Options, discover_exports, find_gaps
from ddb_iceberg.exports.manifest import DEFAULT_WINDOW, format_timestamp
from ddb_iceberg.simulator import ExportTarget, KeyShape, SimulatedTable, SimulationConfig, write_series
from ddb_iceberg.simulator.workload import DEFAULT_START

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# The partition fields `--partition` takes (engine.partitioning).
PARTITION_FIELDS = (
    "one of ATTRIBUTE, bucket(N, ATTRIBUTE), year|month|day|hour(ATTRIBUTE, epoch_seconds|epoch_millis|iso)"
)


# How each remedy an error names is done from the command line (errors.Fix).
CLI_FIXES = {
    Fix.REBASELINE: "export the table in full, then run `ddb-iceberg sync --rebaseline` (one commit replaces the "
    "rows; the table's history stays)",
    Fix.ALLOW_GAPS: "or pass --allow-gaps to apply anyway and record the gap",
    Fix.NAME_KEY: "pass --key PARTITION_KEY[,SORT_KEY]: the DynamoDB table's whole primary key",
    Fix.REPARTITION: "run `ddb-iceberg repartition --table TABLE --warehouse WAREHOUSE --partition FIELD ...` with the "
    "fields asked for, then sync without --partition",
}


@contextmanager
def _reported() -> Iterator[None]:
    """An error a user can act on ends the command with its message and how to fix it here, not a traceback."""
    try:
        yield
    except DdbIcebergError as error:
        raise click.ClickException(described(error, wording=CLI_FIXES)) from None


_UPKEEP = UpkeepSettings().in_days()
_verbose = click.option("--verbose", is_flag=True, help="Also show Spark's own output (else in <warehouse>/spark.log).")
_table = click.option("--table", "table", required=True, help="Iceberg table as <namespace>.<table>.")
_warehouse = click.option(
    "--warehouse", required=True, help="Local warehouse directory (the SQL catalog is <warehouse>/catalog.db)."
)


def _spark_options(command: Callable[..., None]) -> Callable[..., None]:
    """How the local Spark session starts: its jars and its heap."""
    jars = click.option(
        "--jars", default=None, help="Comma-separated jar files to use instead of resolving from Maven Central."
    )
    driver_memory = click.option(
        "--driver-memory",
        default=SparkSettings.driver_memory,
        show_default=True,
        help="Heap of the local Spark JVM, which also runs the tasks (e.g. 8g to keep more in memory).",
    )
    return jars(driver_memory(command))


def _start_spark(warehouse: str, jars: str | None, driver_memory: str, verbose: bool) -> SparkSession:
    from ddb_iceberg.console import spark_output_to
    from ddb_iceberg.engine.spark_session import CatalogSettings, build_spark_session

    settings = SparkSettings(jars=tuple(filter(None, (jars or "").split(","))), driver_memory=driver_memory)
    with spark_output_to(Path(warehouse) / "spark.log", enabled=not verbose):
        return build_spark_session(CatalogSettings.local(warehouse), settings)


_s3_region = click.option("--s3-region", default=None, help="AWS Region of an s3:// source (default: AWS's chain).")
_s3_endpoint = click.option(
    "--s3-endpoint-url",
    default=None,
    help="S3 endpoint for an s3:// source, e.g. a local stand-in such as moto.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Keep an Apache Iceberg table exactly equal to a DynamoDB table, from its exports to S3."""


@cli.command()
@click.option("--out", "out", required=True, help="Directory or s3://bucket/prefix to write AWSDynamoDB/ into.")
@click.option("--seed", default=7, show_default=True, help="Same seed, same table history.")
@click.option("--items", default=500, show_default=True, help="Items in the table at the start.")
@click.option("--writes-per-hour", default=120, show_default=True, help="Mean write rate.")
@click.option("--windows", default=24, show_default=True, help="Incremental windows after the full export.")
@click.option(
    "--window-minutes",
    default=DEFAULT_WINDOW // timedelta(minutes=1),
    show_default=True,
    help="Window length, 15 to 1440.",
)
@click.option("--start", default=DEFAULT_START.isoformat(), show_default=True, help="Time of the full export (UTC).")
@click.option("--key-shape", type=click.Choice([k.value for k in KeyShape]), default=KeyShape.COMPOSITE.value)
@click.option("--view", type=click.Choice([v.value for v in ExportView]), default=ExportView.NEW_AND_OLD_IMAGES.value)
@click.option("--partitions", default=4, show_default=True, help="Data files per export (table partitions).")
@click.option("--type-drift", is_flag=True, help="Let `quantity` turn from N to S for some items.")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary.")
@_s3_region
@_s3_endpoint
def simulate(
    out: str,
    seed: int,
    items: int,
    writes_per_hour: int,
    windows: int,
    window_minutes: int,
    start: str,
    key_shape: str,
    view: str,
    partitions: int,
    type_drift: bool,
    as_json: bool,
    s3_region: str | None,
    s3_endpoint_url: str | None,
) -> None:
    """Write a simulated table's full export and incremental exports, in AWS's exact layout."""
    with _reported():
        moment = utc_moment(start)
    config = SimulationConfig(
        seed=seed,
        start=moment,
        initial_items=items,
        writes_per_hour=writes_per_hour,
        key_shape=KeyShape(key_shape),
        type_drift=type_drift,
    )
    source = ExportSource.from_uri(out, S3Options(region=s3_region, endpoint_url=s3_endpoint_url))
    target = ExportTarget.for_source(source, partitions=partitions)
    try:
        summaries = write_series(
            SimulatedTable(config),
            target,
            windows=windows,
            window_length=timedelta(minutes=window_minutes),
            view=ExportView(view),
        )
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    rows = [
        {
            "export_id": s.export_id,
            "type": s.export_type.value,
            "from": format_timestamp(s.covers_from),
            "to": format_timestamp(s.covers_to),
            "item_count": s.item_count,
        }
        for s in summaries
    ]
    if as_json:
        click.echo(json.dumps({"source": source.uri, "exports": rows}, indent=2))
        return
    click.echo(f"Wrote {len(summaries)} exports of table {config.table_name} (seed {seed}) to {source.uri}:")
    for row in rows:
        window = row["to"] if row["type"] == "FULL_EXPORT" else f"{row['from']} .. {row['to']}"
        click.echo(f"  {row['export_id']}  {row['type']:<18}  {window:<50}  {row['item_count']:>7} lines")


@cli.command()
@click.option("--source", required=True, help="Directory or s3://bucket/prefix that holds AWSDynamoDB/.")
@click.option("--verify/--no-verify", default=False, help="Also read and verify every data file.")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable listing.")
@_s3_region
@_s3_endpoint
def inspect(source: str, verify: bool, as_json: bool, s3_region: str | None, s3_endpoint_url: str | None) -> None:
    """List the exports under a source in applying order, with gaps, warnings and (optionally) verification."""
    with _reported():
        listing = discover_exports(
            ExportSource.from_uri(source, S3Options(region=s3_region, endpoint_url=s3_endpoint_url))
        )
        exports: list[dict[str, Any]] = []
        for export in listing.exports:
            summary = export.summary
            row: dict[str, Any] = {
                "export_id": export.export_id,
                "type": summary.export_type.value,
                "from": format_timestamp(summary.covers_from),
                "to": format_timestamp(summary.covers_to),
                "item_count": summary.item_count,
                "data_files": len(export.data_files),
                "warnings": list(export.warnings),
            }
            if verify:
                row["verified_records"] = export.verify()
            exports.append(row)
    latest_full = listing.full_exports[-1].summary.covers_to if listing.full_exports else None
    gaps = [str(gap) for gap in find_gaps(latest_full, listing.incremental_exports)] if latest_full else []
    if as_json:
        click.echo(json.dumps({"exports": exports, "incomplete": list(listing.incomplete), "gaps": gaps}, indent=2))
        return
    click.echo(f"{len(exports)} exports under {listing.source.uri}")
    for row in exports:
        window = row["to"] if row["type"] == "FULL_EXPORT" else f"{row['from']} .. {row['to']}"
        verified = f"  verified {row['verified_records']}" if verify else ""
        click.echo(f"  {row['export_id']}  {row['type']:<18}  {window:<50}  {row['item_count']:>7} lines{verified}")
        for warning in row["warnings"]:
            click.echo(f"      warning: {warning}")
    for export_id in listing.incomplete:
        click.echo(f"  {export_id}  not complete (no manifest-summary.json yet): skipped")
    for gap in gaps:
        click.echo(f"  gap after the latest full export: {gap}")


@cli.command()
@click.option("--source", required=True, help="Directory or s3://bucket/prefix that holds AWSDynamoDB/.")
@_table
@_warehouse
@click.option(
    "--key", "key", default=None, help="Key attributes: PARTITION_KEY[,SORT_KEY] (default: from the exports)."
)
@click.option("--allow-gaps", is_flag=True, help="Apply exports across uncovered time, and record the gap.")
@click.option(
    "--rebaseline",
    is_flag=True,
    help="Replace the table's rows with the latest full export (and the windows after it), in one commit; "
    "history and tags stay. The way out of a gap or a lost ledger.",
)
@click.option(
    "--change-feed",
    is_flag=True,
    help="Also keep <table>__changes: one row per key per applied export (operation, before and after).",
)
@click.option(
    "--history",
    is_flag=True,
    help="Also keep <table>__history (SCD type 2): one row per version of each item, valid from the end of the "
    "window that made it to the end of the one that changed it. Built from the change feed, which it turns on.",
)
@click.option(
    "--partition",
    "partition_by",
    multiple=True,
    metavar="FIELD",
    help=f"For a new table: a partition field (repeatable), {PARTITION_FIELDS} (default: buckets of the key).",
)
@click.option(
    "--maps",
    type=click.Choice(MAPS_CHOICES),
    default=None,
    help="For a new table: a map attribute as a struct column (columns, the default) or as DynamoDB JSON text.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary.")
@_spark_options
@click.option(
    "--buckets",
    type=click.IntRange(min=0),
    default=None,
    help="For a new table: buckets of the partition key (0: not partitioned; default: by the full export's size).",
)
@click.option(
    "--table-property",
    multiple=True,
    metavar="KEY=VALUE",
    help="For a new table: an Iceberg table property over the defaults (repeatable).",
)
@_s3_region
@_s3_endpoint
@_verbose
def sync(
    source: str,
    table: str,
    warehouse: str,
    key: str | None,
    allow_gaps: bool,
    rebaseline: bool,
    change_feed: bool,
    history: bool,
    partition_by: tuple[str, ...],
    maps: str | None,
    as_json: bool,
    jars: str | None,
    driver_memory: str,
    buckets: int | None,
    table_property: tuple[str, ...],
    s3_region: str | None,
    s3_endpoint_url: str | None,
    verbose: bool,
) -> None:
    """Apply every export the Iceberg table still lacks, in one Spark job and one commit."""
    from ddb_iceberg.engine.spark_session import CATALOG_NAME
    from ddb_iceberg.engine.sync import sync_table

    progress = (lambda message: click.echo(message, err=True)) if as_json else click.echo
    with _reported():
        # Every setting is checked here, before Spark starts.
        request = SyncRequest(
            table=table,
            source=source,
            key_attributes=tuple(key.split(",")) if key else (),
            allow_gaps=allow_gaps,
            rebaseline=rebaseline,
            change_feed=change_feed,
            history=history,
            partition_by=partition_by,
            maps=maps,
            buckets=buckets,
            table_properties=tuple(key_value_pair(text, "--table-property") for text in table_property),
            s3_region=s3_region,
            s3_endpoint_url=s3_endpoint_url,
        )
        progress("Starting Spark ...")
        spark = _start_spark(warehouse, jars, driver_memory, verbose)
        with SparkProgress(spark, sys.stderr if as_json else sys.stdout) as reporter:
            result = sync_table(spark, CATALOG_NAME, request, log=reporter.say)
    click.echo(result.to_json() if as_json else result.describe())


@cli.command()
@_table
@_warehouse
@click.option(
    "--partition",
    "partition_by",
    multiple=True,
    required=True,
    metavar="FIELD",
    help=f"A partition field (repeatable), {PARTITION_FIELDS}.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary.")
@_spark_options
@_verbose
def repartition(
    table: str, warehouse: str, partition_by: tuple[str, ...], as_json: bool, jars: str | None, driver_memory: str,
    verbose: bool,
) -> None:  # fmt: skip
    """Partition an existing table anew (a sync never does): new files take the new spec, older ones keep theirs
    until upkeep compacts them."""
    from ddb_iceberg.engine.partitioning import PartitionSpec
    from ddb_iceberg.engine.repartition import repartition_table
    from ddb_iceberg.engine.spark_session import CATALOG_NAME

    progress = (lambda message: click.echo(message, err=True)) if as_json else click.echo
    with _reported():
        parse_table_identifier(table)
        PartitionSpec.parse(partition_by)  # checked before Spark starts
        progress("Starting Spark ...")
        spark = _start_spark(warehouse, jars, driver_memory, verbose)
        with SparkProgress(spark, sys.stderr if as_json else sys.stdout) as reporter:
            result = repartition_table(spark, CATALOG_NAME, table, partition_by, log=reporter.say)
    click.echo(result.to_json() if as_json else result.describe())


@cli.command()
@_table
@_warehouse
@click.option(
    "--snapshot-retention-days",
    default=_UPKEEP["snapshot_retention"],
    show_default=True,
    help="Expire older snapshots.",
)
@click.option("--tag-retention-days", default=_UPKEEP["tag_retention"], show_default=True, help="Drop older ddb- tags.")
@click.option(
    "--orphan-age-days", default=_UPKEEP["orphan_age"], show_default=True, help="Remove unreferenced files this old."
)
@click.option(
    "--min-input-files",
    default=int(_UPKEEP["min_input_files"]),
    show_default=True,
    help="Compact a file group once it has this many files.",
)
@click.option(
    "--source",
    default=None,
    help="The directory or s3://bucket/prefix the table's syncs read: also remove the exports it has applied "
    "(export housekeeping; only when given).",
)
@click.option(
    "--export-retention-days",
    type=click.FloatRange(min=0),
    default=DEFAULT_EXPORT_RETENTION / timedelta(days=1),
    show_default=True,
    help="With --source: remove applied exports requested this many days ago.",
)
@click.option("--dry-run", is_flag=True, help="With --source: list the exports housekeeping would remove, remove none.")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary.")
@_spark_options
@_s3_region
@_s3_endpoint
@_verbose
def maintain(
    table: str,
    warehouse: str,
    snapshot_retention_days: float,
    tag_retention_days: float,
    orphan_age_days: float,
    min_input_files: int,
    source: str | None,
    export_retention_days: float,
    dry_run: bool,
    as_json: bool,
    jars: str | None,
    driver_memory: str,
    s3_region: str | None,
    s3_endpoint_url: str | None,
    verbose: bool,
) -> None:
    """Compact the table, expire old snapshots and tags, remove orphan files (and, given --source, the exports it
    has applied); the ledger and syncs survive it."""
    from ddb_iceberg.engine.export_housekeeping import remove_applied_exports
    from ddb_iceberg.engine.spark_session import CATALOG_NAME
    from ddb_iceberg.engine.spark_table import SparkIcebergTable
    from ddb_iceberg.engine.upkeep import maintain_table

    progress = (lambda message: click.echo(message, err=True)) if as_json else click.echo
    housekeeping = None
    with _reported():
        # Every setting is checked here, before Spark starts.
        request = UpkeepRequest(
            table,
            UpkeepSettings.from_days(snapshot_retention_days, tag_retention_days, orphan_age_days, min_input_files),
        )
        export_source = (
            ExportSource.from_uri(source, S3Options(region=s3_region, endpoint_url=s3_endpoint_url)) if source else None
        )
        progress("Starting Spark ...")
        spark = _start_spark(warehouse, jars, driver_memory, verbose)
        with SparkProgress(spark, sys.stderr if as_json else sys.stdout) as reporter:
            result = maintain_table(spark, CATALOG_NAME, request, log=reporter.say)
        if export_source is not None:
            housekeeping = remove_applied_exports(
                export_source,
                SparkIcebergTable(spark, CATALOG_NAME, table).ledger(),
                retention=timedelta(days=export_retention_days),
                dry_run=dry_run,
                log=progress,
            )
    if as_json:
        report = json.loads(result.to_json())
        if housekeeping is not None:
            report["export_housekeeping"] = housekeeping.to_dict()
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(result.describe())
    if housekeeping is not None:
        click.echo(housekeeping.describe())


@cli.command()
@click.option("--table", "table", required=True, help="Iceberg table as <namespace>.<table>.")
@click.option("--warehouse", required=True, help="Local warehouse directory.")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable status.")
def status(table: str, warehouse: str, as_json: bool) -> None:
    """Show what the table reflects: baseline, exports applied, the time it reflects, accepted gaps, tags."""
    from pyiceberg.exceptions import NoSuchTableError

    from ddb_iceberg.catalog_access import local_catalog, table_status

    with _reported():
        parse_table_identifier(table)
    try:
        report = table_status(local_catalog(warehouse), table)
    except (FileNotFoundError, NoSuchTableError) as error:
        raise click.ClickException(str(error)) from None
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
        return
    click.echo(f"{report.table}: reflects the DynamoDB table as of {report.reflects or 'nothing yet'}")
    click.echo(f"  baseline (full export): {report.baseline_export or '-'}")
    click.echo(f"  rows: {report.rows}   current snapshot: {report.current_snapshot_id}")
    click.echo(f"  exports applied: {len(report.exports_applied)} in {len(report.commits)} commit(s)")
    for commit in report.commits:
        click.echo(
            f"    snapshot {commit['snapshot_id']}  reflects {commit['reflects']}  {len(commit['exports'])} export(s)  "
            f"+{commit['rows_inserted']} ~{commit['rows_updated']} -{commit['rows_deleted']}"
        )
    click.echo(f"  accepted gaps: {', '.join(report.accepted_gaps) or 'none'}")
    click.echo(f"  tags: {', '.join(report.tags) or '-'}")


@cli.command()
@click.option("--warehouse", required=True, help="Local warehouse directory.")
@click.option("--json", "as_json", is_flag=True, help="Print rows as JSON lines.")
@click.argument("sql")
def query(warehouse: str, as_json: bool, sql: str) -> None:
    """Run SQL with DuckDB over the warehouse's Iceberg tables (`<namespace>.<table>`), the local Athena."""
    import duckdb

    from ddb_iceberg.catalog_access import duckdb_with_tables, local_catalog

    try:
        connection = duckdb_with_tables(local_catalog(warehouse))
        relation = connection.sql(sql)
    except (FileNotFoundError, duckdb.Error) as error:
        raise click.ClickException(str(error)) from None
    if relation is None:
        return
    if as_json:
        columns = relation.columns
        for row in relation.fetchall():
            click.echo(json.dumps(dict(zip(columns, row, strict=True)), default=str))
        return
    click.echo(str(relation))


@cli.command()
@click.option("--workdir", default=".ddb_iceberg/demo", show_default=True, help="Where the demo writes (emptied).")
@click.option("--verbose", is_flag=True, help="Also show Dagster's run log, Spark's output and library warnings.")
def demo(workdir: str, verbose: bool) -> None:
    """Run the pipeline end to end on the local default (live clock), with Dagster, and check the table."""
    from ddb_iceberg.console import library_warnings
    from ddb_iceberg.demo import SAMPLE_QUERY, TABLE, run_demo

    with library_warnings(shown=verbose):
        summary = run_demo(Path(workdir), verbose=verbose, log=click.echo)
    verdict = "equals" if summary.matches_truth else "DOES NOT equal"
    click.echo(
        f"\nThe Iceberg table {TABLE} {verdict} the simulated DynamoDB table as of {summary.reflects}:\n"
        f"  {summary.rows} rows, {summary.exports} exports applied in {summary.commits} commits, "
        f"{summary.seconds:.0f} s in all. Warehouse: {Path(workdir).resolve() / 'warehouse'}"
        + ("" if verbose else f"; Spark's log: {Path(workdir).resolve() / 'spark.log'}")
        + f"\n\n{SAMPLE_QUERY}\n{summary.query}"
    )
    if not (summary.matches_truth and summary.every_check_passed):
        raise SystemExit(1)


@cli.command()
@click.option("--scale-items", default="100000,1000000", show_default=True, help="Full loads of these sizes.")
@click.option("--window-tables", default="200000,2000000", show_default=True, help="One window into these sizes.")
@click.option("--series-items", default=200_000, show_default=True, help="Items of the series' table.")
@click.option("--windows", default=12, show_default=True, help="Hourly windows in the series.")
@click.option("--churn", default=0.02, show_default=True, help="Share of the table written per window.")
@click.option("--runs", default=3, show_default=True, help="Runs of each measurement (median, min-max).")
@click.option("--upkeep-windows", default=100, show_default=True, help="One-window syncs before upkeep (0: skip).")
@click.option(
    "--history-windows",
    default=2_000,
    show_default=True,
    help="Applied windows before the one-window sync of the history scenario, against 12 (0: skip).",
)
@click.option(
    "--only",
    default=",".join(SCENARIOS),
    show_default=True,
    help=(
        "The scenarios to run, comma-separated (Spark's start is always measured); "
        f"also {', '.join(OPTIONAL_SCENARIOS)}."
    ),
)
@click.option("--workdir", default=".ddb_iceberg/bench", show_default=True, help="Scratch directory (emptied).")
def bench(
    scale_items: str,
    window_tables: str,
    series_items: int,
    windows: int,
    churn: float,
    runs: int,
    upkeep_windows: int,
    history_windows: int,
    only: str,
    workdir: str,
) -> None:
    """Measure whole syncs as a user runs them, and a reference pipeline; prints Markdown for BENCHMARKS.md."""
    from ddb_iceberg.bench import run_benchmarks

    known = (*SCENARIOS, *OPTIONAL_SCENARIOS)
    unknown = {name.strip() for name in only.split(",")} - set(known) - {""}
    if unknown:
        raise click.UsageError(
            f"--only: unknown scenario(s) {', '.join(sorted(unknown))}; choose from {', '.join(known)}"
        )
    report = run_benchmarks(
        Path(workdir),
        scale_items=[int(n) for n in scale_items.split(",")],
        window_tables=[int(n) for n in window_tables.split(",")],
        series_items=series_items,
        windows=windows,
        churn=churn,
        runs=runs,
        upkeep_windows=upkeep_windows,
        history_windows=history_windows,
        scenarios=[name.strip() for name in only.split(",") if name.strip()],
        log=click.echo,
    )
    click.echo(report.markdown())


@cli.command("emr-python-deps")
@click.option(
    "--arch", "architecture", type=click.Choice(["arm64", "x86_64"]), default="arm64", show_default=True,
    help="The EMR Serverless application's architecture.",
)  # fmt: skip
@click.option("--output", default="dist/ddb-iceberg-python-deps.zip", show_default=True, help="The zip to write.")
@click.option("--python-version", default="3.11", show_default=True, help="The EMR image's Python version.")
def emr_python_deps(architecture: str, output: str, python_version: str) -> None:
    """Build the Spark job's Python dependencies for EMR Serverless from PyPI's wheels (no Docker)."""
    from ddb_iceberg.resources.job_package import build_python_dependencies

    with _reported():
        path = build_python_dependencies(architecture, Path(output), python_version)
    click.echo(f"Wrote {path} ({path.stat().st_size / 1e6:.0f} MB). Upload it to S3 and point the merge runner's")
    click.echo("python_dependencies (DDB_ICEBERG_EMR_PYTHON_DEPENDENCIES) at it.")


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="ddb-iceberg")


if __name__ == "__main__":
    main()
