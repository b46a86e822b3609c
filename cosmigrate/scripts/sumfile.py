"""The sum file ``migrations/cosmigrate.sum``: the migration files as committed, checked offline (like atlas.sum).

Format, one ``\\n``-terminated line each::

    h1:<base64 sha256 of every line below, each with its \\n>
    001_create_things.py h1:<base64 sha256 of the file>
    002_reindex_things.py h1:<...>
    _helpers.py h1:<...>
    _pkg/__init__.py h1:<...>

Why: two branches that each add a migration both change the first line and both add a line after the last
one, so git refuses to merge them silently (a conflict in ``cosmigrate.sum``) where the scripts alone would
merge into two heads; and a migration edited after it was committed is caught before any deploy.

A file's hash is the loader's checksum of that file alone (line endings normalised, BOM dropped) in base64,
the digest history records as the script's own (``script_checksum``), so a CRLF checkout is not a change. The
files are those the loader looks at — ``*.py`` not starting with ``_``, in number order — then, sorted by their
path below the folder, the helper files those scripts import (directly or through each other, found as the
loader finds them: ``helpers.py``), so that an edited helper is a stale sum file too, named with the migrations
that use it. A helper no migration imports, ``__pycache__`` and other files are not part of it. Each helper is
listed once, however many migrations use it, and a folder whose migrations import no helper has exactly the
sum file it had before helpers were covered.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from pathlib import Path

from cosmigrate.scripts.helpers import imported_files, name_of
from cosmigrate.scripts.loader import FILE_NAME, checksum
from cosmigrate.scripts.problems import Problem, migration_files

SUM_FILE = "cosmigrate.sum"
# What users are told to run to rewrite the sum; the CLI verb that calls ``write``.
WRITE_COMMAND = "cosmigrate hash"

_HASH = r"h1:[A-Za-z0-9+/]{43}="
_HEADER = re.compile(rf"^{_HASH}$")
_ENTRY = re.compile(rf"^(?P<name>\S+) (?P<hash>{_HASH})$")
_CONFLICT = ("<<<<<<<", "|||||||", "=======", ">>>>>>>")
_REWRITE = f"rewrite the sum ({WRITE_COMMAND})"


def file_hash(content: bytes) -> str:
    """``h1:`` and the base64 of the loader's checksum: CRLF and a BOM are not changes, as in history."""
    digest = bytes.fromhex(checksum(content).removeprefix("sha256:"))
    return "h1:" + base64.b64encode(digest).decode("ascii")


def compute(folder: Path) -> str:
    """The sum file's text for ``folder`` as it is now."""
    files = migration_files(folder)
    body = "".join(f"{path.name} {file_hash(path.read_bytes())}\n" for path in files)
    body += "".join(f"{name} {file_hash(path.read_bytes())}\n" for name, (path, _) in helpers(files).items())
    return f"{_total(body)}\n{body}"


def helpers(files: list[Path]) -> dict[str, tuple[Path, list[str]]]:
    """The helper files the migration ``files`` import, by name (sorted), each with the files that use it."""
    used: dict[str, tuple[Path, list[str]]] = {}
    for path in files:
        try:
            content = path.read_bytes()
        except OSError:  # reported as the migration's own problem
            continue
        for helper in imported_files(path, content):
            used.setdefault(name_of(path.parent, helper), (helper, []))[1].append(path.name)
    return dict(sorted(used.items()))


def write(folder: Path) -> Path:
    """Write ``folder/cosmigrate.sum`` (replacing it whole, so a crash never leaves half a file); returns its path."""
    path = folder / SUM_FILE
    partial = path.with_name(f".{SUM_FILE}.{os.getpid()}.tmp")
    partial.write_bytes(compute(folder).encode("utf-8"))
    partial.replace(path)
    return path


def verify(folder: Path) -> list[Problem]:
    """Every difference between ``folder`` and its sum file, in file order; empty when they agree.

    Codes: ``sum-missing`` (migrations but no sum file), ``sum-malformed`` (unreadable, a merge conflict, a bad
    line), ``sum-mismatch`` (a file or a helper changed, added or removed since the sum was written, named —
    a helper with the migrations that use it; or the first line no longer matches the lines below).
    """
    files = migration_files(folder)
    path = folder / SUM_FILE
    if not path.exists():
        if not files:
            return []
        return [
            Problem(
                SUM_FILE,
                None,
                None,
                "sum-missing",
                f"no {SUM_FILE} beside {len(files)} migration files: write it ({WRITE_COMMAND}) and commit it, so "
                "that an edited migration is caught and two branches adding migrations conflict in git",
            )
        ]
    lines, problems = _read(path)
    if lines is None:
        return problems
    recorded: dict[str, tuple[str, int]] = {}
    for number, line in enumerate(lines[1:], start=2):
        entry = _ENTRY.match(line)
        if entry is None:
            problems.append(
                _malformed(number, f"line {number} must be '<migration file> h1:<hash>', not {_shown(line)}")
            )
        elif entry["name"] in recorded:
            first = recorded[entry["name"]][1]
            problems.append(_malformed(number, f"lists {entry['name']} again (first on line {first})"))
        else:
            recorded[entry["name"]] = (entry["hash"], number)
    if not problems and lines[0] != _total("".join(line + "\n" for line in lines[1:])):
        problems.append(
            Problem(
                SUM_FILE,
                None,
                1,
                "sum-mismatch",
                "line 1 does not match the lines below: the sum was edited by hand (a merge resolved by keeping "
                f"both sides?); check the migrations, then {_REWRITE}",
            )
        )
    return problems + _compare(files, recorded) + _compare_helpers(files, recorded)


def _read(path: Path) -> tuple[list[str] | None, list[Problem]]:
    """The sum file's lines (any line endings, a BOM dropped), or None and why they cannot be used."""
    try:
        text = path.read_bytes().removeprefix(b"\xef\xbb\xbf").decode("utf-8")
    except OSError as exc:
        return None, [_malformed(None, f"cannot be read ({exc.strerror or exc})")]
    except UnicodeDecodeError:
        return None, [_malformed(None, "is not UTF-8 text")]
    lines = text.splitlines()
    for number, line in enumerate(lines, start=1):
        if line.startswith(_CONFLICT):
            message = (
                f"merge conflict markers at line {number}: another branch added migrations too; keep theirs and "
                "renumber yours to follow their last one (file name, revision, down_revision)"
            )
            return None, [_malformed(number, message)]
    if not lines:
        return None, [_malformed(None, "is empty")]
    if not _HEADER.match(lines[0]):
        return lines, [_malformed(1, f"line 1 must be h1:<hash of the lines below>, not {_shown(lines[0])}")]
    return lines, []


def _compare(files: list[Path], recorded: dict[str, tuple[str, int]]) -> list[Problem]:
    problems = []
    for path in files:
        if path.name not in recorded:
            problems.append(
                _mismatch(path.name, f"not in {SUM_FILE}: added since the sum was written; {_REWRITE} and commit it")
            )
        elif file_hash(path.read_bytes()) != recorded[path.name][0]:
            problems.append(
                _mismatch(
                    path.name,
                    f"changed since {SUM_FILE} was written: if the file as it was is applied anywhere, restore it "
                    "and make the change in a new migration; otherwise — a revision not yet applied, or a failed "
                    f"one you fixed and repaired — {_REWRITE}",
                )
            )
    present = {path.name for path in files}
    for name, (_, number) in recorded.items():
        if name not in present and not _is_helper(name):
            problems.append(
                _mismatch(
                    name,
                    f"listed in {SUM_FILE} (line {number}) but not in the folder: restore it, or {_REWRITE} if "
                    "removing it is meant",
                )
            )
    return problems


def _compare_helpers(files: list[Path], recorded: dict[str, tuple[str, int]]) -> list[Problem]:
    """Each helper changed, newly imported, or no longer imported since the sum was written, with its users."""
    problems = []
    used = helpers(files)
    for name, (path, users) in used.items():
        by = _users(users)
        if name not in recorded:
            problems.append(
                _mismatch(
                    name,
                    f"helper used by {by}, not in {SUM_FILE}: imported since the sum was written (or the sum was "
                    f"written by a cosmigrate that did not list helpers); {_REWRITE} and commit it",
                    users,
                )
            )
        elif file_hash(path.read_bytes()) != recorded[name][0]:
            problems.append(
                _mismatch(
                    name,
                    f"helper used by {by}, changed since {SUM_FILE} was written: if "
                    f"{'it' if len(users) == 1 else 'one of them'} is applied anywhere, restore the helper and make "
                    "the change in a new migration (with a helper of its own); otherwise — revisions not yet "
                    f"applied, or failed ones you fixed and repaired — {_REWRITE}",
                    users,
                )
            )
    for name, (_, number) in recorded.items():
        if _is_helper(name) and name not in used:
            problems.append(
                _mismatch(
                    name,
                    f"listed in {SUM_FILE} (line {number}) as a helper, but no migration imports it now: restore the "
                    f"import (or the file), or {_REWRITE} if dropping it is meant",
                )
            )
    return problems


def _is_helper(name: str) -> bool:
    """A sum file entry for a helper: a migration file never starts with ``_`` nor sits in a subfolder."""
    return name.startswith("_") or "/" in name


def _users(files: list[str]) -> str:
    """``006_a.py`` or ``revisions 006 (006_a.py) and 007 (007_b.py)``: who uses a helper, in words."""
    shown = []
    for name in files:
        number = FILE_NAME.match(name)
        shown.append(f"{number['number']} ({name})" if number else name)
    word = "revision" if len(files) == 1 else "revisions"
    listed = shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} and {shown[-1]}"
    return f"{word} {listed}"


def _total(body: str) -> str:
    return "h1:" + base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode("ascii")


def _malformed(line: int | None, message: str) -> Problem:
    return Problem(SUM_FILE, None, line, "sum-malformed", f"{message}; {_REWRITE}")


def _mismatch(name: str, message: str, users: list[str] | None = None) -> Problem:
    """A mismatch of ``name``; for a helper used by one migration, the problem is of that revision."""
    number = FILE_NAME.match(users[0]) if users and len(users) == 1 else None
    return Problem(name, number["number"] if number else None, None, "sum-mismatch", message)


def _shown(line: str) -> str:
    return repr(line if len(line) <= 60 else line[:57] + "...")
