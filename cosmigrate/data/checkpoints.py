"""Where a long data run records how far it got, so that a killed run resumes instead of starting over.

The engine saves, per feed range, the continuation token after the last page whose documents are all written,
plus running totals. Microsoft's guidance for large moves (one tracking record per part, stored continuation
tokens with the change feed's pull model) is the model; the store itself is three calls so that anything can
hold it. The one used by cosmigrate's runner is a container whose partition key path is ``/scope`` (the history
container): checkpoints live there in their own logical partition, ``"checkpoints"``, away from the lock's.
"""

from __future__ import annotations

import contextlib
import threading
from datetime import UTC, datetime
from typing import Any, Protocol

from azure.cosmos import ContainerProxy
from azure.cosmos import exceptions as cosmos_errors

from cosmigrate.store.client import resilient

CHECKPOINT_SCOPE = "checkpoints"


class CheckpointStore(Protocol):
    """Keeps one JSON-able state per key. ``save`` replaces; ``clear`` of a missing key is not an error."""

    def load(self, key: str) -> dict[str, Any] | None: ...

    def save(self, key: str, state: dict[str, Any]) -> None: ...

    def clear(self, key: str) -> None: ...


class ContainerCheckpointStore:
    """Checkpoints as documents ``{"id": key, "scope": "checkpoints", "state": …}`` in a container with
    partition key ``/scope`` (cosmigrate's history container). Each call is one request, retried with
    :func:`~cosmigrate.store.client.resilient`; saves are upserts, so a retried save is harmless."""

    def __init__(self, container: ContainerProxy, scope: str = CHECKPOINT_SCOPE) -> None:
        self.container = container
        self.scope = scope

    def load(self, key: str) -> dict[str, Any] | None:
        def read() -> dict[str, Any] | None:
            try:
                document = self.container.read_item(key, partition_key=self.scope)
            except cosmos_errors.CosmosResourceNotFoundError:
                return None
            state = document.get("state")
            return dict(state) if isinstance(state, dict) else None

        return resilient(f"read checkpoint {key}", read)

    def save(self, key: str, state: dict[str, Any]) -> None:
        document = {
            "id": key,
            "scope": self.scope,
            "kind": "checkpoint",
            "state": state,
            "savedAt": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        resilient(f"save checkpoint {key}", lambda: self.container.upsert_item(document))

    def clear(self, key: str) -> None:
        def delete() -> None:
            with contextlib.suppress(cosmos_errors.CosmosResourceNotFoundError):
                self.container.delete_item(key, partition_key=self.scope)

        resilient(f"clear checkpoint {key}", delete)


class MemoryCheckpointStore:
    """Checkpoints in this process only: for callers that resume within one process, and for tests."""

    def __init__(self) -> None:
        self.states: dict[str, dict[str, Any]] = {}
        self.saves = 0
        self._lock = threading.Lock()

    def load(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            state = self.states.get(key)
            return dict(state) if state is not None else None

    def save(self, key: str, state: dict[str, Any]) -> None:
        with self._lock:
            self.states[key] = dict(state)
            self.saves += 1

    def clear(self, key: str) -> None:
        with self._lock:
            self.states.pop(key, None)
