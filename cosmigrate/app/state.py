"""Where each revision stands, and whether a command may go on: one function for ``status`` and for ``up``.

Pure: scripts and the history snapshot in, views and a refusal out. The states of a revision and the one
safe next step from each (also a table in the README):

==================  =============================================================================
pending             ``cosmigrate up``
running             wait (a live run holds the lock)
applied             nothing (``cosmigrate down`` to revert)
failed up           fix the script, ``cosmigrate repair`` (it becomes pending), ``cosmigrate up``
failed down         fix the downgrade, ``cosmigrate repair`` (it is applied again), ``cosmigrate down``
interrupted up      idempotent: the next ``up`` resumes it; otherwise check, ``repair``, ``up``
interrupted down    idempotent: the next ``down`` resumes it; otherwise ``repair`` (applied), ``down``
changed             restore the file, or ``cosmigrate repair`` (``--accept REV`` if its description changed)
missing             restore the script, or ``cosmigrate repair`` (forgets the record)
forgotten           its script came back after repair forgot an applied record: ``cosmigrate repair``
                    (applied again, not run)
==================  =============================================================================
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from cosmigrate.errors import HistoryConflict
from cosmigrate.scripts.loader import Script, ScriptSet
from cosmigrate.store.records import Record, Snapshot

Command = Literal["up", "down"]
ABSENT_STATES = ("pending", "reverted", "forgotten")


@dataclass(frozen=True)
class RevisionView:
    revision: str
    description: str
    state: str  # pending, running, applied, failed, interrupted, changed, missing, forgotten
    direction: str | None = None
    applied_at: str | None = None
    checksum: str | None = None
    error: str | None = None
    applied_by: str | None = None
    idempotent: bool = False
    next_step: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Evaluation:
    """Files and records combined."""

    views: list[RevisionView]  # one per script, in chain order, then missing ones
    changed: list[RevisionView]
    applied: list[str]  # counted as applied by the graph (applied, and dirty ones that failed going down)
    resumable: dict[str, str] = field(default_factory=dict)  # revision -> direction it resumes in
    problems: list[tuple[str, str]] = field(default_factory=list)  # (kind, message) in order of gravity

    def of(self, state: str) -> list[RevisionView]:
        return [view for view in self.views if view.state == state]

    @property
    def current(self) -> str | None:
        applied = [v.revision for v in self.views if v.revision in self.applied and v.state != "missing"]
        return applied[-1] if applied else None


def evaluate(scripts: ScriptSet, snapshot: Snapshot, own_lease: str | None = None) -> Evaluation:
    """Combine files and records. A ``running`` record is live only while its lease is (by the database's
    clock, or ours when we hold the lock); otherwise that run was interrupted."""
    if own_lease is not None:
        live_lease: str | None = own_lease
    else:
        lock = snapshot.lock
        live_lease = lock.lease_id if lock is not None and not lock.expired else None
    views: list[RevisionView] = []
    changed: list[RevisionView] = []
    applied: list[str] = []
    resumable: dict[str, str] = {}
    problems: list[tuple[str, str]] = []
    records = snapshot.records
    for script in scripts.ordered:
        record = records.get(script.revision)
        view, is_applied, problem = _view(script, record, live_lease, busy=own_lease is None and bool(live_lease))
        views.append(view)
        if is_applied:
            applied.append(script.revision)
        if view.state == "interrupted" and record is not None and _may_resume(script, record):
            resumable[script.revision] = record.direction
        if problem:
            problems.append(problem)
        if view.state == "applied" and record is not None and record.checksum != script.checksum:
            changed_view = _changed(script, record, scripts)
            changed.append(changed_view)
            problems.insert(0, ("changed", str(changed_view.error)))
    for revision, record in sorted(records.items()):
        if revision in scripts.by_revision or record.state in ABSENT_STATES:
            continue
        view = RevisionView(
            revision, record.description, "missing", record.direction, record.applied_at, record.checksum,
            f"recorded {record.state} but no script declares revision {revision}", record.applied_by,
            next_step="restore the script, or cosmigrate repair to forget the record",
        )  # fmt: skip
        views.append(view)
        problems.insert(
            0,
            (
                "missing",
                f"revision {revision} is {view.error}; restore the script, or forget the record with cosmigrate repair",
            ),
        )
    return Evaluation(views, changed, applied, resumable, problems)


def in_effect(record: Record) -> bool:
    """Whether a record's upgrade is (or may be, partly undone) in effect: applied, or stuck going down."""
    return record.state == "applied" or (
        record.state in ("failed", "interrupted", "running") and record.direction == "down"
    )


def returned(script: Script, record: Record) -> bool:
    """A record forgotten while its upgrade was in effect, and the same migration's script back under its number
    (same text, or same description): running it would apply that upgrade a second time."""
    if record.state != "forgotten" or not record.forgotten_was:
        return False
    return record.checksum == script.checksum or (bool(record.description) and record.description == script.description)


def _may_resume(script: Script, record: Record) -> bool:
    return script.idempotent and record.checksum == script.checksum


def _view(
    script: Script, record: Record | None, live_lease: str | None, busy: bool = False
) -> tuple[RevisionView, bool, tuple[str, str] | None]:
    """The view of one revision, whether the graph counts it as applied, and the problem it poses. ``busy``: a
    live run holds the lock; it writes ``running`` only before a revision's first change, so a pending revision
    may be the one it is on (or next): the step then is to wait."""

    def view(state: str, **extra: Any) -> RevisionView:
        if record is not None and record.state not in ABSENT_STATES:
            extra = {
                "applied_by": record.applied_by,
                "checksum": record.checksum,
                "direction": record.direction,
                **extra,
            }
        return RevisionView(script.revision, script.description, state, idempotent=script.idempotent, **extra)

    name = script.path.name
    if record is not None and returned(script, record):
        error = (
            f"revision {script.revision} ({name}) ran here as {record.description!r} and its record was forgotten by "
            f"cosmigrate repair while {record.forgotten_was} and its script was missing; what it did may still be "
            "in the database, so up will not run it again"
        )
        step = "cosmigrate repair (records it applied again, without running it)"
        message = f"{error}: cosmigrate repair records it applied again, without running it"
        shown = RevisionView(
            script.revision, script.description, "forgotten", "up", record.applied_at, record.checksum, error,
            record.applied_by, script.idempotent, step,
        )  # fmt: skip
        return shown, True, ("forgotten", message)
    if record is None or record.state in ABSENT_STATES:
        step = "wait: a run holds the lock and may be running it (see the lock below)" if busy else "cosmigrate up"
        return view("pending", next_step=step), False, None
    if record.state == "applied":
        return view("applied", applied_at=record.applied_at), True, None
    if record.state == "running" and record.lease_id == live_lease:
        return view("running", next_step="wait: a run holds the lock"), record.direction == "down", None
    if record.state in ("running", "interrupted"):
        why = record.error or (
            f"started {record.started_at} by {record.applied_by}; its lock expired before it finished"
        )
        going_down = record.direction == "down"
        resumes = _may_resume(script, record)
        if going_down:
            step = (
                "cosmigrate down resumes it (idempotent), or cosmigrate repair keeps it applied"
                if resumes
                else "fix what stopped it, cosmigrate repair (it is applied again), then cosmigrate down"
            )
            message = (
                f"revision {script.revision} ({name}) was interrupted going down ({why}); it is still applied: "
                + (
                    "run cosmigrate down again to finish it (it is idempotent), or cosmigrate repair to keep it applied"
                    if resumes
                    else "cosmigrate repair (it is applied again), then cosmigrate down"
                )
            )
        else:
            if resumes:
                step = "cosmigrate up resumes it (idempotent)"
                message = ""
            elif script.idempotent:
                step = "cosmigrate repair (its script changed since), then cosmigrate up"
                message = (
                    f"revision {script.revision} ({name}) was interrupted going up ({why}) and its script changed "
                    "since: check its effects, then cosmigrate repair (it becomes pending) and cosmigrate up"
                )
            else:
                step = "check its effects, cosmigrate repair (it becomes pending), then cosmigrate up"
                message = (
                    f"revision {script.revision} ({name}) was interrupted going up ({why}); it is not declared "
                    "idempotent, so how far it got is unknown: check its effects, then cosmigrate repair (it becomes "
                    "pending) and cosmigrate up (a script that declares idempotent = True is resumed by up itself)"
                )
        problem = ("interrupted", message) if message else None
        still = record.applied_at if going_down else None  # going down, its upgrade's time still holds
        return view("interrupted", error=why, next_step=step, applied_at=still), going_down, problem
    # failed
    error = record.error or "(no error recorded)"
    if record.direction == "down":
        message = (
            f"revision {script.revision} ({name}) failed going down: {error}; it is still applied: fix its downgrade, "
            "then cosmigrate repair (it is applied again) and cosmigrate down"
        )
        step = "fix the downgrade, cosmigrate repair (it is applied again), then cosmigrate down"
        shown = view("failed", error=error, next_step=step, applied_at=record.applied_at)
        return shown, True, ("failed", message)
    message = (
        f"revision {script.revision} ({name}) failed going up: {error}; it is not applied: fix the script (or the "
        "data it failed on), then cosmigrate repair (it becomes pending again) and cosmigrate up"
    )
    step = "fix the script (or the data it failed on), cosmigrate repair (it becomes pending again), then cosmigrate up"
    return view("failed", error=error, next_step=step), False, ("failed", message)


def _changed(script: Script, record: Record, scripts: ScriptSet) -> RevisionView:
    if record.description and record.description != script.description:
        carrier = next(
            (
                s.path.name
                for s in scripts.ordered
                if s.revision != script.revision and s.description == record.description
            ),
            None,
        )
        hint = f" ({carrier} carries the recorded description)" if carrier else ""
        error = (
            f"revision {script.revision} was applied as {record.description!r}, but {script.path.name} now says "
            f"{script.description!r}: a different migration under the same number (a renumbered branch?){hint}. "
            f"Restore the script that ran under {script.revision} and number the new one after the head; accept the "
            f"new file only if its changes are already in the database: cosmigrate repair --accept {script.revision}"
        )
        step = f"restore the script that ran, or cosmigrate repair --accept {script.revision}"
    else:
        error = (
            f"revision {script.revision}: {script.path.name} changed since it was applied (recorded "
            f"{record.checksum[:19]}…, file {script.checksum[:19]}…); restore the file, or see the difference and "
            "accept it with cosmigrate repair"
        )
        step = "restore the file, or cosmigrate repair (shows the difference, asks)"
    return RevisionView(
        script.revision, script.description, "changed", record.direction, record.applied_at, script.checksum, error,
        record.applied_by, script.idempotent, step,
    )  # fmt: skip


def refusal(evaluation: Evaluation, scripts: ScriptSet, command: Command) -> str | None:
    """Why ``command`` must not run now, or None. ``status`` exits 1 exactly when this refuses ``up``."""
    try:  # first: a chain edited under applied revisions is the cause of what else looks wrong
        scripts.graph.applied_count(evaluation.applied)
    except HistoryConflict as exc:
        return str(exc)
    for kind, message in evaluation.problems:
        if kind == "interrupted" and command == "down" and _resumes_down(evaluation, message):
            continue
        return message
    if command == "down":
        for revision, direction in evaluation.resumable.items():
            if direction == "up":
                return (
                    f"revision {revision} was interrupted going up; run cosmigrate up to finish it (it is idempotent) "
                    "before going down"
                )
    return None


def _resumes_down(evaluation: Evaluation, message: str) -> bool:
    return any(direction == "down" and f"revision {rev} " in message for rev, direction in evaluation.resumable.items())


def refuse(evaluation: Evaluation, scripts: ScriptSet, command: Command) -> None:
    reason = refusal(evaluation, scripts, command)
    if reason:
        raise HistoryConflict(reason)
