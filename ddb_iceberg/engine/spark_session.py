"""Spark sessions configured for an Iceberg catalog: local (SQLite catalog) or AWS Glue (EMR Serverless)."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from ddb_iceberg.engine.request import option, to_argv
from ddb_iceberg.errors import JavaMissingError, SettingError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

CATALOG_NAME = "ddb_iceberg"
ICEBERG_VERSION = "1.11.0"
ICEBERG_SPARK_RUNTIME = f"org.apache.iceberg:iceberg-spark-runtime-4.1_2.13:{ICEBERG_VERSION}"
ICEBERG_AWS_BUNDLE = f"org.apache.iceberg:iceberg-aws-bundle:{ICEBERG_VERSION}"
SQLITE_JDBC = "org.xerial:sqlite-jdbc:3.54.1.0"
ICEBERG_EXTENSIONS = "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions"
MIN_JAVA = 17
# A class data sharing archive no start has used for this long is removed (see class_data_sharing_options).
ARCHIVE_UNUSED_DAYS = 30
LOG4J_CONFIG = Path(__file__).with_name("log4j2.properties")


def check_glue_warehouse(warehouse: str) -> None:
    if not warehouse.startswith("s3://"):
        raise SettingError(f"warehouse {warehouse!r} is not an s3:// prefix (a Glue table's files live in S3)")


class CatalogKind(StrEnum):
    """The catalogs the job can write the table in."""

    LOCAL = "local"  # a SQLite file in a local warehouse (the embedded default)
    GLUE = "glue"  # the AWS Glue Data Catalog (what Athena queries)


@dataclass(frozen=True)
class CatalogSettings:
    """Where the Iceberg catalog lives: a SQLite file in a local warehouse, or the AWS Glue Data Catalog."""

    warehouse: str = option("--warehouse")
    kind: CatalogKind = option("--catalog-kind", default=CatalogKind.LOCAL)
    name: str = option("--catalog-name", default=CATALOG_NAME)
    region: str | None = option("--region", default=None)
    # Endpoint overrides, for local stand-ins of AWS (moto) only.
    s3_endpoint: str | None = option("--s3-endpoint", default=None)
    glue_endpoint: str | None = option("--glue-endpoint", default=None)

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "kind", CatalogKind(self.kind))
        except ValueError:
            raise SettingError(
                f"catalog kind {self.kind!r} is not one of {', '.join(repr(k.value) for k in CatalogKind)}"
            ) from None
        if not self.warehouse:
            raise SettingError("warehouse is empty: give a local directory or an s3:// prefix")
        if self.kind is CatalogKind.LOCAL:
            # Spark, PyIceberg and the SQLite catalog all need the absolute path.
            object.__setattr__(self, "warehouse", str(Path(self.warehouse).expanduser().resolve()))
        else:
            check_glue_warehouse(self.warehouse)

    def to_argv(self) -> list[str]:
        return to_argv(self)

    @classmethod
    def local(cls, warehouse: str | Path) -> CatalogSettings:
        return cls(warehouse=str(warehouse))

    @property
    def sqlite_path(self) -> Path:
        return Path(self.warehouse) / "catalog.db"

    def spark_conf(self) -> dict[str, str]:
        prefix = f"spark.sql.catalog.{self.name}"
        conf = {prefix: "org.apache.iceberg.spark.SparkCatalog"}
        if self.kind is CatalogKind.LOCAL:
            Path(self.warehouse).mkdir(parents=True, exist_ok=True)
            conf |= {
                f"{prefix}.catalog-impl": "org.apache.iceberg.jdbc.JdbcCatalog",
                f"{prefix}.uri": f"jdbc:sqlite:{self.sqlite_path}",
                f"{prefix}.warehouse": Path(self.warehouse).as_uri(),
                # V1 adds the iceberg_type column PyIceberg's SqlCatalog expects (views support).
                f"{prefix}.jdbc.schema-version": "V1",
            }
        else:
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
        return conf


@dataclass(frozen=True)
class SparkSettings:
    """How to start Spark. Jars come from Maven Central through Spark's own resolver (cached in ~/.ivy2.5.2; once
    there, the cached files are used directly, without resolving again), unless `jars` names files on disk. A
    Glue catalog also needs ICEBERG_AWS_BUNDLE (EMR ships it).

    A local driver JVM starts from a class data sharing archive (`class_data_sharing_options`), made by the
    first run: it cuts a session's start and first query from about 11 to 7 seconds. It also compiles with the
    quick compiler only (`quick_compiler_only`, `-XX:TieredStopAtLevel=1`): a sync's JVM lives for seconds to
    minutes and its heavy work runs in Python, so the optimizing compiler's work on a few cores only competes
    with the sync's (one window about a fifth faster, a 1,000,000-item full load unchanged: BENCHMARKS.md)."""

    master: str = "local[*]"
    driver_memory: str = "2g"
    shuffle_partitions: int = 4
    jars: tuple[str, ...] = ()
    packages: tuple[str, ...] = (ICEBERG_SPARK_RUNTIME, SQLITE_JDBC)
    java_options: tuple[str, ...] = ()
    class_data_sharing: bool = True
    quick_compiler_only: bool = True
    extra_conf: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Spark's own size syntax (JavaUtils.byteStringAs): a bad one would only surface as a JVM that never starts.
        if not re.fullmatch(r"[1-9][0-9]*[kmgt]?b?", self.driver_memory.strip().lower()):
            raise SettingError(f"driver memory {self.driver_memory!r} is not a size such as 2g or 512m")

    def jar_files(self) -> tuple[str, ...]:
        """The jars to put on the class path: those given, else the packages' files in Spark's Ivy cache (when
        every one of them is there; the packages used here have no dependencies of their own)."""
        if self.jars:
            return self.jars
        cached = tuple(str(_ivy_jar(package)) for package in self.packages)
        return cached if all(Path(jar).is_file() for jar in cached) else ()

    def spark_conf(self, catalog: CatalogSettings | None = None) -> dict[str, str]:
        """The session's settings; with `catalog`'s, else the catalog is registered at runtime (`configure_catalog`)."""
        jars = self.jar_files()
        java_options = [f"-Dlog4j2.configurationFile={LOG4J_CONFIG.as_uri()}", *self.java_options]
        if self.master.startswith("local"):
            if self.quick_compiler_only:
                java_options.append("-XX:TieredStopAtLevel=1")
            if self.class_data_sharing:
                java_options += class_data_sharing_options(jars or self.packages)
        conf = {
            "spark.sql.extensions": ICEBERG_EXTENSIONS,
            "spark.sql.session.timeZone": "UTC",
            "spark.sql.shuffle.partitions": str(self.shuffle_partitions),
            "spark.default.parallelism": str(self.shuffle_partitions),
            "spark.driver.memory": self.driver_memory,
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            "spark.sql.adaptive.enabled": "true",
            "spark.driver.extraJavaOptions": " ".join(java_options),
        }
        if self.master.startswith("local"):
            # A local session talks to nothing but itself, and its Python workers run this very interpreter (they
            # read and decode the exports: they need pyarrow and this package).
            conf |= {
                "spark.driver.host": "127.0.0.1",
                "spark.driver.bindAddress": "127.0.0.1",
                "spark.pyspark.python": os.environ.get("PYSPARK_PYTHON", sys.executable),
            }
        if jars:
            conf["spark.jars"] = ",".join(jars)
        elif self.packages:
            conf["spark.jars.packages"] = ",".join(self.packages)
        return conf | (catalog.spark_conf() if catalog else {}) | self.extra_conf


def _ivy_jar(package: str) -> Path:
    group, artifact, version = package.split(":")
    return Path.home() / ".ivy2.5.2" / "jars" / f"{group}_{artifact}-{version}.jar"


def class_data_sharing_options(class_path: tuple[str, ...]) -> list[str]:
    """Start from the archive of this Java, Spark and class path, or make it when this JVM exits. (A stale or
    broken archive is ignored by the JVM, which then starts as usual.)"""
    java = shutil.which("java", path=str(Path(os.environ["JAVA_HOME"]) / "bin")) if "JAVA_HOME" in os.environ else None
    java = java or shutil.which("java") or "java"
    binary = Path(java).resolve()
    # The JVM ignores an archive made with another class path, and Spark's own jars are on it: each PySpark
    # installation (each virtual environment) needs its own archive.
    spark_jars = Path(importlib.util.find_spec("pyspark").origin or "").parent / "jars"  # type: ignore[union-attr]
    identity = f"{binary}:{binary.stat().st_mtime_ns if binary.exists() else 0}:{spark_jars}:{pyspark_version()}"
    identity += f":{class_path}"
    folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ddb_iceberg"
    archive = folder / f"spark-driver-{hashlib.sha256(identity.encode()).hexdigest()[:16]}.jsa"
    quiet = ["-Xlog:cds=off", "-Xlog:cds+dynamic=off"]
    _remove_unused_archives(folder, keep=archive)
    if archive.is_file():
        os.utime(archive)  # in use: see _remove_unused_archives
        return [f"-XX:SharedArchiveFile={archive}", *quiet]
    folder.mkdir(parents=True, exist_ok=True)
    return [f"-XX:ArchiveClassesAtExit={archive}", *quiet]


def _remove_unused_archives(folder: Path, keep: Path) -> None:
    """Archives are 150 to 200 MB, one per Java, PySpark and class path: remove those no start has used for
    ARCHIVE_UNUSED_DAYS (a virtual environment deleted or upgraded; one still in use makes its own again)."""
    cutoff = time.time() - ARCHIVE_UNUSED_DAYS * 86400
    for old in folder.glob("spark-driver-*.jsa"):
        try:
            if old != keep and old.stat().st_mtime < cutoff:
                old.unlink()
        except OSError:  # another start removed or replaced it first
            pass


def pyspark_version() -> str:
    from pyspark.version import __version__

    return str(__version__)


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


def prepare_local_environment() -> None:
    """What a local session needs before it starts: the launcher picks the driver's address before any setting
    applies (locally, loopback), and PySpark starts its Python workers from PYSPARK_PYTHON (this interpreter)."""
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


def build_spark_session(catalog: CatalogSettings, settings: SparkSettings | None = None) -> SparkSession:
    """A local Spark session (or the one spark-submit made) with the Iceberg catalog configured."""
    from pyspark.sql import SparkSession

    settings = settings or SparkSettings()
    check_java()
    if settings.master.startswith("local"):
        prepare_local_environment()
    builder = SparkSession.builder.master(settings.master).appName("ddb-iceberg")
    for key, value in settings.spark_conf(catalog).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


# SQL settings a sync needs, whoever made the session (this module, spark-submit, EMR): set on the session as it
# starts. Adaptive execution sizes shuffles to the data (also those of cached results, which the collapse is),
# and storage-partitioned joins let a merge join the table bucket by bucket without shuffling it.
ENGINE_SQL_CONF = {
    "spark.sql.adaptive.enabled": "true",
    "spark.sql.adaptive.coalescePartitions.enabled": "true",
    "spark.sql.optimizer.canChangeCachedPlanOutputPartitioning": "true",
    "spark.sql.sources.v2.bucketing.enabled": "true",
    "spark.sql.sources.v2.bucketing.pushPartValues.enabled": "true",
    "spark.sql.sources.v2.bucketing.shuffle.enabled": "true",
    "spark.sql.requireAllClusterKeysForCoPartition": "false",
    "spark.sql.iceberg.planning.preserve-data-grouping": "true",
}


# Classes the job needs on Spark's class path, and what puts them there (on EMR the job is launched by
# EmrServerlessMergeRunner, whose settings these name).
_ICEBERG_JAR_HINT = (
    "set the merge runner's `iceberg_jar` (DDB_ICEBERG_EMR_ICEBERG_JAR) to Iceberg's Spark runtime jar for Spark 4.1"
)
ICEBERG_CLASSES = {"org.apache.iceberg.spark.SparkCatalog": _ICEBERG_JAR_HINT}
GLUE_CLASSES = {
    "org.apache.iceberg.aws.glue.GlueCatalog": _ICEBERG_JAR_HINT,
    # The AWS SDK v2 that Iceberg's Glue catalog and S3FileIO call: EMR's image carries it.
    "software.amazon.awssdk.services.glue.GlueClient": (
        "add the jar of org.apache.iceberg:iceberg-aws-bundle to spark.jars (EMR's image carries the AWS SDK)"
    ),
}


def check_spark_classes(spark: SparkSession, catalog: CatalogSettings, required: dict[str, str] | None = None) -> None:
    """Fail at the session's start, in one line naming the setting to change, when a class the job needs does
    not load: a wrong jar path otherwise surfaces as a Py4J dump at the first query."""
    if required is None:
        required = ICEBERG_CLASSES | (GLUE_CLASSES if catalog.kind is CatalogKind.GLUE else {})
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    loader = jvm.java.lang.Thread.currentThread().getContextClassLoader()
    jars = spark.conf.get("spark.jars", "") or "(none)"
    for name, hint in required.items():
        try:
            jvm.java.lang.Class.forName(name, False, loader)
        except Exception:  # Py4JJavaError (ClassNotFoundException, NoClassDefFoundError)
            raise SettingError(
                f"Spark cannot load {name}, which the job needs (spark.jars={jars}): {hint} "
                "(README: 'Bringing your own Iceberg jar')"
            ) from None


def apply_engine_settings(spark: SparkSession) -> None:
    for key, value in ENGINE_SQL_CONF.items():
        spark.conf.set(key, value)


def configure_catalog(spark: SparkSession, catalog: CatalogSettings) -> None:
    """Register the catalog on a session that already exists (spark-submit, EMR, a shared test session)."""
    for key, value in catalog.spark_conf().items():
        spark.conf.set(key, value)
