"""A sync's writes at once (engine.concurrent_writes) on the real Spark session: each in its own thread, the first
failure stopping the others."""

from __future__ import annotations

import threading
import time

import pytest
from pyspark.sql import SparkSession

from ddb_iceberg.engine.concurrent_writes import write_together


def _long_job(spark: SparkSession) -> None:
    # 20 s of Spark tasks (200 rows sleeping 100 ms each, on two cores) unless cancelled.
    spark.range(0, 200, 1, 2).selectExpr("reflect('java.lang.Thread', 'sleep', 100L)").collect()


def test_the_writes_run_at_once(spark: SparkSession) -> None:
    both_running = threading.Barrier(2, timeout=60)  # broken, so raising, unless both wait at once

    def meet() -> None:
        both_running.wait()

    seconds = write_together(spark, {"a": meet, "b": meet})
    assert set(seconds) == {"a", "b"}, "each write's seconds"


def test_the_first_failure_cancels_the_other_writes_and_is_raised_once_they_stopped(spark: SparkSession) -> None:
    ended: dict[str, str] = {}

    def long_write() -> None:
        try:
            _long_job(spark)
            ended["long"] = "finished"
        except Exception as error:  # what the cancellation raised in this write
            ended["long"] = str(error)

    def failing_write() -> None:
        deadline = time.monotonic() + 60
        while not spark.sparkContext.statusTracker().getActiveJobsIds() and time.monotonic() < deadline:
            time.sleep(0.05)
        raise ValueError("the feed's write failed")

    with pytest.raises(ValueError, match="the feed's write failed"):
        write_together(spark, {"table": long_write, "change feed": failing_write})
    assert "long" in ended, "raised only once the other write had stopped"
    assert "SPARK_JOB_CANCELLED" in ended["long"], "the other write's job was cancelled, not left to run"


def test_a_lone_write_runs_in_the_callers_thread(spark: SparkSession) -> None:
    threads: list[threading.Thread] = []
    write_together(spark, {"table": lambda: threads.append(threading.current_thread())})
    assert threads == [threading.current_thread()]
