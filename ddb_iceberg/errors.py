"""The errors a user can act on. Each says what is wrong and what to do; every entry point (the CLI, the Dagster
assets, the Spark job) catches this one base type and shows its message, and nothing else reaches a user as a
traceback unless it is a bug.
"""

from __future__ import annotations


class DdbIcebergError(Exception):
    """Something a user can act on: bad export data, a sync that must not run, a setting that cannot work."""


class SettingError(DdbIcebergError):
    """A setting that cannot work: a source URI, a table name, a catalog kind."""


def described(error: BaseException, message: str | None = None) -> str:
    """The error's message (or `message`) and the notes a runner added to it (where a remote job ran, its logs)."""
    return "\n".join([message or str(error), *getattr(error, "__notes__", ())])
