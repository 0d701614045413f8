"""A sync's independent writes at once: the table's MERGE, its change feed's append and its item history's MERGE
each commit to a branch of their own table, from inputs none of them changes (the exports' changes and the table
as the sync found it). Each is a statement whose planning and commit run on the driver while the executors wait,
and a table of one bucket is merged by one task; one after another, they leave cores idle that the others can
use (BENCHMARKS.md, 2026-12-07 15:14)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def write_together(spark: SparkSession, writes: Mapping[str, Callable[[], None]]) -> dict[str, float]:
    """Run the named `writes` at once, each in a thread of its own (a lone one in this thread); returns each one's
    seconds. The first to fail cancels the others' Spark jobs and is raised once every write has stopped, so
    that none goes on writing after its caller dropped the branches they write to."""
    seconds: dict[str, float] = {}

    def timed(name: str, write: Callable[[], None]) -> None:
        started = time.monotonic()
        try:
            write()
        finally:
            seconds[name] = time.monotonic() - started

    if len(writes) == 1:
        for name, write in writes.items():
            timed(name, write)
        return seconds
    context = spark.sparkContext
    # PySpark pins each Python thread to a JVM thread of its own, so a tag set in one marks that write's jobs.
    tag = f"ddb-iceberg-write-{uuid.uuid4().hex}"

    def tagged(name: str, write: Callable[[], None]) -> None:
        context.addJobTag(tag)
        try:
            timed(name, write)
        finally:
            context.removeJobTag(tag)

    pool = ThreadPoolExecutor(max_workers=len(writes), thread_name_prefix="ddb-iceberg-write")
    futures: list[Future[None]] = [pool.submit(tagged, name, write) for name, write in writes.items()]
    try:
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
    except BaseException:  # interrupted while waiting: stop the writes before the caller drops their branches
        context.cancelJobsWithTag(tag)
        pool.shutdown(wait=True)
        raise
    # Among the writes done when the first failed: their own failures, not the cancellation's.
    failures = [error for future in done if (error := future.exception()) is not None]
    if failures:
        context.cancelJobsWithTag(tag)
    pool.shutdown(wait=True)
    if failures:
        raise failures[0]
    return seconds
