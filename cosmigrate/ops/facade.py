"""What a migration script calls: ``op.create_container(...)``, ``op.replace_indexing_policy(...)``, ...

Every operation is idempotent (it looks first, then does only what is missing), so a revision interrupted
half-way can simply run again after ``cosmigrate repair``. With ``dry_run`` the operations only look and say
what they would do; data work (``op.container``, ``op.database``) ends a dry run of that script.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import structlog
from azure.cosmos import ContainerProxy, DatabaseProxy
from azure.cosmos import exceptions as cosmos_errors

from cosmigrate.errors import DatabaseError, DefinitionConflict, InvalidDefinition, PreconditionRefused
from cosmigrate.model.definitions import (
    Policy,
    default_indexing_policy,
    normalise_indexing_policy,
    normalise_unique_keys,
    partition_key_paths,
    validate_container_id,
    validate_indexing_policy,
    validate_partition_key,
    validate_unique_keys,
)
from cosmigrate.store import client as cosmos

log = structlog.get_logger("cosmigrate")
ProgressCallback = Callable[[str, int], None]
TRUE_WORDS = ("1", "true", "yes", "on")


class DryRunStop(Exception):
    """Raised in a dry run when a script reaches data work that cannot be simulated."""


class Operations:
    """The ``op`` a migration script receives."""

    def __init__(
        self,
        database: DatabaseProxy,
        x: Mapping[str, str] | None = None,
        *,
        dry_run: bool = False,
        index_timeout: float = 3600.0,
        on_progress: ProgressCallback | None = None,
        poll_interval: float = 0.5,
        history_container: str | None = None,
    ) -> None:
        self._database = database
        self._history_container = history_container
        self.x: dict[str, str] = dict(x or {})
        self.dry_run = dry_run
        self.index_timeout = index_timeout
        self.on_progress = on_progress
        self.poll_interval = poll_interval
        self.actions: list[str] = []
        self.log = log

    # -- data work ----------------------------------------------------------------------------------------

    @property
    def database(self) -> DatabaseProxy:
        if self.dry_run:
            raise DryRunStop("data work through op.database")
        return self._database

    def container(self, container_id: str) -> ContainerProxy:
        """The azure-cosmos ``ContainerProxy``, for data migrations."""
        if self.dry_run:
            raise DryRunStop(f"data work on {container_id}")
        return self._database.get_container_client(container_id)

    def flag(self, name: str) -> bool:
        """An ``-x name=true`` switch."""
        return self.x.get(name, "").strip().lower() in TRUE_WORDS

    # -- preconditions ------------------------------------------------------------------------------------

    def refuse(self, message: str) -> None:
        """Stop this revision before it changes anything: it stays pending and is not recorded."""
        raise PreconditionRefused(message)

    def count(self, container_id: str, where: str = "true", parameters: Sequence[dict[str, Any]] = ()) -> int:
        """Documents matching ``where`` (0 if the container does not exist). Read-only, also in a dry run."""
        validate_container_id(container_id)
        container = self._database.get_container_client(container_id)
        query = f"SELECT VALUE COUNT(1) FROM c WHERE {where}"

        def run() -> int:
            try:
                values = container.query_items(query, parameters=list(parameters), enable_cross_partition_query=True)
                return sum(int(value) for value in values)  # type: ignore[call-overload]  # one count per range
            except cosmos_errors.CosmosResourceNotFoundError:
                return 0

        return cosmos.resilient(f"count documents in {container_id}", run)

    def assert_unused(
        self,
        container_id: str,
        where: str,
        parameters: Sequence[dict[str, Any]] = (),
        what: str = "matching documents",
        force_flag: str = "force",
    ) -> None:
        """Refuse (see :meth:`refuse`) while documents matching ``where`` exist, unless ``-x force=true``."""
        found = self.count(container_id, where, parameters)
        if found and not self.flag(force_flag):
            self.refuse(
                f"container {container_id} still has {found} {what}; move them or run again "
                f"with -x {force_flag}=true to drop it anyway"
            )
        if found:
            log.warning("forced past a precondition", container=container_id, documents=found)

    # -- schema -------------------------------------------------------------------------------------------

    def is_legacy(
        self, container_id: str, partition_key: str, unique_keys: Sequence[Sequence[str]] | None = None
    ) -> bool:
        """True when ``container_id`` exists with another partition key or other unique keys than these:
        an older container of the same name that cannot be adopted, only replaced."""
        validate_container_id(container_id)
        keys = validate_unique_keys(container_id, unique_keys)
        existing = self._read(container_id)
        if existing is None:
            return False
        return partition_key_paths(existing.get("partitionKey")) != [partition_key] or normalise_unique_keys(
            existing.get("uniqueKeyPolicy")
        ) != sorted(keys)

    def create_container(
        self,
        container_id: str,
        partition_key: str,
        unique_keys: Sequence[Sequence[str]] | None = None,
        indexing_policy: Policy | None = None,
        default_ttl: int | None = None,
    ) -> None:
        """Create the container, or adopt an existing one with the same immutable properties.

        The partition key and unique keys cannot change in Cosmos DB: an existing container that differs in
        them is refused. An adopted container's indexing policy (and TTL, when given) is brought to the
        declared one, keeping its data.
        """
        self._target(container_id)
        validate_partition_key(container_id, partition_key)
        keys = validate_unique_keys(container_id, unique_keys)
        policy = validate_indexing_policy(container_id, indexing_policy or default_indexing_policy())
        existing = self._read(container_id)
        if existing is None:
            body: dict[str, Any] = {
                "id": container_id,
                "partitionKey": {"paths": [partition_key], "kind": "Hash", "version": 2},
                "indexingPolicy": policy,
            }
            if keys:
                body["uniqueKeyPolicy"] = {"uniqueKeys": [{"paths": list(k)} for k in keys]}
            if default_ttl is not None:
                body["defaultTtl"] = default_ttl
            self._act(f"create container {container_id} (partition key {partition_key})")
            if not self.dry_run:
                cosmos.create_container(self._database, body)
            return
        stored_pk = partition_key_paths(existing.get("partitionKey"))
        if stored_pk != [partition_key]:
            raise DefinitionConflict(
                f"container {container_id} exists with partition key {','.join(stored_pk)}, not "
                f"{partition_key}; a partition key cannot change: drop it or copy to a new container"
            )
        stored_keys = normalise_unique_keys(existing.get("uniqueKeyPolicy"))
        if stored_keys != sorted(keys):
            raise DefinitionConflict(
                f"container {container_id} exists with unique keys {stored_keys}, not {sorted(keys)}; "
                "unique keys cannot change: drop it or copy to a new container"
            )
        changes: dict[str, Any] = {}
        if normalise_indexing_policy(existing.get("indexingPolicy")) != normalise_indexing_policy(policy):
            changes["indexingPolicy"] = policy
        if default_ttl is not None and existing.get("defaultTtl") != default_ttl:
            changes["defaultTtl"] = default_ttl
        if not changes:
            self._act(f"adopt container {container_id} (already as declared)")
            return
        self._act(f"adopt container {container_id}, updating {', '.join(sorted(changes))}")
        self._replace(existing, changes)

    def replace_indexing_policy(self, container_id: str, policy: Policy) -> None:
        """Bring the container to ``policy``, keeping every other property, and wait for the reindex."""
        self._target(container_id)
        policy = validate_indexing_policy(container_id, policy)
        existing = self._read(container_id)
        if existing is None:
            raise DefinitionConflict(
                f"container {container_id} does not exist, so its indexing policy cannot be replaced; "
                "create it first with op.create_container"
            )
        if normalise_indexing_policy(existing.get("indexingPolicy")) == normalise_indexing_policy(policy):
            self._act(f"keep indexing policy of {container_id} (already as declared)")
            return
        self._act(f"replace indexing policy of {container_id}")
        self._replace(existing, {"indexingPolicy": policy})

    def delete_container(self, container_id: str, if_exists: bool = True) -> bool:
        """Delete the container; True if it existed. Missing is fine unless ``if_exists=False``."""
        self._target(container_id)
        if self._read(container_id) is None:
            if not if_exists:
                raise DefinitionConflict(f"container {container_id} does not exist, so it cannot be deleted")
            self._act(f"skip deleting {container_id} (does not exist)")
            return False
        self._act(f"delete container {container_id}")
        if not self.dry_run:
            cosmos.delete_container(self._database, container_id)
        return True

    # -- internals ----------------------------------------------------------------------------------------

    def _target(self, container_id: str) -> None:
        """A container a schema operation may change: a valid id, and not cosmigrate's own history."""
        validate_container_id(container_id)
        if container_id == self._history_container:
            raise InvalidDefinition(
                f"container {container_id!r} holds cosmigrate's history: a migration must not create, change "
                "or delete it"
            )

    def _read(self, container_id: str) -> dict[str, Any] | None:
        return cosmos.read_container(self._database, container_id)

    def _act(self, action: str) -> None:
        self.actions.append(action)
        log.info(("would " if self.dry_run else "") + action)

    def _replace(self, existing: dict[str, Any], changes: dict[str, Any]) -> None:
        if self.dry_run:
            return
        cosmos.replace_container(self._database, {**existing, **changes})
        if "indexingPolicy" in changes:
            self.wait_for_index(existing["id"])

    def wait_for_index(self, container_id: str) -> None:
        """Poll the index transformation until it reaches 100%, reporting progress; bounded by a timeout.

        New paths serve queries only once the transformation is complete, so a revision that reindexes is
        not recorded as applied before that.
        """
        container = self._database.get_container_client(container_id)
        deadline = time.monotonic() + self.index_timeout
        while True:
            progress = cosmos.transformation_progress(container)
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


class ValidatingOperations(Operations):
    """Runs a script's calls for their argument checks only: no request, nothing logged, nothing exists.

    The runner passes every planned script through this before the first record is written, so an invalid
    container definition is a usage error (exit 2) with nothing touched, not a failed revision.
    """

    def __init__(self, x: Mapping[str, str] | None = None, history_container: str | None = None) -> None:
        super().__init__(database=None, x=x, dry_run=True, history_container=history_container)  # type: ignore[arg-type]

    def _read(self, container_id: str) -> dict[str, Any] | None:
        return None

    def count(self, container_id: str, where: str = "true", parameters: Sequence[dict[str, Any]] = ()) -> int:
        return 0

    def _act(self, action: str) -> None:
        self.actions.append(action)
