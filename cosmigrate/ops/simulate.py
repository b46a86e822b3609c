"""The simulating executor: operations applied to a :class:`DatabaseState`, nothing sent.

It serves every pass that only looks: validation before a run, dry run and ``plan``, ``verify`` (replaying the
applied revisions from nothing) and ``check`` (replaying every revision offline). Counts for preconditions
come from the live database only for containers whose data is still the live one, and only when a reader is
given; a container the plan creates is empty.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cosmigrate.model.container import ContainerDef
from cosmigrate.model.state import Counter, DatabaseState
from cosmigrate.ops.facade import PlanningStop
from cosmigrate.ops.operations import Change, Operation, apply_change


class SimulatingExecutor:
    planning = True

    def __init__(self, state: DatabaseState, counter: Counter | None = None) -> None:
        self.state = state
        self.counter = counter

    def execute(self, operation: Operation) -> Change:
        change = operation.plan(self.state)
        apply_change(self.state, change)
        return change

    def definition(self, container_id: str) -> ContainerDef | None:
        return self.state.get(container_id)

    def count(self, container_id: str, where: str, parameters: Sequence[Mapping[str, Any]]) -> int:
        if self.counter is not None and self.state.holds_live_data(container_id):
            return self.counter(container_id, where, parameters)
        return 0

    def raw_container(self, container_id: str) -> Any:
        raise PlanningStop(f"data work on {container_id} through op.container")

    def raw_database(self) -> Any:
        raise PlanningStop("data work through op.database")
