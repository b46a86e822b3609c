"""Bad input, a corpus: every mistake a user can make gives one clear line, the right exit code, no traceback,
and nothing written (no history container) because the run never started."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from azure.cosmos import CosmosClient
from azure.cosmos import exceptions as cosmos_errors

from tests.conftest import MIGRATIONS, CliResult

Setup = Callable[[Path], None]


def copy_migrations(folder: Path) -> None:
    shutil.copytree(MIGRATIONS, folder, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)


def replace_in(name: str, old: str, new: str) -> Setup:
    def setup(folder: Path) -> None:
        copy_migrations(folder)
        path = next(folder.glob(f"{name}_*.py"))
        text = path.read_text()
        assert old in text, (name, old)
        path.write_text(text.replace(old, new, 1))

    return setup


def add_file(file_name: str, content: str) -> Setup:
    return add_files((file_name, content))


def add_files(*files: tuple[str, str]) -> Setup:
    def setup(folder: Path) -> None:
        copy_migrations(folder)
        for file_name, content in files:
            (folder / file_name).write_text(content)

    return setup


def script(revision: str, down: str | None, upgrade: str = "pass", extra: str = "") -> str:
    return (
        f'"""Test script."""\n{extra}revision = "{revision}"\ndown_revision = {down!r}\n\n\n'
        f"def upgrade(op):\n    {upgrade}\n\n\ndef downgrade(op):\n    pass\n"
    )


@dataclass
class Case:
    name: str
    args: list[str]
    code: int
    says: str  # a substring of the one error line, naming the culprit
    setup: Setup = copy_migrations
    env: dict[str, str] = field(default_factory=dict)


CASES = [
    Case("syntax error", ["up"], 2, "002_create_integrations.py:12: syntax error",
         replace_in("002", 'down_revision = "001"\n', 'down_revision = "001"\nif True\n')),
    Case("import error", ["up"], 2, "001_create_integration_providers.py:8: loading failed with ModuleNotFoundError",
         replace_in("001", 'revision = "001"\n', 'import no_such_module\nrevision = "001"\n')),
    Case("exception at import", ["status"], 2, "003_reindex_integration_connections.py:9: loading failed with KeyError",
         replace_in("003", 'revision = "003"\n', 'revision = "003"\n{}["boom"]\n')),
    Case("no revision", ["up"], 2, "004_drop_deprecated_containers.py: no revision",
         replace_in("004", 'revision = "004"\n', "")),
    Case("revision not a string", ["up"], 2, "004_drop_deprecated_containers.py: no revision",
         replace_in("004", 'revision = "004"\n', "revision = 4\n")),
    Case("no down_revision", ["up"], 2, "002_create_integrations.py: no down_revision",
         replace_in("002", 'down_revision = "001"\n', "")),
    Case("no upgrade", ["up"], 2, "001_create_integration_providers.py: no upgrade(op)",
         replace_in("001", "def upgrade(op):", "def upgrade_(op):")),
    Case("no downgrade", ["up"], 2, "001_create_integration_providers.py: no downgrade(op)",
         replace_in("001", "def downgrade(op):", "def downgrade_(op):")),
    Case("dangling down_revision", ["up"], 2, "003_reindex_integration_connections.py: down_revision '0002' names no",
         replace_in("003", 'down_revision = "002"', 'down_revision = "0002"')),
    Case("two heads", ["up"], 2, "two heads", add_file("005_other.py", script("005", "003"))),
    Case("two first revisions", ["up"], 2, "is already the first revision",
         add_file("005_other.py", script("005", None))),
    Case("duplicate revision", ["up"], 2, "revision '004' is also declared by",
         add_file("004_again.py", script("004", "004"))),
    Case("number and revision disagree", ["up"], 2, "005_next.py: the file number 005 and revision = '006'",
         add_file("005_next.py", script("006", "004"))),
    Case("badly named file", ["up"], 2, "helpers.py: migration file names must look like",
         add_file("helpers.py", "X = 1\n")),
    Case("cycle", ["check"], 2, "loops and never reaches a first revision", add_files(
        ("005_a.py", script("005", "006")), ("006_b.py", script("006", "005")))),
    Case("missing folder", ["up", "--migrations", "/nonexistent/migrations"], 2,
         "migrations folder /nonexistent/migrations does not exist"),
    Case("unknown --to", ["up", "--to", "999"], 2, "unknown revision '999'"),
    Case("down --steps 0", ["down", "--steps", "0"], 2, "--steps must be 1 or more"),
    Case("down --to and --steps", ["down", "--to", "base", "--steps", "1"], 2, "either --to or --steps"),
    Case("malformed -x", ["up", "-x", "novalue"], 2, "-x 'novalue' is malformed"),
    Case("unknown flag", ["up", "--frobnicate"], 2, "No such option '--frobnicate'"),
    Case("unknown command", ["upp"], 2, "No such command 'upp'"),
    Case("lock ttl not a number", ["up", "--lock-ttl", "abc"], 2, "--lock-ttl must be a number of seconds"),
    Case("lock ttl zero", ["up", "--lock-ttl", "0"], 2, "--lock-ttl must be a number of seconds greater than 0"),
    Case("lock timeout from env", ["up"], 2, "COSMIGRATE_LOCK_TIMEOUT must be a number",
         env={"COSMIGRATE_LOCK_TIMEOUT": "soon"}),
    Case("endpoint not a URL", ["up", "--endpoint", "notaurl"], 2, "endpoint 'notaurl' (from --endpoint)"),
    Case("remote endpoint without key", ["up", "--endpoint", "https://example.invalid:443/"], 2,
         "no key for https://example.invalid:443/: set COSMOS_KEY"),
    Case("malformed connection string", ["status", "--connection-string", "AccountKey=SUPERSECRETKEY123"], 2,
         "the connection string lacks AccountEndpoint"),
    Case("unreachable endpoint", ["up", "--endpoint", "https://127.0.0.1:9"], 1,
         "cannot connect to https://127.0.0.1:9: the endpoint could not be reached"),
    Case("insecure not a boolean", ["status"], 2, "COSMIGRATE_INSECURE must be true or false",
         env={"COSMIGRATE_INSECURE": "maybe"}),
    Case("invalid partition key in a script", ["up"], 2,
         "005_bad.py: container 'audit': partition key 'tenantId' must be a path",
         add_file("005_bad.py", script("005", "004", 'op.create_container("audit", partition_key="tenantId")'))),
    Case("unknown composite order", ["up"], 2, "composite index order 'asc' for /tenantId",
         add_file("005_bad.py", script("005", "004", "op.create_container('audit', '/tenantId', indexing_policy={"
              "'includedPaths': [{'path': '/*'}], 'compositeIndexes': [[{'path': '/tenantId', 'order': 'asc'}, "
              "{'path': '/at'}]]})"))),
    Case("a script touching the history container", ["up"], 2,
         "005_bad.py: container 'cosmigrate_history' holds cosmigrate's history",
         add_file("005_bad.py", script("005", "004", "op.delete_container('cosmigrate_history')"))),
    Case("no root path in a policy", ["up"], 2, "does not declare the root path '/*'",
         add_file("005_bad.py", script("005", "004", "op.create_container('audit', '/tenantId', indexing_policy={"
              "'includedPaths': [{'path': '/at/*'}]})"))),
]  # fmt: skip


def history_exists(cosmos: CosmosClient, database_name: str) -> bool:
    try:
        cosmos.get_database_client(database_name).get_container_client("cosmigrate_history").read()
        return True
    except cosmos_errors.CosmosResourceNotFoundError:
        return False


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(
    case: Case, tmp_path: Path, run_cli: Callable[..., CliResult], cosmos: CosmosClient, database_name: str
) -> None:
    folder = tmp_path / "migrations"
    case.setup(folder)
    started = time.monotonic()
    result = run_cli(*case.args, env={"COSMIGRATE_MIGRATIONS": str(folder), **case.env})
    assert time.monotonic() - started < 60
    assert result.code == case.code, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("error: "), result.stderr
    assert case.says in lines[-1], lines[-1]
    assert "SUPERSECRETKEY" not in result.stdout + result.stderr
    assert not history_exists(cosmos, database_name)


def test_a_key_never_appears_in_output_even_with_debug(run_cli: Callable[..., CliResult]) -> None:
    for extra in ([], ["--debug"]):
        result = run_cli("status", "--endpoint", "https://127.0.0.1:9", "--key", "SUPERSECRETKEY456", *extra)
        assert result.code == 1
        assert "SUPERSECRETKEY456" not in result.stdout + result.stderr
    connection = "AccountEndpoint=https://127.0.0.1:9/;AccountKey=SUPERSECRETKEY789;"
    result = run_cli("status", "--debug", env={"COSMOS_CONNECTION_STRING": connection, "COSMOS_ENDPOINT": ""})
    assert result.code == 1 and "127.0.0.1:9" in result.stderr
    assert "SUPERSECRETKEY789" not in result.stdout + result.stderr
    assert "Traceback" in result.stderr  # --debug does show where it failed


def test_repair_without_a_terminal_asks_for_yes(run_cli: Callable[..., CliResult], tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    copy_migrations(folder)
    assert run_cli("up", "--to", "001", "--migrations", str(folder)).code == 0
    first = next(folder.glob("001_*.py"))
    first.write_text(first.read_text() + "\n# edited after it was applied\n")
    result = run_cli("repair", "--migrations", str(folder))
    assert result.code == 2 and "--yes" in result.stderr.splitlines()[-1]
    assert run_cli("status", "--migrations", str(folder)).code == 1  # still changed: nothing was accepted
