"""``cosmigrate check`` through the command line: what up would refuse is found offline, each with its file and
line; ``--online`` adds what only the database knows, reading without writing."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from cosmigrate.app import commands as command
from cosmigrate.config import Config
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
            "unexpected keyword argument 'unique_key'",
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
