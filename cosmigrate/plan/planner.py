"""The planner: runs scripts against a simulated state and says, per revision, what each operation would do.

Pure: no Cosmos DB import (the live state and a document counter are handed in). The same function serves
the validation before a run, ``up --dry-run`` / ``down --dry-run`` / ``plan``, ``verify`` (replaying applied
revisions from nothing) and ``check`` (replaying every revision offline). A script's mistakes are reported,
never raised, with its file and line, so that ``check`` can list every one; callers that run for real turn
the first into a usage error before anything is written.

Replay contract: a script's ``upgrade``/``downgrade`` runs here with an ``op`` whose ``planning`` is True; code
before the first data access (``op.container``, ``op.database``) runs in these passes too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from cosmigrate.errors import DefinitionConflict, InvalidDefinition, PreconditionRefused, UnknownKeyword
from cosmigrate.model.state import Counter, DatabaseState
from cosmigrate.ops.facade import Operations, PlanningStop, UndeclaredArgument
from cosmigrate.ops.operations import Change
from cosmigrate.ops.simulate import SimulatingExecutor
from cosmigrate.scripts.loader import Script, line_in
from cosmigrate.scripts.problems import Problem

Direction = Literal["up", "down"]


@dataclass(frozen=True)
class RevisionPlan:
    """What one revision would do, operation by operation."""

    revision: str
    description: str
    file: str
    direction: Direction
    changes: list[Change] = field(default_factory=list)
    stopped: str | None = None  # data work that cannot be simulated: the rest of the script is not shown
    refused: str | None = None  # a precondition refused: the run would stop here, nothing of it changed
    conflict: str | None = None  # an operation cannot be carried out on this state
    fault: Problem | None = None  # the script itself is wrong (codes: invalid-definition, undeclared-argument,
    # not-implemented, bad-call, script-error)
    uncertain: bool = False  # planned on a state that earlier data work made inexact
    forced: list[dict[str, Any]] = field(default_factory=list)
    asked: bool = False  # the script was told something of the state (op.exists, ...) before it ended or failed

    @property
    def blocked(self) -> bool:
        return bool(self.refused or self.conflict or self.fault)

    def to_dict(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "description": self.description,
            "file": self.file,
            "direction": self.direction,
            "operations": [change.to_dict() for change in self.changes],
            "stopped": self.stopped,
            "refused": self.refused,
            "conflict": self.conflict,
            "fault": self.fault.to_dict() if self.fault else None,
            "uncertain": self.uncertain,
        }


@dataclass(frozen=True)
class Plan:
    """The revisions a command would run, in order, and the state they would leave."""

    direction: Direction
    revisions: list[RevisionPlan]
    end_state: DatabaseState

    @property
    def exact(self) -> bool:
        return self.end_state.exact

    @property
    def first_block(self) -> RevisionPlan | None:
        return next((r for r in self.revisions if r.blocked), None)

    @property
    def faults(self) -> list[Problem]:
        return [r.fault for r in self.revisions if r.fault]

    def to_dict(self) -> dict[str, Any]:
        return {
            "direction": self.direction,
            "exact": self.exact,
            "revisions": [revision.to_dict() for revision in self.revisions],
        }


def plan(
    scripts: Sequence[Script],
    direction: Direction,
    start: DatabaseState,
    *,
    counter: Counter | None = None,
    x: Mapping[str, str] | None = None,
    history_container: str | None = None,
    keep_going: bool = False,
) -> Plan:
    """Simulate ``scripts`` in order from ``start`` (which is not changed).

    Planning stops at the first revision that is refused, conflicts or is faulty (a real run would stop
    there too), unless ``keep_going`` (``check`` wants every fault of every script).
    """
    state = start.copy()
    revisions: list[RevisionPlan] = []
    for script in scripts:
        revision = _plan_one(script, direction, state, counter, x or {}, history_container)
        revisions.append(revision)
        if revision.blocked and not keep_going:
            break
    return Plan(direction, revisions, state)


def _plan_one(
    script: Script,
    direction: Direction,
    state: DatabaseState,
    counter: Counter | None,
    x: Mapping[str, str],
    history_container: str | None,
) -> RevisionPlan:
    uncertain = not state.exact
    op = Operations(
        SimulatingExecutor(state, counter),
        x=x,
        arguments=script.arguments,
        script=script.path.name,
        revision=script.revision,
        history_container=history_container,
    )
    outcome: dict[str, Any] = {}
    try:
        (script.upgrade if direction == "up" else script.downgrade)(op)
    except PlanningStop as stop:
        outcome["stopped"] = str(stop)
        state.mark_inexact(f"revision {script.revision}: {stop}")
    except PreconditionRefused as refusal:
        outcome["refused"] = str(refusal)
    except DefinitionConflict as conflict:
        outcome["conflict"] = str(conflict)
    except Exception as exc:  # the script would fail for real: report where
        outcome["fault"] = fault_of(script, direction, exc)
    return RevisionPlan(
        revision=script.revision,
        description=script.description,
        file=script.path.name,
        direction=direction,
        changes=list(op.changes),
        uncertain=uncertain,
        forced=list(op.forced),
        asked=op.asked,
        **outcome,
    )


def fault_of(script: Script, direction: Direction, exc: Exception) -> Problem:
    """Name a script's mistake: the kind, the file and line, one line of message."""
    function = "upgrade" if direction == "up" else "downgrade"
    text = " ".join(str(exc).split()) or "(no message)"
    line = line_in(script.path, exc)
    if isinstance(exc, UnknownKeyword):
        code, message = "bad-call", f"{function}: {text}"
    elif isinstance(exc, InvalidDefinition):
        code, message = "invalid-definition", text
    elif isinstance(exc, UndeclaredArgument):
        code, message = "undeclared-argument", text
    elif isinstance(exc, NotImplementedError):
        code, message = "not-implemented", f"{function} raises NotImplementedError: {text}"
    elif isinstance(exc, TypeError) and _raised_at_call(script, exc):
        code, message = "bad-call", f"{function}: {text}"
    else:
        code, message = "script-error", f"{function} raised {type(exc).__name__}: {text}"
    return Problem(script.path.name, script.revision, line, code, message)


def _raised_at_call(script: Script, exc: BaseException) -> bool:
    """A TypeError whose innermost frame is the script itself: the call's arguments did not fit (a misspelt
    keyword, a missing argument), as opposed to one raised deeper down."""
    tb = exc.__traceback__
    last = None
    while tb is not None:
        last = tb
        tb = tb.tb_next
    return last is not None and last.tb_frame.f_code.co_filename == str(script.path)
