"""What the commands print: the progress line of a long Spark phase on a terminal, and nothing of it elsewhere."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from pathlib import Path

from pyspark.sql import SparkSession

from ddb_iceberg.console import SparkProgress

TASKS = 4


class Terminal(io.StringIO):
    """What a terminal receives (a StringIO that says it is one), and a way to wait until it shows something."""

    def __init__(self) -> None:
        super().__init__()
        self._written = threading.Condition()

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._written:
            count = super().write(text)
            self._written.notify_all()
        return count

    def shows(self, text: str, times: int = 1, timeout: float = 60) -> bool:
        """Whether `text` has been written `times` times, waiting up to `timeout` seconds for it."""
        with self._written:
            return self._written.wait_for(lambda: self.getvalue().count(text) >= times, timeout)


def _held(release: str, number: int) -> int:
    # In a Python worker, another process: the test lets the task end by creating the file `release`.
    deadline = time.monotonic() + 120
    while not Path(release).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return number


@contextmanager
def _running_job(spark: SparkSession, release: Path) -> Iterator[None]:
    """A Spark job of TASKS tasks that runs until the block ends."""
    with ThreadPoolExecutor(max_workers=1) as driver:
        job = driver.submit(
            spark.sparkContext.parallelize(range(TASKS), TASKS).map(partial(_held, str(release))).collect
        )
        try:
            yield
        finally:
            release.touch()
            collected = job.result(timeout=120)
    assert collected == list(range(TASKS))


def test_a_long_phase_shows_spark_tasks_done_of_all_on_a_terminal(spark: SparkSession, tmp_path: Path) -> None:
    terminal = Terminal()
    with SparkProgress(spark, terminal, every_seconds=0.2) as progress:
        progress.say("Reading and verifying 1 export(s) on Spark's executors ...")
        with _running_job(spark, tmp_path / "release"):
            assert terminal.shows(f"of {TASKS} tasks done"), terminal.getvalue()
        progress.say("Writing 4 change(s) in one commit ...")
    shown = terminal.getvalue()
    # Each message starts on a cleared line, and the progress line is erased at the end.
    assert "\r\x1b[KWriting 4 change(s) in one commit ...\n" in shown and shown.endswith("\r\x1b[K")
    deadline = time.monotonic() + 10  # Spark's status tracker learns of the stage's end a moment later
    while progress.line() is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert progress.line() is None  # nothing runs now


def test_not_a_terminal_gets_the_messages_only(spark: SparkSession, tmp_path: Path) -> None:
    log, terminal = io.StringIO(), Terminal()
    with SparkProgress(spark, log, every_seconds=0.2) as progress, SparkProgress(spark, terminal, every_seconds=0.2):
        progress.say("Reading ...")
        with _running_job(spark, tmp_path / "release"):
            # The job runs until a terminal beside the log, refreshed as often, has been shown its progress twice.
            assert terminal.shows(f"of {TASKS} tasks done", times=2), terminal.getvalue()
    assert log.getvalue() == "Reading ...\n"
