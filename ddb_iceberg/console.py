"""What the commands print: a short story by default, every library's own output with `--verbose`."""

from __future__ import annotations

import os
import sys
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@contextmanager
def spark_output_to(log_file: Path, *, enabled: bool = True) -> Iterator[None]:
    """While Spark's JVM starts, point this process's stdout and stderr at `log_file`: the JVM inherits them, so
    its launcher's lines (Ivy's resolution report, JVM notices) and its log go there for the session's life,
    while this process's own output comes back to the terminal afterwards."""
    if not enabled:
        yield
        return
    log_file.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    with log_file.open("ab") as log:
        for fd in saved:
            os.dup2(log.fileno(), fd)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, original in saved.items():
            os.dup2(original, fd)
            os.close(original)


@contextmanager
def library_warnings(*, shown: bool) -> Iterator[None]:
    """Libraries' warnings (Dagster's beta and deprecation notices) are for developers: shown with --verbose."""
    with warnings.catch_warnings():
        if not shown:
            warnings.simplefilter("ignore")
        yield


class SparkProgress:
    """On a terminal, one self-overwriting line with the progress of Spark's running stages (tasks done of all,
    each read task a group of export files), refreshed while a long phase runs; nothing when not a terminal.
    Messages go through `say`, which clears the line first."""

    def __init__(self, spark: SparkSession, stream: TextIO | None = None, *, every_seconds: float = 0.5) -> None:
        self._spark = spark
        self._stream = stream or sys.stdout
        self._every = every_seconds
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def line(self) -> str | None:
        """What the progress line says now: None when no stage is running."""
        tracker = self._spark.sparkContext.statusTracker()
        stages = [tracker.getStageInfo(stage) for stage in tracker.getActiveStageIds()]
        running = [stage for stage in stages if stage is not None and stage.numTasks]
        if not running:
            return None
        done = sum(stage.numCompletedTasks for stage in running)
        total = sum(stage.numTasks for stage in running)
        return f"  Spark: {done} of {total} tasks done"

    def say(self, message: str) -> None:
        with self._lock:
            self._stream.write(_CLEAR_LINE if self._thread else "")
            self._stream.write(message + "\n")
            self._stream.flush()

    def __enter__(self) -> SparkProgress:
        if self._stream.isatty():
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._show(None)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self._show(self.line())

    def _show(self, text: str | None) -> None:
        with self._lock:
            self._stream.write(_CLEAR_LINE + (text or ""))
            self._stream.flush()


_CLEAR_LINE = "\r\x1b[K"  # back to the line's start, and erase it
