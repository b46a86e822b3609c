"""The live database as the planner sees it: every container's definition in one request, and counts.

Read-only. The history container is cosmigrate's own and never part of a plan.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from azure.cosmos import DatabaseProxy
from azure.cosmos import exceptions as cosmos_errors

from cosmigrate.model.container import ContainerDef
from cosmigrate.model.state import Counter, DatabaseState
from cosmigrate.store import offers
from cosmigrate.store.client import resilient


def container_properties(database: DatabaseProxy, history_container: str) -> list[dict[str, Any]]:
    """The stored properties of every container but the history (none when the database does not exist)."""

    def read() -> list[dict[str, Any]]:
        try:
            return [dict(p) for p in database.list_containers() if p["id"] != history_container]
        except cosmos_errors.CosmosResourceNotFoundError:
            return []

    return resilient(f"list containers of {database.id}", read)


Throughputs = tuple[dict[str, Any], Any]  # by container id, and the database's (False: not read)
ThroughputReader = Callable[[DatabaseProxy, Sequence[Mapping[str, Any]]], Throughputs | None]


def offer_throughputs(database: DatabaseProxy, properties: Sequence[Mapping[str, Any]]) -> Throughputs | None:
    """Each container's throughput and the database's, from one read of the offers; None when the data plane
    does not serve offers to this credential (an Entra ID token), so throughput is unknown rather than absent."""
    by_owner = offers.readable_offers(database)
    if by_owner is None:
        return None
    own = by_owner.get(offers.database_rid(database))
    return {str(p["id"]): offers.throughput_of(by_owner.get(str(p.get("_rid")))) for p in properties}, (
        offers.throughput_of(own)
    )


def read_state(
    database: DatabaseProxy, history_container: str, throughputs: ThroughputReader = offer_throughputs
) -> DatabaseState:
    """Every container's definition and throughput, and the database's shared throughput: one listing and what
    ``throughputs`` reads (the offers, or Azure Resource Manager); nothing when the database does not exist."""
    try:
        offers.database_rid(database)
    except cosmos_errors.CosmosResourceNotFoundError:
        return DatabaseState.from_live([])
    properties = container_properties(database, history_container)
    found = throughputs(database, properties)
    if found is None:  # throughput unknown to this credential: not compared, not assumed
        return DatabaseState.from_live(ContainerDef.from_properties(p) for p in properties)
    by_container, shared = found
    definitions = [
        ContainerDef.from_properties({**p, "throughput": by_container.get(str(p["id"]))}) for p in properties
    ]
    return DatabaseState.from_live(definitions, shared)


def counter(database: DatabaseProxy) -> Counter:
    """Counts documents of live containers, for preconditions evaluated while planning."""

    def count(container_id: str, where: str, parameters: Sequence[Mapping[str, Any]]) -> int:
        container = database.get_container_client(container_id)
        query = f"SELECT VALUE COUNT(1) FROM c WHERE {where}"

        def run() -> int:
            try:
                values: Any = container.query_items(
                    query, parameters=[dict(p) for p in parameters], enable_cross_partition_query=True
                )
                return sum(int(value) for value in values)  # one count per partition range
            except cosmos_errors.CosmosResourceNotFoundError:
                return 0

        return resilient(f"count documents in {container_id}", run)

    return count
