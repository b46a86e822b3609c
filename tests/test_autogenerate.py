"""new --autogenerate and plan --schema: from drift made with the plain client (the live database as the desired
state) and from migrations/schema.toml; in-place changes as alter/replace, throughput modes as offer migrations,
and a partition-key change as the swap pattern, never in place. Against the local endpoint."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from azure.cosmos import CosmosClient

from tests.conftest import CliResult

FIRST = '''"""Create orders."""
revision = "001"
down_revision = None
idempotent = True


def upgrade(op):
    op.create_container(
        "orders",
        "/tenantId",
        indexing_policy={"includedPaths": [{"path": "/*"}], "excludedPaths": [{"path": "/blob/*"}]},
        default_ttl=3600,
        offer_throughput=400,
    )


def downgrade(op):
    op.delete_container("orders")
'''


def project(tmp_path: Path, run_cli: Callable[..., CliResult]) -> dict[str, str]:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "001_orders.py").write_text(FIRST)
    env = {"COSMIGRATE_MIGRATIONS": str(folder)}
    assert run_cli("hash", env=env).code == 0
    assert run_cli("up", env=env).code == 0
    return env


def test_drift_becomes_a_migration_that_verifies_and_goes_back(
    run_cli: Callable[..., CliResult], cosmos: CosmosClient, database_name: str, tmp_path: Path
) -> None:
    env = project(tmp_path, run_cli)
    orders = cosmos.get_database_client(database_name).get_container_client("orders")
    stored = orders.read()
    body = {k: v for k, v in stored.items() if not k.startswith("_")}
    body["indexingPolicy"] = {"includedPaths": [{"path": "/*"}], "excludedPaths": [{"path": "/big/*"}]}
    body.pop("defaultTtl")  # TTL off
    cosmos.client_connection.ReplaceContainer(f"dbs/{database_name}/colls/orders", body)
    orders.replace_throughput(500)
    assert run_cli("verify", env=env).code == 1

    planned = json.loads(run_cli("plan", "--schema", "--json", env=env).stdout)
    assert sorted(s["kind"] for s in planned["steps"]) == ["in place", "reindex"], planned
    assert not list((tmp_path / "migrations").glob("002_*"))  # plan --schema writes nothing

    made = run_cli("new", "--autogenerate", "codify drift", "--json", env=env)
    assert made.code == 0, made.stderr
    source = Path(json.loads(made.stdout)["file"]).read_text()
    assert "op.replace_indexing_policy('orders'" in source and "default_ttl=None" in source
    assert "offer_throughput=500" in source and "offer_throughput=400" in source  # up and down
    assert run_cli("check", env=env).code == 0
    assert run_cli("up", env=env).code == 0
    assert run_cli("verify", env=env).code == 0  # what was drift is now declared
    assert run_cli("down", env=env).code == 0  # back to what 001 declared
    back = orders.read()
    assert back["defaultTtl"] == 3600 and {"path": "/blob/*"} in back["indexingPolicy"]["excludedPaths"]
    assert orders.get_throughput().offer_throughput == 400
    assert run_cli("verify", env=env).code == 0
    nothing = run_cli("up", env=env)
    assert nothing.code == 0 and run_cli("new", "--autogenerate", "again", env=env).stderr.startswith(
        "error: nothing to generate"
    )


def test_a_partition_key_change_in_the_schema_file_is_generated_as_the_swap_pattern(
    run_cli: Callable[..., CliResult], cosmos: CosmosClient, database_name: str, tmp_path: Path
) -> None:
    env = project(tmp_path, run_cli)
    (tmp_path / "migrations" / "schema.toml").write_text(
        '[containers.orders]\npartition_key = "/customerId"\ndefault_ttl = 3600\noffer_throughput = 400\n\n'
        '[containers.orders.indexing_policy]\nincludedPaths = [{path = "/*"}]\nexcludedPaths = [{path = "/blob/*"}]\n'
        '\n[containers.audit]\npartition_key = "/tenantId"\n'
    )
    made = run_cli("new", "--autogenerate", "rekey orders", "--json", env=env)
    assert made.code == 0, made.stderr
    body = json.loads(made.stdout)
    assert sorted(s["kind"] for s in body["steps"]) == ["create", "recreate"]
    source = Path(body["file"]).read_text()
    assert "'orders_v2',\n        partition_key='/customerId'," in source, source
    assert "op.copy_container('orders', 'orders_v2')" in source
    assert "alter_container('orders'" not in source and "op.delete_container('orders')" not in source
    assert "its new partition key value (/customerId)" in source and "transform=" in source
    assert run_cli("up", env=env).code == 0
    names = {c["id"] for c in cosmos.get_database_client(database_name).list_containers()}
    assert {"orders", "orders_v2", "audit"} <= names
    again = run_cli("new", "--autogenerate", "again", env=env)  # the swap is done: nothing more, nothing deleted
    assert again.code == 2 and "orders was swapped into orders_v2 already" in again.stderr, again.stderr
    assert not list((tmp_path / "migrations").glob("003_*"))


def test_a_throughput_mode_change_is_planned_as_an_offer_migration(
    run_cli: Callable[..., CliResult], cosmos: CosmosClient, database_name: str, tmp_path: Path
) -> None:
    env = project(tmp_path, run_cli)
    (tmp_path / "migrations" / "schema.toml").write_text(
        '[containers.orders]\npartition_key = "/tenantId"\ndefault_ttl = 3600\nautoscale_max_throughput = 1000\n\n'
        '[containers.orders.indexing_policy]\nincludedPaths = [{path = "/*"}]\nexcludedPaths = [{path = "/blob/*"}]\n'
    )
    planned = json.loads(run_cli("plan", "--schema", "--json", env=env).stdout)
    assert [(s["kind"], "a migration of the offer" in s["note"]) for s in planned["steps"]] == [("throughput", True)]
    assert run_cli("new", "--autogenerate", "autoscale orders", env=env).code == 0
    assert run_cli("up", env=env).code == 0
    offer = cosmos.get_database_client(database_name).get_container_client("orders").get_throughput()
    assert offer.auto_scale_max_throughput == 1000
    assert run_cli("down", env=env).code == 0
    offer = cosmos.get_database_client(database_name).get_container_client("orders").get_throughput()
    assert (offer.offer_throughput, offer.auto_scale_max_throughput) == (400, None)


def test_generated_migrations_pass_the_plugins_built_in_round_trip(
    run_cli: Callable[..., CliResult], cosmos: CosmosClient, database_name: str, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    env = project(tmp_path, run_cli)
    (tmp_path / "migrations" / "schema.toml").write_text(
        '[containers.orders]\npartition_key = "/tenantId"\noffer_throughput = 500\n\n'
        '[containers.orders.indexing_policy]\nincludedPaths = [{path = "/*"}]\n\n'
        '[containers.audit]\npartition_key = "/tenantId"\ndefault_ttl = 60\n'
    )
    assert run_cli("new", "--autogenerate", "audit and reindex", env=env).code == 0
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--cosmigrate",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
            "--rootdir",
            str(tmp_path),
        ],
        cwd=tmp_path,
        env={**cli_env, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert " passed" in done.stdout and "failed" not in done.stdout
