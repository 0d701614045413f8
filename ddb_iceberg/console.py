"""What the commands print: a short story by default, every library's own output with `--verbose`."""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


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
