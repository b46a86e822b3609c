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
import json
import os
import tempfile
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from azure.cosmos import ContainerProxy
from azure.cosmos import exceptions as cosmos_errors

from cosmigrate import logs
from cosmigrate.model.documents import documents
from cosmigrate.store.client import resilient

log = logs.LOG

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


class LocalCheckpointFiles:
    """Checkpoints kept on this machine, one JSON file per key in ``folder`` (written atomically: a temporary file
    renamed over the old one), for when the database cannot take a save: the engine knows exactly which documents
    it handled when an outage stops it, and that must not be lost with the process."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, key: str) -> Path:
        return self.folder / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.json"

    def load(self, key: str) -> dict[str, Any] | None:
        found = self._read(self.path(key))
        return found[1] if found is not None and found[0] == key else None

    def save(self, key: str, state: dict[str, Any]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"key": key, "state": state, "savedAt": datetime.now(UTC).isoformat(timespec="seconds")})
        fd, temporary = tempfile.mkstemp(dir=self.folder, prefix=".saving-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, self.path(key))

    def clear(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def under(self, prefix: str = "") -> dict[str, dict[str, Any]]:
        """Every state kept here whose key starts with ``prefix``, by key."""
        if not self.folder.is_dir():
            return {}
        kept = (self._read(path) for path in sorted(self.folder.glob("*.json")))
        return {key: state for key, state in (k for k in kept if k is not None) if key.startswith(prefix)}

    @staticmethod
    def _read(path: Path) -> tuple[str, dict[str, Any]] | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # missing, or half-written by a crash before the rename: the database's copy counts
        if not isinstance(data, dict) or not isinstance(data.get("state"), dict):
            return None
        return str(data.get("key")), data["state"]


def sequence(state: Mapping[str, Any] | None) -> int:
    """A state's save number (the engine counts its saves); 0 for none, and for states saved before it counted."""
    return int(state.get("seq") or 0) if state is not None else 0


class DurableCheckpointStore:
    """The database's checkpoints (``primary``), with a copy on this machine (``local``) for saves the database
    cannot take.

    A save that fails — the database unreachable past the outage bound, or refusing — is written to the local
    file, and the error is raised all the same (the caller stops). A load takes the newer of the two by save
    number: a newer local copy (the exact state of a run the outage stopped) is moved into the database and its
    file deleted; an older one (the run went on elsewhere since) is dropped. A clear removes both.
    """

    def __init__(self, primary: CheckpointStore, local: LocalCheckpointFiles) -> None:
        self.primary = primary
        self.local = local

    def load(self, key: str) -> dict[str, Any] | None:
        remote = self.primary.load(key)
        here = self.local.load(key)
        if here is None:
            return remote
        if remote is not None and sequence(remote) >= sequence(here):
            self.local.clear(key)
            return remote
        log.info("resuming from the progress kept on this machine", key=key, file=str(self.local.path(key)))
        try:
            self.primary.save(key, here)
        except Exception as exc:  # kept here; the run saves it again with its next checkpoint
            log.warning("could not move the kept progress into the database", error=" ".join(str(exc).split()))
        else:
            self.local.clear(key)
        return here

    def save(self, key: str, state: dict[str, Any]) -> None:
        try:
            self.primary.save(key, state)
        except Exception:
            self.local.save(key, state)
            raise
        self.local.clear(key)

    def clear(self, key: str) -> None:
        self.local.clear(key)
        self.primary.clear(key)

    def kept_locally(self, key: str) -> Path | None:
        """The file holding this key's progress, when the database could not take its last save."""
        path = self.local.path(key)
        return path if path.is_file() else None


def tag(description: str) -> str:
    """Which migration a revision number holds, in a checkpoint key: a script replaced by another migration
    under the same number (another description) never takes over the first one's saved data steps."""
    return hashlib.sha256(description.encode()).hexdigest()[:8]


def prefix(revision: str, description: str) -> str:
    """The start of every checkpoint key of this revision's data steps (``<revision>:<tag>:…``)."""
    return f"{revision}:{tag(description)}:"


def local_files(backup_dir: Path, database: str) -> LocalCheckpointFiles:
    """Where a database's checkpoints are kept on this machine: beside its backups and dead letters."""
    return LocalCheckpointFiles(backup_dir / database / "checkpoints")


class SavedSteps:
    """The saved data steps of one database: the checkpoints in its history container (partition
    ``checkpoints``) and those kept on this machine because the database could not take them (``local``)."""

    def __init__(self, container: ContainerProxy, local: LocalCheckpointFiles | None = None) -> None:
        self.remote = ContainerCheckpointStore(container)
        self.local = local

    def store(self) -> CheckpointStore:
        """What a data step saves into: the database, with the local copy as a fallback when there is one."""
        return self.remote if self.local is None else DurableCheckpointStore(self.remote, self.local)

    def revisions(self) -> dict[str, set[str]]:
        """Every revision with saved data steps, and the tags they were saved under (one query)."""
        found: dict[str, set[str]] = {}
        kept = list(self.local.under()) if self.local is not None else []
        for key in [*self.remote.ids(), *kept]:
            revision, _, rest = key.partition(":")
            found.setdefault(revision, set()).add(rest.partition(":")[0])
        return found

    def states(self) -> dict[str, tuple[dict[str, Any], Path | None]]:
        """Every saved state by key, the newer of the two copies, with the local file when that one is newer."""
        merged: dict[str, tuple[dict[str, Any], Path | None]] = {k: (v, None) for k, v in self.remote.under().items()}
        if self.local is not None:
            for key, state in self.local.under().items():
                if key not in merged or sequence(state) > sequence(merged[key][0]):
                    merged[key] = (state, self.local.path(key))
        return merged

    def of_revisions(self, revisions: Mapping[str, str]) -> dict[str, list[str]]:
        """What the saved data steps of these revisions (revision → its script's description) will do when they
        run again, in words, by revision (only revisions that have any)."""
        if not revisions:
            return {}
        saved = sorted(self.states().items())
        said = {
            r: [describe(s, kept) for k, (s, kept) in saved if k.startswith(prefix(r, d))] for r, d in revisions.items()
        }
        return {r: lines for r, lines in said.items() if lines}

    def resuming(self, revision: str, description: str) -> list[tuple[str, int | None]]:
        """This revision's saved data steps, each in words with how many documents it may do twice (see
        :func:`at_risk`)."""
        mine = prefix(revision, description)
        return [
            (describe(s, kept), at_risk(s, kept))
            for k, (s, kept) in sorted(self.states().items())
            if k.startswith(mine)
        ]

    def reconcile(self, revision: str) -> list[str]:
        """Move this revision's progress kept on this machine into the database where it is newer (and drop what
        is older), so that the next run resumes exactly on any machine; returns the keys moved."""
        if self.local is None:
            return []
        durable = DurableCheckpointStore(self.remote, self.local)
        moved = []
        for key, state in self.local.under(f"{revision}:").items():
            if sequence(state) > sequence(self.remote.load(key)):
                moved.append(key)
            durable.load(key)
        return moved

    def forget(self, revision: str) -> list[str]:
        """Clear every saved data step of a revision (both directions, both places); returns their keys."""
        keys = self.remote.ids(f"{revision}:")
        for key in keys:
            self.remote.clear(key)
        if self.local is not None:
            for key in self.local.under(f"{revision}:"):
                self.local.clear(key)
                keys.append(key)
        return sorted(set(keys))


def describe(state: dict[str, Any], kept: Path | None = None) -> str:
    """Where a saved run stands, in words, and how exact that is: ``transform of customers resumes after 1,000
    documents``, ``copy of orders to orders_v2 retries only the 4 documents that failed``; saved mid-run by a run
    that then stopped without saving again (killed, or cut off from the database), how many documents it may have
    handled beyond what is saved (they are done again); kept on this machine, where."""
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
        said = f"{what} retries only {those} that failed"
    else:
        said = f"{what} resumes after {documents(done)}"
        said = f"{said}, and retries {those} that failed" if failed else said
    return said + exactness(state, kept)


def exactness(state: Mapping[str, Any], kept: Path | None) -> str:
    """The end of :func:`describe`: nothing when the saved state is exact, else what may be done twice."""
    if kept is not None:
        return (
            f", exactly: its progress is kept on this machine in {kept} (the database could not take it when the run "
            "stopped); run from this machine, or cosmigrate repair here moves it into the database"
        )
    if state.get("clean") or state.get("done"):
        return ""
    doubt = len(state.get("doubt") or [])
    if "at_risk" not in state:  # saved by a cosmigrate that did not count them
        return (
            "; the run that saved it did not stop cleanly: documents it handled after its last checkpoint (a few "
            "pages) are done again"
        )
    return (
        f"; the run that saved it did not stop cleanly (killed, or cut off from the database): up to "
        f"{documents(int(state['at_risk']))} it handled after this point may be done again"
        + (f" ({documents(doubt)} in doubt are checked first)" if doubt else "")
    )


def at_risk(state: Mapping[str, Any], kept: Path | None = None) -> int | None:
    """How many documents may be done twice when this saved state resumes: 0 when it is exact, None when the
    cosmigrate that saved it did not count them."""
    if kept is not None or state.get("clean") or state.get("done"):
        return 0
    value = state.get("at_risk")
    return int(value) if value is not None else None


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
