"""The launcher's corrections to @vercel/cosmosdb-server, checked through the ordinary azure-cosmos client."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest
from azure.cosmos import ContainerProxy, CosmosClient, DatabaseProxy, PartitionKey
from azure.cosmos import exceptions as cosmos_errors
from azure.cosmos.partition_key import NonePartitionKeyValue

from cosmigrate.config import EMULATOR_KEY
from cosmigrate.store.client import PROGRESS_HEADER, replace_container
from tests.harness.local_endpoint import start_endpoint
from tests.harness.rest import master_token, send


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


def test_a_point_read_with_the_undefined_partition_key_value_finds_the_document_without_one(
    database: DatabaseProxy,
) -> None:
    container = database.create_container("loose", partition_key=PartitionKey("/pk"))
    container.create_item({"id": "bare", "v": 1})
    container.create_item({"id": "keyed", "pk": "p", "v": 2})
    assert container.read_item("bare", partition_key=NonePartitionKeyValue)["v"] == 1
    assert container.read_item("keyed", partition_key="p")["v"] == 2
    for missing in ("keyed", "nope"):  # a document with a key value is not under the undefined one
        with pytest.raises(cosmos_errors.CosmosResourceNotFoundError):
            container.read_item(missing, partition_key=NonePartitionKeyValue)


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


# -- transactional batch -------------------------------------------------------------------------------------------
# The package's batch handler fails every batch from the Python client (it wants a partition key inside each
# operation) and is not atomic. The launcher runs a batch in one logical partition, all or nothing, and answers a
# failed one as Azure does: 207, the failing operation's own status, 424 for every other operation.


def _documents(container: ContainerProxy) -> dict[tuple[str, str], dict[str, Any]]:
    """Every document with its system properties (_etag, _ts, _rid): a rolled-back batch leaves them all equal."""
    return {(document["pk"], document["id"]): document for document in container.read_all_items()}


def _seeded(database: DatabaseProxy) -> tuple[ContainerProxy, dict[str, Any]]:
    """Documents a and b in partition "p" (a's first version returned), and an "a" in another partition."""
    container = database.create_container("batch", partition_key=PartitionKey("/pk"))
    first = container.create_item({"id": "a", "pk": "p", "v": 1})
    container.create_item({"id": "b", "pk": "p", "v": 1})
    container.create_item({"id": "a", "pk": "other", "v": 1})
    return container, first


def _failed_batch(container: ContainerProxy, operations: list[Any]) -> cosmos_errors.CosmosBatchOperationError:
    with pytest.raises(cosmos_errors.CosmosBatchOperationError) as failed:
        container.execute_item_batch(operations, partition_key="p")
    return failed.value


def test_a_batch_of_upsert_create_and_conditional_replace_commits_all(database: DatabaseProxy) -> None:
    container, first = _seeded(database)
    results = container.execute_item_batch(
        [
            ("upsert", ({"id": "b", "pk": "p", "v": 2},)),
            ("create", ({"id": "c", "pk": "p", "v": 3},)),
            ("replace", ("a", {"id": "a", "pk": "p", "v": 4}), {"if_match_etag": first["_etag"]}),
        ],
        partition_key="p",
    )
    assert [r["statusCode"] for r in results] == [200, 201, 200]
    stored = _documents(container)
    assert {key: d["v"] for key, d in stored.items()} == {
        ("p", "a"): 4,
        ("p", "b"): 2,
        ("p", "c"): 3,
        ("other", "a"): 1,
    }
    for result in results:  # each result carries the stored document and its ETag, as a single call does
        assert result["eTag"] == result["resourceBody"]["_etag"]
        assert result["resourceBody"] == stored[("p", result["resourceBody"]["id"])]


def test_a_batch_whose_replace_has_a_stale_etag_fails_412_and_writes_nothing(database: DatabaseProxy) -> None:
    container, first = _seeded(database)
    container.upsert_item({"id": "a", "pk": "p", "v": 2})  # first["_etag"] is stale from here on
    before = _documents(container)
    error = _failed_batch(
        container,
        [
            ("create", ({"id": "new", "pk": "p"},)),
            ("upsert", ({"id": "b", "pk": "p", "v": 9},)),
            ("delete", ("a",)),
            ("replace", ("b", {"id": "b", "pk": "p", "v": 10}), {"if_match_etag": first["_etag"]}),
            ("read", ("b",)),
        ],
    )
    assert (error.error_index, error.status_code) == (3, 412)
    assert [r["statusCode"] for r in error.operation_responses] == [424, 424, 424, 412, 424]
    assert _documents(container) == before  # the create, the upsert and the delete were all undone


def test_a_batch_creating_an_existing_id_fails_409_and_writes_nothing(database: DatabaseProxy) -> None:
    container, _ = _seeded(database)
    before = _documents(container)
    error = _failed_batch(
        container,
        [
            ("patch", ("b", [{"op": "set", "path": "/v", "value": 5}])),
            ("create", ({"id": "c", "pk": "p"},)),
            ("create", ({"id": "a", "pk": "p"},)),
        ],
    )
    assert (error.error_index, error.status_code) == (2, 409)
    assert _documents(container) == before


def test_a_read_inside_a_batch_returns_the_document_as_the_batch_left_it(database: DatabaseProxy) -> None:
    container, first = _seeded(database)
    results = container.execute_item_batch(
        [("read", ("a",)), ("patch", ("a", [{"op": "incr", "path": "/v", "value": 41}])), ("read", ("a",))],
        partition_key="p",
    )
    assert [r["statusCode"] for r in results] == [200, 200, 200]
    assert results[0]["resourceBody"] == first and results[0]["eTag"] == first["_etag"]
    assert results[2]["resourceBody"] == container.read_item("a", "p") and results[2]["resourceBody"]["v"] == 42
    error = _failed_batch(container, [("read", ("a",)), ("read", ("missing",))])  # a missing document: 404
    assert (error.error_index, error.status_code) == (1, 404)


def test_a_delete_with_a_stale_etag_fails_412_and_keeps_the_document(database: DatabaseProxy) -> None:
    container, first = _seeded(database)
    container.upsert_item({"id": "a", "pk": "p", "v": 2})
    before = _documents(container)
    error = _failed_batch(container, [("delete", ("b",)), ("delete", ("a",), {"if_match_etag": first["_etag"]})])
    assert (error.error_index, error.status_code) == (1, 412)
    assert _documents(container) == before
    current = container.read_item("a", "p")["_etag"]  # with the current ETag the same batch goes through
    container.execute_item_batch(
        [("delete", ("b",)), ("delete", ("a",), {"if_match_etag": current})], partition_key="p"
    )
    assert list(_documents(container)) == [("other", "a")]


def test_a_batch_checks_unique_keys_of_several_paths_together(database: DatabaseProxy) -> None:
    container = database.create_container(
        "providers",
        partition_key=PartitionKey("/category"),
        unique_key_policy={"uniqueKeys": [{"paths": ["/category", "/provider"]}]},
    )
    container.execute_item_batch(  # same category, other providers: accepted
        [
            ("create", ({"id": "1", "category": "crm", "provider": "salesforce"},)),
            ("create", ({"id": "2", "category": "crm", "provider": "hubspot"},)),
        ],
        partition_key="crm",
    )
    with pytest.raises(cosmos_errors.CosmosBatchOperationError) as refused:
        container.execute_item_batch(
            [
                ("create", ({"id": "3", "category": "crm", "provider": "pipedrive"},)),
                ("upsert", ({"id": "4", "category": "crm", "provider": "salesforce"},)),  # a repeated pair
            ],
            partition_key="crm",
        )
    assert (refused.value.error_index, refused.value.status_code) == (1, 409)
    assert sorted(d["id"] for d in container.read_all_items()) == ["1", "2"]


def test_a_batch_stays_in_its_partition_and_within_100_operations(database: DatabaseProxy) -> None:
    container, _ = _seeded(database)
    before = _documents(container)
    error = _failed_batch(container, [("create", ({"id": "c", "pk": "p"},)), ("create", ({"id": "d", "pk": "q"},))])
    assert (error.error_index, error.status_code) == (1, 400)  # a document of another partition
    assert _documents(container) == before
    too_many = [("create", ({"id": f"n{i}", "pk": "p"},)) for i in range(101)]
    with pytest.raises(cosmos_errors.CosmosHttpResponseError) as refused:
        container.execute_item_batch(too_many, partition_key="p")
    assert refused.value.status_code == 400
    assert len(container.execute_item_batch(too_many[:100], partition_key="p")) == 100


# -- key check -----------------------------------------------------------------------------------------------------
# The package accepts any key. The launcher checks each request's master-key signature as Cosmos DB does, against
# COSMOS_LOCAL_KEY (the tests' endpoint is started with the emulator's well-known key), and answers 401 otherwise.


def _another_key() -> str:
    return base64.b64encode(os.urandom(64)).decode()  # valid base64, as long as a real key


def test_the_right_key_is_accepted_also_for_ids_that_need_encoding(database: DatabaseProxy) -> None:
    # the signature covers the resource link with its ids decoded, the request line carries them encoded
    container = database.create_container("cont ainer ü", partition_key=PartitionKey("/pk"))
    container.create_item({"id": "a b+ü%", "pk": "p ü"})
    assert container.read_item("a b+ü%", partition_key="p ü")["id"] == "a b+ü%"
    query = {"query": "SELECT * FROM c WHERE c.pk = @pk", "parameters": [{"name": "@pk", "value": "p ü"}]}
    assert [d["id"] for d in container.query_items(**query, partition_key="p ü")] == ["a b+ü%"]


def test_another_key_is_refused_401_on_every_call(endpoint: str, cosmos: CosmosClient, database_name: str) -> None:
    wrong = _another_key()
    with pytest.raises(cosmos_errors.CosmosHttpResponseError) as refused:  # the account read, when it is built
        CosmosClient(endpoint, credential=wrong, connection_verify=False)
    assert refused.value.status_code == 401 and "authorization token can't serve the request" in str(refused.value)

    # A client is built with the right key (it reads the account first), then signs with another one: its own
    # signing code, real requests to the real server.
    with CosmosClient(endpoint, credential=EMULATOR_KEY, connection_verify=False) as client:
        client.client_connection.master_key = wrong
        calls = {
            "account read": client.get_database_account,
            "database create": lambda: client.create_database(database_name),
        }
        for name, call in calls.items():
            with pytest.raises(cosmos_errors.CosmosHttpResponseError) as refused:
                call()
            assert refused.value.status_code == 401, name
        assert database_name not in [d["id"] for d in cosmos.list_databases()]

        stored = cosmos.create_database(database_name).create_container("c", partition_key=PartitionKey("/pk"))
        document = stored.create_item({"id": "a", "pk": "p", "v": 1})
        theirs = client.get_database_client(database_name).get_container_client("c")
        for name, call in {
            "item read": lambda: theirs.read_item("a", partition_key="p"),
            "item write": lambda: theirs.upsert_item({"id": "a", "pk": "p", "v": 2}),
        }.items():
            with pytest.raises(cosmos_errors.CosmosHttpResponseError) as refused:
                call()
            assert refused.value.status_code == 401, name
        assert stored.read_item("a", partition_key="p") == document


def test_the_key_checked_is_the_one_in_cosmos_local_key() -> None:
    key = _another_key()
    server = start_endpoint(key=key)
    try:
        with CosmosClient(server.url, credential=key, connection_verify=False) as client:
            container = client.create_database("d").create_container("c", partition_key=PartitionKey("/pk"))
            container.create_item({"id": "a", "pk": "p"})
            assert container.read_item("a", partition_key="p")["id"] == "a"
        with pytest.raises(cosmos_errors.CosmosHttpResponseError) as refused:  # the well-known key is not it now
            CosmosClient(server.url, credential=EMULATOR_KEY, connection_verify=False)
        assert refused.value.status_code == 401
    finally:
        server.stop()


def _get(url: str, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    status, _, body = send("GET", url, headers)
    return status, body


def test_a_signature_serves_only_the_request_it_was_made_for(endpoint: str, database: DatabaseProxy) -> None:
    container = database.create_container("c", partition_key=PartitionKey("/pk"))
    container.create_item({"id": "a", "pk": "p"})
    container.create_item({"id": "b", "pk": "p"})
    link = f"dbs/{database.id}/colls/c/docs/a"
    date = formatdate(usegmt=True)
    headers = {"x-ms-date": date, "x-ms-documentdb-partitionkey": '["p"]', "x-ms-version": "2020-07-15"}
    signed = {**headers, "authorization": master_token("GET", "docs", link, date)}
    status, body = _get(f"{endpoint}/{link}", signed)
    assert (status, body["id"]) == (200, "a")
    for url, sent in [
        (f"{endpoint}/dbs/{database.id}/colls/c/docs/b", signed),  # another document
        (f"{endpoint}/{link}", {**signed, "x-ms-date": formatdate(time.time() + 1, usegmt=True)}),  # another date
        (f"{endpoint}/{link}", {**headers, "authorization": master_token("DELETE", "docs", link, date)}),  # verb
    ]:
        status, body = _get(url, sent)
        assert status == 401 and body["code"] == "Unauthorized", url
        assert body["message"].startswith("The input authorization token can't serve the request.")
    status, body = _get(f"{endpoint}/", headers)  # no token at all, on the account read
    assert (status, body["code"]) == (401, "Unauthorized")


@pytest.mark.parametrize("args", [("--help",), ("-h",), ("start", "--help"), ("help",)])
def test_the_launcher_command_line_has_help(args: tuple[str, ...], tmp_path: Path) -> None:
    helped = subprocess.run(
        [sys.executable, "-m", "cosmigrate.testing.endpoint", *args],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert helped.returncode == 0 and helped.stdout.startswith("usage: ") and "stop" in helped.stdout
    assert list(tmp_path.iterdir()) == []  # help starts nothing


def test_the_launcher_refuses_an_unknown_verb_with_its_usage() -> None:
    wrong = subprocess.run(
        [sys.executable, "-m", "cosmigrate.testing.endpoint", "begin"], capture_output=True, text=True, timeout=60
    )
    assert wrong.returncode == 2 and wrong.stderr.startswith("usage: ") and wrong.stdout == ""


@pytest.mark.parametrize("args", [("status", "--port"), ("status", "--port", "x"), ("start", "--port", "70000")])
def test_the_launcher_refuses_a_bad_port_in_one_line(args: tuple[str, ...], tmp_path: Path) -> None:
    refused = subprocess.run(
        [sys.executable, "-m", "cosmigrate.testing.endpoint", *args], cwd=tmp_path, capture_output=True, text=True
    )
    assert refused.returncode == 2 and refused.stderr.startswith("error: --port takes a port number")
    assert "Traceback" not in refused.stderr and list(tmp_path.iterdir()) == []
