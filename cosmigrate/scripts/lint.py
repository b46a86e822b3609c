"""Offline lint of a migrations folder: every problem at once, for CI.

The loader and the graph stop at the first problem, which is right before a deploy but makes CI a loop of
fix-and-rerun. ``lint`` executes each file once, as the loader does, and checks each rule on its own, so one bad
file hides nothing else. It never raises for a problem in the scripts, only for a folder that is not there.

Codes; the ``BLOCKING`` ones make the loader refuse the folder, the others are lint's own rules:

- ``bad-name``: the file name is not ``NNN_slug.py``
- ``import-error``: a syntax error or an exception while the file loads (with its line in the script)
- ``no-revision``: no ``revision`` string at module level
- ``revision-mismatch``: the file number and ``revision`` differ
- ``no-down-revision``: no ``down_revision``, or one that is neither a revision string nor None
- ``no-upgrade``, ``no-downgrade``: no ``upgrade(op)`` / ``downgrade(op)`` function
- ``no-docstring`` (lint only): no module docstring, whose first line is the description ``status`` shows
- ``duplicate``: two files declare one revision
- ``gap`` (lint only): a number is missing between numbered files (001, 002, 004)
- ``dangling``: ``down_revision`` names no script
- ``two-heads``: two scripts follow the same revision, or two are first
- ``cycle``: a ``down_revision`` chain loops and never reaches a first revision
- ``refused``: the loader refuses what no finer code covers (so that lint never passes what it refuses)
- ``sum-missing``, ``sum-mismatch``, ``sum-malformed`` (lint only): the sum file, see ``sumfile``
"""

from __future__ import annotations

import ast
import bisect
import itertools
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cosmigrate.errors import GraphError, ScriptError
from cosmigrate.scripts import sumfile
from cosmigrate.scripts.graph import RevisionGraph
from cosmigrate.scripts.loader import FILE_NAME, Script, execute, from_module, line_in
from cosmigrate.scripts.problems import Problem, file_order, migration_files

BLOCKING = frozenset(
    {
        "bad-name",
        "import-error",
        "no-revision",
        "revision-mismatch",
        "no-down-revision",
        "no-upgrade",
        "no-downgrade",
        "duplicate",
        "dangling",
        "two-heads",
        "cycle",
        "refused",
    }
)

_LEADING_NUMBER = re.compile(r"^\d+")


class LintReport:
    """Every problem of a folder, kept sorted by file and line, and the scripts that loaded.

    ``scripts`` are those the loader accepts, in file order; ``order`` is the chain ``load_all`` would give, or
    None when it would refuse the folder (a ``BLOCKING`` problem). Callers that check further (replaying each
    script) ``add`` their problems, which take their place in the sorted list.
    """

    def __init__(
        self,
        folder: Path,
        scripts: Sequence[Script] = (),
        order: Sequence[Script] | None = None,
        problems: Iterable[Problem] = (),
    ) -> None:
        self.folder = folder
        self.scripts = tuple(scripts)
        self.order = None if order is None else tuple(order)
        self._problems: list[Problem] = []
        self.add(*problems)

    @property
    def problems(self) -> tuple[Problem, ...]:
        """Sorted by file (in number order), then line (a whole file's problems first), code and message."""
        return tuple(self._problems)

    @property
    def ok(self) -> bool:
        return not self._problems

    def add(self, *problems: Problem) -> None:
        for problem in problems:
            bisect.insort(self._problems, problem, key=Problem.sort_key)

    def to_dict(self) -> dict[str, Any]:
        return {
            "folder": str(self.folder),
            "ok": self.ok,
            "order": None if self.order is None else [script.revision for script in self.order],
            "problems": [problem.to_dict() for problem in self._problems],
        }

    def __str__(self) -> str:
        return "\n".join(str(problem) for problem in self._problems)


def lint(folder: Path, *, sum_file: bool = True) -> LintReport:
    """Check every migration file in ``folder`` and the chain they form, and the sum file unless ``sum_file`` is
    False; raises only UsageError, for a missing folder (or a file given as one)."""
    files = [_inspect(path) for path in migration_files(folder)]
    problems = [problem for file in files for problem in file.problems]
    problems += _graph_problems(files)
    problems += _gaps(files)
    scripts = [file.script for file in files if file.script is not None]
    order = None
    if not any(problem.code in BLOCKING for problem in problems):
        try:
            graph = RevisionGraph(script.node for script in scripts)
        except GraphError as exc:  # lint's own graph rules missed what the graph refuses: report it all the same
            name, _, message = str(exc).partition(": ")
            problems.append(Problem(name, None, None, "refused", message))
        else:
            by_revision = {script.revision: script for script in scripts}
            order = [by_revision[node.revision] for node in graph.order]
    if sum_file:
        problems += sumfile.verify(folder)
    return LintReport(folder, scripts, order, problems)


@dataclass(eq=False)
class _File:
    """What lint learnt of one file: what it declares (None when unreadable) and its problems."""

    path: Path
    number: str | None  # the file name's number, also for a bad name that starts with one
    revision: str | None = None
    has_parent: bool = False  # down_revision was read and is valid
    parent: str | None = None
    script: Script | None = None
    problems: list[Problem] = field(default_factory=list)

    def problem(self, code: str, message: str, line: int | None = None) -> None:
        self.problems.append(Problem(self.path.name, self.revision, line, code, message))


def _inspect(path: Path) -> _File:
    name = path.name
    match = FILE_NAME.match(name)
    if match is None:
        leading = _LEADING_NUMBER.match(name)
        file = _File(path, leading[0] if leading else None)
        file.problem(
            "bad-name",
            "migration file names must look like 001_create_things.py (digits, underscore, letters/digits/"
            "underscores); rename it, or prefix helpers with _",
        )
        return file
    file = _File(path, match["number"])
    try:
        content = path.read_bytes()
        module = execute(path)
    except OSError as exc:
        file.problem("import-error", f"cannot be read ({exc.strerror or exc}); fix the file's permissions or type")
        return file
    except ScriptError as exc:  # the loader's message is "<file>[:<line>]: <what>"
        where = re.match(rf"^{re.escape(name)}(?::(\d+))?: ", str(exc))
        line = int(where[1]) if where and where[1] else None
        file.problem("import-error", str(exc)[where.end() :] if where else str(exc), line)
        return file
    except SystemExit as exc:  # the loader lets it through; a lint run must not end because a script says so
        file.problem(
            "import-error",
            f"loading called sys.exit({exc.code!r}); a migration must not exit at module level",
            line_in(path, exc),
        )
        return file
    lines = _Lines(content)
    _check_declarations(file, module, lines)
    _check_functions(file, module, lines)
    doc = module.__doc__
    if not isinstance(doc, str) or not doc.strip():
        described = path.stem.split("_", 1)[-1].replace("_", " ")
        file.problem(
            "no-docstring",
            f'no docstring: status describes it as "{described}" (from the file name); start the file with a '
            'docstring whose first line says what the revision does, e.g. """Add the audit container."""',
        )
    if not any(problem.code in BLOCKING for problem in file.problems):
        try:
            file.script = from_module(path, content, module)
        except Exception as exc:  # the loader refuses what lint's rules do not cover: report it, never raise
            message = str(exc).removeprefix(f"{name}: ") if isinstance(exc, ScriptError) else f"{exc!r}"
            file.problem("refused", f"the loader refuses it: {message}")
    return file


def _check_declarations(file: _File, module: Any, lines: _Lines) -> None:
    revision = getattr(module, "revision", None)
    if isinstance(revision, str) and revision:
        file.revision = revision
        if revision != file.number:
            file.problem(
                "revision-mismatch",
                f"the file number {file.number} and revision = {revision!r} disagree; make them equal",
                lines.of("revision"),
            )
    elif hasattr(module, "revision"):
        file.problem(
            "no-revision",
            f'revision must be a non-empty string, not {revision!r}; write revision = "{file.number}"',
            lines.of("revision"),
        )
    else:
        file.problem("no-revision", f'no revision = "..." string at module level; add revision = "{file.number}"')
    if not hasattr(module, "down_revision"):
        file.problem(
            "no-down-revision",
            "no down_revision at module level; set it to the revision this one follows (None for the first)",
        )
        return
    parent = module.down_revision
    if parent is None or (isinstance(parent, str) and parent):
        file.has_parent, file.parent = True, parent
    else:
        file.problem(
            "no-down-revision",
            f"down_revision must be a revision string or None, not {parent!r}",
            lines.of("down_revision"),
        )


def _check_functions(file: _File, module: Any, lines: _Lines) -> None:
    for name in ("upgrade", "downgrade"):
        value = getattr(module, name, None)
        if callable(value):
            continue
        if value is None:
            message = f"no {name}(op) function; define one (it may do nothing, with a comment why)"
        else:
            message = f"{name} is {type(value).__name__} {value!r}, not a function; define def {name}(op): ..."
        file.problem(f"no-{name}", message, lines.of(name))


class _Lines:
    """Where a module-level name is bound, for problems with a value that is there but wrong.

    Parsed only when asked: a clean script costs no parse.
    """

    def __init__(self, content: bytes) -> None:
        self._content = content
        self._bound: dict[str, int] | None = None

    def of(self, name: str) -> int | None:
        if self._bound is None:
            try:
                tree = ast.parse(self._content)
            except (SyntaxError, ValueError):  # it executed, so this is not expected; no line then
                tree = ast.Module(body=[], type_ignores=[])
            self._bound = {}
            for statement in _module_level(tree.body):
                for bound in _names_bound(statement):
                    self._bound[bound] = statement.lineno  # the last binding is the one in effect
        return self._bound.get(name)


def _module_level(statements: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements run at module level, inside if/try/with/for blocks too, but not inside functions or classes."""
    for statement in statements:
        yield statement
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        for name in ("body", "orelse", "finalbody"):
            yield from _module_level(getattr(statement, name, []))
        for handler in getattr(statement, "handlers", []):
            yield from _module_level(handler.body)


def _names_bound(statement: ast.stmt) -> Iterator[str]:
    if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        yield statement.name
    elif isinstance(statement, ast.Assign):
        for target in statement.targets:
            yield from (node.id for node in ast.walk(target) if isinstance(node, ast.Name))
    elif isinstance(statement, ast.AnnAssign | ast.AugAssign) and isinstance(statement.target, ast.Name):
        yield statement.target.id
    elif isinstance(statement, ast.Import | ast.ImportFrom):
        yield from ((alias.asname or alias.name).split(".")[0] for alias in statement.names)


def _graph_problems(files: list[_File]) -> list[Problem]:
    """duplicate, dangling, two-heads and cycle, each over every file that declared what the rule needs.

    A file whose revision could not be read still counts as its file number, so that the script after a
    broken one is not also reported as dangling.
    """
    declared = [file for file in files if file.revision is not None]  # files are in number order
    problems: list[Problem] = []
    first: dict[str, _File] = {}
    for file in declared:
        assert file.revision is not None
        if file.revision in first:
            problems.append(
                Problem(
                    file.path.name,
                    file.revision,
                    None,
                    "duplicate",
                    f"revision {file.revision!r} is also declared by {first[file.revision].path.name}; give each "
                    "script its own revision",
                )
            )
        else:
            first[file.revision] = file
    known = set(first) | {file.number for file in files if file.number is not None}
    children: dict[str | None, _File] = {}
    for file in declared:
        if not file.has_parent:
            continue
        parent = file.parent
        if parent is not None and parent not in known:
            problems.append(
                Problem(
                    file.path.name,
                    file.revision,
                    None,
                    "dangling",
                    f"down_revision {parent!r} names no script; set it to the revision this one follows (None for "
                    "the first)",
                )
            )
        if parent in children:
            other = children[parent].path.name
            message = (
                f"down_revision None, but {other} is already the first revision; chain one after the other"
                if parent is None
                else f"down_revision {parent!r} is also the parent of {other}; two heads: chain one after the other"
            )
            problems.append(Problem(file.path.name, file.revision, None, "two-heads", message))
        else:
            children[parent] = file
    return problems + _cycles(declared, first)


def _cycles(declared: list[_File], first: dict[str, _File]) -> list[Problem]:
    """Each loop once, on its first file: following down_revision from a file comes back to a file on the way."""
    problems = []
    walked: set[str] = set()  # files already followed from an earlier start: any loop through them is reported
    for start in declared:
        path: dict[str, int] = {}  # file name -> position on this walk
        trail: list[_File] = []
        cursor: _File | None = start
        while cursor is not None and cursor.path.name not in walked:
            walked.add(cursor.path.name)
            path[cursor.path.name] = len(trail)
            trail.append(cursor)
            parent = cursor.parent if cursor.has_parent else None
            cursor = first.get(parent) if parent is not None else None
            if cursor is not None and cursor.path.name in path:
                loop = trail[path[cursor.path.name] :]
                at = min(range(len(loop)), key=lambda i: file_order(loop[i].path.name))
                loop = loop[at:] + loop[:at]  # from its first file, each followed by its down_revision
                shown = " → ".join(str(file.revision) for file in [*loop, loop[0]])
                problems.append(
                    Problem(
                        loop[0].path.name,
                        loop[0].revision,
                        None,
                        "cycle",
                        f"its down_revision chain loops ({shown}) and never reaches a first revision; make one of "
                        "them follow a revision outside the loop",
                    )
                )
                break
    return problems


def _gaps(files: list[_File]) -> list[Problem]:
    """A number missing between two numbered files: a deleted script, or one still on another branch."""
    numbered: dict[int, _File] = {}
    for file in files:
        if file.number is not None and FILE_NAME.match(file.path.name):
            numbered.setdefault(int(file.number), file)
    problems = []
    numbers = sorted(numbered)
    for below, above in itertools.pairwise(numbers):
        if above - below == 1:
            continue
        after = numbered[above]
        assert after.number is not None
        width = len(after.number)
        missing = [str(n).zfill(width) for n in range(below + 1, above)]
        if len(missing) == 1:
            named = missing[0]
        elif len(missing) <= 3:
            named = " or ".join(missing)
        else:
            named = f"{missing[0]} to {missing[-1]}"
        problems.append(
            Problem(
                after.path.name,
                after.revision,
                None,
                "gap",
                f"no migration numbered {named} between {numbered[below].number} and {after.number} (deleted, or "
                "not merged yet?); restore it, or renumber this script and those after it if none is applied anywhere",
            )
        )
    return problems
