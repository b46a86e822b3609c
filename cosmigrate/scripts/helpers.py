"""Which files of the migrations folder a script imports (its helpers), found by reading its import statements.

A migration may import modules beside it (``from _helpers import POLICY`` finds ``migrations/_helpers.py``,
``import _pkg.sub`` finds ``_pkg/__init__.py`` and ``_pkg/sub.py``), and what such a helper says is part of what
the revision does: an edited ``POLICY`` is an edited migration. So a script's checksum covers its helpers, and
the sum file lists them (issue 14).

They are found statically, with ``ast``, never by executing anything: the answer is the same for ``check``
(offline, no import at all for the sum file), ``load`` and ``lint``, it does not depend on what an earlier
script left in ``sys.modules``, and it sees an import inside ``upgrade`` or under an ``if`` as well as one at the
top. Every ``import`` and ``from … import`` of a file is resolved the way Python resolves it against the
migrations folder, which the loader puts first on ``sys.path``: a package directory (``name/__init__.py``) before
a module (``name.py``), a directory without ``__init__.py`` as a namespace package; ``from pkg import name``
also takes ``pkg/name.py`` when that is a submodule; relative imports inside a helper package are resolved from
that package. Each helper found is read in turn, so a helper importing another helper is covered (transitively).

What is not covered: modules outside the migrations folder (the standard library, site-packages, the
application's own code — their versions are the environment's business, not the migration's), imports made by
name at run time (``importlib.import_module(f"_{x}")``), and non-Python files a helper reads. A name the folder
holds is covered even when Python would take an already-imported module of that name instead: a file too many
is checksummed, never one too few.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path


def imported_files(script: Path, content: bytes) -> list[Path]:
    """The files of ``script``'s folder that it imports, directly or through one another, sorted by ``name_of``.

    ``content`` is the script's bytes as read (what the caller checksums). A file that cannot be parsed imports
    nothing here: loading it fails anyway, with its own message.
    """
    folder = script.parent
    found: dict[Path, None] = {}
    queue: list[tuple[bytes, str]] = [(content, "")]
    while queue:
        text, package = queue.pop()
        for module in _imports(text, package):
            for path in _resolve(folder, module):
                if path in found or path == script:
                    continue
                found[path] = None
                queue.append((_read(path), _package_of(folder, path)))
    return sorted(found, key=lambda path: name_of(folder, path))


def name_of(folder: Path, path: Path) -> str:
    """A helper's name as shown and recorded: its path below the migrations folder (``_pkg/sub.py``)."""
    return path.relative_to(folder).as_posix()


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:  # the checksum reads it again and says so; it imports nothing that can be seen
        return b""


def _package_of(folder: Path, path: Path) -> str:
    """The package a helper's relative imports start from: ``_pkg`` for ``_pkg/__init__.py`` and ``_pkg/sub.py``."""
    return ".".join(path.relative_to(folder).parent.parts)


@functools.lru_cache(maxsize=4096)
def _imports(content: bytes, package: str) -> tuple[str, ...]:
    """The dotted names a file's import statements may load, absolute; cached, as lint and the sum file both ask."""
    if b"import" not in content:  # most migrations import nothing: no parse
        return ()
    try:
        tree = ast.parse(content)
    except (SyntaxError, ValueError):
        return ()
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node.module, node.level, package)
            if base is None:
                continue
            names.append(base)
            names += [f"{base}.{alias.name}" for alias in node.names if alias.name != "*"]  # maybe submodules
    return tuple(dict.fromkeys(names))


def _absolute(module: str | None, level: int, package: str) -> str | None:
    """``from ..x import y`` made absolute from ``package``; None when Python would refuse it (beyond the top)."""
    if level == 0:
        return module
    parts = package.split(".") if package else []
    if level - 1 >= len(parts):
        return None
    base = parts[: len(parts) - (level - 1)]
    return ".".join([*base, module] if module else base)


def _resolve(folder: Path, dotted: str) -> list[Path]:
    """The files of ``folder`` that importing ``dotted`` runs: each package's ``__init__.py`` on the way, then the
    module; nothing for a name the folder does not hold."""
    files: list[Path] = []
    here = folder
    for part in dotted.split("."):
        if not part.isidentifier():
            break
        directory = here / part
        init = directory / "__init__.py"
        if init.is_file():
            files.append(init)
            here = directory
            continue
        module = here / f"{part}.py"
        if module.is_file():
            files.append(module)
            break  # a module has no submodules: what follows is an attribute
        if not directory.is_dir():
            break
        here = directory  # a namespace package: no file of its own
    return files
