"""Every container and database property through the whole life of a migration set, against the local endpoint.

001 creates ``docs`` with every property the registry has (unique keys, composite, spatial, vector and full-text
indexes, computed properties, TTL, vector embedding, full-text and conflict resolution policies, analytical TTL,
manual throughput), ``scaled`` with autoscale and ``shared`` on the database's shared throughput; 002 changes every
mutable one (TTL off, computed property edited, full-text policy and indexes, analytical TTL, throughput up,
autoscale → manual, the database manual → autoscale). At each step the definitions and throughput are read back
with the plain azure-cosmos client and compared with what the scripts declare; ``verify`` must be clean; ``down``
restores each earlier value. Then drift made with the plain client is reported by ``verify``, path by path.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from azure.cosmos import CosmosClient, PartitionKey, ThroughputProperties

from tests.conftest import CliResult

EMBEDDING = {
    "vectorEmbeddings": [{"path": "/embedding", "dataType": "float32", "dimensions": 8, "distanceFunction": "cosine"}]
}
FULL_TEXT_1 = {"defaultLanguage": "en-US", "fullTextPaths": [{"path": "/body", "language": "en-US"}]}
FULL_TEXT_2 = {
    "defaultLanguage": "en-US",
    "fullTextPaths": [{"path": "/body", "language": "en-US"}, {"path": "/title", "language": "en-US"}],
}
COMPUTED_1 = [{"name": "cp_lower", "query": "SELECT VALUE LOWER(c.name) FROM c"}]
COMPUTED_2 = [{"name": "cp_lower", "query": "SELECT VALUE LOWER(c.displayName) FROM c"}]
CONFLICTS = {"mode": "LastWriterWins", "conflictResolutionPath": "/updatedAt", "conflictResolutionProcedure": ""}
POLICY_1 = {
    "indexingMode": "consistent",
    "automatic": True,
    "includedPaths": [{"path": "/*"}],
    "excludedPaths": [{"path": "/embedding/*"}, {"path": '/"_etag"/?'}],
    "compositeIndexes": [[{"path": "/tenantId", "order": "ascending"}, {"path": "/createdAt", "order": "descending"}]],
    "spatialIndexes": [{"path": "/location/*", "types": ["Point", "Polygon"]}],
    "vectorIndexes": [{"path": "/embedding", "type": "flat"}],
    "fullTextIndexes": [{"path": "/body"}],
}
POLICY_2 = {
    **POLICY_1,
    "compositeIndexes": [[{"path": "/tenantId", "order": "ascending"}, {"path": "/updatedAt", "order": "descending"}]],
    "fullTextIndexes": [{"path": "/body"}, {"path": "/title"}],
}

# What each revision declares, in the service's words: (docs' properties, throughputs of docs, scaled, database).
V1 = {
    "docs": {
        "defaultTtl": 3600,
        "computedProperties": COMPUTED_1,
        "fullTextPolicy": FULL_TEXT_1,
        "indexingPolicy": POLICY_1,
        "analyticalStorageTtl": -1,
    },
    "throughput": {"docs": (400, None), "scaled": (None, 1000), "database": (400, None)},
}
V2 = {
    "docs": {
        "defaultTtl": None,
        "computedProperties": COMPUTED_2,
        "fullTextPolicy": FULL_TEXT_2,
        "indexingPolicy": POLICY_2,
        "analyticalStorageTtl": 86400,
    },
    "throughput": {"docs": (800, None), "scaled": (400, None), "database": (None, 1000)},
}

HEADER = '"""{doc}"""\nrevision = "{rev}"\ndown_revision = {down}\n\nfrom _shapes import *  # noqa: F403\n\n\n'
SHAPES = f"""EMBEDDING = {EMBEDDING!r}
FULL_TEXT_1 = {FULL_TEXT_1!r}
FULL_TEXT_2 = {FULL_TEXT_2!r}
COMPUTED_1 = {COMPUTED_1!r}
COMPUTED_2 = {COMPUTED_2!r}
CONFLICTS = {CONFLICTS!r}
POLICY_1 = {POLICY_1!r}
POLICY_2 = {POLICY_2!r}
"""
CREATE = """def upgrade(op):
    op.create_container(
        "docs",
        "/tenantId",
        unique_keys=[["/tenantId", "/slug"]],
        indexing_policy=POLICY_1,
        default_ttl=3600,
        computed_properties=COMPUTED_1,
        vector_embedding_policy=EMBEDDING,
        full_text_policy=FULL_TEXT_1,
        conflict_resolution_policy=CONFLICTS,
        analytical_storage_ttl=-1,
        offer_throughput=400,
    )
    op.create_container("scaled", "/pk", offer_throughput=op.autoscale(1000))
    op.create_container("shared", "/pk")


def downgrade(op):
    op.delete_container("shared")
    op.delete_container("scaled")
    op.delete_container("docs")
"""
CHANGE = """def upgrade(op):
    op.alter_container(
        "docs",
        default_ttl=None,
        computed_properties=COMPUTED_2,
        full_text_policy=FULL_TEXT_2,
        analytical_storage_ttl=86400,
        offer_throughput=800,
    )
    op.replace_indexing_policy("docs", POLICY_2)
    op.alter_container("scaled", offer_throughput=400)
    op.set_database_throughput(op.autoscale(1000))


def downgrade(op):
    op.set_database_throughput(400)
    op.alter_container("scaled", offer_throughput=op.autoscale(1000))
    op.replace_indexing_policy("docs", POLICY_1)
    op.alter_container(
        "docs",
        default_ttl=3600,
        computed_properties=COMPUTED_1,
        full_text_policy=FULL_TEXT_1,
        analytical_storage_ttl=-1,
        offer_throughput=400,
    )
"""


def write_set(folder: Path) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / "_shapes.py").write_text(SHAPES)
    (folder / "001_create.py").write_text(
        HEADER.format(doc="Create docs, scaled and shared.", rev="001", down=None) + CREATE
    )
    (folder / "002_change.py").write_text(
        HEADER.format(doc="Change every mutable property.", rev="002", down='"001"') + CHANGE
    )
    return folder


def throughput(proxy: Any) -> tuple[int | None, int | None]:
    """(manual RU/s, autoscale max) as the plain client reads the offer."""
    offer = proxy.get_throughput()
    auto = offer.auto_scale_max_throughput
    return (None, auto) if auto else (offer.offer_throughput, None)


def sorted_policy(policy: dict[str, Any]) -> dict[str, Any]:
    """An indexing policy with its list entries in a stable order (the service may return them reordered)."""
    keep = {k: v for k, v in policy.items() if k in POLICY_1}
    for key in ("includedPaths", "excludedPaths", "spatialIndexes", "vectorIndexes", "fullTextIndexes"):
        keep[key] = sorted(({"path": e["path"], **{k: v for k, v in e.items() if k in ("types", "type")}}
                            for e in keep.get(key, [])), key=lambda e: e["path"])  # fmt: skip
    keep["compositeIndexes"] = sorted(keep.get("compositeIndexes", []), key=json.dumps)
    return keep


def assert_reads_back(cosmos: CosmosClient, database_name: str, expected: dict[str, Any]) -> None:
    database = cosmos.get_database_client(database_name)
    docs = database.get_container_client("docs").read()
    assert docs["partitionKey"]["paths"] == ["/tenantId"]
    assert [k["paths"] for k in docs["uniqueKeyPolicy"]["uniqueKeys"]] == [["/tenantId", "/slug"]]
    assert docs["vectorEmbeddingPolicy"] == EMBEDDING
    assert docs["conflictResolutionPolicy"] == CONFLICTS
    want = expected["docs"]
    assert docs.get("defaultTtl") == want["defaultTtl"]
    assert docs["computedProperties"] == want["computedProperties"]
    assert docs["fullTextPolicy"] == want["fullTextPolicy"]
    assert docs["analyticalStorageTtl"] == want["analyticalStorageTtl"]
    assert sorted_policy(docs["indexingPolicy"]) == sorted_policy(want["indexingPolicy"])
    speeds = expected["throughput"]
    assert throughput(database.get_container_client("docs")) == speeds["docs"]
    assert throughput(database.get_container_client("scaled")) == speeds["scaled"]
    assert throughput(database) == speeds["database"]
    shared = database.get_container_client("shared")
    assert shared.read()["partitionKey"]["paths"] == ["/pk"]
    assert not [o for o in cosmos.client_connection.ReadOffers() if o["offerResourceId"] == shared.read()["_rid"]]


def verify_clean(run_cli: Callable[..., CliResult], env: dict[str, str]) -> None:
    result = run_cli("verify", "--json", env=env)
    body = json.loads(result.stdout)
    assert result.code == 0 and body["clean"], [c for c in body["containers"] if c["state"] != "ok"]


@pytest.fixture
def every_property(tmp_path: Path, run_cli: Callable[..., CliResult]) -> dict[str, str]:
    env = {"COSMIGRATE_MIGRATIONS": str(write_set(tmp_path / "migrations"))}
    assert run_cli("hash", env=env).code == 0
    return env


def test_every_property_goes_up_changes_goes_down_and_up_again_as_declared(
    run_cli: Callable[..., CliResult], cosmos: CosmosClient, database_name: str, every_property: dict[str, str]
) -> None:
    env = every_property
    checked = run_cli("check", env=env)
    assert checked.code == 0, checked.stderr
    plan = run_cli("plan", env=env)
    assert plan.code == 0, plan.stderr
    for shown in (
        "vector embedding /embedding float32[8] cosine",
        "computed         cp_lower = SELECT VALUE LOWER(c.name) FROM c",
        "throughput       400 RU/s (manual)",
        "autoscale up to 1,000 RU/s",
        "analytical TTL   forever (-1)",
        "default TTL      3600 s",
    ):
        assert shown in plan.stdout, (shown, plan.stdout)
    assert "{" not in plan.stdout and "'" not in plan.stdout.replace("'s", "")  # no Python reprs
    assert cosmos.get_database_client(database_name) and database_name not in [d["id"] for d in cosmos.list_databases()]

    first = run_cli("up", "--to", "001", "--create-database", "--database-throughput", "400", env=env)
    assert first.code == 0, first.stderr
    assert_reads_back(cosmos, database_name, V1)
    verify_clean(run_cli, env)

    shown = run_cli("plan", env=env).stdout
    assert (
        "throughput now: database 400 RU/s (manual) (shared); docs 400 RU/s (manual); scaled autoscale up to 1,000 "
        "RU/s; shared the database's"
    ) in shown
    for before_after in (
        "throughput 400 RU/s (manual) → 800 RU/s (manual)",
        "throughput autoscale up to 1,000 RU/s → 400 RU/s (manual) (a migration of the offer)",
        "throughput 400 RU/s (manual) → autoscale up to 1,000 RU/s (a migration of the offer)",
        "default TTL 3600 s → off",
        "+ full-text path /title (language en-US)",
        "analytical TTL forever (-1) → 86400 s",
        "change container docs, updating default TTL, computed, full-text, analytical TTL, throughput",
    ):
        assert before_after in shown, (before_after, shown)
    changed = json.loads(run_cli("plan", "--json", env=env).stdout)
    updates = {o["container"] for r in changed["revisions"] for o in r["operations"] if o["effect"] == "update"}
    assert {"docs", "scaled"} <= updates
    second = run_cli("up", env=env)
    assert second.code == 0, second.stderr
    assert_reads_back(cosmos, database_name, V2)
    verify_clean(run_cli, env)

    back = run_cli("down", "--to", "001", env=env)
    assert back.code == 0, back.stderr
    assert_reads_back(cosmos, database_name, V1)
    verify_clean(run_cli, env)
    base = run_cli("down", "--to", "base", "--yes", env=env)
    assert base.code == 0, base.stderr
    left = {c["id"] for c in cosmos.get_database_client(database_name).list_containers()}
    assert not left & {"docs", "scaled", "shared"}
    again = run_cli("up", env=env)
    assert again.code == 0, again.stderr
    assert_reads_back(cosmos, database_name, V2)
    verify_clean(run_cli, env)


def test_drift_made_with_the_plain_client_is_reported_path_by_path(
    run_cli: Callable[..., CliResult], cosmos: CosmosClient, database_name: str, every_property: dict[str, str]
) -> None:
    env = every_property
    assert run_cli("up", "--to", "001", "--create-database", "--database-throughput", "400", env=env).code == 0
    database = cosmos.get_database_client(database_name)
    database.delete_container("docs")  # made again by hand: vector index gone, computed property edited, TTL off
    database.create_container(
        "docs",
        PartitionKey("/tenantId"),
        unique_key_policy={"uniqueKeys": [{"paths": ["/tenantId", "/slug"]}]},
        indexing_policy={k: v for k, v in POLICY_1.items() if k != "vectorIndexes"},
        computed_properties=[{"name": "cp_lower", "query": "SELECT VALUE UPPER(c.name) FROM c"}],
        vector_embedding_policy=EMBEDDING,
        full_text_policy=FULL_TEXT_1,
        conflict_resolution_policy=CONFLICTS,
        analytical_storage_ttl=-1,
        offer_throughput=500,
    )
    database.get_container_client("scaled").replace_throughput(ThroughputProperties(auto_scale_max_throughput=2000))
    result = run_cli("verify", "--json", env=env)
    assert result.code == 1
    body = json.loads(result.stdout)
    drifted = [c for c in body["containers"] if c["state"] == "drift"]
    found = {c["container"]: [d["message"] for d in c["differences"]] for c in drifted}
    assert sorted(found) == ["docs", "scaled"], found
    assert sorted(found["docs"]) == [
        "docs: computed property cp_lower = SELECT VALUE LOWER(c.name) FROM c is declared but not live",
        "docs: computed property cp_lower = SELECT VALUE UPPER(c.name) FROM c is live but not declared",
        "docs: defaultTtl is none live, 3600 declared",
        "docs: throughput is 500 RU/s (manual) live, 400 RU/s (manual) declared",
        "docs: vector index /embedding (type flat) is declared but not live",
    ]
    assert found["scaled"] == [
        "scaled: throughput is autoscale up to 2,000 RU/s live, autoscale up to 1,000 RU/s declared"
    ]
    text = run_cli("verify", env=env)
    assert text.code == 1 and "computed property cp_lower" in text.stdout
