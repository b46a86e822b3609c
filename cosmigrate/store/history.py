"""Reading and writing the history container (its documents are described in ``records.py``).

Reads are plain queries and point reads. Writes during a run are not made here but through
:meth:`cosmigrate.store.lock.Lease.commit`, which puts them in one transactional batch with a conditional
renewal of the lease: only the holder of the lock can write records and events.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from azure.cosmos import ContainerProxy, DatabaseProxy
from azure.cosmos import exceptions as cosmos_errors

from cosmigrate.errors import HistoryConflict
from cosmigrate.store.client import create_container, read_container, resilient
from cosmigrate.store.records import (
    LOCK_ID,
    PARTITION_KEY_PATH,
    SCOPE,
    Event,
    LockView,
    Snapshot,
    Source,
    server_time,
    snapshot_of,
)

# Partition-key filters are redundant with partition_key= for Azure, but the local endpoint only accepts
# single-partition queries that name their partition key in the filter.
STATE_QUERY = "SELECT * FROM c WHERE c.scope = @scope AND c.kind IN ('revision', 'lock')"
EVENTS_QUERY = "SELECT * FROM c WHERE c.scope = @scope AND c.kind = 'event'"


class HistoryStore:
    """The history container of one database."""

    def __init__(self, database: DatabaseProxy, container_id: str) -> None:
        self.database = database
        self.container_id = container_id
        self.container: ContainerProxy = database.get_container_client(container_id)

    def exists(self) -> bool:
        return read_container(self.database, self.container_id) is not None

    def ensure(self, create: Callable[[DatabaseProxy, dict[str, Any]], Any] = create_container) -> None:
        """Create the container on first use (concurrent first runs settle on 409); ``create`` makes it (the
        data plane's create, or Azure Resource Manager's for an Entra ID sign-in)."""
        found = read_container(self.database, self.container_id)
        if found is not None:
            paths = list((found.get("partitionKey") or {}).get("paths") or [])
            if paths != [PARTITION_KEY_PATH]:
                raise HistoryConflict(
                    f"container {self.container_id} in database {self.database.id} has partition key "
                    f"{', '.join(paths) or 'none'}, not {PARTITION_KEY_PATH}: it is not cosmigrate's history (its "
                    "records and lock could not be written); name another one with --history-container or "
                    "COSMIGRATE_HISTORY_CONTAINER"
                )
            return
        create(
            self.database,
            {"id": self.container_id, "partitionKey": {"paths": [PARTITION_KEY_PATH], "kind": "Hash", "version": 2}},
        )

    def _query(self, query: str, headers: list[Mapping[str, Any]] | None = None) -> list[dict[str, Any]] | None:
        """The documents of the history partition matching ``query``; None when the container does not exist."""

        def hook(response_headers: Mapping[str, Any], _result: Any) -> None:
            if headers is not None:
                headers.append(dict(response_headers))

        def run() -> list[dict[str, Any]] | None:
            if headers is not None:
                headers.clear()
            try:
                return list(
                    self.container.query_items(
                        query,
                        parameters=[{"name": "@scope", "value": SCOPE}],
                        partition_key=SCOPE,
                        max_item_count=1000,
                        response_hook=hook,
                    )
                )
            except cosmos_errors.CosmosResourceNotFoundError:
                return None

        return resilient("read history", run)

    def snapshot(self) -> Snapshot:
        """Every revision record and the lock, in one query, judged by the time the service gave for it."""
        headers: list[Mapping[str, Any]] = []
        documents = self._query(STATE_QUERY, headers)
        if documents is None:
            return Snapshot(False, {}, None)
        now = server_time(headers[-1]) if headers else None
        return snapshot_of(documents, now)

    def events(self) -> list[Event]:
        """The log, oldest first (the service's timestamp, then the writer's)."""
        documents = self._query(EVENTS_QUERY) or []
        events = [Event.from_document(doc) for doc in documents]
        return sorted(events, key=lambda e: (e.server_ts or 0, e.at))

    def source(self, document_id: str | None) -> str | None:
        """The text of a script as it ran, if it was kept."""
        found = self.sources(document_id)
        return found.text if found is not None else None

    def sources(self, document_id: str | None) -> Source | None:
        """The text of a script as it ran and of the helpers it imported, if they were kept."""
        if not document_id:
            return None

        def read() -> Source | None:
            try:
                return Source.from_document(self.container.read_item(document_id, partition_key=SCOPE))
            except cosmos_errors.CosmosResourceNotFoundError:
                return None

        return resilient(f"read source {document_id}", read)

    def read_lock(self) -> LockView | None:
        """The stored lease, judged by the service's clock of this very read; None when nobody holds it."""

        def read() -> LockView | None:
            try:
                doc = self.container.read_item(LOCK_ID, partition_key=SCOPE)
            except cosmos_errors.CosmosResourceNotFoundError:
                return None
            return LockView.from_document(doc, server_time(doc.get_response_headers()))

        return resilient("read lock", read)
