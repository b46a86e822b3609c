"""The sum file cosmigrate.sum: written, verified, and a merge conflict when two branches add migrations."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from cosmigrate.errors import UsageError
from cosmigrate.scripts import sumfile
from cosmigrate.scripts.lint import lint
from cosmigrate.scripts.loader import checksum
from cosmigrate.scripts.problems import Problem
from cosmigrate.scripts.sumfile import SUM_FILE, compute, verify
from tests.test_script import script_text, write

Found = tuple[str, str, int | None]


def found(problems: list[Problem]) -> list[Found]:
    return [(problem.code, problem.file, problem.line) for problem in problems]


def migrations(folder: Path, *revisions: str) -> Path:
    parent = None
    for revision in revisions:
        write(folder, f"{revision}_s{revision}.py", script_text(revision, parent))
        parent = revision
    return folder


def b64sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


# the format


def test_the_sum_lists_each_file_in_number_order_under_the_hash_of_the_lines_below(tmp_path: Path) -> None:
    write(tmp_path, "9_a.py", script_text("9"))
    write(tmp_path, "10_b.py", script_text("10", "9"))  # by number, not as text ("10_" sorts before "9_")
    lines = compute(tmp_path).split("\n")
    assert lines[-1] == ""  # every line ends in \n
    assert [line.split(" ")[0] for line in lines[1:-1]] == ["9_a.py", "10_b.py"]
    for line, name in zip(lines[1:-1], ["9_a.py", "10_b.py"], strict=True):
        assert line == f"{name} h1:{b64sha256((tmp_path / name).read_bytes())}"
    assert lines[0] == "h1:" + b64sha256("".join(line + "\n" for line in lines[1:-1]).encode())


def test_a_files_hash_is_the_checksum_history_records(tmp_path: Path) -> None:
    path = write(tmp_path, "001_a.py", script_text())
    recorded = checksum(path.read_bytes()).removeprefix("sha256:")
    entry = compute(tmp_path).splitlines()[1]
    assert base64.b64decode(entry.split(" h1:")[1]).hex() == recorded


def test_helpers_pycache_and_other_files_are_not_part_of_it(tmp_path: Path) -> None:
    migrations(tmp_path, "001")
    before = compute(tmp_path)
    write(tmp_path, "_helpers.py", "X = 1\n")
    write(tmp_path, "__init__.py", "")
    write(tmp_path, "notes.txt", "x")
    (tmp_path / "__pycache__").mkdir()
    write(tmp_path / "__pycache__", "002_b.py", "x")
    assert compute(tmp_path) == before
    sumfile.write(tmp_path)
    write(tmp_path, "_helpers.py", "X = 2\n")
    assert verify(tmp_path) == []


def test_write_puts_compute_in_the_folder_with_lf_endings(tmp_path: Path) -> None:
    migrations(tmp_path, "001", "002")
    path = sumfile.write(tmp_path)
    assert path == tmp_path / SUM_FILE
    assert path.read_bytes() == compute(tmp_path).encode()
    assert b"\r" not in path.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["001_s001.py", "002_s002.py", SUM_FILE]  # no leftovers
    assert verify(tmp_path) == []


def test_a_missing_folder_is_a_usage_error(tmp_path: Path) -> None:
    for call in (compute, sumfile.write, verify):
        with pytest.raises(UsageError, match="does not exist"):
            call(tmp_path / "nowhere")


# what verify catches


def test_a_file_edited_after_write_is_caught(tmp_path: Path) -> None:
    migrations(tmp_path, "001", "002", "003")
    sumfile.write(tmp_path)
    path = tmp_path / "002_s002.py"
    path.write_text(path.read_text().replace("op.append", "op.extend"))
    problems = verify(tmp_path)
    assert found(problems) == [("sum-mismatch", "002_s002.py", None)]
    assert problems[0].message.startswith(f"changed since {SUM_FILE} was written")
    # the tool's own advice for a failed revision (fix its script, repair, up) changes an applied file: covered
    assert "or a failed one you fixed and repaired — rewrite the sum (cosmigrate hash)" in problems[0].message


def test_a_file_added_after_write_is_caught(tmp_path: Path) -> None:
    migrations(tmp_path, "001", "002")
    sumfile.write(tmp_path)
    write(tmp_path, "003_c.py", script_text("003", "002"))
    problems = verify(tmp_path)
    assert found(problems) == [("sum-mismatch", "003_c.py", None)]
    assert problems[0].message.startswith(f"not in {SUM_FILE}: added since the sum was written")


def test_a_file_removed_after_write_is_caught(tmp_path: Path) -> None:
    migrations(tmp_path, "001", "002", "003")
    sumfile.write(tmp_path)
    (tmp_path / "002_s002.py").unlink()
    problems = verify(tmp_path)
    assert found(problems) == [("sum-mismatch", "002_s002.py", None)]
    assert problems[0].message.startswith(f"listed in {SUM_FILE} (line 3) but not in the folder")


def test_several_changes_are_each_named(tmp_path: Path) -> None:
    migrations(tmp_path, "001", "002", "003")
    sumfile.write(tmp_path)
    (tmp_path / "001_s001.py").write_text(script_text("001", marker="other"))
    (tmp_path / "003_s003.py").unlink()
    write(tmp_path, "004_d.py", script_text("004", "002"))
    assert found(verify(tmp_path)) == [
        ("sum-mismatch", "001_s001.py", None),
        ("sum-mismatch", "004_d.py", None),
        ("sum-mismatch", "003_s003.py", None),
    ]


@pytest.mark.parametrize(
    "convert",
    [
        lambda b: b.replace(b"\n", b"\r\n"),
        lambda b: b.replace(b"\n", b"\r"),
        lambda b: b"\xef\xbb\xbf" + b.replace(b"\n", b"\r\n"),
    ],
    ids=["CRLF", "CR", "BOM and CRLF"],
)
def test_a_crlf_checkout_is_not_a_change(tmp_path: Path, convert: Callable[[bytes], bytes]) -> None:
    """git autocrlf on Windows rewrites every file, the sum file too: none of it is a change."""
    migrations(tmp_path, "001", "002")
    written = compute(tmp_path)
    sumfile.write(tmp_path)
    for path in tmp_path.iterdir():
        path.write_bytes(convert(path.read_bytes()))
    assert (tmp_path / "001_s001.py").read_bytes() != script_text().encode()  # converted indeed
    assert verify(tmp_path) == []
    assert compute(tmp_path) == written


def test_no_sum_file_beside_migrations_is_reported(tmp_path: Path) -> None:
    migrations(tmp_path, "001", "002")
    problems = verify(tmp_path)
    assert found(problems) == [("sum-missing", SUM_FILE, None)]
    assert problems[0].message.startswith(f"no {SUM_FILE} beside 2 migration files: write it (cosmigrate hash)")


def test_no_sum_file_and_no_migrations_is_fine(tmp_path: Path) -> None:
    write(tmp_path, "_helpers.py", "")
    assert verify(tmp_path) == []


HASH = "h1:" + "A" * 43 + "="
ENTRY = f"001_s001.py {HASH}\n"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("", None, "is empty"),
        ("sha256:abc\n" + ENTRY, 1, "line 1 must be h1:<hash of the lines below>, not 'sha256:abc'"),
        (HASH + "\n001_s001.py\n", 2, "line 2 must be '<migration file> h1:<hash>', not '001_s001.py'"),
        (HASH + "\n" + ENTRY + "\n", 3, "line 3 must be '<migration file> h1:<hash>', not ''"),
        (HASH + "\n" + ENTRY + ENTRY, 3, "lists 001_s001.py again (first on line 2)"),
    ],
    ids=["empty", "bad first line", "no hash", "blank line", "listed twice"],
)  # fmt: skip
def test_sum_malformed(tmp_path: Path, text: str, line: int | None, message: str) -> None:
    migrations(tmp_path, "001")
    (tmp_path / SUM_FILE).write_text(text)
    problems = [problem for problem in verify(tmp_path) if problem.code == "sum-malformed"]
    assert found(problems) == [("sum-malformed", SUM_FILE, line)]
    assert problems[0].message.startswith(message)
    assert problems[0].message.endswith("; rewrite the sum (cosmigrate hash)")


def test_a_sum_file_that_is_not_text_is_malformed(tmp_path: Path) -> None:
    migrations(tmp_path, "001")
    (tmp_path / SUM_FILE).write_bytes(b"\xff\xfe\x00h1")
    assert found(verify(tmp_path)) == [("sum-malformed", SUM_FILE, None)]


def test_a_hand_edited_first_line_is_a_mismatch(tmp_path: Path) -> None:
    """A merge resolved by keeping both sides' lines and either first line: the lines no longer add up."""
    migrations(tmp_path, "001", "002")
    sumfile.write(tmp_path)
    first = compute(tmp_path).splitlines()[0]
    write(tmp_path, "003_c.py", script_text("003", "002"))
    entry = compute(tmp_path).splitlines()[-1]
    (tmp_path / SUM_FILE).write_text((tmp_path / SUM_FILE).read_text() + entry + "\n")  # first line kept
    assert (tmp_path / SUM_FILE).read_text().splitlines()[0] == first
    problems = verify(tmp_path)
    assert found(problems) == [("sum-mismatch", SUM_FILE, 1)]
    assert problems[0].message.startswith("line 1 does not match the lines below")


# in lint


def test_lint_reports_the_sum_file_unless_told_not_to(tmp_path: Path) -> None:
    migrations(tmp_path, "001", "002")
    assert found(list(lint(tmp_path).problems)) == [("sum-missing", SUM_FILE, None)]
    assert lint(tmp_path, sum_file=False).ok
    sumfile.write(tmp_path)
    assert lint(tmp_path).ok
    (tmp_path / "002_s002.py").write_text(script_text("002", "001", marker="edited"))
    report = lint(tmp_path)
    assert found(list(report.problems)) == [("sum-mismatch", "002_s002.py", None)]
    assert report.order is not None  # a sum mismatch does not stop callers from going on


# the point: two branches that both add a migration conflict in git


def git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "GIT_CONFIG_GLOBAL": os.devnull,  # nobody's merge.conflictStyle or hooks
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    return subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=check)


def two_branches(repo: Path, with_sum: bool) -> subprocess.CompletedProcess[str]:
    """main has 001-004; branch a adds 005_a, branch b adds 005_b, each rewriting the sum; then b merges a."""
    folder = repo / "migrations"
    folder.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    migrations(folder, "001", "002", "003", "004")
    if with_sum:
        sumfile.write(folder)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "001-004")
    for branch in ("a", "b"):
        git(repo, "checkout", "-q", "-b", branch, "main")
        write(folder, f"005_{branch}.py", script_text("005", "004", marker=branch))
        if with_sum:
            sumfile.write(folder)
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", f"005 on {branch}")
    return git(repo, "merge", "--no-edit", "a", check=False)


def test_two_branches_adding_a_migration_conflict_in_the_sum_file(tmp_path: Path) -> None:
    merged = two_branches(tmp_path, with_sum=True)
    assert merged.returncode != 0
    assert f"CONFLICT (content): Merge conflict in migrations/{SUM_FILE}" in merged.stdout
    unmerged = git(tmp_path, "diff", "--name-only", "--diff-filter=U").stdout.split()
    assert unmerged == [f"migrations/{SUM_FILE}"]  # the scripts themselves merged cleanly: only the sum stops it
    folder = tmp_path / "migrations"
    assert sorted(path.name for path in folder.glob("005_*.py")) == ["005_a.py", "005_b.py"]
    problems = verify(folder)
    assert found(problems) == [("sum-malformed", SUM_FILE, 1)]
    assert re.match(r"merge conflict markers at line 1: another branch added migrations too", problems[0].message)
    report = lint(folder)
    assert {(p.code, p.file) for p in report.problems} == {
        ("sum-malformed", SUM_FILE),
        ("duplicate", "005_b.py"),
        ("two-heads", "005_b.py"),
    }


def test_without_a_sum_file_the_same_merge_goes_through_silently(tmp_path: Path) -> None:
    """Why the sum file exists: the scripts alone merge into two heads with no word from git."""
    merged = two_branches(tmp_path, with_sum=False)
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert sorted(path.name for path in (tmp_path / "migrations").glob("005_*.py")) == ["005_a.py", "005_b.py"]
