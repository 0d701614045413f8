"""Fixtures shared by the whole suite: the real export fixtures and a moto server on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from hypothesis import settings
from pyspark.sql import SparkSession

from ddb_iceberg.engine.changes import SMALL_PLAN_ITEMS, SMALL_PLAN_ITEMS_CONF
from ddb_iceberg.engine.spark_session import ICEBERG_AWS_BUNDLE, CatalogSettings, SparkSettings, build_spark_session
from ddb_iceberg.resources import DynamoDBExporter
from ddb_iceberg_tests.helpers import MOTO_CREDENTIALS, MOTO_REGION, LocalWarehouse, MotoServer, start_moto_server

REPO_ROOT = Path(__file__).resolve().parent.parent

SUITE_SPARK = SparkSettings(
    packages=(*SparkSettings().packages, ICEBERG_AWS_BUNDLE),
    # Credentials for the moto server on loopback, the only AWS the Glue and S3 tests reach.
    java_options=("-Daws.accessKeyId=testing", "-Daws.secretAccessKey=testing", f"-Daws.region={MOTO_REGION}"),
)
_FETCH_JARS = f"""
from ddb_iceberg.engine.spark_session import SparkSettings, build_spark_session, CatalogSettings
import tempfile
build_spark_session(CatalogSettings.local(tempfile.mkdtemp()), SparkSettings(packages={SUITE_SPARK.packages!r})).stop()
"""

# Property-based tests replay the same examples in every run (CI), unless HYPOTHESIS_PROFILE=explore.
settings.register_profile("replay", derandomize=True, database=None, deadline=None)
settings.register_profile("explore", deadline=None)


def pytest_configure(config: pytest.Config) -> None:
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "replay"))
    if not hasattr(config, "workerinput") and not SUITE_SPARK.jar_files():
        # The first Spark start fetches the jars into Ivy's cache: once, here, before the workers (`make test` runs
        # two) each start a session and would fetch them into the same cache at the same time.
        subprocess.run([sys.executable, "-c", _FETCH_JARS], check=True, timeout=900)
    # The only AWS the suite reaches is moto on loopback: its credentials, for every client that takes AWS's
    # default chain (a sync request carries no keys; the readers of an s3:// source in any process use the chain).
    os.environ.setdefault("AWS_ACCESS_KEY_ID", MOTO_CREDENTIALS["aws_access_key_id"])
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", MOTO_CREDENTIALS["aws_secret_access_key"])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # `make test` runs two workers, each handed one half of this list to start with (they steal from each other
    # when done): each half begins with half of the slow end-to-end tests, so that both start early and the
    # short tests fill in around them, instead of one starting last on a worker while the other idles.
    slow = [item for item in items if item.get_closest_marker("slow")]
    rest = [item for item in items if not item.get_closest_marker("slow")]
    middle = len(rest) // 2
    items[:] = slow[0::2] + rest[:middle] + slow[1::2] + rest[middle:]


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """`../shared` beside the checkout (CI lays a copy there), or DDB_ICEBERG_SHARED."""
    path = Path(os.environ.get("DDB_ICEBERG_SHARED", REPO_ROOT.parent / "shared"))
    if not (path / "fixtures" / "real-exports").is_dir():
        pytest.fail(f"the real export fixtures are missing: expected {path}/fixtures/real-exports")
    return path


@pytest.fixture(scope="session")
def real_exports(shared_dir: Path) -> Path:
    return shared_dir / "fixtures" / "real-exports"


@pytest.fixture(scope="session")
def test_table_source(real_exports: Path) -> Path:
    """Bucket root of the real table `test` (pk, sk): one full export and two incremental exports."""
    return real_exports / "eu-north-1-test-table"


@pytest.fixture(scope="session")
def airline_source(real_exports: Path) -> Path:
    """The prefix of the real Airline full export (manifests only, made with an S3 prefix)."""
    return real_exports / "airline-full-export-manifests" / "public-s3-files" / "Output_Airline.csv"


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """moto in server mode on a free loopback port, for the whole session."""
    server = start_moto_server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkSession]:
    """One local Spark session for the whole suite (for each of its worker processes); each test registers a
    catalog of its own."""
    session = build_spark_session(CatalogSettings.local(tmp_path_factory.mktemp("default-warehouse")), SUITE_SPARK)
    # The suite's exports are small: read them on the executors, as any plan beyond a small one is read; the tests
    # of the small-plan path ask for it (`small_plans_on_driver`), and every process a test starts has it.
    session.conf.set(SMALL_PLAN_ITEMS_CONF, "0")
    yield session
    session.stop()


@pytest.fixture
def small_plans_on_driver(spark: SparkSession) -> Iterator[None]:
    """Small plans are read on the driver (the default outside this suite's shared session)."""
    spark.conf.set(SMALL_PLAN_ITEMS_CONF, str(SMALL_PLAN_ITEMS))
    try:
        yield
    finally:
        spark.conf.set(SMALL_PLAN_ITEMS_CONF, "0")


@pytest.fixture
def warehouse(spark: SparkSession, tmp_path: Path, request: pytest.FixtureRequest) -> LocalWarehouse:
    """A fresh local warehouse with its SQLite catalog, registered in the shared session."""
    return LocalWarehouse.register(spark, tmp_path / "warehouse")


@pytest.fixture
def stubbed(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    """botocore's Stubber on the DynamoDB exporter's client, for the calls and behaviour moto lacks."""
    client = boto3.client("dynamodb", region_name=MOTO_REGION, aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stubber:
        monkeypatch.setattr(DynamoDBExporter, "_client", lambda self: client)
        yield stubber
        stubber.assert_no_pending_responses()
