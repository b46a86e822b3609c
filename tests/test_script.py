"""Loading migration files and their checksums (files in tmp_path only, no database)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from cosmigrate.errors import GraphError, ScriptError, UsageError
from cosmigrate.scripts.loader import checksum, discover, load, load_all


def script_text(
    revision: str = "001",
    down_revision: str | None = None,
    doc: str | None = "Create the things.\n\nMore words.\n",
    marker: str = "",
) -> str:
    """A valid migration script; ``upgrade(op)`` appends ``marker`` (or the revision) to ``op``."""
    docstring = f'"""{doc}"""\n\n' if doc is not None else ""
    return (
        f"{docstring}revision = {revision!r}\ndown_revision = {down_revision!r}\nMARKER = {marker or revision!r}\n\n\n"
        "def upgrade(op):\n    op.append(MARKER)\n\n\n"
        "def downgrade(op):\n    op.remove(MARKER)\n"
    )


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def leftover_modules() -> list[str]:
    return [name for name in sys.modules if name.startswith("cosmigrate_migration_")]


GOOD = script_text()


# a good script


def test_a_script_is_loaded_with_its_revision_description_and_checksum(tmp_path: Path) -> None:
    path = write(tmp_path, "001_create_things.py", GOOD)
    script = load(path)
    assert (script.revision, script.down_revision) == ("001", None)
    assert script.description == "Create the things."  # the docstring's first line only
    assert script.path == path
    assert script.checksum == checksum(GOOD.encode())
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", script.checksum)
    assert (script.node.revision, script.node.down_revision, script.node.source) == ("001", None, path.name)


def test_the_loaded_functions_run_with_their_module_globals(tmp_path: Path) -> None:
    script = load(write(tmp_path, "002_b.py", script_text("002", "001", marker="from 002")))
    assert script.down_revision == "001"
    op: list[str] = []
    script.upgrade(op)
    assert op == ["from 002"]
    script.downgrade(op)
    assert op == []


def test_without_a_docstring_the_description_comes_from_the_file_name(tmp_path: Path) -> None:
    script = load(write(tmp_path, "001_create_the_things.py", script_text(doc=None)))
    assert script.description == "create the things"


def test_a_docstring_with_leading_blank_lines_gives_its_first_text_line(tmp_path: Path) -> None:
    script = load(write(tmp_path, "001_x.py", script_text(doc="\n\n   Reindex users.  \nDetails.\n")))
    assert script.description == "Reindex users."


# checksums

LF = GOOD.encode()


@pytest.mark.parametrize(
    "variant",
    [
        LF.replace(b"\n", b"\r\n"),
        LF.replace(b"\n", b"\r"),
        b"\xef\xbb\xbf" + LF,
        b"\xef\xbb\xbf" + LF.replace(b"\n", b"\r\n"),
    ],
    ids=["CRLF", "CR", "BOM", "BOM and CRLF"],
)
def test_line_endings_and_bom_do_not_change_the_checksum(tmp_path: Path, variant: bytes) -> None:
    assert checksum(variant) == checksum(LF)
    lf_path, variant_path = tmp_path / "001_lf.py", tmp_path / "001_variant.py"
    lf_path.write_bytes(LF)
    variant_path.write_bytes(variant)
    assert load(variant_path).checksum == load(lf_path).checksum  # the file loads, and compares equal


@pytest.mark.parametrize(
    "changed",
    [
        LF.replace(b"op.append", b"op.extend"),
        LF.replace(b"Create the things.", b"Create the things!"),
        LF + b"\n",
        LF.replace(b"    op.append", b"\top.append"),
        b"\xef\xbb\xbf\xef\xbb\xbf" + LF,
    ],
    ids=["code", "docstring", "one more blank line", "indentation", "a second BOM"],
)
def test_any_real_change_changes_the_checksum(changed: bytes) -> None:
    assert checksum(changed) != checksum(LF)


# broken scripts: one ScriptError naming the file


BROKEN = [
    pytest.param(
        "revision = '001'\ndown_revision = None\ndef upgrade(op)\n    pass\n",
        r"^001_x\.py:3: syntax error",
        id="syntax error",
    ),
    pytest.param(
        "revision = '001'\n\nimport not_a_module_anywhere\n",
        r"^001_x\.py:3: loading failed with ModuleNotFoundError: No module named 'not_a_module_anywhere'",
        id="import error",
    ),
    pytest.param(
        "revision = '001'\ndown_revision = None\n1 / 0\n",
        r"^001_x\.py:3: loading failed with ZeroDivisionError",
        id="exception at module level",
    ),
    pytest.param(
        "def helper():\n    raise KeyError('boom')\n\n\nhelper()\n",
        r"^001_x\.py:2: loading failed with KeyError: 'boom'",  # where it was raised
        id="exception in a function called at module level",
    ),
    pytest.param(
        "import json\n\njson.loads('not json')\n",
        r"^001_x\.py:3: loading failed with JSONDecodeError",  # the script's line, not the library's
        id="exception inside a library called at module level",
    ),
    pytest.param("down_revision = None\n", r'001_x\.py: no revision = "\.\.\." string', id="no revision"),
    pytest.param(
        "revision = 1\ndown_revision = None\n", r'001_x\.py: no revision = "\.\.\." string', id="int revision"
    ),
    pytest.param("revision = ''\ndown_revision = None\n", r"001_x\.py: no revision", id="empty revision"),
    pytest.param("revision = '001'\n", r"^001_x\.py: no down_revision at module level", id="no down_revision"),
    pytest.param(
        "revision = '001'\ndown_revision = 7\n",
        r"^001_x\.py: down_revision must be a revision string or None, not 7",
        id="int down_revision",
    ),
    pytest.param(
        "revision = '002'\ndown_revision = None\n",
        r"^001_x\.py: the file number 001 and revision = '002' disagree",
        id="number and revision disagree",
    ),
    pytest.param(
        "revision = '001'\ndown_revision = None\ndef downgrade(op): pass\n",
        r"^001_x\.py: no upgrade\(op\) function",
        id="no upgrade",
    ),
    pytest.param(
        "revision = '001'\ndown_revision = None\nupgrade = 'not callable'\ndef downgrade(op): pass\n",
        r"^001_x\.py: no upgrade\(op\) function",
        id="upgrade not callable",
    ),
    pytest.param(
        "revision = '001'\ndown_revision = None\ndef upgrade(op): pass\n",
        r"^001_x\.py: no downgrade\(op\) function",
        id="no downgrade",
    ),
]


@pytest.mark.parametrize(("content", "message"), BROKEN)
def test_broken_scripts_are_refused_naming_the_file(tmp_path: Path, content: str, message: str) -> None:
    path = write(tmp_path, "001_x.py", content)
    with pytest.raises(ScriptError, match=message) as refused:
        load(path)
    assert refused.value.exit_code == 2 and isinstance(refused.value, UsageError)
    assert "\n" not in str(refused.value)  # one line
    assert not leftover_modules()


@pytest.mark.parametrize(("content", "message"), BROKEN)
def test_script_errors_name_the_file_alone_not_its_folder(tmp_path: Path, content: str, message: str) -> None:
    """script.py: "Errors name the file alone, as the revision graph does; the folder is the one given by
    --migrations." Every message starts with the bare file name."""
    path = write(tmp_path, "001_x.py", content)
    with pytest.raises(ScriptError) as refused:
        load(path)
    assert str(refused.value).startswith("001_x.py:")
    assert str(tmp_path) not in str(refused.value)


def test_a_broken_script_stops_load_all(tmp_path: Path) -> None:
    write(tmp_path, "001_a.py", GOOD)
    write(tmp_path, "002_b.py", "revision = '002'\ndown_revision = '001'\nraise RuntimeError('half written')\n")
    with pytest.raises(ScriptError, match=r"^002_b\.py:3: loading failed with RuntimeError: half written"):
        load_all(tmp_path)
    assert not leftover_modules()


def test_a_script_using_a_dataclass_with_postponed_annotations_loads(tmp_path: Path) -> None:
    """Ordinary Python must load: ``dataclasses`` looks the defining module up in ``sys.modules``."""
    content = (
        "from __future__ import annotations\n\nfrom dataclasses import dataclass\n\n\n"
        "@dataclass\nclass Renaming:\n    old: str\n    new: str\n\n\n" + script_text()
    )
    script = load(write(tmp_path, "001_x.py", content))
    assert script.revision == "001"
    assert not leftover_modules()


# finding the files


@pytest.mark.parametrize(
    "name",
    ["add-things.py", "things.py", "001-things.py", "001_.py", "001_things-v2.py", "v001_things.py", "001 things.py"],
)
def test_a_badly_named_file_is_an_error_not_silently_skipped(tmp_path: Path, name: str) -> None:
    write(tmp_path, "001_a.py", GOOD)
    write(tmp_path, name, GOOD)
    with pytest.raises(ScriptError, match=rf"^{re.escape(name)}: migration file names must look like") as refused:
        load_all(tmp_path)
    assert str(tmp_path) not in str(refused.value)


def test_files_starting_with_an_underscore_and_other_files_are_ignored(tmp_path: Path) -> None:
    write(tmp_path, "001_a.py", GOOD)
    write(tmp_path, "_helpers.py", "raise RuntimeError('never imported')\n")
    write(tmp_path, "__init__.py", "raise RuntimeError('never imported')\n")
    write(tmp_path, "_002_draft.py", "this is not python\n")
    write(tmp_path, "notes.txt", "not python")
    write(tmp_path, "002_b.py.orig", "not python")
    (tmp_path / "__pycache__").mkdir()
    write(tmp_path / "__pycache__", "003_c.py", "not python")
    assert [path.name for path in discover(tmp_path)] == ["001_a.py"]
    assert [script.revision for script in load_all(tmp_path).ordered] == ["001"]


def test_a_missing_folder_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(UsageError, match=rf"migrations folder {re.escape(str(missing))} does not exist"):
        load_all(missing)


def test_a_file_given_as_the_folder_is_a_usage_error(tmp_path: Path) -> None:
    path = write(tmp_path, "001_a.py", GOOD)
    with pytest.raises(UsageError, match="is a file, not a folder"):
        load_all(path)


def test_an_empty_folder_has_no_scripts(tmp_path: Path) -> None:
    loaded = load_all(tmp_path)
    assert loaded.ordered == [] and loaded.graph.head is None


# load_all


def test_load_all_returns_scripts_in_chain_order(tmp_path: Path) -> None:
    """The chain decides, not the file names: 003 was written to follow 001, and 002 to follow 003."""
    write(tmp_path, "002_b.py", script_text("002", "003"))
    write(tmp_path, "001_a.py", script_text("001", None))
    write(tmp_path, "003_c.py", script_text("003", "001"))
    loaded = load_all(tmp_path)
    assert [script.revision for script in loaded.ordered] == ["001", "003", "002"]
    assert [script.path.name for script in loaded.ordered] == ["001_a.py", "003_c.py", "002_b.py"]
    assert loaded.graph.head == "002"
    assert set(loaded.by_revision) == {"001", "002", "003"}
    assert loaded.by_revision["003"].down_revision == "001"


def test_load_all_refuses_a_broken_chain_naming_the_file(tmp_path: Path) -> None:
    write(tmp_path, "001_a.py", script_text("001", None))
    write(tmp_path, "002_b.py", script_text("002", None))
    with pytest.raises(GraphError, match=r"^002_b\.py: down_revision None, but 001_a\.py is already the first"):
        load_all(tmp_path)


def test_loading_the_same_folder_twice_works_and_leaves_no_modules(tmp_path: Path) -> None:
    write(tmp_path, "001_a.py", script_text("001", None))
    write(tmp_path, "002_b.py", script_text("002", "001"))
    first, second = load_all(tmp_path), load_all(tmp_path)
    assert [s.revision for s in first.ordered] == [s.revision for s in second.ordered] == ["001", "002"]
    assert [s.checksum for s in first.ordered] == [s.checksum for s in second.ordered]
    assert not leftover_modules()


def test_scripts_of_the_same_name_in_two_folders_do_not_collide(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    write(one, "001_a.py", script_text(marker="one"))
    write(two, "001_a.py", script_text(marker="two"))
    first, second = load_all(one).by_revision["001"], load_all(two).by_revision["001"]
    op: list[str] = []
    first.upgrade(op)
    second.upgrade(op)
    assert op == ["one", "two"]
    assert first.checksum != second.checksum
    assert not leftover_modules()
