"""The data-plane implementation with the account key: every operation carried out through the azure-cosmos client.

Every effect is idempotent or settled by reading back (``store.client``, ``store.offers``), so a revision
interrupted half-way can run again. A replace re-sends every stored property and changes only those the plan
changed (``replace_container`` resets whatever it is not given); throughput goes through the offers; an index
change is waited for.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from azure.core import MatchConditions
from azure.cosmos import exceptions as cosmos_errors

from cosmigrate.data.items import PartitionKeyPaths, without_system_properties
from cosmigrate.errors import DatabaseError
from cosmigrate.model.container import ContainerDef
from cosmigrate.model.properties import REGISTRY
from cosmigrate.model.state import DatabaseState
from cosmigrate.ops.apply import ApplyContext, Implementation
from cosmigrate.ops.change import Change, Outcome
from cosmigrate.ops.operations import (
    AlterContainer,
    CopyContainer,
    CreateContainer,
    DeleteContainer,
    Operation,
    SeedItems,
    SetDatabaseThroughput,
    TransformItems,
    UnseedItems,
)
from cosmigrate.store import client, offers

KEYED = Implementation("data plane, account key")


def wants_throughput(operation: Operation) -> bool:
    """Whether planning ``operation`` needs the throughput read (it declares or changes some)."""
    if isinstance(operation, CreateContainer):
        return operation.definition.declares("throughput")
    if isinstance(operation, AlterContainer):
        return "throughput" in operation.values
    return isinstance(operation, SetDatabaseThroughput)


ThroughputOf = Callable[[str | None], "dict[str, int] | None"]  # a container's own throughput; None: the database's


def read_live(
    context: ApplyContext,
    container_ids: Sequence[str],
    operation: Operation | None,
    throughput_reader: Callable[[], ThroughputOf],
) -> DatabaseState:
    """The stored properties of these containers (kept in ``context.read`` for the replace), with their throughput
    and the database's when the operation manages throughput (``throughput_reader`` is asked only then: each
    implementation reads throughput its own way)."""
    database = context.database
    properties = {cid: client.read_container(database, cid) for cid in container_ids}
    context.read = dict(properties)
    found = [p for p in properties.values() if p]
    if operation is None or not wants_throughput(operation):
        return DatabaseState.from_live(ContainerDef.from_properties(p) for p in found)
    throughput_of = throughput_reader()
    definitions = [ContainerDef.from_properties({**p, "throughput": throughput_of(str(p["id"]))}) for p in found]
    shared = throughput_of(None) if isinstance(operation, SetDatabaseThroughput) else False
    return DatabaseState.from_live(definitions, shared)


@KEYED.reads
def read_state(context: ApplyContext, container_ids: Sequence[str], operation: Operation | None) -> DatabaseState:
    """Throughput from one read of the offers, by the ``_rid`` of the container (or of the database)."""

    def from_offers() -> ThroughputOf:
        by_owner = offers.all_offers(context.database)

        def of(container_id: str | None) -> dict[str, int] | None:
            if container_id is None:
                return offers.throughput_of(by_owner.get(offers.database_rid(context.database)))
            return offers.throughput_of(by_owner.get(str((context.read.get(container_id) or {}).get("_rid"))))

        return of

    return read_live(context, container_ids, operation, from_offers)


def replace_body(context: ApplyContext, change: Change) -> dict[str, Any] | None:
    """The stored properties with the changed ones as planned (a replace resets what it is not given), or None
    when no property of the container's body changes (throughput alone)."""
    assert change.after is not None and change.container is not None
    in_body = [name for name in change.changed if REGISTRY[name].in_body]
    if not in_body:
        return None
    updated = dict(context.read.get(change.container) or {})
    for name in in_body:
        prop = REGISTRY[name]
        updated.pop(prop.name, None)  # a property turned off (TTL None) is left out: the replace removes it
        updated.update(prop.body(change.after.get(name)))
    return updated


@KEYED.implements(CreateContainer, AlterContainer)
def create_or_update(context: ApplyContext, operation: Operation, change: Change) -> Outcome:
    database = context.database
    if change.effect == "create" and change.after is not None:
        offers.create_provisioned(database, change.after.to_body(), change.after.throughput)
        return Outcome()
    if change.effect != "update" or change.after is None or change.container is None:
        return Outcome()
    updated = replace_body(context, change)
    if updated is not None:
        client.replace_container(database, updated)
        if change.reindexes:
            wait_for_index(context, change.container)
    if "throughput" in change.changed and change.after.throughput:
        rid = str((context.read.get(change.container) or {}).get("_rid"))
        offers.change_throughput(database, rid, f"container {change.container}", change.after.throughput)
    return Outcome()


@KEYED.implements(SetDatabaseThroughput)
def set_database_throughput(context: ApplyContext, operation: Operation, change: Change) -> Outcome:
    if change.throughput is not None and change.throughput.after:
        database = context.database
        rid = offers.database_rid(database)
        offers.change_throughput(database, rid, f"database {database.id}", change.throughput.after)
    return Outcome()


@KEYED.implements(DeleteContainer)
def delete(context: ApplyContext, operation: Operation, change: Change) -> Outcome:
    if change.effect != "delete" or change.container is None:
        return Outcome()
    backup = context.data.before_delete(context.database, change.container) if context.data else None
    client.delete_container(context.database, change.container)
    return Outcome(backup=backup)


@KEYED.implements(TransformItems, CopyContainer)
def data_step(context: ApplyContext, operation: Operation, change: Change) -> Outcome:
    if context.data is None:
        raise DatabaseError(f"{operation.kind} needs the data engine, which this run was not given")
    reported = (
        context.data.transform(context.database, operation)
        if isinstance(operation, TransformItems)
        else context.data.copy(context.database, operation)  # type: ignore[arg-type]
    )
    return Outcome(totals=reported.get("totals"), dead_letter=reported.get("dead_letter"))


@KEYED.implements(SeedItems)
def seed(context: ApplyContext, operation: Operation, change: Change) -> Outcome:
    assert isinstance(operation, SeedItems)
    container = context.database.get_container_client(operation.container_id)
    for item in operation.items:
        body = dict(item)
        client.resilient(f"seed {item['id']} into {operation.container_id}", partial(container.upsert_item, body))
    return Outcome(seeded=len(operation.items))


@KEYED.implements(UnseedItems)
def unseed(context: ApplyContext, operation: Operation, change: Change) -> Outcome:
    """Delete each seeded document that is still exactly as seeded; keep (and report) changed ones."""
    assert isinstance(operation, UnseedItems)
    database = context.database
    properties = client.read_container(database, operation.container_id)
    if properties is None:
        return Outcome(removed=0, kept=())
    paths = PartitionKeyPaths(properties.get("partitionKey") or {})
    container = database.get_container_client(operation.container_id)
    removed, kept = 0, []
    for item in operation.items:
        key = paths.value(item)

        def read(item_id: str = str(item["id"]), key: Any = key) -> dict[str, Any] | None:
            try:
                return dict(container.read_item(item_id, partition_key=key))
            except cosmos_errors.CosmosResourceNotFoundError:
                return None

        current = client.resilient(f"read {item['id']}", read)
        if current is None:
            continue
        if without_system_properties(current) != without_system_properties(item):
            kept.append(str(item["id"]))
            client.log.warning(
                "kept a seeded document changed since it was seeded", container=operation.container_id, id=item["id"]
            )
            continue

        def remove(item_id: str = str(item["id"]), key: Any = key, etag: str = current["_etag"]) -> None:
            with contextlib.suppress(cosmos_errors.CosmosResourceNotFoundError):
                container.delete_item(
                    item_id, partition_key=key, etag=etag, match_condition=MatchConditions.IfNotModified
                )

        try:
            client.resilient(f"remove seeded {item['id']}", remove)
            removed += 1
        except cosmos_errors.CosmosAccessConditionFailedError:
            kept.append(str(item["id"]))  # changed while we looked
    return Outcome(removed=removed, kept=tuple(kept))


def wait_for_index(context: ApplyContext, container_id: str) -> None:
    """Poll the index transformation until it reaches 100%, reporting progress; bounded by a timeout.

    New paths serve queries only once the transformation is complete, so a revision that reindexes is not
    recorded as applied before that."""
    container = context.database.get_container_client(container_id)
    deadline = time.monotonic() + context.index_timeout
    while True:
        progress = client.transformation_progress(container)
        if context.on_progress:
            context.on_progress(container_id, progress)
        if progress >= 100:
            return
        if time.monotonic() >= deadline:
            raise DatabaseError(
                f"the reindex of {container_id} is at {progress}% after {context.index_timeout:.0f}s; it goes "
                "on in the service: raise --index-timeout, then cosmigrate repair and up to wait again"
            )
        time.sleep(context.poll_interval)
