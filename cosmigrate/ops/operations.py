"""Operations as data: what a migration script asks for, as small frozen objects (Alembic's ``ops.py``).

Each operation validates its arguments when it is built (through the property registry), decides in
:meth:`Operation.plan` what it would do to a database state (create, update in place, delete, nothing, data
work, or a refusal), says in :meth:`Operation.reverse` what undoes it where something can, and is carried out by
the implementation registered for its type (:mod:`cosmigrate.ops.apply`, Alembic's ``toimpl.py``). The decision
is pure and the same everywhere: the simulating executor replays the :class:`~cosmigrate.ops.change.Change` on a
simulated state (dry run, ``plan``, ``verify``, ``check``), an implementation carries it out against the live
container it has just read (``up``, ``down``). Convergence lives here: an existing container whose create-only
properties are as declared is adopted and brought to the declared mutable ones; one that differs in a create-only
property is refused, naming the swap pattern.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from cosmigrate.errors import DefinitionConflict
from cosmigrate.model.container import ContainerDef
from cosmigrate.model.definitions import validate_container_id
from cosmigrate.model.properties import REGISTRY
from cosmigrate.model.properties.throughput import describe_throughput
from cosmigrate.model.state import DatabaseState
from cosmigrate.ops.change import Change, DataDetail, Effect, Outcome, ThroughputChange, apply_change

__all__ = ["Change", "Effect", "Outcome", "apply_change"]


class Operation:
    """Base of every operation: a frozen value with a kind, the containers it touches, and a pure plan."""

    kind: ClassVar[str] = "operation"

    def containers(self) -> tuple[str, ...]:
        raise NotImplementedError

    def plan(self, state: DatabaseState) -> Change:
        raise NotImplementedError

    def reverse(self, change: Change) -> Operation | None:
        """The operation that undoes ``change`` (what this operation did), or None when nothing can."""
        return None


def _describe_definition(definition: ContainerDef) -> str:
    parts = [f"partition key {', '.join(definition.partition_key)}"]
    if definition.unique_keys:
        parts.append("unique keys " + "; ".join("[" + ", ".join(key) + "]" for key in definition.unique_keys))
    if definition.default_ttl is not None:
        parts.append(f"default TTL {definition.default_ttl}")
    if definition.throughput:
        parts.append(describe_throughput(definition.throughput))
    return ", ".join(parts)


def _update(kind: str, existing: ContainerDef, declared: ContainerDef, verb: str) -> Change:
    """Bring ``existing`` to what ``declared`` declares: nothing, an update of the properties that differ, or a
    refusal of a property that cannot change in place."""
    changed, refused = existing.compared(declared)
    if refused:
        raise DefinitionConflict(refused[0])
    if not changed:
        return Change(
            kind, existing.id, "none", f"keep container {existing.id} (already as declared)", existing, existing
        )
    after = existing.with_values(**{name: declared.get(name) for name in changed})
    labels = ", ".join(REGISTRY[name].label for name in changed)
    throughput = (
        ThroughputChange("container", existing.throughput, after.throughput) if "throughput" in changed else None
    )
    return Change(
        kind, existing.id, "update", f"{verb} container {existing.id}, updating {labels}", existing, after,
        tuple(changed), throughput,
    )  # fmt: skip


@dataclass(frozen=True, eq=False)
class CreateContainer(Operation):
    """Create, or adopt an existing container whose create-only properties are as declared."""

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
                after=declared.created(),
            )  # fmt: skip
        return _update(self.kind, existing, declared, "adopt")

    def reverse(self, change: Change) -> Operation | None:
        if change.effect == "create":
            return DeleteContainer(self.definition.id)
        if change.effect == "update" and change.before is not None:
            return AlterContainer(self.definition.id, {n: change.before.get(n) for n in change.changed})
        return None


@dataclass(frozen=True, eq=False)
class AlterContainer(Operation):
    """Change some properties of an existing container (by REST name), keeping every other one as stored."""

    container_id: str
    values: Mapping[str, Any]
    kind: ClassVar[str] = "alter_container"

    def containers(self) -> tuple[str, ...]:
        return (self.container_id,)

    missing: ClassVar[str] = "it cannot be changed"  # what a missing container makes impossible

    def plan(self, state: DatabaseState) -> Change:
        existing = state.get(self.container_id)
        if existing is None:
            raise DefinitionConflict(
                f"container {self.container_id} does not exist, so {self.missing}; create it first with "
                "op.create_container"
            )
        return _update(self.kind, existing, ContainerDef(self.container_id, dict(self.values)), "change")

    def reverse(self, change: Change) -> Operation | None:
        if change.effect == "update" and change.before is not None:
            return AlterContainer(self.container_id, {n: change.before.get(n) for n in change.changed})
        return None


@dataclass(frozen=True, eq=False)
class ReplaceIndexingPolicy(AlterContainer):
    """Bring an existing container to a new indexing policy, keeping everything else."""

    kind: ClassVar[str] = "replace_indexing_policy"

    @classmethod
    def declare(cls, container_id: str, policy: Mapping[str, Any]) -> ReplaceIndexingPolicy:
        validate_container_id(container_id)
        return cls(container_id, {"indexingPolicy": REGISTRY["indexingPolicy"].declare(container_id, policy, "policy")})

    @property
    def policy(self) -> Mapping[str, Any]:
        return dict(self.values["indexingPolicy"])

    missing: ClassVar[str] = "its indexing policy cannot be replaced"

    def plan(self, state: DatabaseState) -> Change:
        change = super().plan(state)
        if change.effect == "none":
            note = f"keep indexing policy of {self.container_id} (already as declared)"
            return Change(self.kind, self.container_id, "none", note, change.before, change.after)
        return Change(
            self.kind, self.container_id, "update", f"replace indexing policy of {self.container_id}", change.before,
            change.after, change.changed,
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

    def reverse(self, change: Change) -> Operation | None:
        return CreateContainer(change.before) if change.effect == "delete" and change.before is not None else None


@dataclass(frozen=True, eq=False)
class SetDatabaseThroughput(Operation):
    """Change the database's shared throughput (set when the database was created: ``--database-throughput``)."""

    throughput: dict[str, int]
    kind: ClassVar[str] = "set_database_throughput"

    def containers(self) -> tuple[str, ...]:
        return ()

    def plan(self, state: DatabaseState) -> Change:
        before = state.database_throughput
        if state.database_throughput_read and before is None:
            raise DefinitionConflict(
                "the database has no shared throughput: it is given when the database is created (up "
                "--create-database with --database-throughput) and cannot be added later; give each container its "
                "own instead (offer_throughput)"
            )
        if before == self.throughput:
            note = f"keep the database's throughput ({describe_throughput(before)})"
            return Change(self.kind, None, "none", note)
        change = ThroughputChange("database", before, dict(self.throughput))
        return Change(self.kind, None, "update", "change the database's shared throughput", throughput=change)

    def reverse(self, change: Change) -> Operation | None:
        before = change.throughput.before if change.throughput else None
        return SetDatabaseThroughput(before) if change.effect == "update" and before else None


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
        ids = tuple(str(item["id"]) for item in self.items)
        return Change(
            self.kind, self.container_id, "data", f"seed {len(ids)} items into {self.container_id}",
            data=DataDetail(ids=ids),
        )  # fmt: skip

    def reverse(self, change: Change) -> Operation | None:
        return UnseedItems(self.container_id, self.items)


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
            note = f"skip removing seeded items of {self.container_id} (no container)"
            return Change(self.kind, self.container_id, "none", note)
        ids = tuple(str(item["id"]) for item in self.items)
        return Change(
            self.kind, self.container_id, "data", f"remove {len(ids)} seeded items from {self.container_id}",
            data=DataDetail(ids=ids),
        )  # fmt: skip

    def reverse(self, change: Change) -> Operation | None:
        return SeedItems(self.container_id, self.items)


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
            data=DataDetail(query=self.query, fn=name),
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
            self.kind, self.target_id, "data", f"copy items of {self.source_id} into {self.target_id}",
            data=DataDetail(source=self.source_id),
        )  # fmt: skip


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
