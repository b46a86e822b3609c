"""How operations reach a database: implementations, each a registry of one apply function per operation type
(Alembic's ``toimpl.py``), and the executor that plans each operation on what it reads and hands it over.

An :class:`Implementation` knows how to read the live state of the containers an operation touches and how to
carry out each kind of operation. ``keyed`` is the data plane with the account key (every call through the
azure-cosmos client); another implementation (the management plane, for accounts without keys) registers its own
functions for the same operation types — no ``if`` on the kind of account anywhere else. The decision of what to
do is the operation's own pure ``plan``, the same one the dry run showed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from cosmigrate import logs
from cosmigrate.model.container import ContainerDef
from cosmigrate.model.state import DatabaseState
from cosmigrate.ops.change import Change, Outcome
from cosmigrate.ops.operations import CopyContainer, DataAccess, Operation, Precondition, TransformItems

log = logs.LOG
ProgressCallback = Callable[[str, int], None]
ApplyFunction = Callable[["ApplyContext", Any, Change], Outcome]
ReadFunction = Callable[["ApplyContext", Sequence[str], "Operation | None"], DatabaseState]


class DataSteps(Protocol):
    """What the runner supplies for data work: backups before a delete, and the streaming engine."""

    def before_delete(self, database: Any, container_id: str) -> dict[str, Any] | None: ...

    def transform(self, database: Any, operation: TransformItems) -> dict[str, Any]: ...

    def copy(self, database: Any, operation: CopyContainer) -> dict[str, Any]: ...


@dataclass
class ApplyContext:
    """What an apply function works with: the database (an azure-cosmos ``DatabaseProxy`` for ``keyed``), the run's
    data steps, how long to wait for an index transformation, and whom to tell about its progress."""

    database: Any
    data: DataSteps | None = None
    index_timeout: float = 3600.0
    poll_interval: float = 0.5
    on_progress: ProgressCallback | None = None
    read: dict[str, dict[str, Any] | None] = field(default_factory=dict)  # the stored properties read for the plan
    extra: dict[str, Any] = field(default_factory=dict)  # an implementation's own (the offers read, a client…)


class Implementation:
    """A registry of apply functions by operation type, and the reader of the live state they plan on."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._apply: dict[type[Operation], ApplyFunction] = {}
        self._read: ReadFunction | None = None

    def extend(self, name: str) -> Implementation:
        """Another implementation that starts with this one's functions, to override some of them (the
        management plane keeps the data plane's data steps and replaces the schema ones)."""
        other = Implementation(name)
        other._apply = dict(self._apply)
        other._read = self._read
        return other

    def implements(self, *types: type[Operation]) -> Callable[[ApplyFunction], ApplyFunction]:
        """Decorator: ``fn(context, operation, change) -> Outcome`` carries out operations of these types."""

        def register(fn: ApplyFunction) -> ApplyFunction:
            for kind in types:
                self._apply[kind] = fn
            return fn

        return register

    def reads(self, fn: ReadFunction) -> ReadFunction:
        """Decorator: ``fn(context, container_ids, operation) -> DatabaseState``, the live state an operation is
        planned on (and ``context.read`` filled with the stored properties); ``operation`` None for a question
        (``op.exists``)."""
        self._read = fn
        return fn

    def read_state(
        self, context: ApplyContext, container_ids: Sequence[str], operation: Operation | None = None
    ) -> DatabaseState:
        if self._read is None:
            raise NotImplementedError(f"the {self.name} implementation reads no state")
        return self._read(context, container_ids, operation)

    def apply(self, context: ApplyContext, operation: Operation, change: Change) -> Outcome:
        for kind in type(operation).__mro__:
            fn = self._apply.get(kind)
            if fn is not None:
                return fn(context, operation, change)
        raise NotImplementedError(f"the {self.name} implementation cannot carry out {operation.kind}")

    def covers(self) -> set[type[Operation]]:
        return set(self._apply)


class Executor:
    """The applying executor: for every operation it reads the live state of what the operation touches, asks the
    operation's pure plan what to do on it, and has the implementation do exactly that."""

    planning = False

    def __init__(
        self,
        implementation: Implementation,
        context: ApplyContext,
        *,
        before_effect: Callable[[], None] | None = None,
        counter: Callable[[str, str, Sequence[Mapping[str, Any]]], int] | None = None,
        raw: Callable[[str | None], Any] | None = None,
    ) -> None:
        self.implementation = implementation
        self.context = context
        self.before_effect = before_effect or (lambda: None)
        self._counter = counter
        self._raw = raw

    def execute(self, operation: Operation) -> Change:
        if isinstance(operation, Precondition | DataAccess):
            return operation.plan(DatabaseState())  # nothing to read: shown as a step, done by the facade
        state = self.implementation.read_state(self.context, operation.containers(), operation)
        change = operation.plan(state)
        if change.effect in ("create", "update", "delete", "data"):
            self.before_effect()
        if change.effect in ("update", "data"):  # long: say what is under way
            log.info(change.note)
        outcome = self.implementation.apply(self.context, operation, change) if change.effect != "none" else None
        if change.effect not in ("update", "data"):
            log.info(change.note)
        return change if outcome is None or outcome == Outcome() else replace(change, outcome=outcome)

    def definition(self, container_id: str) -> ContainerDef | None:
        return self.implementation.read_state(self.context, (container_id,)).get(container_id)

    def count(self, container_id: str, where: str, parameters: Sequence[Mapping[str, Any]]) -> int:
        if self._counter is None:
            raise NotImplementedError("this executor cannot count documents")
        return self._counter(container_id, where, parameters)

    def raw_container(self, container_id: str) -> Any:
        self.before_effect()  # what a script does with the SDK is unknown: assume a change
        return self._raw(container_id) if self._raw else None

    def raw_database(self) -> Any:
        self.before_effect()
        return self._raw(None) if self._raw else None
