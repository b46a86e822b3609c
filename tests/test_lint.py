"""Offline lint: every problem of a migrations folder in one run (files in tmp_path only, no database)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cosmigrate.errors import ScriptError, UsageError
from cosmigrate.scripts import lint as lint_module
from cosmigrate.scripts.lint import BLOCKING, LintReport, Problem, lint
from cosmigrate.scripts.loader import load, load_all
from tests.conftest import MIGRATIONS
from tests.test_script import BROKEN, leftover_modules, script_text, write

Found = tuple[str, str, int | None]  # (code, file, line)


def found(report: LintReport) -> list[Found]:
    return [(problem.code, problem.file, problem.line) for problem in report.problems]


def folder_of(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        write(tmp_path, name, text)
    return tmp_path


def chain(*revisions: str) -> dict[str, str]:
    """Good scripts ``<revision>_s<revision>.py``, each following the one before."""
    files, parent = {}, None
    for revision in revisions:
        files[f"{revision}_s{revision}.py"] = script_text(revision, parent)
        parent = revision
    return files


def linked(*links: str) -> dict[str, str]:
    """Good scripts from ``"002<001"`` (revision 002 follows 001) or ``"001"`` (a first revision)."""
    files = {}
    for link in links:
        revision, _, parent = link.partition("<")
        files[f"{revision}_s{revision}.py"] = script_text(revision, parent or None)
    return files


FUNCTIONS = "def upgrade(op):\n    pass\n\n\ndef downgrade(op):\n    pass\n"


def run(folder: Path) -> LintReport:
    return lint(folder, sum_file=False)


# a good folder


def test_a_good_folder_has_no_problems_and_gives_the_scripts_in_chain_order(tmp_path: Path) -> None:
    report = run(folder_of(tmp_path, chain("001", "002", "003")))
    assert report.ok and report.problems == ()
    assert [script.revision for script in report.scripts] == ["001", "002", "003"]
    assert report.order is not None
    assert [script.revision for script in report.order] == ["001", "002", "003"]
    assert report.order[1].description == "Create the things."
    assert not leftover_modules()


def test_this_projects_migrations_lint_clean() -> None:
    report = run(MIGRATIONS)
    assert report.problems == ()
    assert report.order is not None
    assert [script.revision for script in report.order] == ["001", "002", "003", "004", "005"]


def test_the_order_follows_the_chain_as_the_loader_does(tmp_path: Path) -> None:
    folder = folder_of(
        tmp_path,
        {"001_a.py": script_text("001"), "002_b.py": script_text("002", "003"), "003_c.py": script_text("003", "001")},
    )
    report = run(folder)
    assert report.ok and report.order is not None
    assert [s.revision for s in report.order] == [s.revision for s in load_all(folder).ordered] == ["001", "003", "002"]


# one test per code: the exact code, file and line


@pytest.mark.parametrize(
    "name", ["add-things.py", "001-things.py", "001_.py", "001_things-v2.py", "v001_things.py", "001 things.py"]
)
def test_bad_name(tmp_path: Path, name: str) -> None:
    folder = folder_of(tmp_path, {"001_a.py": script_text(), name: "raise RuntimeError('never executed')\n"})
    report = run(folder)
    assert found(report) == [("bad-name", name, None)]
    assert "must look like 001_create_things.py" in report.problems[0].message
    assert [script.revision for script in report.scripts] == ["001"]  # the good file still loaded
    assert report.order is None  # the loader refuses the folder


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        ("revision = '002'\ndown_revision = None\ndef upgrade(op)\n    pass\n", 3, "syntax error: expected ':'"),
        ("revision = '002'\n\nimport not_a_module_anywhere\n", 3, "loading failed with ModuleNotFoundError"),
        ("revision = '002'\ndown_revision = None\n1 / 0\n", 3, "loading failed with ZeroDivisionError"),
        ("def helper():\n    raise KeyError('boom')\n\n\nhelper()\n", 2, "loading failed with KeyError: 'boom'"),
        ("import json\n\njson.loads('not json')\n", 3, "loading failed with JSONDecodeError"),
        ("import sys\n\nrevision = '002'\nsys.exit(3)\n", 4, "loading called sys.exit(3)"),
    ],
    ids=["syntax error", "import error", "exception", "in a function", "in a library", "sys.exit"],
)
def test_import_error(tmp_path: Path, content: str, line: int, message: str) -> None:
    folder = folder_of(tmp_path, {**chain("001"), "002_b.py": content})
    report = run(folder)
    assert found(report) == [("import-error", "002_b.py", line)]
    assert report.problems[0].message.startswith(message)
    assert not report.problems[0].message.startswith("002_b.py")  # the file is a field, not in the message
    assert not leftover_modules()


def test_an_unreadable_file_is_an_import_error(tmp_path: Path) -> None:
    folder = folder_of(tmp_path, chain("001"))
    (folder / "002_b.py").mkdir()  # a folder named like a migration: reading it fails as any unreadable file does
    assert found(run(folder)) == [("import-error", "002_b.py", None)]


@pytest.mark.parametrize(
    ("declaration", "line"),
    [("", None), ("revision = 2\n", 2), ("revision = ''\n", 2), ("revision: str = None  # type: ignore\n", 2)],
    ids=["missing", "an int", "empty", "None"],
)
def test_no_revision(tmp_path: Path, declaration: str, line: int | None) -> None:
    content = f'"""Doc."""\n{declaration}down_revision = "001"\n\n\n{FUNCTIONS}'
    report = run(folder_of(tmp_path, {**chain("001"), "002_b.py": content}))
    assert found(report) == [("no-revision", "002_b.py", line)]
    assert 'revision = "002"' in report.problems[0].message  # says what to write
    assert report.problems[0].revision is None


def test_revision_mismatch(tmp_path: Path) -> None:
    report = run(folder_of(tmp_path, {**chain("001"), "002_b.py": script_text("003", "001")}))
    assert found(report) == [("revision-mismatch", "002_b.py", 6)]  # the line of revision = ...
    assert report.problems[0].revision == "003"
    assert "the file number 002 and revision = '003' disagree" in report.problems[0].message


@pytest.mark.parametrize(("declaration", "line"), [("", None), ("down_revision = 1\n", 3), ("down_revision = ''\n", 3)])
def test_no_down_revision(tmp_path: Path, declaration: str, line: int | None) -> None:
    content = f'"""Doc."""\nrevision = "002"\n{declaration}\n\n{FUNCTIONS}'
    report = run(folder_of(tmp_path, {**chain("001"), "002_b.py": content}))
    assert found(report) == [("no-down-revision", "002_b.py", line)]
    assert report.problems[0].revision == "002"


@pytest.mark.parametrize("function", ["upgrade", "downgrade"])
@pytest.mark.parametrize("bound", [False, True], ids=["missing", "not callable"])
def test_no_upgrade_and_no_downgrade(tmp_path: Path, function: str, bound: bool) -> None:
    text = script_text("002", "001")
    start = text.index(f"def {function}(op)")
    end = text.find("\n\n\n", start)
    replacement = f"{function} = 'not callable'\n" if bound else ""
    text = text[:start] + replacement + (text[end + 3 :] if end != -1 else "")
    line = text[:start].count("\n") + 1 if bound else None  # where the wrong value is bound
    report = run(folder_of(tmp_path, {**chain("001"), "002_b.py": text}))
    assert found(report) == [(f"no-{function}", "002_b.py", line)]
    assert report.problems[0].revision == "002"


@pytest.mark.parametrize("doc", [None, "", "   \n  "], ids=["none", "empty", "blank"])
def test_no_docstring(tmp_path: Path, doc: str | None) -> None:
    report = run(folder_of(tmp_path, {**chain("001"), "002_add_audit.py": script_text("002", "001", doc=doc)}))
    assert found(report) == [("no-docstring", "002_add_audit.py", None)]
    assert 'status describes it as "add audit"' in report.problems[0].message
    assert report.order is not None  # the loader accepts it: lint's own rule
    assert [script.revision for script in report.order] == ["001", "002"]


def test_duplicate(tmp_path: Path) -> None:
    """Two branches each added 002 after 001: one revision declared twice, and two heads."""
    folder = folder_of(
        tmp_path, {**chain("001"), "002_a.py": script_text("002", "001"), "002_b.py": script_text("002", "001")}
    )
    report = run(folder)
    assert found(report) == [("duplicate", "002_b.py", None), ("two-heads", "002_b.py", None)]
    assert "revision '002' is also declared by 002_a.py" in report.problems[0].message
    assert report.order is None


def test_gap(tmp_path: Path) -> None:
    folder = folder_of(tmp_path, {**chain("001", "002"), "004_d.py": script_text("004", "002")})
    report = run(folder)
    assert found(report) == [("gap", "004_d.py", None)]
    assert report.problems[0].message.startswith("no migration numbered 003 between 002 and 004")
    assert report.order is not None  # the chain itself is sound: the loader accepts it


def test_a_gap_of_several_numbers_names_them(tmp_path: Path) -> None:
    folder = folder_of(tmp_path, {**chain("001"), "009_i.py": script_text("009", "001")})
    assert run(folder).problems[0].message.startswith("no migration numbered 002 to 008 between 001 and 009")


def test_numbers_before_the_first_file_are_not_a_gap(tmp_path: Path) -> None:
    assert run(folder_of(tmp_path, chain("005", "006"))).ok  # older revisions squashed away, say


def test_dangling(tmp_path: Path) -> None:
    report = run(folder_of(tmp_path, {**chain("001"), "002_b.py": script_text("002", "009")}))
    assert found(report) == [("dangling", "002_b.py", None)]
    assert "down_revision '009' names no script" in report.problems[0].message


def test_the_script_after_a_broken_one_is_not_dangling(tmp_path: Path) -> None:
    """002 does not load; 003 follows it: one problem, in 002, not a second one blaming 003."""
    folder = folder_of(
        tmp_path,
        {**chain("001"), "002_b.py": "raise RuntimeError('half written')\n", "003_c.py": script_text("003", "002")},
    )
    assert found(run(folder)) == [("import-error", "002_b.py", 1)]


@pytest.mark.parametrize(
    ("files", "where", "message"),
    [
        (linked("001", "002<001", "003<001"), "003_s003.py", "down_revision '001' is also the parent of 002_s002.py"),
        (linked("001", "002"), "002_s002.py", "down_revision None, but 001_s001.py is already the first"),
    ],
    ids=["same parent", "two first revisions"],
)
def test_two_heads(tmp_path: Path, files: dict[str, str], where: str, message: str) -> None:
    report = run(folder_of(tmp_path, files))
    assert found(report) == [("two-heads", where, None)]
    assert message in report.problems[0].message


@pytest.mark.parametrize(
    ("files", "where", "shown"),
    [
        (linked("001", "002<003", "003<002"), "002_s002.py", "002 → 003 → 002"),
        (linked("001<002", "002<001"), "001_s001.py", "001 → 002 → 001"),
        (linked("001", "002<002"), "002_s002.py", "002 → 002"),
        (linked("001", "002<004", "003<002", "004<003"), "002_s002.py", "002 → 004 → 003 → 002"),
        (linked("001", "004<003", "003<002", "002<004"), "002_s002.py", "002 → 004 → 003 → 002"),
    ],
    ids=["beside a good chain", "no first revision", "its own parent", "three long", "written in another order"],
)
def test_cycle(tmp_path: Path, files: dict[str, str], where: str, shown: str) -> None:
    report = run(folder_of(tmp_path, files))
    assert found(report) == [("cycle", where, None)]  # one problem per loop, not one per file in it
    assert f"loops ({shown})" in report.problems[0].message


def test_refused_when_the_loader_refuses_what_no_rule_covers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Lint never passes a folder the loader refuses, even for a check added to the loader alone."""

    def stricter(path: Path, content: bytes, module: object) -> None:
        raise ScriptError(f"{path.name}: idempotent must be True or False, not 'yes'")

    monkeypatch.setattr(lint_module, "from_module", stricter)
    report = run(folder_of(tmp_path, chain("001")))
    assert found(report) == [("refused", "001_s001.py", None)]
    assert report.problems[0].message == "the loader refuses it: idempotent must be True or False, not 'yes'"
    assert report.order is None


def test_refused_when_the_graph_refuses_what_lints_rules_missed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lint_module, "_graph_problems", lambda files: [])
    report = run(folder_of(tmp_path, {**chain("001", "002"), "003_c.py": script_text("003", "001")}))
    assert found(report) == [("refused", "003_c.py", None)]
    assert "two heads" in report.problems[0].message
    assert report.order is None


# all at once


def test_one_file_with_several_problems_reports_each(tmp_path: Path) -> None:
    report = run(folder_of(tmp_path, {**chain("001"), "002_b.py": "x = 1\nupgrade = 2\n"}))
    assert found(report) == [
        ("no-docstring", "002_b.py", None),
        ("no-down-revision", "002_b.py", None),
        ("no-downgrade", "002_b.py", None),
        ("no-revision", "002_b.py", None),
        ("no-upgrade", "002_b.py", 2),
    ]


def test_a_folder_with_many_problems_reports_all_of_them_in_one_run(tmp_path: Path) -> None:
    folder = folder_of(
        tmp_path,
        {
            **chain("001"),
            "002_b.py": "revision = '002'\ndown_revision = '001'\ndef upgrade(op)\n",  # syntax error
            "003_c.py": script_text("003", "002", doc=None),  # follows the broken one: not dangling
            "004_d.py": script_text("004", "003"),
            "005_e.py": script_text("005", "003"),  # a second head after 003
            "007_g.py": script_text("007", "099"),  # a gap before it, and a parent that is nowhere
            "008_h.py": script_text("009", "007"),  # number and revision disagree
            "010_j.py": "revision = '010'\ndown_revision = '009'\n",  # no functions
            "notes-v2.py": "",
        },
    )
    report = run(folder)
    assert found(report) == [
        ("import-error", "002_b.py", 3),
        ("no-docstring", "003_c.py", None),
        ("two-heads", "005_e.py", None),
        ("dangling", "007_g.py", None),
        ("gap", "007_g.py", None),
        ("revision-mismatch", "008_h.py", 6),
        ("gap", "010_j.py", None),
        ("no-docstring", "010_j.py", None),
        ("no-downgrade", "010_j.py", None),
        ("no-upgrade", "010_j.py", None),
        ("bad-name", "notes-v2.py", None),
    ]
    assert [script.revision for script in report.scripts] == ["001", "003", "004", "005", "007"]
    assert report.order is None
    assert not leftover_modules()


def test_lint_agrees_with_the_loader_on_every_broken_script(tmp_path: Path) -> None:
    """For each case of the loader's own corpus, lint reports a blocking problem exactly when load refuses."""
    cases = [param.values[0] for param in BROKEN] + [script_text()]
    for number, content in enumerate(cases, start=1):
        folder = tmp_path / f"case{number}"
        folder.mkdir()
        path = write(folder, "001_x.py", content)
        try:
            load(path)
            refused = False
        except ScriptError:
            refused = True
        report = run(folder)
        assert any(p.code in BLOCKING for p in report.problems) == refused, content
        assert (report.order is None) == refused, content


def test_lint_raises_only_for_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        lint(tmp_path / "nowhere")
    path = write(tmp_path, "001_a.py", script_text())
    with pytest.raises(UsageError, match="is a file, not a folder"):
        lint(path)


def test_an_empty_folder_is_clean(tmp_path: Path) -> None:
    report = lint(tmp_path)
    assert report.ok and report.order == () and report.scripts == ()


def test_helpers_and_other_files_are_not_linted(tmp_path: Path) -> None:
    folder = folder_of(tmp_path, {**chain("001"), "_helpers.py": "raise RuntimeError('no')\n", "notes.txt": "x"})
    (folder / "__pycache__").mkdir()
    write(folder / "__pycache__", "002_b.py", "not python")
    assert run(folder).ok


# the report: sorted, extensible, one line each, JSON


def test_problems_print_as_one_line_with_the_file_and_line() -> None:
    assert str(Problem("002_b.py", "002", 3, "import-error", "syntax error: x")) == "002_b.py:3: syntax error: x"
    assert str(Problem("002_b.py", None, None, "bad-name", "rename it")) == "002_b.py: rename it"
    assert (
        Problem("a.py", None, None, "x", "loading failed\nwith  two\r\nlines").message
        == "loading failed with two lines"
    )


def test_problems_are_data(tmp_path: Path) -> None:
    problem = Problem("002_b.py", "002", 3, "no-upgrade", "define one")
    assert problem.to_dict() == {
        "file": "002_b.py",
        "revision": "002",
        "line": 3,
        "code": "no-upgrade",
        "message": "define one",
    }
    with pytest.raises(AttributeError):
        problem.line = 4  # type: ignore[misc]
    report = run(folder_of(tmp_path, {**chain("001"), "002_b.py": script_text("002", "009")}))
    data = json.loads(json.dumps(report.to_dict()))
    assert data["ok"] is False and data["order"] is None and data["folder"] == str(tmp_path)
    assert data["problems"] == [report.problems[0].to_dict()]


def test_added_problems_take_their_place_by_file_and_line(tmp_path: Path) -> None:
    """How replay-based checks extend the report: add, and the list stays sorted by file (in number order)."""
    files = {**chain("009"), "010_j.py": script_text("010", "009"), "011_k.py": script_text("011", "099")}
    report = run(folder_of(tmp_path, files))
    assert found(report) == [("dangling", "011_k.py", None)]
    report.add(
        Problem("011_k.py", "011", 12, "invalid-definition", "bad partition key"),
        Problem("009_s009.py", "009", 9, "not-implemented", "template left as is"),
        Problem("010_j.py", "010", 9, "invalid-definition", "x"),
        Problem("010_j.py", "010", 2, "misspelt", "y"),
    )
    assert found(report) == [
        ("not-implemented", "009_s009.py", 9),
        ("misspelt", "010_j.py", 2),
        ("invalid-definition", "010_j.py", 9),
        ("dangling", "011_k.py", None),
        ("invalid-definition", "011_k.py", 12),
    ]
    assert str(report).splitlines()[0] == "009_s009.py:9: template left as is"


def test_the_loaded_scripts_can_be_run(tmp_path: Path) -> None:
    """Callers go on from the report: each loaded script's functions are there to replay."""
    report = run(folder_of(tmp_path, {**chain("001", "002"), "003_c.py": "raise RuntimeError('x')\n"}))
    assert [s.revision for s in report.scripts] == ["001", "002"]
    op: list[str] = []
    for script in report.scripts:
        script.upgrade(op)
    assert op == ["001", "002"]


def test_lint_imports_nothing_of_cosmos_db() -> None:
    """Imported alone in a fresh interpreter, lint and the sum file pull in no Cosmos DB client and no layer that
    talks to it, so CI can run them without azure-cosmos and without paying for its import."""
    code = (
        "import sys, cosmigrate.scripts.lint, cosmigrate.scripts.sumfile; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'azure' or m.startswith(('cosmigrate.store', "
        "'cosmigrate.ops', 'cosmigrate.app', 'cosmigrate.cli'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
