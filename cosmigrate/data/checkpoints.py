"""Where a long data run records how far it got, so that a killed run resumes instead of starting over.

The engine saves, per feed range, the continuation token after the last page whose documents are all written,
plus running totals. Microsoft's guidance for large moves (one tracking record per part, stored continuation
tokens with the change feed's pull model) is the model; the store itself is three calls so that anything can
hold it. The one used by cosmigrate's runner is a container whose partition key path is ``/scope`` (the history
container): checkpoints live there in their own logical partition, ``"checkpoints"``, away from the lock's.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from azure.cosmos import ContainerProxy
from azure.cosmos import exceptions as cosmos_errors

from cosmigrate.model.documents import documents
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

    def under(self, prefix: str = "") -> dict[str, dict[str, Any]]:
        """Every saved state whose key starts with ``prefix``, by key (one query in the checkpoints' partition)."""
        documents = self._query("c.id, c.state", prefix)
        return {str(d["id"]): dict(d["state"]) for d in documents if isinstance(d.get("state"), dict)}

    def ids(self, prefix: str = "") -> list[str]:
        """The keys that start with ``prefix``, without their states (which list up to thousands of documents)."""
        return sorted(str(d["id"]) for d in self._query("c.id", prefix))

    def _query(self, fields: str, prefix: str) -> list[dict[str, Any]]:
        def read() -> list[dict[str, Any]]:
            try:
                return list(
                    self.container.query_items(
                        f"SELECT {fields} FROM c WHERE c.scope = @scope AND STARTSWITH(c.id, @prefix)",
                        parameters=[{"name": "@scope", "value": self.scope}, {"name": "@prefix", "value": prefix}],
                        partition_key=self.scope,
                    )
                )
            except cosmos_errors.CosmosResourceNotFoundError:  # no history container yet
                return []

        return resilient(f"read checkpoints {prefix}*", read)


def tag(description: str) -> str:
    """Which migration a revision number holds, in a checkpoint key: a script replaced by another migration
    under the same number (another description) never takes over the first one's saved data steps."""
    return hashlib.sha256(description.encode()).hexdigest()[:8]


def prefix(revision: str, description: str) -> str:
    """The start of every checkpoint key of this revision's data steps (``<revision>:<tag>:…``)."""
    return f"{revision}:{tag(description)}:"


def saved_revisions(container: ContainerProxy) -> dict[str, set[str]]:
    """Every revision with saved data steps, and the tags they were saved under (one query)."""
    found: dict[str, set[str]] = {}
    for key in ContainerCheckpointStore(container).ids():
        revision, _, rest = key.partition(":")
        found.setdefault(revision, set()).add(rest.partition(":")[0])
    return found


def of_revisions(container: ContainerProxy, revisions: Mapping[str, str]) -> dict[str, list[str]]:
    """What the saved data steps of these revisions (revision → its script's description) will do when they
    run again, in words, by revision (only revisions that have any)."""
    if not revisions:
        return {}
    saved = ContainerCheckpointStore(container).under()
    said = {
        r: [describe(s) for k, s in sorted(saved.items()) if k.startswith(prefix(r, d))] for r, d in revisions.items()
    }
    return {r: lines for r, lines in said.items() if lines}


def forget(container: ContainerProxy, revision: str) -> list[str]:
    """Clear every saved data step of a revision (both directions); returns their keys."""
    store = ContainerCheckpointStore(container)
    keys = store.ids(f"{revision}:")
    for key in keys:
        store.clear(key)
    return keys


def describe(state: dict[str, Any]) -> str:
    """Where a saved run stands, in words: ``transform of customers resumes after 1,000 documents`` or
    ``copy of orders to orders_v2 retries only the 4 documents that failed``."""
    identity = state.get("identity") or {}
    what = f"{identity.get('operation', 'data step')} of {identity.get('container', '?')}"
    if identity.get("target"):
        what += f" to {identity['target']}"
    totals = state.get("totals") or {}
    failed = state.get("failed") or []
    done = sum(int(totals.get(k) or 0) for k in ("written", "unchanged", "deleted", "dead_lettered")) - len(failed)
    finished = all(r.get("finished") for r in state.get("ranges") or [])
    if state.get("done"):
        return f"{what} was done by an earlier run ({documents(done)}): it does not run again"
    those = "the document" if len(failed) == 1 else f"the {documents(len(failed))}"
    if finished and failed:
        return f"{what} retries only {those} that failed"
    said = f"{what} resumes after {documents(done)}"
    return f"{said}, and retries {those} that failed" if failed else said


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
