"""One container's definition as a value: what a migration declares and what the service stores, compared alike.

Pure: no Cosmos DB import. A :class:`ContainerDef` is its id and a value per property of the registry
(:mod:`cosmigrate.model.properties`), in the service's REST form. It is built either from what a script declares
(:meth:`ContainerDef.declare`, which validates every keyword and refuses an unknown one by name) or from the
properties the service returns (:meth:`ContainerDef.from_properties`); :meth:`comparable` brings both to one
normal form, property by property, so that the planner, the executor, drift detection, the built-in tests and
backups decide "same or different" by one rule. Nothing here knows a property by name beyond the accessors that
older callers use: the registry does.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from cosmigrate.errors import InvalidDefinition
from cosmigrate.model.definitions import Policy, validate_container_id
from cosmigrate.model.difference import Difference
from cosmigrate.model.properties import REGISTRY, Property, by_keyword, json_name

OMITTED: Any = object()  # a keyword left out, unlike one given as None


@dataclass(frozen=True, eq=False)
class ContainerDef:
    """A container's definition: its id and, by REST name, the value of each property it has or declares.

    A declared definition holds every property that is managed when omitted (the service's default when not
    given) and, of the others (throughput), only those declared; a live one holds what the service returned."""

    id: str
    values: Mapping[str, Any] = field(default_factory=dict)

    # -- building ---------------------------------------------------------------------------------------------

    @classmethod
    def declare(
        cls, container_id: str, partition_key: Any, unique_keys: Any = None, indexing_policy: Any = None,
        default_ttl: Any = OMITTED, **keywords: Any,
    ) -> ContainerDef:  # fmt: skip
        """Validate what a script declares (``op.create_container``'s keywords); raises :class:`InvalidDefinition`
        naming what is wrong, an unknown keyword included. ``default_ttl`` left out keeps an adopted container's
        TTL; ``default_ttl=None`` declares it off."""
        validate_container_id(container_id)
        given: dict[str, Any] = {"partition_key": partition_key, **keywords}
        if unique_keys is not None:
            given["unique_keys"] = unique_keys
        if indexing_policy is not None:
            given["indexing_policy"] = indexing_policy
        if default_ttl is not OMITTED:
            given["default_ttl"] = default_ttl
        values: dict[str, Any] = {}
        by_property: dict[str, str] = {}
        for keyword, value in given.items():
            prop = by_keyword(container_id, keyword)
            if prop.name in by_property:
                raise InvalidDefinition(
                    f"container {container_id!r}: {by_property[prop.name]} and {keyword} both declare its {prop.label}"
                    ": give one of them"
                )
            by_property[prop.name] = keyword
            values[prop.name] = prop.declare(container_id, value, keyword)
        for prop in REGISTRY.values():
            if prop.name not in values and prop.managed_when_omitted:
                values[prop.name] = prop.declare(container_id, None, prop.keywords[0])
        for prop in REGISTRY.values():
            prop.check(container_id, values)
        return cls(container_id, values)

    @classmethod
    def from_properties(cls, properties: Mapping[str, Any]) -> ContainerDef:
        """From the properties the service returns for a container (read, list or create); ``throughput``, when
        present, is the container's offer as read by the caller."""
        values = {prop.name: copy.deepcopy(prop.read(properties)) for prop in REGISTRY.values()}
        if values.get("throughput") is None and "throughput" not in properties:
            values.pop("throughput", None)
        return cls(str(properties["id"]), values)

    @classmethod
    def from_dict(cls, definition: Mapping[str, Any]) -> ContainerDef:
        """From :meth:`to_dict` (a plan's JSON)."""
        values = {
            prop.name: prop.from_json(definition[json_name(prop)])
            for prop in REGISTRY.values()
            if json_name(prop) in definition
        }
        return cls(str(definition["id"]), values)

    def created(self) -> ContainerDef:
        """What a container created from this definition holds: every body property it leaves out at the
        service's default (so that drift in one of them is seen later)."""
        defaults = {p.name: None for p in REGISTRY.values() if p.in_body and p.name not in self.values}
        return ContainerDef(self.id, {**self.values, **defaults}) if defaults else self

    def with_values(self, **by_name: Any) -> ContainerDef:
        """This definition with the given properties (by REST name) replaced."""
        return ContainerDef(self.id, {**self.values, **copy.deepcopy(by_name)})

    def with_changes(self, indexing_policy: Policy | None = None, default_ttl: int | None = None) -> ContainerDef:
        """This definition with another indexing policy and/or TTL (kept for callers of the older model)."""
        changes: dict[str, Any] = {}
        if indexing_policy is not None:
            changes["indexingPolicy"] = indexing_policy
        if default_ttl is not None:
            changes["defaultTtl"] = default_ttl
        return self.with_values(**changes)

    # -- reading --------------------------------------------------------------------------------------------

    def get(self, name: str) -> Any:
        return self.values.get(name)

    def declares(self, name: str) -> bool:
        return name in self.values

    def properties(self) -> Iterator[Property]:
        """The registry's properties this definition holds, in the order plans show them."""
        return (prop for prop in REGISTRY.values() if prop.name in self.values)

    @property
    def partition_key(self) -> tuple[str, ...]:
        return tuple((self.get("partitionKey") or {}).get("paths") or ())

    @property
    def unique_keys(self) -> tuple[tuple[str, ...], ...]:
        return tuple(tuple(key) for key in REGISTRY["uniqueKeyPolicy"].normal(self.get("uniqueKeyPolicy")))

    @property
    def indexing_policy(self) -> Policy:
        return dict(self.get("indexingPolicy") or {})

    @property
    def default_ttl(self) -> int | None:
        value = self.get("defaultTtl")
        return int(value) if value is not None else None

    @property
    def throughput(self) -> dict[str, int] | None:
        value = self.get("throughput")
        return dict(value) if value else None

    @property
    def partition_kind(self) -> str:
        return str((self.get("partitionKey") or {}).get("kind") or "Hash")

    def partition_key_body(self) -> dict[str, Any]:
        return dict(self.get("partitionKey") or {"paths": [], "kind": "Hash"})

    def to_body(self) -> dict[str, Any]:
        """The REST body that creates this container, or replaces it (every property in the body re-sent:
        a replace resets what it is not given)."""
        body: dict[str, Any] = {"id": self.id}
        for prop in self.properties():
            if prop.in_body:
                body.update(copy.deepcopy(prop.body(self.values[prop.name])))
        return body

    def to_dict(self) -> dict[str, Any]:
        """The full definition, for plans and JSON: what a reviewer needs to see."""
        return {
            "id": self.id,
            **{json_name(p): copy.deepcopy(p.to_json(self.values[p.name])) for p in self.properties()},
        }

    def comparable(self) -> dict[str, Any]:
        """The normal form both sides are compared in, by REST name (partitionKey and uniqueKeys by their paths)."""
        normal = {prop.name: prop.normal(self.values[prop.name]) for prop in self.properties()}
        if "partitionKey" in normal:
            normal["partitionKey"] = normal["partitionKey"]["paths"]
        if "uniqueKeyPolicy" in normal:
            normal["uniqueKeys"] = normal.pop("uniqueKeyPolicy")
        return normal

    def keywords(self) -> list[tuple[str, Any]]:
        """The ``op.create_container`` keywords that declare this definition (the partition key first; properties
        at the service's default left out), for writing a migration from a live container."""
        found = [prop.keyword(self.values[prop.name]) for prop in self.properties()]
        return [pair for pair in found if pair is not None]

    def lines(self) -> list[str]:
        """The whole definition in a plan's text, in Cosmos DB terms (a property left at the service's default
        is shown only when it is one of the core ones: partition key, unique keys, indexing, TTL)."""
        return [
            line
            for prop in self.properties()
            if prop.shown_when_default or not prop.is_default(self.values[prop.name])
            for line in prop.lines(self.values[prop.name])
        ]

    # -- comparing ------------------------------------------------------------------------------------------

    def compared(self, declared: ContainerDef) -> tuple[list[str], list[str]]:
        """What it takes to bring this (existing) container to ``declared``: the properties that differ and may
        change, and the refusals of those that may not (each names the way out). A property ``declared`` leaves
        unmanaged (throughput not given) is not compared."""
        changed, refused = [], []
        for prop in declared.properties():
            mine, theirs = self.get(prop.name), declared.get(prop.name)
            if prop.same(theirs, mine):
                continue
            reason = prop.refusal(self.id, mine, theirs)
            if reason:
                refused.append(reason)
            else:
                changed.append(prop.name)
        return changed, refused

    def immutable_conflict(self, declared: ContainerDef) -> str | None:
        """Why this (existing) container cannot become ``declared`` in place, or None when it can."""
        return next(iter(self.compared(declared)[1]), None)

    def differences(self, live: ContainerDef) -> list[Difference]:
        """Every way ``live`` differs from this declared definition, property by property and path by path."""
        return [
            difference
            for prop in self.properties()
            if live.declares(prop.name) or prop.managed_when_omitted
            for difference in prop.differences(self.id, self.get(prop.name), live.get(prop.name))
        ]

    def same_policy(self, policy: Mapping[str, Any]) -> bool:
        prop = REGISTRY["indexingPolicy"]
        return bool(prop.normal(self.indexing_policy) == prop.normal(policy))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ContainerDef) or self.id != other.id:
            return False
        mine, theirs = self.comparable(), other.comparable()
        shared = set(mine) & set(theirs)
        managed = {p.name for p in REGISTRY.values() if p.managed_when_omitted} | {"uniqueKeys"}
        return set(mine) & managed == set(theirs) & managed and all(mine[k] == theirs[k] for k in shared)

    def __hash__(self) -> int:
        return hash((self.id, self.partition_key, self.unique_keys))
