"""Finding and loading migration scripts, and their checksums.

Scripts are loaded from their file path with importlib, never as a package, so ``migrations/`` needs no
``__init__.py`` and two projects' scripts never collide in ``sys.modules``. Every way a file can be wrong is
reported as one line naming the file (and the line, for syntax errors) before anything touches the database.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import re
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from cosmigrate.errors import ScriptError, UsageError
from cosmigrate.scripts.graph import Node, RevisionGraph
from cosmigrate.scripts.helpers import imported_files, name_of

# The migration lint's codes and names (plan/analyzers.py finds them; a script's lint_ignore may name only these)
LINT_CODES = {
    "CM101": "destructive",
    "CM102": "recreate",
    "CM201": "index removed",
    "CM202": "index replaced",
    "CM301": "unique keys over existing data",
    "CM401": "analytical TTL 0",
    "CM501": "data step not idempotent",
}
FILE_NAME = re.compile(r"^(?P<number>\d+)_(?P<slug>[A-Za-z0-9_]+)\.py$")


@dataclass(frozen=True)
class Helper:
    """A file of the migrations folder that a script imports (``helpers.py`` says how they are found)."""

    name: str  # its path below the migrations folder: _helpers.py, _pkg/sub.py
    checksum: str  # as a script's: line endings normalised, BOM dropped
    source: str  # its text as imported, normalised the same way


@dataclass(frozen=True)
class Script:
    """One loaded migration file.

    ``checksum`` covers the script and its helpers (``combined_checksum``); ``script_checksum`` is the script's
    file alone, which is what the sum file lists for it and what an older cosmigrate recorded.
    """

    revision: str
    down_revision: str | None
    description: str
    path: Path
    checksum: str
    upgrade: Callable[[Any], None]
    downgrade: Callable[[Any], None]
    idempotent: bool = False
    arguments: dict[str, str] | None = None
    lint_ignore: dict[str, str] = field(default_factory=dict)  # lint code -> why this revision may do it
    source: str = ""
    script_checksum: str = ""
    helpers: tuple[Helper, ...] = ()

    @property
    def node(self) -> Node:
        return Node(self.revision, self.down_revision, self.path.name)

    @property
    def helper_checksums(self) -> dict[str, str]:
        """What history records of the helpers: name -> checksum."""
        return {helper.name: helper.checksum for helper in self.helpers}

    @property
    def helper_sources(self) -> dict[str, str]:
        """What history keeps of the helpers, beside the script's source: name -> text."""
        return {helper.name: helper.source for helper in self.helpers}


def normalise(content: bytes) -> bytes:
    """The script's bytes with line endings normalised and any BOM dropped: what checksums are taken of."""
    if content.startswith(b"\xef\xbb\xbf"):
        content = content[3:]
    return content.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def checksum(content: bytes) -> str:
    """sha256 of the script with line endings normalised and any BOM dropped.

    A CRLF checkout (git autocrlf on Windows) or an editor's BOM is not a change (flyway#253).
    """
    return "sha256:" + hashlib.sha256(normalise(content)).hexdigest()


def combined_checksum(script_checksum: str, helpers: Sequence[Helper]) -> str:
    """The checksum of a script together with the helpers it imports.

    A script that imports no helper keeps exactly its own checksum, the one every earlier cosmigrate recorded:
    upgrading cosmigrate must not make every applied revision look changed. With helpers, it is the sha256 of
    a small manifest (a version line, the script's checksum, then each helper's name and checksum, sorted by
    name), so that editing, adding or dropping a helper changes it, and renaming one too.
    """
    if not helpers:
        return script_checksum
    lines = [
        "cosmigrate checksum 2",
        f"script {script_checksum}",
        *(f"helper {h.name} {h.checksum}" for h in sorted(helpers, key=lambda h: h.name)),
    ]
    return "sha256:" + hashlib.sha256("".join(line + "\n" for line in lines).encode("utf-8")).hexdigest()


def find_helpers(path: Path, content: bytes) -> tuple[Helper, ...]:
    """The helpers of the script at ``path`` (``content`` being its bytes), each with its checksum and text."""
    found = []
    for file in imported_files(path, content):
        name = name_of(path.parent, file)
        try:
            text = file.read_bytes()
        except OSError as exc:
            raise ScriptError(
                f"{path.name}: its helper {name} cannot be read ({exc.strerror or exc}); fix the file's permissions"
            ) from None
        found.append(Helper(name, checksum(text), normalise(text).decode("utf-8", errors="replace")))
    return tuple(found)


def discover(folder: Path) -> list[Path]:
    """Migration files in ``folder``: ``NNN_slug.py``; other ``.py`` files are an error, not silently skipped.

    Errors name the file alone, as the revision graph does; the folder is the one given by --migrations.
    """
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"migrations folder {folder} is a file, not a folder: point --migrations at the folder")
    if not folder.is_dir():
        raise UsageError(
            f"migrations folder {folder} does not exist: create it or point --migrations / COSMIGRATE_MIGRATIONS at it"
        )
    files = []
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        if not FILE_NAME.match(path.name):
            raise ScriptError(
                f"{path.name}: migration file names must look like 001_create_things.py (digits, underscore, "
                "letters/digits/underscores); rename it, or prefix helpers with _"
            )
        files.append(path)
    return files


def load(path: Path) -> Script:
    content = path.read_bytes()
    module = _import(path)
    return from_module(path, content, module)


def from_module(path: Path, content: bytes, module: ModuleType) -> Script:
    """The checks and the Script of ``load``, for a file already executed by ``execute``.

    ``lint`` executes each file once, collects every problem itself, then builds the Script here, so that the
    two never disagree on what a script is.
    """
    revision = getattr(module, "revision", None)
    if not isinstance(revision, str) or not revision:
        raise ScriptError(f'{path.name}: no revision = "..." string at module level; add one (e.g. revision = "005")')
    if not hasattr(module, "down_revision"):
        raise ScriptError(f"{path.name}: no down_revision at module level; set it to the previous revision or None")
    down_revision = module.down_revision
    if down_revision is not None and (not isinstance(down_revision, str) or not down_revision):
        raise ScriptError(f"{path.name}: down_revision must be a revision string or None, not {down_revision!r}")
    number = FILE_NAME.match(path.name)
    if number and number["number"] != revision:
        raise ScriptError(
            f"{path.name}: the file number {number['number']} and revision = {revision!r} disagree; make them equal"
        )
    for name in ("upgrade", "downgrade"):
        if not callable(getattr(module, name, None)):
            raise ScriptError(
                f"{path.name}: no {name}(op) function; define one (it may do nothing, with a comment why)"
            )
    idempotent = getattr(module, "idempotent", False)
    if not isinstance(idempotent, bool):
        raise ScriptError(f"{path.name}: idempotent must be True or False, not {idempotent!r}")
    arguments = getattr(module, "arguments", None)
    if arguments is not None and (
        not isinstance(arguments, dict)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in arguments.items())
    ):
        raise ScriptError(
            f"{path.name}: arguments must be a dict of -x key to what it does, e.g. {{'force': 'drop even if used'}}"
        )
    ignored = getattr(module, "lint_ignore", None)
    if ignored is not None and (
        not isinstance(ignored, dict)
        or not all(isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in ignored.items())
    ):
        raise ScriptError(
            f"{path.name}: lint_ignore must map each lint code to a reason that is not empty, e.g. "
            "{'CM101': 'the container is empty everywhere (checked by 004)'}"
        )
    unknown = sorted(set(ignored or {}) - set(LINT_CODES))
    if unknown:
        raise ScriptError(
            f"{path.name}: lint_ignore names {unknown[0]!r}, which is no lint code ({', '.join(LINT_CODES)})"
        )
    doc = (module.__doc__ or "").strip()
    own = checksum(content)
    helpers = find_helpers(path, content)
    return Script(
        revision=revision,
        down_revision=down_revision,
        description=doc.splitlines()[0].strip() if doc else path.stem.split("_", 1)[-1].replace("_", " "),
        path=path,
        checksum=combined_checksum(own, helpers),
        upgrade=module.upgrade,
        downgrade=module.downgrade,
        idempotent=idempotent,
        arguments=dict(arguments) if arguments is not None else None,
        lint_ignore=dict(ignored or {}),
        source=normalise(content).decode("utf-8", errors="replace"),
        script_checksum=own,
        helpers=helpers,
    )


def execute(path: Path) -> ModuleType:
    """Run a migration file as ``load`` does (a module name of its own, nothing left in ``sys.modules``).

    A failure is a ScriptError whose message starts ``<file>:<line>:`` (the line when known); ``lint`` uses this
    to inspect modules that ``load`` would refuse.
    """
    return _import(path)


def _import(path: Path) -> ModuleType:
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
    name = f"cosmigrate_migration_{digest}_" + re.sub(r"\W", "_", path.stem)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ScriptError(f"{path.name}: cannot be loaded as a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and typing look the defining module up while it executes
    try:
        with _helpers_importable(path.parent):
            spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise ScriptError(f"{path.name}:{exc.lineno}: syntax error: {exc.msg}; fix the script") from None
    except Exception as exc:
        line = _line_in(path, exc)
        raise ScriptError(
            f"{path.name}{line}: loading failed with {type(exc).__name__}: {exc}; fix the script"
        ) from None
    finally:
        sys.modules.pop(name, None)
    return module


@contextlib.contextmanager
def _helpers_importable(folder: Path) -> Iterator[None]:
    """While a script loads, ``from _helpers import x`` finds ``_helpers.py`` beside it.

    Only the folder's ``_``-prefixed modules (and packages) are meant to be imported this way. They are taken
    out of ``sys.modules`` afterwards — a package's modules too, which sit below the folder, not in it — so that
    two migration folders' ``_helpers`` never shadow each other, and a helper edited since is read again, as
    its checksum is; a script keeps what it imported. Import helpers at the top of the script, not inside
    ``upgrade``.
    """
    root = folder.resolve()
    entry = str(root)
    sys.path.insert(0, entry)
    before = set(sys.modules)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(entry)
        for name in set(sys.modules) - before:
            module = sys.modules[name]
            origin = getattr(module, "__file__", None) or ""
            places = [origin] if origin else list(getattr(module, "__path__", None) or [])  # a namespace package
            top = root / name.partition(".")[0]  # found through the folder's entry: its top-level name is there
            for place in (Path(place).resolve() for place in places):
                if place == top.with_name(top.name + ".py") or place.is_relative_to(top):
                    sys.modules.pop(name, None)
                    break


def _line_in(path: Path, exc: BaseException) -> str:
    line = line_in(path, exc)
    return f":{line}" if line else ""


def line_in(path: Path, exc: BaseException) -> int | None:
    """The line of ``path`` nearest to where ``exc`` was raised (the script's own frame), if any."""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if Path(frame.filename) == path:
            return frame.lineno
    return None


@dataclass(frozen=True)
class ScriptSet:
    """The loaded scripts of a folder and their graph."""

    graph: RevisionGraph
    by_revision: dict[str, Script]

    @property
    def ordered(self) -> list[Script]:
        return [self.by_revision[node.revision] for node in self.graph.order]


def load_all(folder: Path) -> ScriptSet:
    scripts = [load(path) for path in discover(folder)]
    graph = RevisionGraph(script.node for script in scripts)
    return ScriptSet(graph=graph, by_revision={script.revision: script for script in scripts})
