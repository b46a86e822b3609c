"""The applying executor: each operation carried out against Cosmos DB (Alembic's ``toimpl``).

For every operation it reads the live definitions of the containers the operation touches, asks the
operation's pure :meth:`~cosmigrate.ops.operations.Operation.plan` what to do on that state, and does exactly
that: the decision (create, adopt, update, refuse, skip) is the same one the dry run showed. Every effect is
idempotent or settled by reading back (``store.client``), so a revision interrupted half-way can run again.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, Protocol

from azure.core import MatchConditions
from azure.cosmos import ContainerProxy, DatabaseProxy
from azure.cosmos import exceptions as cosmos_errors

from cosmigrate import logs
from cosmigrate.data.items import PartitionKeyPaths, without_system_properties
from cosmigrate.errors import DatabaseError
from cosmigrate.model.container import ContainerDef
from cosmigrate.model.state import DatabaseState
from cosmigrate.ops.operations import (
    Change,
    CopyContainer,
    DataAccess,
    Operation,
    Precondition,
    SeedItems,
    TransformItems,
    UnseedItems,
)
from cosmigrate.store import client
from cosmigrate.store.live import counter

log = logs.LOG
ProgressCallback = Callable[[str, int], None]


class DataSteps(Protocol):
    """What the runner supplies for data work: backups before a delete, and the streaming engine."""

    def before_delete(self, database: DatabaseProxy, container_id: str) -> dict[str, Any] | None: ...

    def transform(self, database: DatabaseProxy, operation: TransformItems) -> dict[str, Any]: ...

    def copy(self, database: DatabaseProxy, operation: CopyContainer) -> dict[str, Any]: ...


class CosmosExecutor:
    planning = False

    def __init__(
        self,
        database: DatabaseProxy,
        *,
        index_timeout: float = 3600.0,
        on_progress: ProgressCallback | None = None,
        poll_interval: float = 0.5,
        data: DataSteps | None = None,
        before_effect: Callable[[], None] | None = None,
    ) -> None:
        self.database = database
        self.before_effect = before_effect or (lambda: None)
        self.index_timeout = index_timeout
        self.on_progress = on_progress
        self.poll_interval = poll_interval
        self.data = data

    # -- the executor protocol ----------------------------------------------------------------------------

    def execute(self, operation: Operation) -> Change:
        if isinstance(operation, Precondition | DataAccess):
            return operation.plan(DatabaseState())  # nothing to read: shown as a step, done by the facade
        properties = {cid: client.read_container(self.database, cid) for cid in operation.containers()}
        state = DatabaseState.from_live(ContainerDef.from_properties(p) for p in properties.values() if p)
        change = operation.plan(state)
        if change.effect in ("create", "update", "delete", "data"):
            self.before_effect()
        if change.effect in ("update", "data"):  # long: say what is under way
            log.info(change.note)
        detail = self._carry_out(operation, change, properties)
        if change.effect not in ("update", "data"):
            log.info(change.note)
        return change.with_detail(**detail) if detail else change

    def definition(self, container_id: str) -> ContainerDef | None:
        properties = client.read_container(self.database, container_id)
        return ContainerDef.from_properties(properties) if properties else None

    def count(self, container_id: str, where: str, parameters: Sequence[Mapping[str, Any]]) -> int:
        return counter(self.database)(container_id, where, parameters)

    def raw_container(self, container_id: str) -> ContainerProxy:
        self.before_effect()  # what a script does with the SDK is unknown: assume a change
        return self.database.get_container_client(container_id)

    def raw_database(self) -> DatabaseProxy:
        self.before_effect()
        return self.database

    # -- effects ------------------------------------------------------------------------------------------

    def _carry_out(
        self, operation: Operation, change: Change, properties: Mapping[str, dict[str, Any] | None]
    ) -> dict[str, Any]:
        if change.effect == "create" and change.after is not None:
            client.create_container(self.database, change.after.to_body())
        elif change.effect == "update" and change.after is not None and change.container is not None:
            existing = properties[change.container] or {}
            updated = {**existing, "indexingPolicy": change.after.indexing_policy}
            if change.after.default_ttl is not None:
                updated["defaultTtl"] = change.after.default_ttl
            client.replace_container(self.database, updated)
            if "indexingPolicy" in change.detail.get("changed", []):
                self.wait_for_index(change.container)
        elif change.effect == "delete" and change.container is not None:
            backup = self.data.before_delete(self.database, change.container) if self.data else None
            client.delete_container(self.database, change.container)
            return {"backup": backup} if backup else {}
        elif change.effect == "data":
            return self._data(operation)
        return {}

    def _data(self, operation: Operation) -> dict[str, Any]:
        if isinstance(operation, SeedItems):
            return self._seed(operation)
        if isinstance(operation, UnseedItems):
            return self._unseed(operation)
        if isinstance(operation, TransformItems):
            if self.data is None:
                raise DatabaseError("transform_items needs the data engine, which this run was not given")
            return self.data.transform(self.database, operation)
        if isinstance(operation, CopyContainer):
            if self.data is None:
                raise DatabaseError("copy_container needs the data engine, which this run was not given")
            return self.data.copy(self.database, operation)
        return {}

    def _seed(self, operation: SeedItems) -> dict[str, Any]:
        container = self.database.get_container_client(operation.container_id)
        for item in operation.items:
            body = dict(item)
            client.resilient(f"seed {item['id']} into {operation.container_id}", partial(container.upsert_item, body))
        return {"seeded": len(operation.items)}

    def _unseed(self, operation: UnseedItems) -> dict[str, Any]:
        """Delete each seeded document that is still exactly as seeded; keep (and report) changed ones."""
        properties = client.read_container(self.database, operation.container_id)
        if properties is None:
            return {"removed": 0, "kept": []}
        paths = PartitionKeyPaths(properties.get("partitionKey") or {})
        container = self.database.get_container_client(operation.container_id)
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
                log.warning(
                    "kept a seeded document changed since it was seeded",
                    container=operation.container_id,
                    id=item["id"],
                )
                continue

            def delete(item_id: str = str(item["id"]), key: Any = key, etag: str = current["_etag"]) -> None:
                with contextlib.suppress(cosmos_errors.CosmosResourceNotFoundError):
                    container.delete_item(
                        item_id, partition_key=key, etag=etag, match_condition=MatchConditions.IfNotModified
                    )

            try:
                client.resilient(f"remove seeded {item['id']}", delete)
                removed += 1
            except cosmos_errors.CosmosAccessConditionFailedError:
                kept.append(str(item["id"]))  # changed while we looked
        return {"removed": removed, "kept": kept}

    def wait_for_index(self, container_id: str) -> None:
        """Poll the index transformation until it reaches 100%, reporting progress; bounded by a timeout.

        New paths serve queries only once the transformation is complete, so a revision that reindexes is
        not recorded as applied before that.
        """
        container = self.database.get_container_client(container_id)
        deadline = time.monotonic() + self.index_timeout
        while True:
            progress = client.transformation_progress(container)
            if self.on_progress:
                self.on_progress(container_id, progress)
            if progress >= 100:
                return
            if time.monotonic() >= deadline:
                raise DatabaseError(
                    f"the reindex of {container_id} is at {progress}% after {self.index_timeout:.0f}s; it goes "
                    "on in the service: raise --index-timeout, then cosmigrate repair and up to wait again"
                )
            time.sleep(self.poll_interval)
