"""Bad input for the CLI, as a table: every mistake ends in one ``error: …`` line naming the culprit, the right exit
code (2 usage/configuration/script, 1 database or migration), no traceback, and nothing written to the database.

Each case gets a project folder (``tmp_path``) holding a copy of ``migrations/``, broken by the case's setup, and
runs from there with ``COSMIGRATE_MIGRATIONS`` pointing at it (a case may override it with ``--migrations``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from azure.cosmos import CosmosClient
from azure.cosmos import exceptions as cosmos_errors

from cosmigrate.store.history import HistoryStore as SchemaHistory
from tests.conftest import CliResult, copy_schema_migrations

Setup = Callable[[Path], None]  # receives the project folder; the migrations live in <project>/migrations
HISTORY = "cosmigrate_history"
SECRET = "SUPERSECRETKEY"
HANG = 90.0  # seconds after which a command counts as hung (far beyond a busy machine's few seconds)


# -- building broken migration folders ----------------------------------------------------------------------


def copy_migrations(project: Path) -> None:
    copy_schema_migrations(project / "migrations")


def edit(number: str, old: str, new: str) -> Setup:
    """Copy the migrations, then replace ``old`` by ``new`` (once) in the script numbered ``number``."""

    def setup(project: Path) -> None:
        copy_migrations(project)
        path = next((project / "migrations").glob(f"{number}_*.py"))
        text = path.read_text()
        assert old in text, f"{path.name} no longer contains {old!r}: update the case"
        path.write_text(text.replace(old, new, 1))

    return setup


def add(*files: tuple[str, str]) -> Setup:
    """Copy the migrations, then add files (name, content) to the folder."""

    def setup(project: Path) -> None:
        copy_migrations(project)
        for name, content in files:
            (project / "migrations" / name).write_text(content)

    return setup


def write(name: str, content: str) -> Setup:
    """Copy the migrations, then write a file in the project folder itself (e.g. pyproject.toml)."""

    def setup(project: Path) -> None:
        copy_migrations(project)
        (project / name).write_text(content)

    return setup


def script(revision: str, down: str | None, upgrade: str = "pass", downgrade: str = "pass", top: str = "") -> str:
    """A small migration script; ``top`` goes right after the docstring (line 2)."""
    return (
        f'"""Test script {revision}."""\n{top}revision = "{revision}"\ndown_revision = {down!r}\n\n\n'
        f"def upgrade(op):\n    {upgrade}\n\n\ndef downgrade(op):\n    {downgrade}\n"
    )


BAD_PARTITION_KEY = 'op.create_container("things", partition_key="tenantId")'
BAD_COMPOSITE_ORDER = (
    'op.create_container("things", partition_key="/tenantId", indexing_policy={'
    '"includedPaths": [{"path": "/*"}], '
    '"compositeIndexes": [[{"path": "/tenantId", "order": "asc"}, {"path": "/createdAt", "order": "descending"}]]})'
)
NO_ROOT_PATH = 'op.create_container("things", "/tenantId", indexing_policy={"includedPaths": [{"path": "/a/*"}]})'


# -- the corpus ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    args: tuple[str, ...]
    code: int
    says: str  # a substring of the last stderr line (after "error: "), naming the culprit
    setup: Setup = copy_migrations
    env: dict[str, str] = field(default_factory=dict)
    no_history: bool = True  # the run never starts: the database has no history container afterwards
    pending_after: str | None = None  # a revision that `status --json` must still show as pending afterwards


CASES = [
    # -- migration scripts that cannot be loaded ------------------------------------------------------------
    Case("syntax error", ("up",), 2, "005_broken.py:6: syntax error",
         add(("005_broken.py", script("005", "004").replace("def upgrade(op):", "def upgrade(op)")))),
    Case("syntax error in a shipped script", ("status",), 2, "002_create_integrations.py:12: syntax error",
         edit("002", 'down_revision = "001"\n', 'down_revision = "001"\nif True\n')),
    Case("import error at module level", ("up",), 2,
         "005_imports.py:2: loading failed with ModuleNotFoundError",
         add(("005_imports.py", script("005", "004", top="import no_such_module_cosmigrate\n")))),
    Case("exception at module level", ("up",), 2, "005_raises.py:2: loading failed with RuntimeError: boom",
         add(("005_raises.py", script("005", "004", top='raise RuntimeError("boom at import")\n')))),
    Case("no revision", ("up",), 2, "004_drop_deprecated_containers.py: no revision",
         edit("004", 'revision = "004"\n', "")),
    Case("revision not a string", ("up", "--dry-run"), 2, "004_drop_deprecated_containers.py: no revision",
         edit("004", 'revision = "004"\n', "revision = 4\n")),
    Case("no down_revision", ("up",), 2, "002_create_integrations.py: no down_revision",
         edit("002", 'down_revision = "001"\n', "")),
    Case("down_revision not a string", ("up",), 2, "002_create_integrations.py: down_revision must be",
         edit("002", 'down_revision = "001"\n', "down_revision = 1\n")),
    Case("no upgrade", ("up",), 2, "001_create_integration_providers.py: no upgrade(op)",
         edit("001", "def upgrade(op):", "def upgrade_(op):")),
    Case("upgrade not callable", ("up",), 2, "005_value.py: no upgrade(op)",
         add(("005_value.py", script("005", "004") + "\n\nupgrade = None\n"))),
    Case("no downgrade", ("up",), 2, "001_create_integration_providers.py: no downgrade(op)",
         edit("001", "def downgrade(op):", "def downgrade_(op):")),
    # -- the revisions do not form one chain ---------------------------------------------------------------
    Case("down_revision naming nothing", ("up",), 2, "005_dangling.py: down_revision '0042' names no script",
         add(("005_dangling.py", script("005", "0042")))),
    Case("two heads", ("up",), 2, "005_branch.py: down_revision '003' is also the parent of",
         add(("005_branch.py", script("005", "003")))),
    Case("two first revisions", ("up",), 2, "005_root.py: down_revision None, but",
         add(("005_root.py", script("005", None)))),
    Case("duplicate revision", ("up",), 2, "revision '004' is also declared by",
         add(("004_again.py", script("004", "004")))),
    Case("file number disagrees with revision", ("up",), 2, "005_next.py: the file number 005 and revision = '006'",
         add(("005_next.py", script("006", "004")))),
    Case("cycle", ("up",), 2, "loops and never reaches a first revision",
         add(("005_a.py", script("005", "006")), ("006_b.py", script("006", "005")))),
    Case("badly named .py file", ("up",), 2, "helpers.py: migration file names must look like",
         add(("helpers.py", "HELPER = 1\n"))),
    Case("migrations folder does not exist", ("up", "--migrations", "/nonexistent/cosmigrate-migrations"), 2,
         "migrations folder /nonexistent/cosmigrate-migrations does not exist"),
    Case("migrations folder from the environment does not exist", ("status",), 2,
         "migrations folder /nonexistent/from-env does not exist",
         env={"COSMIGRATE_MIGRATIONS": "/nonexistent/from-env"}),
    Case("migrations is a file", ("up", "--migrations", "pyproject.toml"), 2, "pyproject.toml is a file, not a folder",
         write("pyproject.toml", "[project]\nname = 'x'\n")),
    # -- targets and command arguments ---------------------------------------------------------------------
    Case("up --to an unknown revision", ("up", "--to", "999"), 2, "unknown revision '999'"),
    Case("down --to an unknown revision", ("down", "--to", "999"), 2, "unknown revision '999'"),
    Case("down --steps 0", ("down", "--steps", "0"), 2, "--steps must be 1 or more, not 0"),
    Case("down --steps -1", ("down", "--steps", "-1"), 2, "--steps must be 1 or more, not -1"),
    Case("down --steps not a number", ("down", "--steps", "two"), 2, "'--steps'"),
    Case("down --to and --steps", ("down", "--to", "2", "--steps", "1"), 2, "either --to or --steps, not both"),
    Case("stamp an unknown revision", ("stamp", "999"), 2, "unknown revision '999'"),
    Case("stamp without a target", ("stamp",), 2, "TARGET"),
    Case("new without letters", ("new", "!!!"), 2, "message '!!!' has no letters or digits"),
    Case("malformed -x", ("up", "-x", "novalue"), 2, "-x 'novalue' is malformed"),
    Case("-x without a name", ("up", "-x", "=1"), 2, "-x '=1' is malformed"),
    Case("unknown flag", ("up", "--frobnicate"), 2, "--frobnicate"),
    Case("unknown command", ("upgrad",), 2, "'upgrad'"),
    Case("unknown log format", ("status", "--log-format", "xml"), 2, "'--log-format'"),
    # -- configuration -------------------------------------------------------------------------------------
    Case("--lock-ttl abc", ("up", "--lock-ttl", "abc"), 2, "--lock-ttl must be a number of seconds, not 'abc'"),
    Case("--lock-ttl 0", ("up", "--lock-ttl", "0"), 2, "--lock-ttl must be a number of seconds greater than 0"),
    Case("--lock-timeout negative", ("up", "--lock-timeout", "-5"), 2, "--lock-timeout must be a number of seconds"),
    Case("COSMIGRATE_INDEX_TIMEOUT abc", ("up",), 2, "COSMIGRATE_INDEX_TIMEOUT must be a number of seconds",
         env={"COSMIGRATE_INDEX_TIMEOUT": "abc"}),
    Case("COSMIGRATE_INSECURE not a boolean", ("status",), 2, "COSMIGRATE_INSECURE must be true or false",
         env={"COSMIGRATE_INSECURE": "maybe"}),
    Case("database name with a slash", ("up", "--database", "a/b"), 2, "database name 'a/b' is not a valid"),
    Case("history container name with a slash", ("up", "--history-container", "x/y"), 2,
         "history container name 'x/y' is not a valid"),
    Case("invalid pyproject.toml", ("status",), 2, "pyproject.toml is not valid TOML",
         write("pyproject.toml", "[tool.cosmigrate\nmigrations = 'migrations'\n")),
    Case("key stored in pyproject.toml", ("status",), 2, "do not store 'key' in pyproject.toml",
         write("pyproject.toml", f"[tool.cosmigrate]\nkey = '{SECRET}000'\n")),
    # -- endpoints and credentials -------------------------------------------------------------------------
    Case("endpoint not a URL", ("up", "--endpoint", "notaurl"), 2, "endpoint 'notaurl' (from --endpoint)"),
    Case("endpoint without a scheme", ("status",), 2, "(from COSMOS_ENDPOINT) is not a URL",
         env={"COSMOS_ENDPOINT": "localhost:8081"}),
    Case("remote endpoint without a key", ("up", "--endpoint", "https://example.invalid:443/"), 2,
         "no key for https://example.invalid:443/: set COSMOS_KEY"),
    Case("connection string without an endpoint", ("status", "--connection-string", f"AccountKey={SECRET}123"), 2,
         "the connection string lacks AccountEndpoint"),
    Case("connection string without '='", ("status", "--connection-string", f"garbage;AccountKey={SECRET}123;"), 2,
         "the connection string is malformed (it needs AccountEndpoint and AccountKey"),
    Case("connection string with a bad endpoint", ("status",), 2, "endpoint 'notaurl' (from the connection string)",
         env={"COSMOS_ENDPOINT": "", "COSMOS_CONNECTION_STRING": f"AccountEndpoint=notaurl;AccountKey={SECRET}123;"}),
    Case("unreachable endpoint", ("up", "--endpoint", "https://127.0.0.1:9"), 1, "https://127.0.0.1:9"),
    Case("a key the account refuses", ("status", "--key", "U1VQRVJTRUNSRVRLRVkwMDA="), 2,
         "Cosmos DB refused the key (401): check COSMOS_KEY"),
    Case("unreachable endpoint, status", ("status", "--endpoint", "https://127.0.0.1:9"), 1, "https://127.0.0.1:9"),
    # -- invalid container definitions inside a migration (found when the script runs) --------------------
    Case("partition key without a leading slash", ("up",), 2, "container 'things': partition key 'tenantId'",
         add(("005_things.py", script("005", "004", BAD_PARTITION_KEY))), pending_after="005"),
    Case("composite index order 'asc'", ("up",), 2, "container 'things': indexing policy: composite index order 'asc'",
         add(("005_things.py", script("005", "004", BAD_COMPOSITE_ORDER))), pending_after="005"),
    Case("no root path in a policy", ("up",), 2, "container 'things': indexing policy does not declare the root",
         add(("005_things.py", script("005", "004", NO_ROOT_PATH))), pending_after="005"),
    Case("a script touching the history container", ("up",), 2,
         "005_things.py:7: container 'cosmigrate_history' holds cosmigrate's history",
         add(("005_things.py", script("005", "004", "op.delete_container('cosmigrate_history')"))),
         pending_after="005"),
]  # fmt: skip


def snapshot(project: Path) -> dict[str, bytes]:
    """Every file under the project folder (caches aside) and its content."""
    return {
        str(path.relative_to(project)): path.read_bytes()
        for path in sorted(project.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


def history_exists(cosmos: CosmosClient, database_name: str) -> bool:
    try:
        cosmos.get_database_client(database_name).get_container_client(HISTORY).read()
        return True
    except cosmos_errors.CosmosResourceNotFoundError:
        return False


def assert_one_error_line(result: CliResult, code: int, says: str) -> str:
    """Exit ``code``; stderr ends with one ``error: …`` line containing ``says``; no traceback; no secret."""
    output = result.stdout + result.stderr
    assert result.code == code, f"exit {result.code}, expected {code}; stderr:\n{result.stderr}"
    assert "Traceback" not in output, output
    assert SECRET not in output, output
    lines = result.stderr.rstrip("\n").splitlines()
    assert lines, "nothing on stderr"
    last = lines[-1]
    assert last.startswith("error: "), f"last stderr line is not an error line: {last!r}"
    assert says in last, f"{says!r} not in {last!r}"
    return last


def status_json(run_cli: Callable[..., CliResult], project: Path) -> dict[str, object]:
    """``status --json`` whatever its exit code (1 when the history blocks ``up``)."""
    result = run_cli("status", "--json", env={"COSMIGRATE_MIGRATIONS": str(project / "migrations")}, cwd=project)
    assert result.code in (0, 1), result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def revisions(status: dict[str, object], state: str) -> list[str]:
    return [view["revision"] for view in status[state]]  # type: ignore[attr-defined, index]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input(
    case: Case, tmp_path: Path, run_cli: Callable[..., CliResult], cosmos: CosmosClient, database_name: str
) -> None:
    case.setup(tmp_path)
    files_before = snapshot(tmp_path)
    env = {"COSMIGRATE_MIGRATIONS": str(tmp_path / "migrations"), **case.env}
    # a command that hangs or waits out retries fails here (the run's timeout); how fast it is belongs in bench/
    result = run_cli(*case.args, env=env, cwd=tmp_path, timeout=HANG)
    assert_one_error_line(result, case.code, case.says)
    assert snapshot(tmp_path) == files_before, "files were written or changed"
    if case.no_history:
        assert not history_exists(cosmos, database_name), "a history container was created"
    if case.pending_after:  # found before anything was written: not even the database exists
        assert database_name not in {d["id"] for d in cosmos.list_databases()}


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 24
    assert len({case.name for case in CASES}) == len(CASES)


# -- cases that need more than one command ------------------------------------------------------------------


@pytest.mark.parametrize("body", [BAD_PARTITION_KEY, BAD_COMPOSITE_ORDER], ids=["partition key", "composite order"])
def test_invalid_definition_after_applied_revisions_is_not_recorded(
    body: str, tmp_path: Path, run_cli: Callable[..., CliResult]
) -> None:
    """With 001-004 applied, a 005 declaring an invalid container stops with exit 2 and stays pending: it is
    neither applied nor failed, so fixing the file is enough (no repair)."""
    copy_migrations(tmp_path)
    env = {"COSMIGRATE_MIGRATIONS": str(tmp_path / "migrations")}
    applied = run_cli("up", env=env, cwd=tmp_path)
    assert applied.code == 0, applied.stderr
    (tmp_path / "migrations" / "005_things.py").write_text(script("005", "004", body))
    assert_one_error_line(run_cli("up", env=env, cwd=tmp_path), 2, "container 'things'")
    status = status_json(run_cli, tmp_path)
    assert revisions(status, "applied") == ["001", "002", "003", "004"]
    assert revisions(status, "pending") == ["005"]
    assert revisions(status, "failed") == []
    assert status["lock"] is None


def test_invalid_definition_in_a_downgrade_keeps_the_revision_applied(
    tmp_path: Path, run_cli: Callable[..., CliResult]
) -> None:
    copy_migrations(tmp_path)
    (tmp_path / "migrations" / "005_things.py").write_text(script("005", "004", downgrade=BAD_PARTITION_KEY))
    env = {"COSMIGRATE_MIGRATIONS": str(tmp_path / "migrations")}
    applied = run_cli("up", env=env, cwd=tmp_path)
    assert applied.code == 0, applied.stderr
    assert_one_error_line(run_cli("down", env=env, cwd=tmp_path), 2, "container 'things': partition key 'tenantId'")
    status = status_json(run_cli, tmp_path)
    assert revisions(status, "applied") == ["001", "002", "003", "004", "005"]
    assert revisions(status, "failed") == []


def test_remote_endpoint_without_key_does_not_hang(run_cli: Callable[..., CliResult]) -> None:
    result = run_cli("status", "--endpoint", "https://example.invalid:443/", timeout=HANG)  # no network wait
    last = assert_one_error_line(result, 2, "COSMOS_KEY")
    assert "example.invalid" in last


def test_a_key_never_appears_in_output_even_with_debug(run_cli: Callable[..., CliResult]) -> None:
    key = "U1VQRVJTRUNSRVRLRVk0NTY="  # valid base64, as account keys are
    for extra in ((), ("--debug",)):
        result = run_cli("status", "--endpoint", "https://127.0.0.1:9", "--key", key, *extra, timeout=HANG)
        output = result.stdout + result.stderr
        assert result.code == 1, result.stderr
        assert key not in output, output
        last = result.stderr.rstrip("\n").splitlines()[-1]
        assert last.startswith("error: ") and "https://127.0.0.1:9" in last, last
        assert ("Traceback" in output) == bool(extra)  # a traceback with --debug only


def test_a_connection_string_key_never_appears_even_with_debug(run_cli: Callable[..., CliResult]) -> None:
    key = "U1VQRVJTRUNSRVRLRVk3ODk="
    env = {"COSMOS_ENDPOINT": "", "COSMOS_CONNECTION_STRING": f"AccountEndpoint=https://127.0.0.1:9/;AccountKey={key};"}
    result = run_cli("up", "--debug", env=env, timeout=HANG)
    assert result.code == 1, result.stderr
    assert key not in result.stdout + result.stderr
    assert "127.0.0.1:9" in result.stderr.rstrip("\n").splitlines()[-1]


def test_repair_without_yes_and_without_a_terminal(tmp_path: Path, run_cli: Callable[..., CliResult]) -> None:
    """A changed script needs confirmation to be accepted: with no terminal and no --yes, exit 2, nothing done."""
    copy_migrations(tmp_path)
    env = {"COSMIGRATE_MIGRATIONS": str(tmp_path / "migrations")}
    assert run_cli("up", "--to", "001", env=env, cwd=tmp_path).code == 0
    first = next((tmp_path / "migrations").glob("001_*.py"))
    first.write_text(first.read_text() + "\n# edited after it was applied\n")
    before = status_json(run_cli, tmp_path)
    assert revisions(before, "changed") == ["001"]

    refused = run_cli("repair", env=env, cwd=tmp_path)
    last = assert_one_error_line(refused, 2, "--yes")
    assert "Repair 001?" in last
    assert "+# edited after it was applied" in refused.stderr  # what it would accept is shown, for a CI log

    after = status_json(run_cli, tmp_path)
    assert revisions(after, "changed") == ["001"], "repair accepted the change without --yes"
    assert after["applied"] == before["applied"]
    assert after["lock"] is None, "repair left its lock behind"


def test_repair_of_a_missing_script_without_yes(tmp_path: Path, run_cli: Callable[..., CliResult]) -> None:
    copy_migrations(tmp_path)
    env = {"COSMIGRATE_MIGRATIONS": str(tmp_path / "migrations")}
    assert run_cli("up", env=env, cwd=tmp_path).code == 0
    next((tmp_path / "migrations").glob("004_*.py")).unlink()
    last = assert_one_error_line(run_cli("repair", env=env, cwd=tmp_path), 2, "--yes")
    assert "004" in last
    assert revisions(status_json(run_cli, tmp_path), "missing") == ["004"]


def test_unlock_without_yes_and_without_a_terminal(
    tmp_path: Path, run_cli: Callable[..., CliResult], cosmos: CosmosClient, database_name: str
) -> None:
    """A lock left by a (pretend) dead run: unlock must ask, and without a terminal refuse and keep it."""
    history = SchemaHistory(cosmos.create_database(database_name), HISTORY)
    history.ensure()
    now = time.time()
    history.container.upsert_item(
        {
            "id": "lock",
            "scope": "history",
            "kind": "lock",
            "owner": "deployer@build-42",
            "pid": 4242,
            "lease_id": "0" * 32,
            "command": "up",
            "acquired_at": "2024-01-01T00:00:00.000Z",
            "expires_at": now + 3600,
            "expires_at_iso": "2099-01-01T00:00:00.000Z",
        }
    )
    result = run_cli("unlock", cwd=tmp_path)
    last = assert_one_error_line(result, 2, "--yes")
    assert "deployer@build-42" in last
    assert history.container.read_item("lock", partition_key="history")["lease_id"] == "0" * 32, "lock released"
