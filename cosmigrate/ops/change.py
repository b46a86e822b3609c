"""What one operation does (or would do) to a database: a :class:`Change`, typed, with its text and its JSON.

Pure. An operation's :meth:`~cosmigrate.ops.operations.Operation.plan` makes a Change; the simulating executor
replays it on a simulated state (:func:`apply_change`), an implementation carries it out and adds what it saw
(:class:`Outcome`: a backup, data totals, counts). Plans, runs and the history read these fields, never keys of a
dict; the JSON (``to_dict``) keeps the shape ``plan --json`` has always had (``detail`` with ``changed``,
``found``…).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

from cosmigrate.model.container import ContainerDef
from cosmigrate.model.difference import show
from cosmigrate.model.properties import REGISTRY
from cosmigrate.model.properties.throughput import describe_throughput, mode_of
from cosmigrate.model.state import DatabaseState

Effect = Literal["create", "update", "delete", "none", "data", "check"]
MARKS = {"create": "+", "update": "~", "delete": "-", "none": "=", "data": "*", "check": "?"}


@dataclass(frozen=True)
class ThroughputChange:
    """A throughput before and after (``{"manual": N}`` or ``{"autoscale_max": M}``), of a container or of the
    database (shared). A change of mode is a migration of the offer, a call of its own, before any new value."""

    scope: Literal["container", "database"]
    before: dict[str, int] | None
    after: dict[str, int] | None

    @property
    def migrate(self) -> bool:
        return mode_of(self.before) is not None and mode_of(self.after) != mode_of(self.before)

    def describe(self) -> str:
        how = " (a migration of the offer)" if self.migrate else ""
        return f"throughput {describe_throughput(self.before)} → {describe_throughput(self.after)}{how}"

    def to_dict(self) -> dict[str, Any]:
        return {"scope": self.scope, "before": self.before, "after": self.after, "migrate": self.migrate}


@dataclass(frozen=True)
class DataDetail:
    """What a data step or a check is about."""

    query: str | None = None
    fn: str | None = None
    ids: tuple[str, ...] = ()
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"query": self.query, "fn": self.fn, "source": self.source}
        if self.ids:
            body["ids"] = list(self.ids)
        return {k: v for k, v in body.items() if v is not None or k == "query"}


@dataclass(frozen=True)
class Outcome:
    """What carrying a change out reported: what the history keeps and the run prints."""

    backup: dict[str, Any] | None = None  # the export taken before a delete
    totals: dict[str, Any] | None = None  # a data step's counts
    dead_letter: str | None = None
    seeded: int | None = None
    removed: int | None = None
    kept: tuple[str, ...] | None = None
    found: int | None = None  # a precondition's count
    forced: bool = False

    def to_dict(self) -> dict[str, Any]:
        body = {f.name: getattr(self, f.name) for f in fields(self)}
        if body["kept"] is not None:
            body["kept"] = list(body["kept"])
        return {k: v for k, v in body.items() if v not in (None, False)}


@dataclass(frozen=True, eq=False)
class Change:
    """What one operation does (or would do) to the database."""

    kind: str
    container: str | None
    effect: Effect
    note: str
    before: ContainerDef | None = None
    after: ContainerDef | None = None
    changed: tuple[str, ...] = ()  # the properties an update changes, by REST name
    throughput: ThroughputChange | None = None
    data: DataDetail | None = None
    outcome: Outcome = field(default_factory=Outcome)

    def describe(self) -> str:
        return self.note

    def with_outcome(self, **reported: Any) -> Change:
        return replace(self, outcome=replace(self.outcome, **reported))

    @property
    def reindexes(self) -> bool:
        return "indexingPolicy" in self.changed

    # -- text ---------------------------------------------------------------------------------------------

    def lines(self, verbose: bool = True) -> list[str]:
        """The change for people: its mark and note, then (verbose) the whole definition it creates, or what it
        changes, path by path, in Cosmos DB terms."""
        first = f"{MARKS.get(self.effect, '*')} {self.note}"
        if self.effect == "check" and self.outcome.found is not None:
            first += f" (found {self.outcome.found}{', forced' if self.outcome.forced else ''})"
        lines = [first]
        if not verbose:
            return lines
        if self.effect == "create" and self.after is not None:
            lines += ["    " + line for line in self.after.lines()]
        elif self.effect == "update" and self.before is not None and self.after is not None:
            lines += ["    " + line for line in change_lines(self.before, self.after, self.changed)]
        elif self.effect == "update" and self.throughput is not None:
            lines.append("    " + self.throughput.describe())
        return lines

    # -- JSON ---------------------------------------------------------------------------------------------

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
        detail: dict[str, Any] = {}
        if self.changed:
            detail["changed"] = list(self.changed)
        if self.throughput is not None:
            detail["throughput"] = self.throughput.to_dict()
        if self.data is not None:
            detail.update(self.data.to_dict())
        detail.update(self.outcome.to_dict())
        if detail:
            body["detail"] = json.loads(json.dumps(detail, default=str))
        return body


def change_lines(before: ContainerDef, after: ContainerDef, changed: tuple[str, ...]) -> list[str]:
    """What an update changes: ``+ included /scope/*``, ``- excluded /oauth/*``, ``default TTL 3600 s → off``."""
    lines = []
    for name in changed:
        prop = REGISTRY[name]
        if name == "throughput":
            lines.append(ThroughputChange("container", before.throughput, after.throughput).describe())
            continue
        for difference in prop.differences(after.id, after.get(name), before.get(name)):
            if difference.label:
                mark, value = ("+", difference.declared) if difference.live is None else ("-", difference.live)
                lines.append(f"{mark} {difference.label} {show(value)}")
            elif difference.what == name:
                lines.append(f"{prop.label} {prop.display(before.get(name))} → {prop.display(after.get(name))}")
            else:
                lines.append(f"{difference.what} {show(difference.live)} → {show(difference.declared)}")
    return lines


def apply_change(state: DatabaseState, change: Change) -> None:
    """Replay a change on a simulated state."""
    if change.effect == "create" and change.after is not None:
        state.put(change.after, keeps_data=False)
    elif change.effect == "update" and change.after is not None:
        state.put(change.after, keeps_data=True)
    elif change.effect == "update" and change.throughput is not None and change.throughput.scope == "database":
        state.database_throughput = change.throughput.after
    elif change.effect == "delete" and change.container is not None:
        state.remove(change.container)
