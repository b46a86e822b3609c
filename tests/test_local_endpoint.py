"""The launcher's corrections to @vercel/cosmosdb-server, checked through the ordinary azure-cosmos client."""

from __future__ import annotations

import time

import pytest
from azure.cosmos import DatabaseProxy, PartitionKey
from azure.cosmos import exceptions as cosmos_errors

from cosmigrate.store.client import PROGRESS_HEADER, replace_container


def test_replacing_a_container_keeps_its_documents_and_unique_keys(database: DatabaseProxy) -> None:
    container = database.create_container(
        "things", partition_key=PartitionKey("/pk"), unique_key_policy={"uniqueKeys": [{"paths": ["/code"]}]}
    )
    for i in range(10):
        container.create_item({"id": str(i), "pk": "a", "code": f"c{i}"})
    properties = container.read()
    properties["indexingPolicy"] = {"includedPaths": [{"path": "/code/*"}], "excludedPaths": [{"path": "/*"}]}
    replace_container(database, properties)
    assert sorted(d["id"] for d in container.read_all_items()) == [str(i) for i in range(10)]
    with pytest.raises(cosmos_errors.CosmosResourceExistsError):  # the unique index survived too
        container.create_item({"id": "x", "pk": "a", "code": "c3"})
    container.create_item({"id": "y", "pk": "a", "code": "new"})  # and the store still takes writes


def test_a_unique_key_of_several_paths_is_checked_on_the_paths_together(database: DatabaseProxy) -> None:
    container = database.create_container(
        "providers",
        partition_key=PartitionKey("/category"),
        unique_key_policy={"uniqueKeys": [{"paths": ["/category", "/provider"]}]},
    )
    container.create_item({"id": "1", "category": "crm", "provider": "salesforce"})
    container.create_item({"id": "2", "category": "crm", "provider": "hubspot"})  # same category: accepted
    with pytest.raises(cosmos_errors.CosmosResourceExistsError) as refused:
        container.create_item({"id": "3", "category": "crm", "provider": "salesforce"})
    assert refused.value.status_code == 409
    # a replace that would collide is refused as well; one that keeps its own pair is fine
    with pytest.raises(cosmos_errors.CosmosResourceExistsError):
        container.replace_item("2", {"id": "2", "category": "crm", "provider": "salesforce"})
    container.replace_item("2", {"id": "2", "category": "crm", "provider": "hubspot", "name": "HubSpot"})


def test_an_upsert_colliding_on_a_unique_key_is_409(database: DatabaseProxy) -> None:
    container = database.create_container(
        "codes", partition_key=PartitionKey("/pk"), unique_key_policy={"uniqueKeys": [{"paths": ["/code"]}]}
    )
    container.upsert_item({"id": "1", "pk": "a", "code": "x"})
    with pytest.raises(cosmos_errors.CosmosResourceExistsError):  # the package answered 500, which clients retry
        container.upsert_item({"id": "2", "pk": "a", "code": "x"})
    container.upsert_item({"id": "1", "pk": "a", "code": "x", "name": "kept"})  # upserting itself is no collision
    assert [d["id"] for d in container.read_all_items()] == ["1"]


def test_a_point_read_of_a_missing_document_is_404(database: DatabaseProxy) -> None:
    container = database.create_container("docs", partition_key=PartitionKey("/pk"))
    with pytest.raises(cosmos_errors.CosmosResourceNotFoundError):
        container.read_item("nope", partition_key="nope")


def test_index_transformation_progress_rises_to_100_after_a_policy_change(database: DatabaseProxy) -> None:
    container = database.create_container("idx", partition_key=PartitionKey("/pk"))
    assert _progress(container) == -1  # nothing running
    properties = container.read()
    properties["indexingPolicy"] = {"includedPaths": [{"path": "/a/*"}], "excludedPaths": [{"path": "/*"}]}
    replace_container(database, properties)
    seen = [_progress(container)]
    while seen[-1] != 100:
        time.sleep(0.2)
        seen.append(_progress(container))
        assert len(seen) < 50
    assert seen[0] < 50 and seen == sorted(seen)  # starts low, never goes back
    assert _progress(container) == -1  # done: back to "nothing running"


def _progress(container: object) -> int:
    headers = container.read(populate_quota_info=True).get_response_headers()  # type: ignore[attr-defined]
    return int(headers[PROGRESS_HEADER])
