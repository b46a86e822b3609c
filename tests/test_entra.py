"""Accounts without keys, on the data plane: cosmigrate signed in with Microsoft Entra ID against the local endpoint
in Entra mode (``local_endpoint/entra.js``: the key refused, bearer tokens checked, metadata writes refused with
403/5300 as Azure refuses them, role assignments per principal).

The token comes from the real ``DefaultAzureCredential`` chain, through its Azure CLI credential and the test
token provider's ``az`` (``cosmigrate.testing.entra``). The database and its containers are prepared by the
harness's setup requests, standing in for what ARM would make.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from azure.cosmos import CosmosClient, PartitionKey

from cosmigrate.config import EMULATOR_KEY
from cosmigrate.store.records import PARTITION_KEY_PATH
from cosmigrate.testing import entra
from cosmigrate.testing.endpoint import start
from tests.conftest import CliResult, run_cli_with

DEPLOYER, NO_ROLE = "cosmigrate-ci", "reader-without-role"
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


@pytest.fixture(scope="module")
def entra_endpoint() -> Iterator[str]:
    server = start(entra={DEPLOYER: ["data"], NO_ROLE: []}, entra_secret=entra.SECRET)
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


def test_a_container_change_is_refused_in_one_line_naming_arm(keyless: Callable[..., CliResult]) -> None:
    (keyless.migrations / "002_create.py").write_text(CREATE)  # type: ignore[attr-defined]
    assert keyless("hash").code == 0
    result = keyless("up")
    assert result.code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]  # the rest are logs
    assert len(errors) == 1 and "substatus 5300" in errors[0] and "Azure Resource Manager" in errors[0], errors
    assert "audit" not in [c["id"] for c in keyless.database.list_containers()]  # type: ignore[attr-defined]
    status = json.loads(keyless("status", "--json").stdout)
    assert [r["state"] for r in status["revisions"]] == ["applied", "failed"]


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
