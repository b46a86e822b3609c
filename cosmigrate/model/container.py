"""One container's definition as a value: what a migration declares and what the service stores, compared alike.

Pure: no Cosmos DB import. A :class:`ContainerDef` is built either from what a script declares
(:meth:`ContainerDef.declare`, which validates) or from the properties the service returns
(:meth:`ContainerDef.from_properties`); :meth:`comparable` brings both to one normal form, so that the planner,
the executor and drift detection decide "same or different" by one rule.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cosmigrate.errors import InvalidDefinition
from cosmigrate.model.definitions import (
    Policy,
    default_indexing_policy,
    normalise_indexing_policy,
    normalise_unique_keys,
    validate_container_id,
    validate_indexing_policy,
    validate_partition_key,
    validate_unique_keys,
)

MAX_HIERARCHICAL_PATHS = 3


@dataclass(frozen=True, eq=False)
class ContainerDef:
    """A container's definition: the immutable properties (partition key, unique keys) and the mutable ones."""

    id: str
    partition_key: tuple[str, ...]
    unique_keys: tuple[tuple[str, ...], ...] = ()
    indexing_policy: Policy = field(default_factory=default_indexing_policy)
    default_ttl: int | None = None

    # -- building ---------------------------------------------------------------------------------------------

    @classmethod
    def declare(
        cls,
        container_id: str,
        partition_key: str | Sequence[str],
        unique_keys: Sequence[Sequence[str]] | None = None,
        indexing_policy: Mapping[str, Any] | None = None,
        default_ttl: int | None = None,
    ) -> ContainerDef:
        """Validate what a script declares; raises :class:`InvalidDefinition` naming what is wrong."""
        validate_container_id(container_id)
        keys = tuple(tuple(key) for key in validate_unique_keys(container_id, unique_keys))
        policy = validate_indexing_policy(
            container_id, default_indexing_policy() if indexing_policy is None else indexing_policy
        )
        if default_ttl is not None and (
            isinstance(default_ttl, bool) or not isinstance(default_ttl, int) or default_ttl < -1 or default_ttl == 0
        ):
            raise InvalidDefinition(
                f"container {container_id!r}: default_ttl must be -1 (on, no default) or a number of seconds > 0, "
                f"not {default_ttl!r}"
            )
        return cls(container_id, _partition_paths(container_id, partition_key), keys, policy, default_ttl)

    @classmethod
    def from_properties(cls, properties: Mapping[str, Any]) -> ContainerDef:
        """From the properties the service returns for a container (read, list or create)."""
        keys = tuple(
            tuple(key.get("paths", [])) for key in (properties.get("uniqueKeyPolicy") or {}).get("uniqueKeys", []) or []
        )
        policy = copy.deepcopy(dict(properties.get("indexingPolicy") or default_indexing_policy()))
        ttl = properties.get("defaultTtl")
        return cls(
            str(properties["id"]),
            tuple((properties.get("partitionKey") or {}).get("paths", [])),
            keys,
            policy,
            int(ttl) if ttl is not None else None,
        )

    def with_changes(self, indexing_policy: Policy | None = None, default_ttl: int | None = None) -> ContainerDef:
        """This definition with another indexing policy and/or TTL (the only things that change in place)."""
        return ContainerDef(
            self.id,
            self.partition_key,
            self.unique_keys,
            copy.deepcopy(indexing_policy) if indexing_policy is not None else self.indexing_policy,
            default_ttl if default_ttl is not None else self.default_ttl,
        )

    # -- reading --------------------------------------------------------------------------------------------

    @property
    def partition_kind(self) -> str:
        return "MultiHash" if len(self.partition_key) > 1 else "Hash"

    def partition_key_body(self) -> dict[str, Any]:
        return {"paths": list(self.partition_key), "kind": self.partition_kind, "version": 2}

    def to_body(self) -> dict[str, Any]:
        """The REST body that creates this container."""
        body: dict[str, Any] = {
            "id": self.id,
            "partitionKey": self.partition_key_body(),
            "indexingPolicy": copy.deepcopy(self.indexing_policy),
        }
        if self.unique_keys:
            body["uniqueKeyPolicy"] = {"uniqueKeys": [{"paths": list(key)} for key in self.unique_keys]}
        if self.default_ttl is not None:
            body["defaultTtl"] = self.default_ttl
        return body

    def to_dict(self) -> dict[str, Any]:
        """The full definition, for plans and JSON: what a reviewer needs to see."""
        return {
            "id": self.id,
            "partitionKey": list(self.partition_key),
            "uniqueKeys": [list(key) for key in self.unique_keys],
            "indexingPolicy": copy.deepcopy(self.indexing_policy),
            "defaultTtl": self.default_ttl,
        }

    def comparable(self) -> dict[str, Any]:
        """The normal form both sides are compared in (see :func:`normalise_indexing_policy`)."""
        return {
            "partitionKey": list(self.partition_key),
            "uniqueKeys": sorted(list(key) for key in self.unique_keys),
            "indexingPolicy": normalise_indexing_policy(self.indexing_policy),
            "defaultTtl": self.default_ttl,
        }

    def immutable_conflict(self, declared: ContainerDef) -> str | None:
        """Why this (existing) container cannot become ``declared`` in place, or None when it can."""
        if list(self.partition_key) != list(declared.partition_key):
            return (
                f"container {self.id} exists with partition key {','.join(self.partition_key) or '(none)'}, not "
                f"{','.join(declared.partition_key)}; a partition key cannot change: drop it or copy to a new "
                "container (op.copy_container)"
            )
        mine = normalise_unique_keys({"uniqueKeys": [{"paths": list(k)} for k in self.unique_keys]})
        theirs = normalise_unique_keys({"uniqueKeys": [{"paths": list(k)} for k in declared.unique_keys]})
        if mine != theirs:
            return (
                f"container {self.id} exists with unique keys {mine}, not {theirs}; unique keys cannot change: "
                "drop it or copy to a new container (op.copy_container)"
            )
        return None

    def same_policy(self, policy: Mapping[str, Any]) -> bool:
        return normalise_indexing_policy(self.indexing_policy) == normalise_indexing_policy(policy)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ContainerDef) and self.id == other.id and self.comparable() == other.comparable()

    def __hash__(self) -> int:
        return hash((self.id, self.partition_key, self.unique_keys))


def _partition_paths(container_id: str, partition_key: str | Sequence[str]) -> tuple[str, ...]:
    if isinstance(partition_key, str):
        return (validate_partition_key(container_id, partition_key),)
    if not isinstance(partition_key, Sequence) or not 1 <= len(partition_key) <= MAX_HIERARCHICAL_PATHS:
        raise InvalidDefinition(
            f"container {container_id!r}: partition_key must be a path like '/tenantId' or a list of 1 to "
            f"{MAX_HIERARCHICAL_PATHS} paths (hierarchical), not {partition_key!r}"
        )
    return tuple(validate_partition_key(container_id, path) for path in partition_key)
