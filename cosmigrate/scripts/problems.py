"""What ``lint`` and the sum file share: the ``Problem`` they report and the files they look at.

A problem is data, not an exception, so that one run can report every problem of a folder (CI wants the whole
list, not the first) and callers can add their own (replaying the scripts) to the same sorted list.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from pathlib import Path

from cosmigrate.errors import ScriptError
from cosmigrate.scripts.loader import discover

_LEADING_NUMBER = re.compile(r"^(\d+)")


@dataclass(frozen=True)
class Problem:
    """One problem in a migrations folder: where (``file`` alone, ``line`` when known), which rule, what to do.

    ``file`` is the bare file name, as every error of the loader and the graph names it: the folder is the one
    the user gave. ``revision`` is the revision concerned when a script declared one. ``message`` says what is
    wrong and what to do, on one line (whitespace, newlines included, is collapsed).
    """

    file: str
    revision: str | None
    line: int | None
    code: str
    message: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "message", " ".join(self.message.split()))

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.message}"

    def to_dict(self) -> dict[str, str | int | None]:
        return {
            "file": self.file,
            "revision": self.revision,
            "line": self.line,
            "code": self.code,
            "message": self.message,
        }

    def sort_key(self) -> tuple[int, int, str, int, str, str]:
        """Files in revision order (``9_`` before ``10_``), problems of a whole file before those at a line."""
        return (*file_order(self.file), -1 if self.line is None else self.line, self.code, self.message)


def file_order(name: str) -> tuple[int, int, str]:
    """Sort key for file names: numbered files by number (not as text: ``999_`` before ``1000_``), then others."""
    number = _LEADING_NUMBER.match(name)
    return (0, int(number[1]), name) if number else (1, 0, name)


def migration_files(folder: Path) -> list[Path]:
    """What the loader looks at, badly named files included: ``*.py`` not starting with ``_``, in number order.

    Helpers (``_helpers.py``, ``__init__.py``) and ``__pycache__`` are not migrations. A missing folder, or a file
    given as one, is the loader's UsageError naming it: that is a mistake in the command, not in the scripts.
    """
    with contextlib.suppress(ScriptError):  # a badly named file: lint reports it with the others, not alone
        discover(folder)
    return sorted(
        (path for path in folder.glob("*.py") if not path.name.startswith("_")), key=lambda p: file_order(p.name)
    )
