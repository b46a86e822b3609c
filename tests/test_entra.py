"""Accounts without keys, on the data plane: cosmigrate signed in with Microsoft Entra ID against the local endpoint
in Entra mode (``local_endpoint/entra.js``: the key refused, bearer tokens checked, metadata writes refused with
403/5300 as Azure refuses them, role assignments per principal).

The token comes from the real ``DefaultAzureCredential`` chain, through its Azure CLI credential and the test
token provider's ``az`` (``cosmigrate.testing.entra``). The database and its containers are prepared by the
harness's setup requests, standing in for what ARM would make.
"""

from __future__ import annotations

import contextlib
import json
import ssl
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.cosmos import CosmosClient, PartitionKey

from cosmigrate.config import EMULATOR_KEY
from cosmigrate.store.records import PARTITION_KEY_PATH
from cosmigrate.testing import entra
from cosmigrate.testing.endpoint import start
from tests.conftest import CliResult, run_cli_with

DEPLOYER, DATA_ONLY, NO_ROLE = "cosmigrate-ci", "data-only", "reader-without-role"
SEED = '''"""Seed the catalog."""
revision = "001"
down_revision = None
idempotent = True

ITEMS = [{"id": "crm", "category": "crm", "name": "CRM"}, {"id": "chat", "category": "chat", "name": "Chat"}]


def upgrade(op):
    op.seed_items("catalog", ITEMS)
    op.transform_items("catalog", shout)


def shout(d):
    return {**d, "name": d["name"].upper()} if d["name"] != d["name"].upper() else None


def downgrade(op):
    op.unseed_items("catalog", [{**d, "name": d["name"].upper()} for d in ITEMS])
'''
CREATE = '''"""Create audit."""
revision = "002"
down_revision = "001"


def upgrade(op):
    op.create_container("audit", "/tenantId")


def downgrade(op):
    op.delete_container("audit")
'''


CONTAINER_WRITE = "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/write"
DATABASE_WRITE = "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/write"


def arm_stats(endpoint: str) -> dict[str, Any]:
    """What the endpoint counted: ARM requests and writes, and management requests refused on the data plane."""
    context = ssl._create_unverified_context()
    with urllib.request.urlopen(f"{endpoint}/_local/stats", context=context, timeout=10) as answer:
        return dict(json.loads(answer.read()))


@pytest.fixture(scope="module")
def entra_endpoint() -> Iterator[str]:
    server = start(entra={DEPLOYER: ["data", "arm"], DATA_ONLY: ["data"], NO_ROLE: []}, entra_secret=entra.SECRET)
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def setup_client(entra_endpoint: str) -> Iterator[CosmosClient]:
    """The harness's stand-in for ARM: key requests the endpoint lets through with its setup header."""
    client = CosmosClient(
        entra_endpoint, EMULATOR_KEY, connection_verify=False, headers={"x-cosmigrate-local-setup": "true"}
    )
    yield client


@pytest.fixture
def keyless(
    entra_endpoint: str, setup_client: CosmosClient, tmp_path: Path, cli_env: dict[str, str]
) -> Iterator[Callable[..., CliResult]]:
    """``cosmigrate`` with auth = entra against a database whose catalog and history containers exist."""
    name = f"e{uuid.uuid4().hex[:12]}"
    database = setup_client.create_database(name)
    database.create_container("catalog", PartitionKey("/category"))
    database.create_container("cosmigrate_history", PartitionKey(PARTITION_KEY_PATH))  # as cosmigrate makes it
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "001_seed.py").write_text(SEED)
    signed_in = entra.install_az(tmp_path / "bin", DEPLOYER)

    def run(*args: str, principal: str = DEPLOYER, env: dict[str, str] | None = None) -> CliResult:
        folder = signed_in if principal == DEPLOYER else entra.install_az(tmp_path / f"bin-{principal}", principal)
        given = {
            **entra.environment(folder),
            "COSMOS_ENDPOINT": entra_endpoint,
            "COSMOS_DATABASE": name,
            "COSMIGRATE_AUTH": "entra",
            "COSMIGRATE_MIGRATIONS": str(migrations),
            "AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000000",
            "AZURE_RESOURCE_GROUP": "migrations",
            "COSMIGRATE_ACCOUNT": "local",
            "COSMIGRATE_ARM_ENDPOINT": entra_endpoint,
            "COSMIGRATE_ARM_POLL_INTERVAL": "0.05",
            **(env or {}),
        }
        return run_cli_with(cli_env, *args, env=given)

    assert run("hash").code == 0
    run.database = database  # type: ignore[attr-defined]
    run.migrations = migrations  # type: ignore[attr-defined]
    yield run
    setup_client.delete_database(name)


def test_the_key_is_refused_with_a_way_out(keyless: Callable[..., CliResult]) -> None:
    result = keyless("status", env={"COSMIGRATE_AUTH": "key"})
    assert result.code == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "accepts no keys" in lines[0] and "--auth entra" in lines[0]


def test_a_data_revision_runs_with_an_entra_token_history_lock_and_data_steps(
    keyless: Callable[..., CliResult],
) -> None:
    up = keyless("up")
    assert up.code == 0, up.stderr
    catalog = keyless.database.get_container_client("catalog")  # type: ignore[attr-defined]
    assert sorted(d["name"] for d in catalog.query_items("SELECT * FROM c", enable_cross_partition_query=True)) == [
        "CHAT",
        "CRM",
    ]
    status = json.loads(keyless("status", "--json").stdout)
    assert [(r["revision"], r["state"]) for r in status["revisions"]] == [("001", "applied")]
    history = json.loads(keyless("history", "--json").stdout)
    assert [e["revision"] for e in history["events"] if e["event"] == "applied"] == ["001"]
    assert keyless("verify").code == 0
    down = keyless("down", "--to", "base", "--yes")
    assert down.code == 0, down.stderr
    assert list(catalog.query_items("SELECT * FROM c", enable_cross_partition_query=True)) == []


def test_a_container_change_goes_through_arm_and_a_principal_without_arm_rights_is_told_the_role(
    keyless: Callable[..., CliResult], entra_endpoint: str
) -> None:
    (keyless.migrations / "002_create.py").write_text(CREATE)  # type: ignore[attr-defined]
    assert keyless("hash").code == 0
    refused = keyless("up", principal=DATA_ONLY)
    assert refused.code == 2, refused.stderr[-1500:]  # refused while planning: before anything is written
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]  # the rest are logs
    assert len(errors) == 1 and "Cosmos DB Operator" in errors[0] and "throughputSettings/read" in errors[0], errors
    status = json.loads(keyless("status", "--json").stdout)
    assert [r["state"] for r in status["revisions"]] == ["pending", "pending"]
    assert "audit" not in [c["id"] for c in keyless.database.list_containers()]  # type: ignore[attr-defined]
    before = arm_stats(entra_endpoint)
    up = keyless("up")
    assert up.code == 0, up.stderr
    assert "audit" in [c["id"] for c in keyless.database.list_containers()]  # type: ignore[attr-defined]
    after = arm_stats(entra_endpoint)
    assert after["armWrites"].get(CONTAINER_WRITE, 0) > before["armWrites"].get(CONTAINER_WRITE, 0)
    assert after["dataPlaneManagementRefused"] == before["dataPlaneManagementRefused"]


def test_a_principal_without_a_data_role_is_told_which_role_to_assign(keyless: Callable[..., CliResult]) -> None:
    result = keyless("status", principal=NO_ROLE)
    assert result.code == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Cosmos DB Built-in Data Contributor" in lines[0], lines
    assert "00000000-0000-0000-0000-000000000002" in lines[0]


def test_no_credential_at_all_says_how_to_sign_in(keyless: Callable[..., CliResult]) -> None:
    result = keyless("status", principal="")
    assert result.code == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no Microsoft Entra ID credential could sign in" in lines[0] and "az login" in lines[0]


def test_entra_with_a_key_too_is_a_usage_error(keyless: Callable[..., CliResult]) -> None:
    result = keyless("status", env={"COSMOS_KEY": EMULATOR_KEY})
    assert result.code == 2 and "give one way to sign in" in result.stderr
    assert EMULATOR_KEY not in result.stderr + result.stdout


def test_the_seed_migrations_run_keyless_end_to_end_with_changes_through_arm_only(
    entra_endpoint: str, setup_client: CosmosClient, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    """up (the database created through ARM), plan, verify, status, export, import, down: no key configured, every
    container change through ARM, no management request on the data plane."""
    name, restored = f"e{uuid.uuid4().hex[:12]}", f"r{uuid.uuid4().hex[:12]}"
    env = {
        **entra.environment(entra.install_az(tmp_path / "bin", DEPLOYER)),
        "COSMOS_ENDPOINT": entra_endpoint,
        "COSMOS_DATABASE": name,
        "COSMIGRATE_AUTH": "entra",
        "COSMIGRATE_BACKUP_DIR": str(tmp_path / "backups"),
        "AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000000",
        "AZURE_RESOURCE_GROUP": "migrations",
        "COSMIGRATE_ACCOUNT": "local",
        "COSMIGRATE_ARM_ENDPOINT": entra_endpoint,
        "COSMIGRATE_ARM_POLL_INTERVAL": "0.05",
    }
    before = arm_stats(entra_endpoint)
    try:
        up = run_cli_with(cli_env, "up", "--create-database", env=env)
        assert up.code == 0, up.stderr
        made = {c["id"] for c in setup_client.get_database_client(name).list_containers()}
        assert {"integration_providers", "integrations", "integration-connections", "cosmigrate_history"} <= made
        assert run_cli_with(cli_env, "plan", env=env).stdout.startswith("nothing to do")
        assert run_cli_with(cli_env, "verify", env=env).code == 0
        status = json.loads(run_cli_with(cli_env, "status", "--json", env=env).stdout)
        assert {r["state"] for r in status["revisions"]} == {"applied"}
        out = tmp_path / "export"
        assert run_cli_with(cli_env, "export", "--out", str(out), env=env).code == 0
        into = {**env, "COSMOS_DATABASE": restored}
        imported = run_cli_with(cli_env, "import", str(out), "--create-database", "--json", env=into)
        assert imported.code == 0, imported.stderr
        assert json.loads(imported.stdout)["documents"]["integration_providers"] == 8
        down = run_cli_with(cli_env, "down", "--to", "base", "--yes", env=env)
        assert down.code == 0, down.stderr
        left = {c["id"] for c in setup_client.get_database_client(name).list_containers()}
        assert not left & {"integration_providers", "integrations"} and "cosmigrate_history" in left, left
    finally:
        for database in (name, restored):
            with contextlib.suppress(Exception):
                setup_client.delete_database(database)
    after = arm_stats(entra_endpoint)
    writes = after["armWrites"].get(CONTAINER_WRITE, 0) - before["armWrites"].get(CONTAINER_WRITE, 0)
    assert writes >= 4  # the seed's containers and the history, in two databases
    assert after["armWrites"].get(DATABASE_WRITE, 0) - before["armWrites"].get(DATABASE_WRITE, 0) == 2
    assert after["dataPlaneManagementRefused"] == before["dataPlaneManagementRefused"]
