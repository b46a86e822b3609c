"""A simulated database: the containers a plan would leave, without sending anything.

Pure. The planner starts it from the live containers (read once) or from nothing, and each operation's
:class:`~cosmigrate.ops.operations.Change` is applied to it in order, as Atlas replays a plan. Two facts travel
with it: which containers still hold their live data (so a precondition may count their documents), and
whether it is still *exact* — once a script did data work that cannot be simulated, what follows is a best
guess, and the planner says so instead of refusing on it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cosmigrate.model.container import ContainerDef

# Counts the documents of a live container matching a filter: how a simulation asks the live database.
Counter = Callable[[str, str, Sequence[Mapping[str, Any]]], int]


@dataclass
class DatabaseState:
    """Container definitions by id, and where each came from."""

    containers: dict[str, ContainerDef] = field(default_factory=dict)
    live: set[str] = field(default_factory=set)  # ids whose data is the live container's (not created by the plan)
    exact: bool = True
    inexact_since: str | None = None  # what made it inexact, for messages
    # the database's shared throughput ({"manual": N} / {"autoscale_max": M}; None: none), when it was read
    database_throughput: dict[str, int] | None = None
    database_throughput_read: bool = False

    @classmethod
    def from_live(
        cls, definitions: Iterable[ContainerDef], database_throughput: dict[str, int] | bool | None = False
    ) -> DatabaseState:
        """The live containers; ``database_throughput`` the database's shared throughput when it was read (False:
        not read, so nothing is assumed about it)."""
        containers = {definition.id: definition for definition in definitions}
        if database_throughput is False:
            return cls(containers, set(containers))
        shared = dict(database_throughput) if isinstance(database_throughput, dict) else None
        return cls(containers, set(containers), database_throughput=shared, database_throughput_read=True)

    def copy(self) -> DatabaseState:
        return DatabaseState(
            dict(self.containers),
            set(self.live),
            self.exact,
            self.inexact_since,
            dict(self.database_throughput) if self.database_throughput else None,
            self.database_throughput_read,
        )

    def get(self, container_id: str) -> ContainerDef | None:
        return self.containers.get(container_id)

    def __contains__(self, container_id: object) -> bool:
        return container_id in self.containers

    def __iter__(self) -> Iterator[ContainerDef]:
        return iter(sorted(self.containers.values(), key=lambda d: d.id))

    def put(self, definition: ContainerDef, *, keeps_data: bool) -> None:
        """Add or replace a container; ``keeps_data`` is False for one the plan creates (it starts empty)."""
        self.containers[definition.id] = definition
        if not keeps_data:
            self.live.discard(definition.id)

    def remove(self, container_id: str) -> None:
        self.containers.pop(container_id, None)
        self.live.discard(container_id)

    def holds_live_data(self, container_id: str) -> bool:
        return container_id in self.live

    def mark_inexact(self, why: str) -> None:
        if self.exact:
            self.exact, self.inexact_since = False, why

    def definitions(self) -> Mapping[str, ContainerDef]:
        return dict(self.containers)
