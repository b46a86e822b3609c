"""Helpers of the data-engine tests: a client with cosmigrate's options, containers, and reading them back."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from azure.cosmos import ContainerProxy, CosmosClient, DatabaseProxy, PartitionKey

from cosmigrate.config import EMULATOR_KEY
from cosmigrate.data.items import without_system_properties
from cosmigrate.store.client import CLIENT_OPTIONS, close
from tests.harness.seed import seed


@contextmanager
def client_for(url: str, **options: Any) -> Iterator[CosmosClient]:
    """A client as cosmigrate builds one (its retry options), for the local endpoint or a proxy in front of it,
    closed as cosmigrate closes one."""
    client = CosmosClient(url, credential=EMULATOR_KEY, connection_verify=False, **CLIENT_OPTIONS, **options)
    try:
        yield client
    finally:
        close(client)


def seeded_container(
    endpoint: str, database: DatabaseProxy, name: str, count: int, partition_key: str = "/pk", **options: Any
) -> ContainerProxy:
    """A new container holding ``tests.harness.seed.document(0..count-1)``, seeded by several processes."""
    container = database.create_container(name, partition_key=PartitionKey(partition_key), **options)
    if count:
        seed(endpoint, database.id, name, count)
    return container


def all_documents(container: ContainerProxy) -> dict[str, dict[str, Any]]:
    """Every document by id, without system properties."""
    return {
        d["id"]: without_system_properties(d)
        for d in container.query_items("SELECT * FROM c", enable_cross_partition_query=True, max_item_count=1000)
    }
