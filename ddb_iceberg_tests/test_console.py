"""What the commands print: the progress line of a long Spark phase on a terminal, and nothing of it elsewhere."""

from __future__ import annotations

import io
import time

from pyspark.sql import SparkSession

from ddb_iceberg.console import SparkProgress


class Terminal(io.StringIO):
    """What a terminal receives (a StringIO that says it is one)."""

    def isatty(self) -> bool:
        return True


def _slowly(number: int) -> int:
    time.sleep(1.5)
    return number


def _slow_job(spark: SparkSession) -> None:
    spark.sparkContext.parallelize(range(4), 4).map(_slowly).collect()


def test_a_long_phase_shows_spark_tasks_done_of_all_on_a_terminal(spark: SparkSession) -> None:
    terminal = Terminal()
    with SparkProgress(spark, terminal, every_seconds=0.2) as progress:
        progress.say("Reading and verifying 1 export(s) on Spark's executors ...")
        _slow_job(spark)
        progress.say("Writing 4 change(s) in one commit ...")
    shown = terminal.getvalue()
    assert "of 4 tasks done" in shown
    # Each message starts on a cleared line, and the progress line is erased at the end.
    assert "\r\x1b[KWriting 4 change(s) in one commit ...\n" in shown and shown.endswith("\r\x1b[K")
    deadline = time.monotonic() + 10  # Spark's status tracker learns of the stage's end a moment later
    while progress.line() is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert progress.line() is None  # nothing runs now


def test_not_a_terminal_gets_the_messages_only(spark: SparkSession) -> None:
    log = io.StringIO()
    with SparkProgress(spark, log, every_seconds=0.2) as progress:
        progress.say("Reading ...")
        _slow_job(spark)
    assert log.getvalue() == "Reading ...\n"
