"""Loading migration files and their checksums (files only, no database)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from cosmigrate.errors import ScriptError
from cosmigrate.script import checksum, load, load_all

GOOD = (
    '"""Create the things.\n\nMore words.\n"""\n\nrevision = "001"\ndown_revision = None\n\n\n'
    "def upgrade(op):\n    pass\n\n\ndef downgrade(op):\n    pass\n"
)


def test_a_script_is_loaded_with_its_description_and_checksum(tmp_path: Path) -> None:
    path = tmp_path / "001_create_things.py"
    path.write_text(GOOD)
    script = load(path)
    assert (script.revision, script.down_revision) == ("001", None)
    assert script.description == "Create the things."
    assert script.checksum == checksum(GOOD.encode()) and script.checksum.startswith("sha256:")
    assert callable(script.upgrade) and callable(script.downgrade)
    assert not [name for name in sys.modules if name.startswith("cosmigrate_migration_")]


def test_line_endings_and_bom_do_not_change_the_checksum() -> None:
    lf = GOOD.encode()
    assert checksum(lf.replace(b"\n", b"\r\n")) == checksum(lf)
    assert checksum(lf.replace(b"\n", b"\r")) == checksum(lf)
    assert checksum(b"\xef\xbb\xbf" + lf) == checksum(lf)
    assert checksum(lf.replace(b"pass", b"return")) != checksum(lf)
    assert checksum(lf + b"\n") != checksum(lf)  # a real edit, even a blank line, is a change


def test_scripts_are_ordered_by_chain_and_helpers_ignored(tmp_path: Path) -> None:
    (tmp_path / "001_a.py").write_text(GOOD)
    (tmp_path / "002_b.py").write_text(GOOD.replace('"001"', '"002"').replace("= None", '= "001"'))
    (tmp_path / "_helpers.py").write_text("raise RuntimeError('never imported')\n")
    (tmp_path / "notes.txt").write_text("not python")
    loaded = load_all(tmp_path)
    assert [s.revision for s in loaded.ordered] == ["001", "002"]
    assert load_all(tmp_path).graph.head == "002"  # loading twice is fine


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("revision = '001'\ndown_revision = None\ndef upgrade(op)\n    pass\n", r"001_x.py:3: syntax error"),
        ("import not_a_module\n", r"001_x.py:1: loading failed with ModuleNotFoundError"),
        ("revision = '001'\n1 / 0\n", r"001_x.py:2: loading failed with ZeroDivisionError"),
        ("down_revision = None\n", r"001_x.py: no revision"),
        ("revision = 1\ndown_revision = None\n", r"001_x.py: no revision"),
        ("revision = '001'\n", r"001_x.py: no down_revision"),
        ("revision = '001'\ndown_revision = 7\n", r"down_revision must be a revision string or None"),
        ("revision = '002'\ndown_revision = None\n", r"file number 001 and revision = '002' disagree"),
        ("revision = '001'\ndown_revision = None\ndef downgrade(op): pass\n", r"no upgrade\(op\) function"),
        ("revision = '001'\ndown_revision = None\ndef upgrade(op): pass\n", r"no downgrade\(op\) function"),
    ],
    ids=[
        "syntax", "import", "raises", "no revision", "int revision", "no down_revision", "bad down_revision",
        "number mismatch", "no upgrade", "no downgrade",
    ],
)  # fmt: skip
def test_broken_scripts_are_refused_naming_the_file(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "001_x.py"
    path.write_text(content)
    with pytest.raises(ScriptError, match=message):
        load(path)


def test_a_badly_named_file_is_an_error_not_silently_skipped(tmp_path: Path) -> None:
    (tmp_path / "001_a.py").write_text(GOOD)
    (tmp_path / "add-things.py").write_text(GOOD)
    with pytest.raises(ScriptError, match="add-things.py: migration file names must look like"):
        load_all(tmp_path)
