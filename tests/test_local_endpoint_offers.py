"""Throughput (offers) and container properties on the local endpoint, as Azure has them, through the plain
azure-cosmos client (and raw signed requests where the client cannot send what Azure takes).

Switching an offer between manual and autoscale is a PUT of the offer with a migrate header, which the Python SDK
never sends. Two ways to send it, both used below::

    connection = cosmos.client_connection
    offer = container.get_throughput().properties            # the offer as read
    connection.ReplaceOffer(offer["_self"], offer, headers={"x-ms-cosmos-migrate-offer-to-autopilot": "true"})

or a raw signed PUT of ``/offers/{rid}`` (resource type "offers", link: the rid alone, lower-cased), as
``tests.harness.rest.signed`` does.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from azure.cosmos import ContainerProxy, CosmosClient, DatabaseProxy, PartitionKey, ThroughputProperties
from azure.cosmos import exceptions as cosmos_errors

from tests.harness.rest import signed

TO_AUTOSCALE = "x-ms-cosmos-migrate-offer-to-autopilot"
TO_MANUAL = "x-ms-cosmos-migrate-offer-to-manual-throughput"
MIN_THROUGHPUT = "x-ms-cosmos-min-throughput"
SYSTEM = ("_rid", "_ts", "_self", "_etag", "_docs", "_sprocs", "_triggers", "_udfs", "_conflicts")
PK = {"paths": ["/pk"], "kind": "Hash", "version": 2}


# -- helpers ---------------------------------------------------------------------------------------------------------


def _offers_of(cosmos: CosmosClient, owner: dict[str, Any]) -> list[dict[str, Any]]:
    """The offers whose owner is ``owner`` (database or container properties), from the full offer feed."""
    return [offer for offer in cosmos.client_connection.ReadOffers() if offer["offerResourceId"] == owner["_rid"]]


def _read_offer(cosmos: CosmosClient, offer: dict[str, Any]) -> Any:
    """GET /offers/{rid}: the offer, with the response headers (the minimum throughput comes with a GET)."""
    return cosmos.client_connection.ReadOffer(offer["_self"])


def _minimum(cosmos: CosmosClient, offer: dict[str, Any]) -> int:
    return int(_read_offer(cosmos, offer).get_response_headers()[MIN_THROUGHPUT])


def _replace_offer(cosmos: CosmosClient, offer: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    return cosmos.client_connection.ReplaceOffer(offer["_self"], offer, headers=headers or {})


def _refused(call: Callable[[], object], status: int = 400) -> str:
    """The message of the error ``call`` raises, which must have ``status``."""
    with pytest.raises(cosmos_errors.CosmosHttpResponseError) as refused:
        call()
    assert refused.value.status_code == status, str(refused.value)
    return str(refused.value)


def _container_ids(database: DatabaseProxy) -> list[str]:
    return [c["id"] for c in database.list_containers()]


@pytest.fixture
def offer_database(cosmos: CosmosClient, database_name: str) -> Callable[..., DatabaseProxy]:
    """Creates the test's database with the throughput given (removed by ``database_name``)."""

    def create(offer_throughput: int | ThroughputProperties) -> DatabaseProxy:
        return cosmos.create_database(database_name, offer_throughput=offer_throughput)

    return create


# -- offers: create and read -----------------------------------------------------------------------------------------


def test_a_container_created_with_manual_throughput_has_its_offer(
    cosmos: CosmosClient, database: DatabaseProxy
) -> None:
    container = database.create_container("c", partition_key=PartitionKey("/pk"), offer_throughput=400)
    throughput = container.get_throughput()
    assert (throughput.offer_throughput, throughput.auto_scale_max_throughput) == (400, None)
    offer, owner = throughput.properties, container.read()
    assert offer is not None
    rid = offer["_rid"]
    assert (len(rid), offer["id"], offer["_self"]) == (4, rid, f"offers/{rid}/")
    assert (offer["resource"], offer["offerResourceId"]) == (owner["_self"], owner["_rid"])
    assert (offer["offerType"], offer["offerVersion"], offer["content"]) == ("Invalid", "V2", {"offerThroughput": 400})
    assert isinstance(offer["_ts"], int) and offer["_etag"]
    read = _read_offer(cosmos, offer)
    assert read == offer
    headers = read.get_response_headers()
    assert (headers[MIN_THROUGHPUT], headers["x-ms-offer-replace-pending"], headers["etag"]) == (
        "400",
        "false",
        offer["_etag"],
    )
    assert _offers_of(cosmos, owner) == [offer]


def test_a_container_created_with_autoscale_has_an_autopilot_offer(
    cosmos: CosmosClient, database: DatabaseProxy
) -> None:
    container = database.create_container(
        "c", partition_key=PartitionKey("/pk"), offer_throughput=ThroughputProperties(auto_scale_max_throughput=4000)
    )
    throughput = container.get_throughput()
    assert (throughput.auto_scale_max_throughput, throughput.offer_throughput) == (4000, None)
    assert throughput.properties is not None
    # offerThroughput is the current autoscaled RU/s: a tenth of the max when idle
    assert throughput.properties["content"] == {
        "offerThroughput": 400,
        "offerAutopilotSettings": {"maxThroughput": 4000},
    }
    assert _minimum(cosmos, throughput.properties) == 1000  # the lowest max it may be given

    with_increment = database.create_container(
        "d",
        partition_key=PartitionKey("/pk"),
        offer_throughput=ThroughputProperties(auto_scale_max_throughput=1000, auto_scale_increment_percent=3),
    )
    read = with_increment.get_throughput()
    assert (read.auto_scale_max_throughput, read.auto_scale_increment_percent) == (1000, 3)


def test_a_database_created_with_throughput_has_its_offer(
    cosmos: CosmosClient, offer_database: Callable[..., DatabaseProxy]
) -> None:
    database = offer_database(ThroughputProperties(auto_scale_max_throughput=5000))
    throughput = database.get_throughput()
    assert throughput.auto_scale_max_throughput == 5000
    assert throughput.properties is not None
    owner = database.read()
    assert (throughput.properties["resource"], throughput.properties["offerResourceId"]) == (
        owner["_self"],
        owner["_rid"],
    )
    assert _offers_of(cosmos, owner) == [throughput.properties]


def test_a_manual_database_offer_reads_back(cosmos: CosmosClient, offer_database: Callable[..., DatabaseProxy]) -> None:
    database = offer_database(400)
    throughput = database.get_throughput()
    assert (throughput.offer_throughput, throughput.auto_scale_max_throughput) == (400, None)
    assert throughput.properties is not None and throughput.properties["content"] == {"offerThroughput": 400}


def test_offers_can_be_queried_and_listed(cosmos: CosmosClient, database: DatabaseProxy) -> None:
    container = database.create_container("c", partition_key=PartitionKey("/pk"), offer_throughput=700)
    owner = container.read()
    query = {
        "query": "SELECT * FROM root r WHERE r.offerResourceId = @rid",
        "parameters": [{"name": "@rid", "value": owner["_rid"]}],
    }
    found = list(cosmos.client_connection.QueryOffers(query))
    assert [o["content"]["offerThroughput"] for o in found] == [700]
    assert found == _offers_of(cosmos, owner)


# -- offers: replace within a mode, the service's limits -----------------------------------------------------------


def test_manual_throughput_is_replaced_and_its_minimum_follows_the_highest_ever(
    cosmos: CosmosClient, database: DatabaseProxy
) -> None:
    container = database.create_container("c", partition_key=PartitionKey("/pk"), offer_throughput=400)
    before = container.get_throughput().properties
    assert before is not None
    replaced = container.replace_throughput(1000)
    assert replaced.offer_throughput == 1000
    assert replaced.get_response_headers()[MIN_THROUGHPUT] == "400"
    after = container.get_throughput().properties
    assert after is not None
    assert (after["_rid"], after["content"]) == (before["_rid"], {"offerThroughput": 1000})
    assert after["_etag"] != before["_etag"]

    container.replace_throughput(50_000)  # the minimum is now the highest ever / 100
    assert _minimum(cosmos, after) == 500
    message = _refused(lambda: container.replace_throughput(400))
    assert "Requested throughput 400 is less than required minimum throughput 500" in message
    assert container.replace_throughput(500).offer_throughput == 500


def test_an_autoscale_max_is_replaced_and_its_minimum_follows_the_highest_ever(
    cosmos: CosmosClient, database: DatabaseProxy
) -> None:
    container = database.create_container(
        "c", partition_key=PartitionKey("/pk"), offer_throughput=ThroughputProperties(auto_scale_max_throughput=4000)
    )
    container.replace_throughput(ThroughputProperties(auto_scale_max_throughput=20_000))
    throughput = container.get_throughput()
    assert throughput.auto_scale_max_throughput == 20_000
    assert throughput.properties is not None
    assert throughput.properties["content"]["offerThroughput"] == 2000
    assert _minimum(cosmos, throughput.properties) == 2000  # the highest max ever / 10
    message = _refused(lambda: container.replace_throughput(ThroughputProperties(auto_scale_max_throughput=1000)))
    assert "Requested throughput 1000 is less than required minimum throughput 2000" in message
    container.replace_throughput(ThroughputProperties(auto_scale_max_throughput=2000))
    assert container.get_throughput().auto_scale_max_throughput == 2000


@pytest.mark.parametrize(
    ("throughput", "expected"),
    [
        (350, "Requested throughput 350 is less than required minimum throughput 400"),
        (450, "between 400 and 1000000 inclusive in increments of 100"),
        (1_000_100, "between 400 and 1000000 inclusive in increments of 100"),
        (ThroughputProperties(auto_scale_max_throughput=500), "less than required minimum throughput 1000"),
        (ThroughputProperties(auto_scale_max_throughput=-200), "Requested throughput -200 is less than required"),
        (
            ThroughputProperties(auto_scale_max_throughput=1500),
            "between 1000 and 1000000 inclusive in increments of 1000",
        ),
        (ThroughputProperties(offer_throughput=400, auto_scale_max_throughput=4000), "not both"),
    ],
)
def test_a_create_with_throughput_out_of_the_limits_is_400_and_creates_nothing(
    cosmos: CosmosClient, database: DatabaseProxy, throughput: int | ThroughputProperties, expected: str
) -> None:
    message = _refused(
        lambda: database.create_container("c", partition_key=PartitionKey("/pk"), offer_throughput=throughput)
    )
    assert expected in message
    assert _container_ids(database) == []


def test_a_database_with_throughput_out_of_the_limits_is_not_created(cosmos: CosmosClient, database_name: str) -> None:
    message = _refused(lambda: cosmos.create_database(database_name, offer_throughput=300))
    assert "less than required minimum throughput 400" in message
    assert database_name not in [d["id"] for d in cosmos.list_databases()]


def test_a_replace_out_of_the_limits_is_400_and_changes_nothing(cosmos: CosmosClient, database: DatabaseProxy) -> None:
    container = database.create_container("c", partition_key=PartitionKey("/pk"), offer_throughput=400)
    before = container.get_throughput().properties
    for refused in (300, 450, 1_000_100):
        _refused(lambda refused=refused: container.replace_throughput(refused))
    assert container.get_throughput().properties == before


def test_a_replace_with_a_stale_etag_is_412(cosmos: CosmosClient, database: DatabaseProxy) -> None:
    container = database.create_container("c", partition_key=PartitionKey("/pk"), offer_throughput=400)
    offer = container.get_throughput().properties
    assert offer is not None
    stale = offer["_etag"]
    offer["content"]["offerThroughput"] = 500
    updated = _replace_offer(cosmos, offer, {"If-Match": stale})
    assert updated["content"] == {"offerThroughput": 500}
    updated["content"]["offerThroughput"] = 600
    with pytest.raises(cosmos_errors.CosmosAccessConditionFailedError):
        _replace_offer(cosmos, updated, {"If-Match": stale})
    assert container.get_throughput().offer_throughput == 500


def test_an_unknown_offer_is_404(cosmos: CosmosClient, database: DatabaseProxy) -> None:
    with pytest.raises(cosmos_errors.CosmosResourceNotFoundError):
        cosmos.client_connection.ReadOffer("offers/zzzz/")
    container = database.create_container("c", partition_key=PartitionKey("/pk"), offer_throughput=400)
    offer = container.get_throughput().properties
    assert offer is not None
    database.delete_container("c")
    with pytest.raises(cosmos_errors.CosmosResourceNotFoundError):
        _replace_offer(cosmos, offer)


# -- offers: manual <-> autoscale -------------------------------------------------------------------------------------


def test_switching_the_mode_by_a_plain_replace_is_refused(cosmos: CosmosClient, database: DatabaseProxy) -> None:
    manual = database.create_container("m", partition_key=PartitionKey("/pk"), offer_throughput=400)
    offer = manual.get_throughput().properties
    assert offer is not None
    offer["content"] = {"offerThroughput": 400, "offerAutopilotSettings": {"maxThroughput": 4000}}
    message = _refused(lambda: _replace_offer(cosmos, offer))
    assert f"{TO_AUTOSCALE} must be supplied and offercontent must not contain autopilotSettings" in message

    autoscale = database.create_container(
        "a", partition_key=PartitionKey("/pk"), offer_throughput=ThroughputProperties(auto_scale_max_throughput=4000)
    )
    _refused(lambda: autoscale.replace_throughput(4000))  # the SDK's int replace keeps the autopilot settings
    offer = autoscale.get_throughput().properties
    assert offer is not None
    offer["content"] = {"offerThroughput": 4000}
    assert TO_MANUAL in _refused(lambda: _replace_offer(cosmos, offer))
    assert (manual.get_throughput().offer_throughput, autoscale.get_throughput().auto_scale_max_throughput) == (
        400,
        4000,
    )


def test_the_migrate_headers_switch_a_container_both_ways(cosmos: CosmosClient, database: DatabaseProxy) -> None:
    container = database.create_container("c", partition_key=PartitionKey("/pk"), offer_throughput=400)
    manual = container.get_throughput().properties
    assert manual is not None
    migrated = _replace_offer(cosmos, manual, {TO_AUTOSCALE: "true"})
    assert migrated["_rid"] == manual["_rid"] and migrated["_etag"] != manual["_etag"]
    assert migrated["content"] == {"offerThroughput": 100, "offerAutopilotSettings": {"maxThroughput": 1000}}
    read = container.get_throughput()
    assert (read.auto_scale_max_throughput, read.offer_throughput) == (1000, None)

    container.replace_throughput(ThroughputProperties(auto_scale_max_throughput=3000))  # a replace in the new mode
    autoscale = container.get_throughput().properties
    assert autoscale is not None
    back = _replace_offer(cosmos, autoscale, {TO_MANUAL: "true"})
    assert back["content"] == {"offerThroughput": 3000}  # the manual RU/s start at the autoscale max
    assert container.get_throughput().offer_throughput == 3000


@pytest.mark.parametrize(("manual", "expected_max"), [(10_000, 10_000), (1500, 2000), (400, 1000)])
def test_a_migration_to_autoscale_starts_at_the_current_throughput(
    cosmos: CosmosClient, database: DatabaseProxy, manual: int, expected_max: int
) -> None:
    container = database.create_container("c", partition_key=PartitionKey("/pk"), offer_throughput=manual)
    offer = container.get_throughput().properties
    assert offer is not None
    _replace_offer(cosmos, offer, {TO_AUTOSCALE: "true"})
    assert container.get_throughput().auto_scale_max_throughput == expected_max


def test_a_migration_that_does_not_apply_is_refused(cosmos: CosmosClient, database: DatabaseProxy) -> None:
    container = database.create_container("c", partition_key=PartitionKey("/pk"), offer_throughput=400)
    offer = container.get_throughput().properties
    assert offer is not None
    _refused(lambda: _replace_offer(cosmos, offer, {TO_MANUAL: "true"}))  # already manual
    _refused(lambda: _replace_offer(cosmos, offer, {TO_MANUAL: "true", TO_AUTOSCALE: "true"}))
    with_settings = {**offer, "content": {"offerThroughput": 400, "offerAutopilotSettings": {"maxThroughput": 4000}}}
    _refused(lambda: _replace_offer(cosmos, with_settings, {TO_AUTOSCALE: "true"}))
    migrated = _replace_offer(cosmos, offer, {TO_AUTOSCALE: "true"})
    _refused(lambda: _replace_offer(cosmos, migrated, {TO_AUTOSCALE: "true"}))  # already autoscale
    assert container.get_throughput().auto_scale_max_throughput == 1000


def test_a_raw_signed_put_migrates_a_database_offer(
    endpoint: str, cosmos: CosmosClient, offer_database: Callable[..., DatabaseProxy]
) -> None:
    database = offer_database(ThroughputProperties(auto_scale_max_throughput=4000))
    offer = database.get_throughput().properties
    assert offer is not None
    rid = offer["_rid"]
    status, headers, body = signed("PUT", endpoint, f"/offers/{rid}", "offers", rid.lower(), offer, {TO_MANUAL: "true"})
    assert (status, body["content"], headers[MIN_THROUGHPUT]) == (200, {"offerThroughput": 4000}, "400")
    assert database.get_throughput().offer_throughput == 4000
    # one offer is signed by its rid alone: the path as a link does not verify
    status, _, body = signed("GET", endpoint, f"/offers/{rid}", "offers", f"offers/{rid}")
    assert (status, body["code"]) == (401, "Unauthorized")
    status, _, body = signed("GET", endpoint, f"/offers/{rid}", "offers", rid.lower())
    assert (status, body["content"]) == (200, {"offerThroughput": 4000})


# -- offers: shared database throughput, deletes -----------------------------------------------------------------------


def test_a_container_in_a_shared_database_uses_its_offer_unless_it_has_its_own(
    endpoint: str, cosmos: CosmosClient, offer_database: Callable[..., DatabaseProxy]
) -> None:
    database = offer_database(400)
    shared = database.create_container("shared", partition_key=PartitionKey("/pk"))
    dedicated = database.create_container("dedicated", partition_key=PartitionKey("/pk"), offer_throughput=500)
    assert _offers_of(cosmos, shared.read()) == []
    assert dedicated.get_throughput().offer_throughput == 500
    assert database.get_throughput().offer_throughput == 400
    # The service answers the SDK's query for the shared container with no offer (200, an empty list); the SDK
    # turns that into an error of its own (azure-cosmos 4.17.1: an AttributeError in its retry, not a 404).
    query = {
        "query": "SELECT * FROM root r WHERE r.resource=@link",
        "parameters": [{"name": "@link", "value": shared.read()["_self"]}],
    }
    status, _, body = signed(
        "POST",
        endpoint,
        "/offers",
        "offers",
        "",
        query,
        {"x-ms-documentdb-isquery": "True", "content-type": "application/query+json"},
    )
    assert (status, body) == (200, {"_rid": "", "Offers": [], "_count": 0})


def test_a_shared_database_minimum_rises_with_containers_beyond_25(
    cosmos: CosmosClient, offer_database: Callable[..., DatabaseProxy]
) -> None:
    database = offer_database(400)
    offer = database.get_throughput().properties
    assert offer is not None
    for i in range(25):
        database.create_container(f"c{i}", partition_key=PartitionKey("/pk"))
    database.create_container("own", partition_key=PartitionKey("/pk"), offer_throughput=400)  # does not share
    assert _minimum(cosmos, offer) == 400
    for i in range(25, 27):
        database.create_container(f"c{i}", partition_key=PartitionKey("/pk"))
    assert _minimum(cosmos, offer) == 600  # 100 RU/s for each container beyond 25
    assert "less than required minimum throughput 600" in _refused(lambda: database.replace_throughput(500))


def test_deleting_a_container_or_a_database_deletes_its_offers(
    cosmos: CosmosClient, offer_database: Callable[..., DatabaseProxy]
) -> None:
    database = offer_database(400)
    first = database.create_container("first", partition_key=PartitionKey("/pk"), offer_throughput=400)
    second = database.create_container("second", partition_key=PartitionKey("/pk"), offer_throughput=400)
    owners = [database.read(), first.read(), second.read()]
    offers = [_offers_of(cosmos, owner)[0] for owner in owners]
    database.delete_container("first")
    assert [len(_offers_of(cosmos, owner)) for owner in owners] == [1, 0, 1]
    with pytest.raises(cosmos_errors.CosmosResourceNotFoundError):
        _read_offer(cosmos, offers[1])
    cosmos.delete_database(database.id)
    assert [len(_offers_of(cosmos, owner)) for owner in owners] == [0, 0, 0]
    for offer in offers:
        with pytest.raises(cosmos_errors.CosmosResourceNotFoundError):
            _read_offer(cosmos, offer)


# -- container properties: what is stored and returned --------------------------------------------------------------


def test_a_container_reads_back_with_the_defaults_azure_adds(database: DatabaseProxy) -> None:
    container, created = database.create_container("c", partition_key=PartitionKey("/pk"), return_properties=True)
    read = container.read()
    assert created == read
    assert read["partitionKey"] == {"paths": ["/pk"], "kind": "Hash", "version": 2}
    assert read["indexingPolicy"] == {
        "indexingMode": "consistent",
        "automatic": True,
        "includedPaths": [{"path": "/*"}],
        "excludedPaths": [{"path": '/"_etag"/?'}],
    }
    assert read["uniqueKeyPolicy"] == {"uniqueKeys": []}
    assert read["conflictResolutionPolicy"] == {
        "mode": "LastWriterWins",
        "conflictResolutionPath": "/_ts",
        "conflictResolutionProcedure": "",
    }
    assert read["geospatialConfig"] == {"type": "Geography"}
    assert {k: read[k] for k in SYSTEM[4:]} == {
        "_docs": "docs/",
        "_sprocs": "sprocs/",
        "_triggers": "triggers/",
        "_udfs": "udfs/",
        "_conflicts": "conflicts/",
    }
    assert not {"defaultTtl", "analyticalStorageTtl", "computedProperties", "vectorEmbeddingPolicy"} & set(read)
    listed = list(database.list_containers())
    queried = list(database.query_containers("SELECT * FROM r WHERE r.id = 'c'"))
    assert listed == queried == [read]


def test_a_partition_key_without_kind_is_hash_and_keeps_no_version(database: DatabaseProxy) -> None:
    created = database.client_connection.CreateContainer(
        database.database_link, {"id": "c", "partitionKey": {"paths": ["/pk"]}}
    )
    assert created["partitionKey"] == {"paths": ["/pk"], "kind": "Hash"}  # version 1: absent, as Azure returns it


def test_a_null_ttl_is_no_ttl(database: DatabaseProxy) -> None:
    body = {"id": "c", "partitionKey": PK, "defaultTtl": None, "analyticalStorageTtl": None}
    created = database.client_connection.CreateContainer(database.database_link, body)
    assert not {"defaultTtl", "analyticalStorageTtl"} & set(created)


VECTOR_EMBEDDINGS = {
    "vectorEmbeddings": [
        {"path": "/embedding", "dataType": "float32", "dimensions": 8, "distanceFunction": "cosine"},
        {"path": "/small", "dataType": "int8", "dimensions": 4, "distanceFunction": "dotproduct"},
    ]
}
FULL_TEXT = {"defaultLanguage": "en-US", "fullTextPaths": [{"path": "/abstract", "language": "en-US"}]}
RICH_POLICY = {
    "includedPaths": [{"path": "/*"}],
    "excludedPaths": [{"path": "/embedding/*"}, {"path": "/small/*"}],
    "vectorIndexes": [{"path": "/embedding", "type": "flat"}, {"path": "/small", "type": "quantizedFlat"}],
    "fullTextIndexes": [{"path": "/abstract"}],
}
COMPUTED = [{"name": "lowerName", "query": "SELECT VALUE LOWER(c.name) FROM c"}]


def _rich(database: DatabaseProxy, name: str = "rich") -> ContainerProxy:
    return database.create_container(
        name,
        partition_key=PartitionKey("/pk"),
        indexing_policy=RICH_POLICY,
        default_ttl=3600,
        conflict_resolution_policy={"mode": "LastWriterWins", "conflictResolutionPath": "/updatedAt"},
        analytical_storage_ttl=-1,
        computed_properties=COMPUTED,
        vector_embedding_policy=VECTOR_EMBEDDINGS,
        full_text_policy=FULL_TEXT,
    )


def test_every_container_property_is_stored_and_returned(database: DatabaseProxy) -> None:
    read = _rich(database).read()
    assert read["vectorEmbeddingPolicy"] == VECTOR_EMBEDDINGS
    assert read["fullTextPolicy"] == FULL_TEXT
    assert read["computedProperties"] == COMPUTED
    assert (read["defaultTtl"], read["analyticalStorageTtl"]) == (3600, -1)
    assert read["conflictResolutionPolicy"] == {
        "mode": "LastWriterWins",
        "conflictResolutionPath": "/updatedAt",
        "conflictResolutionProcedure": "",
    }
    policy = read["indexingPolicy"]
    assert (policy["vectorIndexes"], policy["fullTextIndexes"]) == (
        RICH_POLICY["vectorIndexes"],
        RICH_POLICY["fullTextIndexes"],
    )
    assert policy["excludedPaths"] == [{"path": "/embedding/*"}, {"path": "/small/*"}, {"path": '/"_etag"/?'}]

    custom = database.client_connection.CreateContainer(
        database.database_link,
        {
            "id": "custom",
            "partitionKey": PK,
            "conflictResolutionPolicy": {
                "mode": "Custom",
                "conflictResolutionProcedure": "dbs/d/colls/custom/sprocs/r",
            },
            "geospatialConfig": {"type": "Geometry"},
        },
    )
    assert custom["conflictResolutionPolicy"] == {
        "mode": "Custom",
        "conflictResolutionPath": "",
        "conflictResolutionProcedure": "dbs/d/colls/custom/sprocs/r",
    }
    assert custom["geospatialConfig"] == {"type": "Geometry"}
    lww = database.create_container(
        "lww",
        partition_key=PartitionKey("/pk"),
        conflict_resolution_policy={"mode": "LastWriterWins", "conflictResolutionPath": ""},
    )
    assert lww.read()["conflictResolutionPolicy"]["conflictResolutionPath"] == "/_ts"  # an empty path is _ts


def _body(**extra: Any) -> dict[str, Any]:
    return {"id": "refused", "partitionKey": PK, **extra}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            _body(indexingPolicy={"vectorIndexes": [{"path": "/v", "type": "flat"}]}),
            "The Vector Indexing Policy's path::/v not matching in Embedding's path.",
        ),
        (
            _body(
                vectorEmbeddingPolicy=VECTOR_EMBEDDINGS,
                indexingPolicy={"vectorIndexes": [{"path": "/embedding", "type": "notFlat"}]},
            ),
            "Index Type::notFlat is invalid",
        ),
        (
            _body(
                vectorEmbeddingPolicy={
                    "vectorEmbeddings": [
                        {"path": "/v", "dataType": "float33", "dimensions": 8, "distanceFunction": "cosine"}
                    ]
                }
            ),
            "Vector Embedding Policy has an invalid DataType",
        ),
        (
            _body(
                vectorEmbeddingPolicy={
                    "vectorEmbeddings": [
                        {"path": "/v", "dataType": "float32", "dimensions": 8000, "distanceFunction": "cosine"}
                    ]
                }
            ),
            "Dimensions:8000 which is more than the maximum supported value",
        ),
        (
            _body(
                vectorEmbeddingPolicy={
                    "vectorEmbeddings": [
                        {"path": "/v", "dataType": "float32", "dimensions": 8, "distanceFunction": "handMeasured"}
                    ]
                }
            ),
            "invalid DistanceFunction:handMeasured",
        ),
        (
            _body(fullTextPolicy={"defaultLanguage": "spa-SPA"}),
            "The Full Text Policy contains an unsupported language spa-SPA",
        ),
        (
            _body(fullTextPolicy={"defaultLanguage": "en-US", "fullTextPaths": [{"path": "abstract"}]}),
            "The Full Text Policy contains an invalid Path: abstract",
        ),
        (
            _body(fullTextPolicy=FULL_TEXT, indexingPolicy={"fullTextIndexes": [{"path": "/other"}]}),
            "The path of the Full Text Index /other does not match the path specified in the Full Text Policy",
        ),
        (
            _body(fullTextPolicy=FULL_TEXT, indexingPolicy={"fullTextIndexes": [{"not_path": "/abstract"}]}),
            "Missing path in full-text index specification at index (0)",
        ),
        (
            _body(conflictResolutionPolicy={"mode": "LastWriterWins", "conflictResolutionProcedure": "p"}),
            "LastWriterWins conflict resolution mode should not have conflict resolution procedure set.",
        ),
        (
            _body(conflictResolutionPolicy={"mode": "Custom", "conflictResolutionPath": "/a"}),
            "Custom conflict resolution mode should not have conflict resolution path set.",
        ),
        (
            _body(conflictResolutionPolicy={"mode": "LastWriterWins", "conflictResolutionPath": "/a/b"}),
            "Invalid path '/a/b' for last writer wins conflict resolution",
        ),
        (_body(defaultTtl=0), "defaultTtl"),
        (_body(analyticalStorageTtl=-2), "analyticalStorageTtl"),
        (_body(computedProperties=[{"name": "n", "query": "SELECT c.name FROM c"}]), "SELECT VALUE"),
        (_body(computedProperties=[{"name": "n", "query": "SELECT VALUE 1 FROM c"}] * 2), "more than once"),
        (_body(geospatialConfig={"type": "Flat"}), "geospatialConfig"),
    ],
)
def test_a_create_azure_refuses_is_400_and_creates_nothing(
    database: DatabaseProxy, body: dict[str, Any], expected: str
) -> None:
    message = _refused(lambda: database.client_connection.CreateContainer(database.database_link, body))
    assert expected in message
    assert _container_ids(database) == []


# -- container properties: replace ----------------------------------------------------------------------------------


def _replace(database: DatabaseProxy, properties: dict[str, Any]) -> dict[str, Any]:
    """A REST replace with the full definition given (system properties left out, as a client sends it)."""
    body = _without_system(properties)
    return dict(database.client_connection.ReplaceContainer(f"{database.database_link}/colls/{body['id']}", body))


def _without_system(properties: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in properties.items() if k not in SYSTEM}


def test_re_sending_what_was_read_is_accepted_unchanged(database: DatabaseProxy) -> None:
    container = _rich(database)
    read = container.read()
    replaced = _replace(database, read)
    assert _without_system(replaced) == _without_system(read) and replaced["_rid"] == read["_rid"]
    assert _without_system(container.read()) == _without_system(read)


def test_a_replace_without_default_ttl_turns_ttl_off(database: DatabaseProxy) -> None:
    container = database.create_container("c", partition_key=PartitionKey("/pk"), default_ttl=3600)
    database.replace_container(container, partition_key=PartitionKey("/pk"), default_ttl=-1)
    assert container.read()["defaultTtl"] == -1
    database.replace_container(container, partition_key=PartitionKey("/pk"))
    assert "defaultTtl" not in container.read()


def test_full_text_and_computed_properties_change_on_replace(database: DatabaseProxy) -> None:
    container = _rich(database)
    read = container.read()
    read["fullTextPolicy"] = {"defaultLanguage": "en-US", "fullTextPaths": [{"path": "/summary"}]}
    read["indexingPolicy"]["fullTextIndexes"] = [{"path": "/summary"}]
    read["computedProperties"] = [{"name": "upperName", "query": "SELECT VALUE UPPER(c.name) FROM c"}]
    _replace(database, read)
    stored = container.read()
    assert stored["fullTextPolicy"] == read["fullTextPolicy"]
    assert stored["indexingPolicy"]["fullTextIndexes"] == [{"path": "/summary"}]
    assert stored["computedProperties"] == read["computedProperties"]


def test_a_partition_key_change_is_400(database: DatabaseProxy) -> None:
    container = database.create_container("c", partition_key=PartitionKey("/pk"))
    read = container.read()
    for changed in ({**PK, "paths": ["/other"]}, {"paths": ["/pk"], "kind": "Hash"}):  # a missing version is 1
        message = _refused(lambda changed=changed: _replace(database, {**read, "partitionKey": changed}))
        assert "Document collection partition key cannot be changed." in message
    _replace(database, {**read, "partitionKey": {"paths": ["/pk"], "version": 2}})  # an absent kind is Hash
    assert container.read()["partitionKey"] == PK


def test_a_unique_key_change_is_403_also_when_the_policy_is_left_out(database: DatabaseProxy) -> None:
    container = database.create_container(
        "c", partition_key=PartitionKey("/pk"), unique_key_policy={"uniqueKeys": [{"paths": ["/code"]}]}
    )
    read = container.read()
    changed = {**read, "uniqueKeyPolicy": {"uniqueKeys": [{"paths": ["/code"]}, {"paths": ["/name"]}]}}
    assert "The unique index cannot be modified" in _refused(lambda: _replace(database, changed), 403)
    # DatabaseProxy.replace_container sends no unique key policy: on Azure that is a change (azure-sdk-for-python#40070)
    policy = {"includedPaths": [{"path": "/code/?"}], "excludedPaths": [{"path": "/*"}]}
    _refused(
        lambda: database.replace_container(container, partition_key=PartitionKey("/pk"), indexing_policy=policy), 403
    )
    assert container.read()["uniqueKeyPolicy"] == {"uniqueKeys": [{"paths": ["/code"]}]}
    _replace(database, {**read, "indexingPolicy": policy})  # re-sent, the replace goes through
    assert container.read()["indexingPolicy"]["includedPaths"] == [{"path": "/code/?"}]


def test_a_conflict_resolution_change_is_400(database: DatabaseProxy) -> None:
    container = database.create_container("c", partition_key=PartitionKey("/pk"))
    read = container.read()
    _replace(database, {**read, "conflictResolutionPolicy": {"mode": "LastWriterWins"}})  # the default, restated
    changed = {**read, "conflictResolutionPolicy": {"mode": "LastWriterWins", "conflictResolutionPath": "/other"}}
    assert "Updating conflict resolution policy is currently not supported." in _refused(
        lambda: _replace(database, changed)
    )
    custom = database.create_container(
        "custom",
        partition_key=PartitionKey("/pk"),
        conflict_resolution_policy={"mode": "LastWriterWins", "conflictResolutionPath": "/v"},
    )
    left_out = {k: v for k, v in custom.read().items() if k != "conflictResolutionPolicy"}  # left out: the default
    assert "Updating conflict resolution policy" in _refused(lambda: _replace(database, left_out))
    assert custom.read()["conflictResolutionPolicy"]["conflictResolutionPath"] == "/v"


def test_vector_policies_cannot_change_on_replace(database: DatabaseProxy) -> None:
    container = _rich(database)
    read = container.read()
    without = {k: v for k, v in read.items() if k != "vectorEmbeddingPolicy"}
    assert "The Vector Indexing Policy's path::/embedding not matching in Embedding's path." in _refused(
        lambda: _replace(database, without)
    )
    dimensions = json.loads(json.dumps(read))
    dimensions["vectorEmbeddingPolicy"]["vectorEmbeddings"][0]["dimensions"] = 16
    assert "Paths in existing embedding policy cannot be modified in Collection Replace." in _refused(
        lambda: _replace(database, dimensions)
    )
    index_type = json.loads(json.dumps(read))
    index_type["indexingPolicy"]["vectorIndexes"][0]["type"] = "quantizedFlat"
    assert "Paths in existing vector indexing policy cannot be modified in Collection Replace." in _refused(
        lambda: _replace(database, index_type)
    )
    assert _without_system(container.read()) == _without_system(read)


def test_the_analytical_store_once_off_stays_off(database: DatabaseProxy) -> None:
    container = database.create_container("c", partition_key=PartitionKey("/pk"), analytical_storage_ttl=-1)
    read = container.read()
    left_out = {k: v for k, v in read.items() if k != "analyticalStorageTtl"}
    assert "analyticalStorageTtl" in _refused(lambda: _replace(database, left_out))
    _replace(database, {**read, "analyticalStorageTtl": 86_400})  # on: any other valid value
    assert container.read()["analyticalStorageTtl"] == 86_400
    _replace(database, {**read, "analyticalStorageTtl": 0})  # off, for good
    assert container.read()["analyticalStorageTtl"] == 0
    assert "cannot be turned on again" in _refused(lambda: _replace(database, {**read, "analyticalStorageTtl": -1}))

    later = database.create_container("later", partition_key=PartitionKey("/pk"))
    _replace(database, {**later.read(), "analyticalStorageTtl": -1})  # never on: it can be turned on later
    assert later.read()["analyticalStorageTtl"] == -1
