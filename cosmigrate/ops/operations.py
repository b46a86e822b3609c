"""Operations as data: what a migration script asks for, as small frozen objects.

Each operation validates its arguments when it is built, describes itself (text, and JSON with the full
container definition), and decides in :meth:`Operation.plan` what it would do to a database state: create,
update in place, delete, nothing, or data work. That decision is pure and is the same everywhere: the
simulating executor applies the resulting :class:`Change` to a simulated state (dry run, ``plan``, ``verify``,
``check``), the Cosmos executor carries it out against the live container it has just read (``up``,
``down``). Convergence lives here: an existing container with the same partition key and unique keys is
adopted and brought to the declared indexing policy; one that differs in them is refused.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from cosmigrate.errors import DefinitionConflict
from cosmigrate.model.container import ContainerDef
from cosmigrate.model.definitions import validate_container_id, validate_indexing_policy
from cosmigrate.model.state import DatabaseState

Effect = Literal["create", "update", "delete", "none", "data", "check"]


@dataclass(frozen=True, eq=False)
class Change:
    """What one operation does (or would do) to the database."""

    kind: str
    container: str | None
    effect: Effect
    note: str
    before: ContainerDef | None = None
    after: ContainerDef | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        return self.note

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": self.kind,
            "container": self.container,
            "effect": self.effect,
            "note": self.note,
        }
        if self.effect == "create" and self.after is not None:
            body["definition"] = self.after.to_dict()
        elif self.effect == "update" and self.before is not None and self.after is not None:
            body["before"], body["after"] = self.before.to_dict(), self.after.to_dict()
        elif self.effect == "delete" and self.before is not None:
            body["before"] = self.before.to_dict()
        if self.detail:
            body["detail"] = json.loads(json.dumps(dict(self.detail), default=str))
        return body

    def with_detail(self, **extra: Any) -> Change:
        return Change(
            self.kind, self.container, self.effect, self.note, self.before, self.after, {**self.detail, **extra}
        )


def apply_change(state: DatabaseState, change: Change) -> None:
    """Replay a change on a simulated state."""
    if change.effect == "create" and change.after is not None:
        state.put(change.after, keeps_data=False)
    elif change.effect == "update" and change.after is not None:
        state.put(change.after, keeps_data=True)
    elif change.effect == "delete" and change.container is not None:
        state.remove(change.container)


class Operation:
    """Base of every operation: a frozen value with a kind, the containers it touches, and a pure plan."""

    kind: ClassVar[str] = "operation"

    def containers(self) -> tuple[str, ...]:
        raise NotImplementedError

    def plan(self, state: DatabaseState) -> Change:
        raise NotImplementedError


def _describe_definition(definition: ContainerDef) -> str:
    parts = [f"partition key {', '.join(definition.partition_key)}"]
    if definition.unique_keys:
        parts.append("unique keys " + "; ".join("[" + ", ".join(key) + "]" for key in definition.unique_keys))
    if definition.default_ttl is not None:
        parts.append(f"default TTL {definition.default_ttl}")
    return ", ".join(parts)


@dataclass(frozen=True, eq=False)
class CreateContainer(Operation):
    """Create, or adopt an existing container with the same immutable properties."""

    definition: ContainerDef
    kind: ClassVar[str] = "create_container"

    def containers(self) -> tuple[str, ...]:
        return (self.definition.id,)

    def plan(self, state: DatabaseState) -> Change:
        declared = self.definition
        existing = state.get(declared.id)
        if existing is None:
            return Change(
                self.kind, declared.id, "create", f"create container {declared.id} ({_describe_definition(declared)})",
                after=declared,
            )  # fmt: skip
        conflict = existing.immutable_conflict(declared)
        if conflict:
            raise DefinitionConflict(conflict)
        changed = []
        if not existing.same_policy(declared.indexing_policy):
            changed.append("indexingPolicy")
        if declared.default_ttl is not None and existing.default_ttl != declared.default_ttl:
            changed.append("defaultTtl")
        if not changed:
            return Change(
                self.kind,
                declared.id,
                "none",
                f"keep container {declared.id} (already as declared)",
                existing,
                existing,
            )
        after = existing.with_changes(
            declared.indexing_policy if "indexingPolicy" in changed else None,
            declared.default_ttl if "defaultTtl" in changed else None,
        )
        return Change(
            self.kind, declared.id, "update", f"adopt container {declared.id}, updating {', '.join(changed)}",
            existing, after, {"changed": changed},
        )  # fmt: skip


@dataclass(frozen=True, eq=False)
class ReplaceIndexingPolicy(Operation):
    """Bring an existing container to a new indexing policy, keeping everything else."""

    container_id: str
    policy: Mapping[str, Any]
    kind: ClassVar[str] = "replace_indexing_policy"

    @classmethod
    def declare(cls, container_id: str, policy: Mapping[str, Any]) -> ReplaceIndexingPolicy:
        validate_container_id(container_id)
        return cls(container_id, validate_indexing_policy(container_id, policy))

    def containers(self) -> tuple[str, ...]:
        return (self.container_id,)

    def plan(self, state: DatabaseState) -> Change:
        existing = state.get(self.container_id)
        if existing is None:
            raise DefinitionConflict(
                f"container {self.container_id} does not exist, so its indexing policy cannot be replaced; "
                "create it first with op.create_container"
            )
        if existing.same_policy(self.policy):
            note = f"keep indexing policy of {self.container_id} (already as declared)"
            return Change(self.kind, self.container_id, "none", note, existing, existing)
        after = existing.with_changes(dict(self.policy))
        return Change(
            self.kind, self.container_id, "update", f"replace indexing policy of {self.container_id}", existing, after,
            {"changed": ["indexingPolicy"]},
        )  # fmt: skip


@dataclass(frozen=True, eq=False)
class DeleteContainer(Operation):
    """Delete a container (missing is fine unless ``if_exists`` is False)."""

    container_id: str
    if_exists: bool = True
    kind: ClassVar[str] = "delete_container"

    def containers(self) -> tuple[str, ...]:
        return (self.container_id,)

    def plan(self, state: DatabaseState) -> Change:
        existing = state.get(self.container_id)
        if existing is None:
            if not self.if_exists:
                raise DefinitionConflict(f"container {self.container_id} does not exist, so it cannot be deleted")
            return Change(self.kind, self.container_id, "none", f"skip deleting {self.container_id} (does not exist)")
        return Change(self.kind, self.container_id, "delete", f"delete container {self.container_id}", before=existing)


@dataclass(frozen=True, eq=False)
class Precondition(Operation):
    """A check before anything changes: documents matching ``where`` must not exist (unless forced)."""

    container_id: str
    where: str
    parameters: tuple[Mapping[str, Any], ...]
    what: str
    force_flag: str
    kind: ClassVar[str] = "assert_unused"

    def containers(self) -> tuple[str, ...]:
        return (self.container_id,)

    def plan(self, state: DatabaseState) -> Change:
        return Change(self.kind, self.container_id, "check", f"check {self.container_id} has no {self.what}")


def _require(state: DatabaseState, container_id: str, doing: str) -> ContainerDef:
    existing = state.get(container_id)
    if existing is None:
        raise DefinitionConflict(f"{doing}: container {container_id} does not exist at this point; create it first")
    return existing


@dataclass(frozen=True, eq=False)
class SeedItems(Operation):
    """Upsert fixed documents; the reverse removes exactly those ids (unless changed since)."""

    container_id: str
    items: tuple[Mapping[str, Any], ...]
    kind: ClassVar[str] = "seed_items"

    def containers(self) -> tuple[str, ...]:
        return (self.container_id,)

    def plan(self, state: DatabaseState) -> Change:
        _require(state, self.container_id, "seed_items")
        ids = [str(item["id"]) for item in self.items]
        return Change(
            self.kind, self.container_id, "data", f"seed {len(ids)} items into {self.container_id}", detail={"ids": ids}
        )


@dataclass(frozen=True, eq=False)
class UnseedItems(Operation):
    """Delete seeded documents by id, leaving (and reporting) those changed since they were seeded."""

    container_id: str
    items: tuple[Mapping[str, Any], ...]
    kind: ClassVar[str] = "unseed_items"

    def containers(self) -> tuple[str, ...]:
        return (self.container_id,)

    def plan(self, state: DatabaseState) -> Change:
        if self.container_id not in state:
            return Change(
                self.kind,
                self.container_id,
                "none",
                f"skip removing seeded items of {self.container_id} (no container)",
            )
        ids = [str(item["id"]) for item in self.items]
        return Change(
            self.kind,
            self.container_id,
            "data",
            f"remove {len(ids)} seeded items from {self.container_id}",
            detail={"ids": ids},
        )


@dataclass(frozen=True, eq=False)
class TransformItems(Operation):
    """Stream a container's documents through ``fn`` and write the results back (see cosmigrate.data)."""

    container_id: str
    fn: Callable[[dict[str, Any]], Any]
    query: str | None = None
    parameters: tuple[Mapping[str, Any], ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)
    kind: ClassVar[str] = "transform_items"

    def containers(self) -> tuple[str, ...]:
        return (self.container_id,)

    def plan(self, state: DatabaseState) -> Change:
        _require(state, self.container_id, "transform_items")
        which = f" matching {self.query}" if self.query else ""
        name = getattr(self.fn, "__name__", "fn")
        return Change(
            self.kind, self.container_id, "data", f"transform items of {self.container_id}{which} with {name}",
            detail={"query": self.query, "fn": name},
        )  # fmt: skip


@dataclass(frozen=True, eq=False)
class CopyContainer(Operation):
    """Copy every document of one container into another (a new partition key or unique keys)."""

    source_id: str
    target_id: str
    transform: Callable[[dict[str, Any]], Any] | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    kind: ClassVar[str] = "copy_container"

    def containers(self) -> tuple[str, ...]:
        return (self.source_id, self.target_id)

    def plan(self, state: DatabaseState) -> Change:
        _require(state, self.source_id, "copy_container")
        _require(state, self.target_id, "copy_container")
        return Change(
            self.kind,
            self.target_id,
            "data",
            f"copy items of {self.source_id} into {self.target_id}",
            detail={"source": self.source_id},
        )


@dataclass(frozen=True, eq=False)
class DataAccess(Operation):
    """Raw SDK access (``op.container``, ``op.database``): shown in a plan, never simulated."""

    container_id: str | None
    kind: ClassVar[str] = "data_access"

    def containers(self) -> tuple[str, ...]:
        return (self.container_id,) if self.container_id else ()

    def plan(self, state: DatabaseState) -> Change:
        where = f"on {self.container_id} through op.container" if self.container_id else "through op.database"
        return Change(self.kind, self.container_id, "data", f"data work {where} (not simulated)")
