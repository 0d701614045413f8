import os
import time
from pathlib import Path

import pytest

from ddb_iceberg.engine.spark_session import (
    ARCHIVE_UNUSED_DAYS,
    CatalogSettings,
    SparkSettings,
    class_data_sharing_options,
)


def _aged(path: Path, days: float) -> Path:
    path.write_bytes(b"archive")
    moment = time.time() - days * 86400
    os.utime(path, (moment, moment))
    return path


def test_the_archive_is_made_once_then_used_and_archives_left_unused_are_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    folder = tmp_path / "ddb_iceberg"
    folder.mkdir()
    abandoned = _aged(folder / "spark-driver-0000000000000000.jsa", ARCHIVE_UNUSED_DAYS + 1)
    recent = _aged(folder / "spark-driver-1111111111111111.jsa", ARCHIVE_UNUSED_DAYS - 1)

    (first,) = [o for o in class_data_sharing_options(("a.jar",)) if o.startswith("-XX:")]
    assert first.startswith("-XX:ArchiveClassesAtExit=")  # made when this first JVM exits
    assert not abandoned.exists() and recent.exists()

    # The JVM wrote it long ago; every start that uses it keeps it from being taken for abandoned.
    archive = _aged(Path(first.partition("=")[2]), ARCHIVE_UNUSED_DAYS + 5)
    (second,) = [o for o in class_data_sharing_options(("a.jar",)) if o.startswith("-XX:")]
    assert second == f"-XX:SharedArchiveFile={archive}"
    assert archive.exists() and time.time() - archive.stat().st_mtime < 60


def test_a_local_jvm_compiles_with_the_quick_compiler_only_and_a_cluster_driver_as_its_jvm_decides() -> None:
    catalog = CatalogSettings.local("/tmp/warehouse")
    local = SparkSettings(class_data_sharing=False).spark_conf(catalog)["spark.driver.extraJavaOptions"]
    cluster = SparkSettings(master="spark://127.0.0.1:7077").spark_conf(catalog)["spark.driver.extraJavaOptions"]
    chosen = SparkSettings(quick_compiler_only=False, class_data_sharing=False).spark_conf(catalog)
    assert "-XX:TieredStopAtLevel=1" in local.split()
    assert "TieredStopAtLevel" not in cluster and "TieredStopAtLevel" not in chosen["spark.driver.extraJavaOptions"]
