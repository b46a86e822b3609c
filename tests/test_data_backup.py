"""export_containers / import_containers against the real local endpoint: a round trip into a new database, and
the refusals (a tampered or truncated file, a container that exists with other immutable properties)."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.cosmos import CosmosClient, DatabaseProxy, PartitionKey, ThroughputProperties

from cosmigrate.data import BackupError, export_containers, import_containers
from cosmigrate.errors import DefinitionConflict, DefinitionDiffers
from cosmigrate.store.client import SYSTEM_PROPERTIES
from tests.conftest import CliResult
from tests.harness.data import all_documents, seeded_container


@pytest.fixture
def other_database(cosmos: CosmosClient) -> Iterator[DatabaseProxy]:
    name = f"t{uuid.uuid4().hex[:12]}"
    yield cosmos.create_database(name)
    cosmos.delete_database(name)


@pytest.fixture
def source(endpoint: str, database: DatabaseProxy) -> DatabaseProxy:
    seeded_container(endpoint, database, "bulk", 2500)
    providers = database.create_container(
        "providers",
        partition_key=PartitionKey("/category"),
        unique_key_policy={"uniqueKeys": [{"paths": ["/category", "/provider"]}]},
        indexing_policy={
            "includedPaths": [{"path": "/provider/?"}],
            "excludedPaths": [{"path": "/*"}],
            "compositeIndexes": [[{"path": "/category"}, {"path": "/provider", "order": "descending"}]],
        },
    )
    for i, (category, provider) in enumerate([("crm", "salesforce"), ("crm", "hubspot"), ("chat", "slack")]):
        providers.create_item(
            {"id": str(i), "category": category, "provider": provider, "name": "Zoë ✓", "nested": {"a": [1, None]}}
        )
    database.create_container(  # empty, autoscale
        "events",
        partition_key=PartitionKey("/tenantId"),
        default_ttl=3600,
        offer_throughput=ThroughputProperties(auto_scale_max_throughput=2000),
    )
    return database


def _definition(database: DatabaseProxy, name: str) -> dict[str, Any]:
    properties = database.get_container_client(name).read()
    return {k: v for k, v in properties.items() if k not in SYSTEM_PROPERTIES}


@pytest.mark.parametrize("gzip", [False, True])
def test_export_then_import_into_a_new_database_gives_identical_definitions_and_documents(
    source: DatabaseProxy, other_database: DatabaseProxy, tmp_path: Path, gzip: bool
) -> None:
    manifest = export_containers(source, None, tmp_path, gzip=gzip)
    names = ["bulk", "events", "providers"]
    assert sorted(manifest.containers) == names
    assert {n: c.count for n, c in manifest.containers.items()} == {"bulk": 2500, "events": 0, "providers": 3}
    for name, entry in manifest.containers.items():  # the manifest's sha256 are those of the files
        for file_name, sha in entry.files.items():
            assert hashlib.sha256((tmp_path / name / file_name).read_bytes()).hexdigest() == sha
    assert json.loads((tmp_path / "manifest.json").read_text())["database"] == source.id

    totals = import_containers(other_database, tmp_path)
    assert totals.created == tuple(names) and totals.documents == {"bulk": 2500, "events": 0, "providers": 3}
    for name in names:
        assert _definition(other_database, name) == _definition(source, name), name
        assert all_documents(other_database.get_container_client(name)) == all_documents(
            source.get_container_client(name)
        ), name

    events = other_database.get_container_client("events").get_throughput()  # throughput travels with the backup
    assert (
        events.auto_scale_max_throughput,
        json.loads((tmp_path / "events" / "definition.json").read_text())["throughput"],
    ) == (2000, {"autoscale_max": 2000})
    again = import_containers(other_database, tmp_path, names=["providers"])  # an interrupted import is re-run
    assert again.created == () and again.documents == {"providers": 3}
    assert len(all_documents(other_database.get_container_client("providers"))) == 3


@pytest.mark.parametrize("damage", ["changed value", "truncated", "definition edited", "file missing"])
def test_a_tampered_export_is_refused_before_anything_is_written(
    source: DatabaseProxy, other_database: DatabaseProxy, tmp_path: Path, damage: str
) -> None:
    export_containers(source, ["providers", "bulk"], tmp_path)
    documents = tmp_path / "bulk" / "documents.jsonl"
    lines = documents.read_text(encoding="utf-8").splitlines(keepends=True)
    if damage == "changed value":
        documents.write_text("".join(lines).replace('"n": 7,', '"n": 8,', 1), encoding="utf-8")
        broken = documents
    elif damage == "truncated":
        documents.write_text("".join(lines[:-1]), encoding="utf-8")
        broken = documents
    elif damage == "definition edited":
        broken = tmp_path / "providers" / "definition.json"
        broken.write_text(broken.read_text().replace("/category", "/kind"), encoding="utf-8")
    else:
        broken = documents
        documents.unlink()
    with pytest.raises(BackupError) as refused:
        import_containers(other_database, tmp_path)
    assert str(broken) in str(refused.value)
    assert list(other_database.list_containers()) == []  # checked before touching the database


def test_import_refuses_a_container_that_exists_with_another_partition_key(
    source: DatabaseProxy, other_database: DatabaseProxy, tmp_path: Path
) -> None:
    export_containers(source, ["providers"], tmp_path)
    other_database.create_container("providers", partition_key=PartitionKey("/provider"))
    with pytest.raises(DefinitionConflict, match="providers exists .* partition key"):
        import_containers(other_database, tmp_path)
    assert all_documents(other_database.get_container_client("providers")) == {}


def test_import_refuses_a_container_that_exists_with_other_unique_keys(
    source: DatabaseProxy, other_database: DatabaseProxy, tmp_path: Path
) -> None:
    export_containers(source, ["providers"], tmp_path)
    other_database.create_container("providers", partition_key=PartitionKey("/category"))  # no unique keys
    with pytest.raises(DefinitionConflict, match="unique keys"):
        import_containers(other_database, tmp_path)


def test_an_unfinished_export_has_no_manifest_and_is_refused(other_database: DatabaseProxy, tmp_path: Path) -> None:
    (tmp_path / "bulk").mkdir()
    (tmp_path / "bulk" / "documents.jsonl").write_text('{"id": "1"}\n')
    with pytest.raises(BackupError, match="manifest.json is missing"):
        import_containers(other_database, tmp_path)


def test_import_into_a_container_with_other_mutable_settings_names_them_and_refuses(
    source: DatabaseProxy, other_database: DatabaseProxy, tmp_path: Path
) -> None:
    """On Azure, documents restored under a shorter TTL may expire at once: the import says so before writing."""
    export_containers(source, ["events", "providers"], tmp_path)
    other_database.create_container("events", partition_key=PartitionKey("/tenantId"), default_ttl=60)
    with pytest.raises(DefinitionDiffers) as refused:
        import_containers(other_database, tmp_path, names=["events"])
    message = str(refused.value)
    assert "defaultTtl is 60 live, 3600 in the backup" in message and "--adopt-live" in message
    assert "throughput" in message and refused.value.detail["properties"] == ["defaultTtl", "throughput"]
    kept = import_containers(other_database, tmp_path, names=["events"], adopt_live=True)
    assert kept.created == () and other_database.get_container_client("events").read()["defaultTtl"] == 60


def test_import_cli_applies_the_saved_definition_or_keeps_the_live_one(
    source: DatabaseProxy, other_database: DatabaseProxy, tmp_path: Path, run_cli: Callable[..., CliResult]
) -> None:
    export_containers(source, ["providers"], tmp_path)
    other_database.create_container(  # same keys, another indexing policy
        "providers",
        partition_key=PartitionKey("/category"),
        unique_key_policy={"uniqueKeys": [{"paths": ["/category", "/provider"]}]},
        default_ttl=30,
    )
    env = {"COSMOS_DATABASE": other_database.id}
    refused = run_cli("import", str(tmp_path), env=env)
    assert refused.code == 1 and refused.stderr.strip().count("\n") == 0, refused.stderr
    assert "included path /provider/? is in the backup but not live" in refused.stderr
    assert "defaultTtl is 30 live, none in the backup" in refused.stderr
    assert all_documents(other_database.get_container_client("providers")) == {}  # nothing written
    both = run_cli("import", str(tmp_path), "--adopt-live", "--apply-definition", env=env)
    assert both.code == 2 and "exclude each other" in both.stderr
    applied = run_cli("import", str(tmp_path), "--apply-definition", "--json", env=env)
    assert applied.code == 0, applied.stderr
    body = json.loads(applied.stdout)
    assert body["documents"] == {"providers": 3} and body["applied"], body
    assert _definition(other_database, "providers") == _definition(source, "providers")
