"""adopt: a baseline written from a database made with the plain client (composite, spatial and TTL settings,
unique keys, hierarchical keys, manual and autoscale throughput), verified and stamped; then check, verify and the
plugin's built-in tests are clean, and the baseline recreates the same containers in a new database."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from azure.cosmos import CosmosClient, DatabaseProxy, PartitionKey, ThroughputProperties

from tests.conftest import CliResult

ORDERS_POLICY = {
    "includedPaths": [{"path": "/*"}],
    "excludedPaths": [{"path": "/blob/*"}],
    "compositeIndexes": [[{"path": "/tenantId", "order": "ascending"}, {"path": "/createdAt", "order": "descending"}]],
    "spatialIndexes": [{"path": "/location/*", "types": ["Point", "Polygon"]}],
}


def made_by_hand(database: DatabaseProxy) -> None:
    database.create_container(
        "orders",
        PartitionKey("/tenantId"),
        default_ttl=86400,
        unique_key_policy={"uniqueKeys": [{"paths": ["/tenantId", "/number"]}]},
        indexing_policy=ORDERS_POLICY,
        offer_throughput=ThroughputProperties(auto_scale_max_throughput=2000),
    )
    database.create_container("events", PartitionKey(["/tenantId", "/day"], kind="MultiHash"), offer_throughput=400)
    database.create_container("scratch", PartitionKey("/id"))
    database.get_container_client("orders").create_item({"id": "1", "tenantId": "t", "number": 1})


def test_adopt_writes_a_baseline_that_verifies_and_recreates_the_database(
    run_cli: Callable[..., CliResult], cosmos: CosmosClient, database: DatabaseProxy, tmp_path: Path
) -> None:
    made_by_hand(database)
    env = {"COSMIGRATE_MIGRATIONS": str(tmp_path / "migrations")}
    adopted = run_cli("adopt", "--exclude", "scratch", "--json", env=env)
    assert adopted.code == 0, adopted.stderr
    body = json.loads(adopted.stdout)
    assert (body["containers"], body["excluded"], body["revision"]) == (["events", "orders"], ["scratch"], "001")
    source = (tmp_path / "migrations" / "001_baseline.py").read_text()
    assert "offer_throughput=op.autoscale(2000)" in source and "default_ttl=86400" in source
    assert '"_etag"' not in source  # what the service adds is not written back
    assert run_cli("check", env=env).code == 0
    verified = json.loads(run_cli("verify", "--json", env=env).stdout)
    assert verified["clean"] and {c["container"]: c["state"] for c in verified["containers"]} == {
        "events": "ok", "orders": "ok", "scratch": "unmanaged",
    }  # fmt: skip
    status = json.loads(run_cli("status", "--json", env=env).stdout)
    assert [(r["revision"], r["state"]) for r in status["revisions"]] == [("001", "applied")]
    assert database.get_container_client("orders").read_item("1", "t")["number"] == 1  # nothing was run

    again = run_cli("adopt", env=env)
    assert again.code == 2 and "holds revisions already" in again.stderr
    elsewhere = run_cli("adopt", env={"COSMIGRATE_MIGRATIONS": str(tmp_path / "other")})  # another folder, same db
    assert elsewhere.code == 2 and "already has applied revisions (001)" in elsewhere.stderr
    assert not (tmp_path / "other").exists()
    assert [e["event"] for e in json.loads(run_cli("history", "--json", env=env).stdout)["events"]] == ["stamped"]

    other = f"{database.id}n"  # the baseline on a new database creates the same containers
    try:
        fresh = run_cli("up", "--create-database", env={**env, "COSMOS_DATABASE": other})
        assert fresh.code == 0, fresh.stderr
        made = cosmos.get_database_client(other).get_container_client("orders").read()
        kept = database.get_container_client("orders").read()
        for key in ("partitionKey", "uniqueKeyPolicy", "defaultTtl", "indexingPolicy"):
            assert made[key] == kept[key], key
        offer = cosmos.get_database_client(other).get_container_client("orders").get_throughput()
        assert offer.auto_scale_max_throughput == 2000
    finally:
        cosmos.delete_database(other)


def test_the_baseline_passes_the_plugins_built_in_tests(
    run_cli: Callable[..., CliResult], database: DatabaseProxy, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    made_by_hand(database)
    project = tmp_path / "project"
    project.mkdir()
    assert run_cli("init", str(project)).code == 0
    assert run_cli("adopt", env={"COSMIGRATE_MIGRATIONS": str(project / "migrations")}).code == 0
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--cosmigrate", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"],
        cwd=project,
        env={**cli_env, "COSMIGRATE_MIGRATIONS": str(project / "migrations")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert " passed" in done.stdout and "failed" not in done.stdout
