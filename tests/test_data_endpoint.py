"""The launcher's section for the data engine (server.js, "Data engine"), through the azure-cosmos client.

Two things the data engine depends on and the package gets wrong: a query scoped to a feed range (how work is
split per physical partition) is refused as "missing partition keys", and every query page copies the container
quadratically. These tests check the first is served and that the linear rewrite of the second returns exactly
what the package's own evaluation would (filters, JOINs, ORDER BY, aggregates, pages).
"""

from __future__ import annotations

from typing import Any

import pytest
from azure.cosmos import ContainerProxy, DatabaseProxy, PartitionKey
from azure.cosmos import exceptions as cosmos_errors


@pytest.fixture
def things(database: DatabaseProxy) -> ContainerProxy:
    container = database.create_container(
        "things",
        partition_key=PartitionKey("/pk"),
        indexing_policy={"compositeIndexes": [[{"path": "/n", "order": "descending"}, {"path": "/id"}]]},
    )
    for i in range(250):
        tags = [{"name": name} for name in ("a", "b", "c")[: i % 4]]
        container.create_item({"id": f"{i:04d}", "pk": f"p{i % 7}", "n": i, "tags": tags})
    return container


def test_a_feed_range_query_is_served_page_by_page_and_resumes_from_a_token(things: ContainerProxy) -> None:
    ranges = list(things.read_feed_ranges())
    assert len(ranges) == 1
    pages = things.query_items("SELECT * FROM c", feed_range=ranges[0], max_item_count=100).by_page()
    first = list(next(pages))
    token = pages.continuation_token
    assert len(first) == 100 and token  # the page size is honoured and a token returned
    # a fresh iterator from the token continues where the first stopped: no document twice, none missing
    rest_pages = things.query_items("SELECT * FROM c", feed_range=ranges[0], max_item_count=100).by_page(token)
    rest = [d for page in rest_pages for d in page]
    ids = [d["id"] for d in first + rest]
    assert len(ids) == len(set(ids)) == 250
    assert rest_pages.continuation_token is None


def test_a_feed_range_query_takes_parameters(things: ContainerProxy) -> None:
    feed_range = next(iter(things.read_feed_ranges()))
    found = things.query_items(
        "SELECT VALUE c.id FROM c WHERE c.n >= @low", parameters=[{"name": "@low", "value": 245}], feed_range=feed_range
    )
    assert sorted(found) == ["0245", "0246", "0247", "0248", "0249"]


def test_a_feed_range_narrower_than_the_partition_is_refused_not_answered_wrongly(things: ContainerProxy) -> None:
    narrow = things.feed_range_from_partition_key("p1")
    with pytest.raises(cosmos_errors.CosmosHttpResponseError) as refused:
        list(things.query_items("SELECT * FROM c", feed_range=narrow))
    assert refused.value.status_code == 400


def test_without_a_range_or_partition_key_a_query_still_needs_cross_partition(things: ContainerProxy) -> None:
    with pytest.raises(cosmos_errors.CosmosHttpResponseError) as refused:
        list(things.query_items("SELECT * FROM c"))
    assert refused.value.status_code == 400


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("SELECT VALUE c.id FROM c WHERE c.n % 50 = 0", lambda d: d["id"] if d["n"] % 50 == 0 else None),
        ("SELECT VALUE COUNT(1) FROM c", None),
        ("SELECT c.id, t.name FROM c JOIN t IN c.tags WHERE t.name = 'b'", None),
        ("SELECT VALUE c.id FROM c ORDER BY c.n DESC, c.id", None),
    ],
)
def test_queries_return_what_the_documents_say(things: ContainerProxy, query: str, expected: Any) -> None:
    documents = [
        {"id": f"{i:04d}", "n": i, "tags": [{"name": name} for name in ("a", "b", "c")[: i % 4]]} for i in range(250)
    ]
    pages = things.query_items(query, enable_cross_partition_query=True, max_item_count=40).by_page()
    found = [row for page in pages for row in page]
    if "COUNT" in query:
        assert found == [250]
    elif "JOIN" in query:
        want = [{"id": d["id"], "name": "b"} for d in documents if any(t["name"] == "b" for t in d["tags"])]
        assert sorted(found, key=lambda r: r["id"]) == want
    elif "ORDER BY" in query:
        assert found == [d["id"] for d in reversed(documents)]
    else:
        assert sorted(found) == [v for v in map(expected, documents) if v is not None]
