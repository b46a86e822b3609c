"""``cosmigrate check`` through the command line: what up would refuse is found offline, each with its file and
line; ``--online`` adds what only the database knows, reading without writing."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from cosmigrate.app import commands as command
from cosmigrate.config import Config
from cosmigrate.model.properties import keyword_list
from cosmigrate.scripts import sumfile
from tests.conftest import CliResult, copy_schema_migrations


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    target = tmp_path / "migrations"
    return copy_schema_migrations(target)


def add(folder: Path, body: str, downgrade: str = "op.delete_container('audit')") -> None:
    (folder / "005_audit.py").write_text(
        f'"""Add audit."""\n\nrevision = "005"\ndown_revision = "004"\n\n\ndef upgrade(op):\n    {body}\n\n\n'
        f"def downgrade(op):\n    {downgrade}\n"
    )
    sumfile.write(folder)


@pytest.mark.parametrize(
    ("body", "code", "says"),
    [
        ("op.create_container('audit', partition_key='tenantId')", "invalid-definition", "partition key 'tenantId'"),
        (
            "op.create_container('audit', '/t', unique_key=[['/t']])",
            "bad-call",
            "unknown keyword 'unique_key'; the container keywords are",
        ),
        ("raise NotImplementedError('write the upgrade of revision 005')", "not-implemented", "write the upgrade"),
    ],
    ids=["partition key without /", "misspelt keyword", "untouched template"],
)
def test_check_finds_what_up_would_refuse_with_file_and_line(
    folder: Path, run_cli: Callable[..., CliResult], body: str, code: str, says: str
) -> None:
    add(folder, body)
    result = run_cli("check", "--migrations", str(folder))
    assert result.code == 1
    assert "005_audit.py:8: " in result.stdout and says in result.stdout
    problems = json.loads(run_cli("check", "--json", "--migrations", str(folder)).stdout)["problems"]
    assert [(p["file"], p["line"], p["code"]) for p in problems] == [("005_audit.py", 8, code)]


def test_check_reports_every_problem_at_once(folder: Path, run_cli: Callable[..., CliResult]) -> None:
    add(folder, "op.create_container('audit', partition_key='tenantId')", downgrade="op.flag('go')")
    (folder / "006_more.py").write_text(
        '"""More."""\n\nrevision = "006"\ndown_revision = "005"\n\n\ndef upgrade(op):\n    op.flag("loud")\n\n\n'
        "def downgrade(op):\n    pass\n"
    )
    result = json.loads(run_cli("check", "--json", "--migrations", str(folder)).stdout)
    assert sorted((p["file"], p["code"]) for p in result["problems"]) == [
        ("005_audit.py", "invalid-definition"),  # its upgrade
        ("005_audit.py", "undeclared-argument"),  # its downgrade
        ("006_more.py", "sum-mismatch"),  # added without cosmigrate hash
        ("006_more.py", "undeclared-argument"),
    ]


def script(revision: str, down_revision: str, upgrade: str, downgrade: str = "pass", head: str = "") -> str:
    """A migration after ``down_revision``: its docstring, ``head`` (at line 3), then the two functions."""
    return (
        f'"""Revision {revision}."""\n\n{head}revision = "{revision}"\ndown_revision = "{down_revision}"\n\n\n'
        f"def upgrade(op):\n    {upgrade}\n\n\ndef downgrade(op):\n    {downgrade}\n"
    )


def check_json(run_cli: Callable[..., CliResult], folder: Path) -> set[tuple[str, int | None, str]]:
    result = run_cli("check", "--json", "--migrations", str(folder))
    assert result.code == 1, result.stdout + result.stderr
    return {(p["file"], p["line"], p["code"]) for p in json.loads(result.stdout)["problems"]}


def test_one_check_reports_load_structure_and_replay_problems_of_a_broken_folder(
    folder: Path, run_cli: Callable[..., CliResult]
) -> None:
    """Five broken scripts, each a different kind: one run lists all five (it used to take three, each kind
    hiding the next), with file and line, then the same in --json."""
    files = {
        "005_imports.py": script(
            "005", "004", "op.create_container('a', '/id')", head="import no_such_module_anywhere\n\n"
        ),
        "006_syntax.py": script("006", "005", "op.create_container('b', '/id')").replace(
            "def upgrade(op):", "def upgrade(op)"
        ),
        "007_no_downgrade.py": script("007", "006", "op.create_container('c', '/id')").split("\n\n\ndef downgrade")[0],
        "008_typo.py": script("008", "007", "op.create_container('d', '/id', unique_key=[['/x']])"),
        "009_history.py": script("009", "008", "op.delete_container('cosmigrate_history')"),
    }
    for name, text in files.items():
        (folder / name).write_text(text + "\n" if not text.endswith("\n") else text)
    sumfile.write(folder)
    result = run_cli("check", "--migrations", str(folder))
    assert result.code == 1
    lines = result.stdout.splitlines()
    assert lines == [
        "005_imports.py:3: loading failed with ModuleNotFoundError: No module named 'no_such_module_anywhere'; "
        "fix the script",
        "006_syntax.py:7: syntax error: expected ':'; fix the script",
        "007_no_downgrade.py: no downgrade(op) function; define one (it may do nothing, with a comment why)",
        "008_typo.py:8: upgrade: container 'd': unknown keyword 'unique_key'; the container keywords are "
        + keyword_list(),
        "009_history.py:8: container 'cosmigrate_history' holds cosmigrate's history: a migration must not "
        "create, change or delete it",
    ]
    assert "5 problems found" in result.stderr
    assert check_json(run_cli, folder) == {
        ("005_imports.py", 3, "import-error"),
        ("006_syntax.py", 7, "import-error"),
        ("007_no_downgrade.py", None, "no-downgrade"),
        ("008_typo.py", 8, "bad-call"),
        ("009_history.py", 8, "invalid-definition"),
    }


def test_check_replays_past_a_broken_script_without_blaming_the_scripts_after_it(
    folder: Path, run_cli: Callable[..., CliResult]
) -> None:
    """006 fails only because 005 (which creates audit) cannot run: not reported. What is wrong in 006 whatever
    came before (its downgrade), in 007 after it, and in 008 after a down_revision that names nothing is."""
    audit = "op.create_container('audit', '/tenantId')"
    (folder / "005_audit.py").write_text(script("005", "004", audit, head="import no_such_module_anywhere\n\n"))
    (folder / "006_seed.py").write_text(
        script(
            "006",
            "005",
            "if not op.exists('audit'):\n        raise RuntimeError('005 creates audit')",
            downgrade="op.flag('loud')",
        )
    )
    (folder / "007_more.py").write_text(script("007", "006", "op.create_container('more', partition_key='id')"))
    (folder / "008_lost.py").write_text(script("008", "077", "op.create_container('lost', '/id', ttl=5)"))
    sumfile.write(folder)
    assert check_json(run_cli, folder) == {
        ("005_audit.py", 3, "import-error"),
        ("006_seed.py", 13, "undeclared-argument"),
        ("007_more.py", 8, "invalid-definition"),
        ("008_lost.py", None, "dangling"),
        ("008_lost.py", 8, "bad-call"),
    }
    # with 005 fixed, 006's upgrade passes: what it raised was only 005's absence
    (folder / "005_audit.py").write_text(script("005", "004", audit))
    sumfile.write(folder)
    assert {(file, code) for file, _, code in check_json(run_cli, folder)} == {
        ("006_seed.py", "undeclared-argument"),
        ("007_more.py", "invalid-definition"),
        ("008_lost.py", "dangling"),
        ("008_lost.py", "bad-call"),
    }


def test_check_online_catches_an_edited_applied_script_and_an_out_of_order_one(
    folder: Path, run_cli: Callable[..., CliResult], make_config: Callable[..., Config]
) -> None:
    config = make_config(migrations=folder)
    command.up(config, target="003")
    offline = run_cli("check", "--migrations", str(folder))
    assert offline.code == 0, offline.stdout
    # an applied script edited, and a pending one chained below the applied head (a branch cut before 002 landed)
    first = folder / "001_create_integration_providers.py"
    first.write_text(first.read_text().replace('"/name/*"', '"/title/*"'))
    (folder / "005_audit.py").write_text(
        '"""Add audit."""\n\nrevision = "005"\ndown_revision = "001"\n\n\ndef upgrade(op):\n    pass\n\n\n'
        "def downgrade(op):\n    pass\n"
    )
    second = folder / "002_create_integrations.py"
    second.write_text(second.read_text().replace('down_revision = "001"', 'down_revision = "005"'))
    sumfile.write(folder)
    assert run_cli("check", "--migrations", str(folder)).code == 0  # offline, the chain is sound
    online = run_cli("check", "--online", "--json", "--migrations", str(folder))
    assert online.code == 1
    found = {(p["file"], p["code"]) for p in json.loads(online.stdout)["problems"]}
    assert found == {
        ("001_create_integration_providers.py", "changed"),
        ("002_create_integrations.py", "changed"),
        ("005_audit.py", "out-of-order"),
    }
    assert [v.revision for v in command.status(config).applied] == ["001", "002", "003"]  # nothing written
