"""Fixtures: one real local Cosmos DB endpoint per test session, and a database of its own for each test.

The endpoint is cosmigrate's own launcher (``cosmigrate.testing.endpoint``), always local here (a developer's
``COSMOS_ENDPOINT`` is never used by this suite), and it is also what cosmigrate's pytest plugin fixtures run
on (``cosmigrate_endpoint`` is overridden below), so the built-in tests in ``test_builtin.py`` share it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import urllib3
from azure.cosmos import CosmosClient, DatabaseProxy, PartitionKey
from azure.cosmos import exceptions as cosmos_errors

from cosmigrate.config import EMULATOR_KEY, Config, load_config
from cosmigrate.scripts import sumfile
from cosmigrate.store.client import close
from cosmigrate.store.history import HistoryStore
from cosmigrate.testing.endpoint import NodeServer
from tests.harness.local_endpoint import start_endpoint

ROOT = Path(__file__).resolve().parents[1]
MIGRATIONS = ROOT / "migrations"
urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)


# COSMIGRATE_TEST_AUTH=entra runs the tests against the local endpoint in Entra ID mode (no key accepted, metadata
# writes refused on the data plane, ARM routes served): cosmigrate signs in with DefaultAzureCredential through the
# test token provider, and the tests' own plain client prepares and reads state with the harness's setup header.
ENTRA = os.environ.get("COSMIGRATE_TEST_AUTH", "key") == "entra"
DEPLOYER = "cosmigrate-tests"
SETUP_HEADERS = {"x-cosmigrate-local-setup": "true"} if ENTRA else {}


def entra_settings(endpoint: str) -> dict[str, str]:
    """The environment cosmigrate runs with in Entra mode (no key), for the CLI and in-process configs."""
    return {
        "COSMIGRATE_AUTH": "entra",
        "AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000000",
        "AZURE_RESOURCE_GROUP": "migrations",
        "COSMIGRATE_ACCOUNT": "local",
        "COSMIGRATE_ARM_ENDPOINT": endpoint,
        "COSMIGRATE_ARM_POLL_INTERVAL": "0.05",
    }


@pytest.fixture(scope="session")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if ENTRA:
        from cosmigrate.testing import entra

        server = start_endpoint(index_seconds=1.0, entra={DEPLOYER: ["data", "arm"]})
        os.environ.update(entra.environment(entra.install_az(tmp_path_factory.mktemp("az"), DEPLOYER)))
        os.environ["COSMIGRATE_ARM_POLL_INTERVAL"] = "0.05"
    else:
        server = start_endpoint(index_seconds=1.0)
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def cosmigrate_endpoint(endpoint: str) -> str:
    """The plugin's fixtures run on this suite's endpoint."""
    return endpoint


@pytest.fixture
def cosmigrate_baseline() -> Callable[[DatabaseProxy], None]:
    """What the integration platform's database holds before revision 001, as the design describes it:
    integration-connections (partition key /integrationId, default indexing) and the deprecated
    tenant-integrations. The built-in tests start from here, so that 003's downgrade (back to the default
    policy) and 004's (tenant-integrations recreated) leave no trace."""

    def prepare(database: DatabaseProxy) -> None:
        database.create_container("integration-connections", partition_key=PartitionKey("/integrationId"))
        database.create_container("tenant-integrations", partition_key=PartitionKey("/tenantId"))

    return prepare


@pytest.fixture(scope="session")
def cosmos(endpoint: str) -> Iterator[CosmosClient]:
    client = CosmosClient(endpoint, credential=EMULATOR_KEY, connection_verify=False, headers=SETUP_HEADERS)
    try:
        yield client
    finally:
        close(client)


@pytest.fixture
def database_name(cosmos: CosmosClient) -> Iterator[str]:
    name = f"t{uuid.uuid4().hex[:12]}"
    yield name
    with contextlib.suppress(cosmos_errors.CosmosResourceNotFoundError):  # not every test creates it
        cosmos.delete_database(name)


@pytest.fixture
def database(cosmos: CosmosClient, database_name: str) -> DatabaseProxy:
    """The test's database, created (tests that start from nothing use ``database_name`` alone)."""
    return cosmos.create_database(database_name)


@pytest.fixture
def test_backups(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where a test's backups, dead letters and kept checkpoints go unless it says otherwise: never the repository."""
    return tmp_path_factory.mktemp("backups")


@pytest.fixture
def make_config(endpoint: str, database_name: str, test_backups: Path) -> Callable[..., Config]:
    def build(migrations: Path = MIGRATIONS, x: dict[str, str] | None = None, **flags: Any) -> Config:
        merged = {
            "endpoint": endpoint,
            "database": database_name,
            "migrations": str(migrations),
            "create_database": True,
            "backup_dir": str(test_backups),
            **flags,
        }
        if ENTRA:
            merged.update(
                auth="entra", subscription="00000000-0000-0000-0000-000000000000", resource_group="migrations",
                account="local", arm_endpoint=endpoint,
            )  # fmt: skip
        return load_config(merged, environ={}, cwd=ROOT, x=x)

    return build


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli_env(endpoint: str, database_name: str, test_backups: Path) -> dict[str, str]:
    """Environment for ``python -m cosmigrate`` aimed at this test's database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COSMOS_", "COSMIGRATE_"))}
    env.update(
        COSMOS_ENDPOINT=endpoint,
        COSMOS_DATABASE=database_name,
        COSMIGRATE_MIGRATIONS=str(MIGRATIONS),
        COSMIGRATE_CREATE_DATABASE="1",
        COSMIGRATE_BACKUP_DIR=str(test_backups),
        PYTHONWARNINGS="ignore",
    )
    if ENTRA:
        env.update(entra_settings(endpoint))
    return env


def run_cli_with(
    cli_env: dict[str, str], *args: str, env: dict[str, str] | None = None, timeout: float = 120, cwd: Path = ROOT
) -> CliResult:
    """``python -m cosmigrate ARGS`` in ``cli_env`` updated with ``env``."""
    done = subprocess.run(
        [sys.executable, "-m", "cosmigrate", *args],
        env={**cli_env, **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    return CliResult(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def run_cli(cli_env: dict[str, str]) -> Callable[..., CliResult]:
    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 120, cwd: Path = ROOT) -> CliResult:
        return run_cli_with(cli_env, *args, env=env, timeout=timeout, cwd=cwd)

    return run


SCHEMA_REVISIONS = ("001", "002", "003", "004")


def copy_schema_migrations(target: Path) -> Path:
    """The project's schema revisions (001-004) and a sum file for them, in ``target``: a base that tests break,
    fix or extend with a revision 005 of their own."""
    target.mkdir(parents=True, exist_ok=True)
    for script in sorted(MIGRATIONS.glob("[0-9]*.py")):
        if script.name[:3] in SCHEMA_REVISIONS:
            shutil.copy(script, target / script.name)
    sumfile.write(target)
    return target


def concurrent_deploys(
    env: dict[str, str], cosmos: CosmosClient, database_name: str, processes: int, rounds: int
) -> None:
    """``processes`` runs of ``cosmigrate up`` started together on a fresh database, ``rounds`` times: all must exit 0
    and each revision must have run exactly once, in one of them, and be recorded once as applied."""
    revisions = sorted(path.name[:3] for path in MIGRATIONS.glob("[0-9]*.py"))
    for round_number in range(rounds):
        name = f"{database_name}r{round_number}"
        started = [
            subprocess.Popen(
                [sys.executable, "-m", "cosmigrate", "up", "--json"],
                env={**env, "COSMOS_DATABASE": name, "COSMIGRATE_MIGRATIONS": str(MIGRATIONS)},
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(processes)
        ]
        outputs = [process.communicate(timeout=300) for process in started]
        assert [p.returncode for p in started] == [0] * processes, [err[-500:] for _, err in outputs]
        ran = [step["revision"] for out, _ in outputs for step in json.loads(out)["steps"]]
        assert sorted(ran) == revisions, f"round {round_number}"
        records = HistoryStore(cosmos.get_database_client(name), "cosmigrate_history").snapshot().records
        assert {r: rec.state for r, rec in records.items()} == dict.fromkeys(revisions, "applied")
        cosmos.delete_database(name)


__all__ = ["MIGRATIONS", "ROOT", "CliResult", "NodeServer"]
