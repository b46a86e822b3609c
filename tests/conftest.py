"""Fixtures: one real local Cosmos DB endpoint per test session, and a database of its own for each test."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import urllib3
from azure.cosmos import CosmosClient, DatabaseProxy
from azure.cosmos import exceptions as cosmos_errors

from cosmigrate.config import EMULATOR_KEY, Config, load_config
from tests.harness.local_endpoint import NodeServer, start_endpoint

ROOT = Path(__file__).resolve().parents[1]
MIGRATIONS = ROOT / "migrations"
urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)


@pytest.fixture(scope="session")
def endpoint() -> Iterator[str]:
    server = start_endpoint(index_seconds=1.0)
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def cosmos(endpoint: str) -> Iterator[CosmosClient]:
    with CosmosClient(endpoint, credential=EMULATOR_KEY, connection_verify=False) as client:
        yield client


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
def make_config(endpoint: str, database_name: str) -> Callable[..., Config]:
    def build(migrations: Path = MIGRATIONS, x: dict[str, str] | None = None, **flags: Any) -> Config:
        merged = {"endpoint": endpoint, "database": database_name, "migrations": str(migrations), **flags}
        return load_config(merged, environ={}, cwd=ROOT, x=x)

    return build


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli_env(endpoint: str, database_name: str) -> dict[str, str]:
    """Environment for ``python -m cosmigrate`` aimed at this test's database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COSMOS_", "COSMIGRATE_"))}
    env.update(
        COSMOS_ENDPOINT=endpoint,
        COSMOS_DATABASE=database_name,
        COSMIGRATE_MIGRATIONS=str(MIGRATIONS),
        PYTHONWARNINGS="ignore",
    )
    return env


@pytest.fixture
def run_cli(cli_env: dict[str, str]) -> Callable[..., CliResult]:
    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 120, cwd: Path = ROOT) -> CliResult:
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

    return run


__all__ = ["MIGRATIONS", "ROOT", "CliResult", "NodeServer"]
