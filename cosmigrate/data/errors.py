"""Errors of the data engine, as cosmigrate reports them: one line saying what, where and what to do.

They extend :mod:`cosmigrate.errors` (exit code 1 for failures, 2 for usage mistakes) and carry what a caller
needs to act: the totals of the run and the dead-letter file.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from cosmigrate.errors import CosmigrateError, UsageError

if TYPE_CHECKING:
    from cosmigrate.data.engine import Totals


class DataError(CosmigrateError):
    """A data run (transform, copy, export, import) could not finish as asked."""


class ItemsFailed(DataError):
    """More documents failed than ``max_failures`` allows. The run went through every document first; those
    that failed are in the dead-letter file (and, with a checkpoint store, in the kept checkpoint, so that a
    re-run retries only them), and ``totals`` says what happened to the others."""

    def __init__(self, message: str, totals: Totals, dead_letter: Path) -> None:
        super().__init__(message)
        self.totals = totals
        self.dead_letter = dead_letter


class CountMismatch(DataError):
    """After a copy, the target does not hold as many documents as the source gave (minus those dropped)."""

    def __init__(self, message: str, totals: Totals, expected: int, found: int) -> None:
        super().__init__(message)
        self.totals = totals
        self.expected = expected
        self.found = found


class ProgressKeptLocally(DataError):
    """A data step stopped (the database unreachable) and its checkpoint could not be saved in the database: its
    exact progress is kept in the local file ``path``, which the next run on this machine resumes from."""

    def __init__(self, message: str, path: Path) -> None:
        super().__init__(message)
        self.path = path


class CheckpointMismatch(UsageError):
    """The checkpoint stored under this key was saved by another operation, container or query."""


class IndexTimeout(DataError):
    """The target's index transformation did not finish within ``index_timeout`` after a load."""


class BackupError(DataError):
    """An export folder is missing, incomplete or does not match its manifest (a tampered or truncated file)."""


class ImportFailed(DataError):
    """A document of a backup could not be written (the service refused it for good)."""
