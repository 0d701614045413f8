"""Spark sessions configured for an Iceberg catalog: local (SQLite catalog) or AWS Glue (EMR Serverless)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ddb_iceberg.errors import DdbIcebergError, SettingError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

CATALOG_NAME = "ddb_iceberg"
ICEBERG_VERSION = "1.11.0"
ICEBERG_SPARK_RUNTIME = f"org.apache.iceberg:iceberg-spark-runtime-4.1_2.13:{ICEBERG_VERSION}"
ICEBERG_AWS_BUNDLE = f"org.apache.iceberg:iceberg-aws-bundle:{ICEBERG_VERSION}"
SQLITE_JDBC = "org.xerial:sqlite-jdbc:3.54.1.0"
ICEBERG_EXTENSIONS = "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions"
MIN_JAVA = 17
LOG4J_CONFIG = Path(__file__).with_name("log4j2.properties")


class JavaMissingError(DdbIcebergError):
    """Spark cannot start: no suitable Java."""


@dataclass(frozen=True)
class CatalogSettings:
    """Where the Iceberg catalog lives: a SQLite file in a local warehouse, or the AWS Glue Data Catalog."""

    warehouse: str
    kind: str = "local"  # "local" or "glue"
    name: str = CATALOG_NAME
    region: str | None = None
    # Endpoint overrides, for local stand-ins of AWS (moto) only.
    s3_endpoint: str | None = None
    glue_endpoint: str | None = None

    def __post_init__(self) -> None:
        if self.kind == "local":
            # Spark, PyIceberg and the SQLite catalog all need the absolute path.
            object.__setattr__(self, "warehouse", str(Path(self.warehouse).expanduser().resolve()))

    @classmethod
    def local(cls, warehouse: str | Path) -> CatalogSettings:
        return cls(warehouse=str(warehouse))

    @property
    def sqlite_path(self) -> Path:
        return Path(self.warehouse) / "catalog.db"

    def spark_conf(self) -> dict[str, str]:
        prefix = f"spark.sql.catalog.{self.name}"
        conf = {prefix: "org.apache.iceberg.spark.SparkCatalog"}
        if self.kind == "local":
            Path(self.warehouse).mkdir(parents=True, exist_ok=True)
            conf |= {
                f"{prefix}.catalog-impl": "org.apache.iceberg.jdbc.JdbcCatalog",
                f"{prefix}.uri": f"jdbc:sqlite:{self.sqlite_path}",
                f"{prefix}.warehouse": Path(self.warehouse).as_uri(),
                # V1 adds the iceberg_type column PyIceberg's SqlCatalog expects (views support).
                f"{prefix}.jdbc.schema-version": "V1",
            }
        elif self.kind == "glue":
            conf |= {
                f"{prefix}.catalog-impl": "org.apache.iceberg.aws.glue.GlueCatalog",
                f"{prefix}.io-impl": "org.apache.iceberg.aws.s3.S3FileIO",
                f"{prefix}.warehouse": self.warehouse,
            }
            if self.region:
                conf[f"{prefix}.client.region"] = self.region
            if self.s3_endpoint:
                conf[f"{prefix}.s3.endpoint"] = self.s3_endpoint
                conf[f"{prefix}.s3.path-style-access"] = "true"
            if self.glue_endpoint:
                conf[f"{prefix}.glue.endpoint"] = self.glue_endpoint
        else:
            raise SettingError(f"unknown catalog kind {self.kind!r} (expected 'local' or 'glue')")
        return conf


@dataclass(frozen=True)
class SparkSettings:
    """How to start Spark. Jars come from Maven Central through Spark's own resolver (cached in ~/.ivy2.5.2),
    unless `jars` names files on disk. A Glue catalog also needs ICEBERG_AWS_BUNDLE (EMR ships it)."""

    master: str = "local[*]"
    driver_memory: str = "2g"
    shuffle_partitions: int = 4
    jars: tuple[str, ...] = ()
    packages: tuple[str, ...] = (ICEBERG_SPARK_RUNTIME, SQLITE_JDBC)
    java_options: tuple[str, ...] = ()
    extra_conf: dict[str, str] = field(default_factory=dict)

    def spark_conf(self, catalog: CatalogSettings) -> dict[str, str]:
        conf = {
            "spark.sql.extensions": ICEBERG_EXTENSIONS,
            "spark.sql.session.timeZone": "UTC",
            "spark.sql.shuffle.partitions": str(self.shuffle_partitions),
            "spark.default.parallelism": str(self.shuffle_partitions),
            "spark.driver.memory": self.driver_memory,
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            "spark.sql.adaptive.enabled": "true",
            "spark.driver.extraJavaOptions": " ".join(
                [f"-Dlog4j2.configurationFile={LOG4J_CONFIG.as_uri()}", *self.java_options]
            ),
        }
        if self.master.startswith("local"):
            # A local session talks to nothing but itself.
            conf |= {"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1"}
        if self.jars:
            conf["spark.jars"] = ",".join(self.jars)
        elif self.packages:
            conf["spark.jars.packages"] = ",".join(self.packages)
        return conf | catalog.spark_conf() | self.extra_conf


def check_java() -> None:
    """Fail early, with what to install, when no Java 17+ is there for Spark."""
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    hint = "Install a JDK 17 or newer (e.g. `apt-get install openjdk-17-jdk-headless`, `brew install openjdk@17`) "
    hint += "and put `java` on PATH or set JAVA_HOME."
    if not java or not Path(java).exists():
        raise JavaMissingError(f"Spark needs Java {MIN_JAVA}+, but no `java` was found. {hint}")
    try:
        output = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30, check=True).stderr
    except (OSError, subprocess.SubprocessError) as error:
        raise JavaMissingError(f"`{java} -version` failed ({error}). {hint}") from None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', output)
    major = int(match.group(1)) if match else 0
    if major == 1 and match and match.group(2):
        major = int(match.group(2))  # "1.8" style
    if major < MIN_JAVA:
        raise JavaMissingError(f"Spark needs Java {MIN_JAVA}+, but {java} is Java {major or 'unknown'}. {hint}")


def build_spark_session(catalog: CatalogSettings, settings: SparkSettings | None = None) -> SparkSession:
    """A local Spark session (or the one spark-submit made) with the Iceberg catalog configured."""
    from pyspark.sql import SparkSession

    settings = settings or SparkSettings()
    check_java()
    if settings.master.startswith("local"):
        # The launcher picks the driver's address before any setting applies; locally that is loopback.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.master(settings.master).appName("ddb-iceberg")
    for key, value in settings.spark_conf(catalog).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


def configure_catalog(spark: SparkSession, catalog: CatalogSettings) -> None:
    """Register the catalog on a session that already exists (spark-submit, EMR, a shared test session)."""
    for key, value in catalog.spark_conf().items():
        spark.conf.set(key, value)
