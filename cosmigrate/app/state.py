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
changed             its file or a helper it imports changed (``compare``): restore it, or ``cosmigrate repair``
                    (``--accept REV`` if its description changed)
missing             restore the script, or ``cosmigrate repair`` (forgets the record)
forgotten           its script came back after repair forgot an applied record: ``cosmigrate repair``
                    (applied again, not run)
==================  =============================================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
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
    # helpers the script imports that its record does not cover (applied by a cosmigrate that did not record
    # helpers): not verified, not changed either; ``note`` says so in words
    unverified_helpers: list[str] = field(default_factory=list)
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Comparison:
    """How a script and its helpers now differ from what a record says ran (``compare``)."""

    script: bool = False  # the script's own text changed
    edited: tuple[str, ...] = ()  # helpers imported then and now, whose text changed
    added: tuple[str, ...] = ()  # helpers imported now, not when it ran
    dropped: tuple[str, ...] = ()  # helpers imported when it ran, not now
    unverified: tuple[str, ...] = ()  # helpers imported now that the record does not cover (an older record)

    @property
    def same(self) -> bool:
        return not (self.script or self.helpers)

    @property
    def helpers(self) -> tuple[str, ...]:
        """Every helper that differs, by name."""
        return tuple(sorted({*self.edited, *self.added, *self.dropped}))


def compare(record: Record, script: Script) -> Comparison:
    """What changed in ``script`` and its helpers since ``record`` was written: the one test of "changed".

    A record written by a cosmigrate that did not cover helpers (no ``helpers`` field) holds the checksum of the
    script alone. It is compared with the script alone: the checksum scheme growing is not a change of the
    revision, and calling every revision that imports a helper changed after an upgrade of cosmigrate would
    teach people to accept changes blindly. What that record cannot vouch for — the helpers, whose text as it
    ran was never kept — is returned as ``unverified``: ``status`` says so, and ``cosmigrate repair`` records
    them as they are now (asking first), after which an edit to them is a change like any other.
    """
    if not record.knows_helpers:
        return Comparison(
            script=record.checksum != script.script_checksum, unverified=tuple(h.name for h in script.helpers)
        )
    if record.checksum == script.checksum:
        return Comparison()
    recorded, now = record.helpers or {}, script.helper_checksums
    edited = tuple(sorted(name for name in recorded.keys() & now.keys() if recorded[name] != now[name]))
    added, dropped = tuple(sorted(now.keys() - recorded.keys())), tuple(sorted(recorded.keys() - now.keys()))
    own = (record.script_checksum or record.checksum) != script.script_checksum
    # the parts agree but not the whole (a record edited by hand?): it is a change all the same, said of the script
    return Comparison(own or not (edited or added or dropped), edited, added, dropped)


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
        if view.state != "applied" or record is None:
            continue
        comparison = compare(record, script)
        if not comparison.same:
            changed_view = _changed(script, record, scripts, comparison)
            changed.append(changed_view)
            problems.insert(0, ("changed", str(changed_view.error)))
        elif comparison.unverified:
            views[-1] = _unverified(view, comparison.unverified)
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
    return compare(record, script).same or (bool(record.description) and record.description == script.description)


def _may_resume(script: Script, record: Record) -> bool:
    return script.idempotent and compare(record, script).same


def _unverified(view: RevisionView, helpers: tuple[str, ...]) -> RevisionView:
    note = (
        f"applied by a cosmigrate that did not record helpers: {names(helpers)}, which it imports, "
        f"{'is' if len(helpers) == 1 else 'are'} not verified (an edit since would not show); cosmigrate repair "
        "records them as they are now"
    )
    return replace(view, unverified_helpers=list(helpers), note=note)


def names(items: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``: a list in words."""
    listed = list(items)
    return listed[0] if len(listed) == 1 else f"{', '.join(listed[:-1])} and {listed[-1]}"


def users(scripts: ScriptSet, helper: str) -> list[str]:
    """The revisions whose scripts import ``helper`` (directly or through another helper), in chain order."""
    return [s.revision for s in scripts.ordered if any(h.name == helper for h in s.helpers)]


def helper_words(scripts: ScriptSet, comparison: Comparison, file: str) -> tuple[str, str]:
    """What changed, in words, and which revisions use the changed helpers: ``006_x.py and its helper
    _helpers.py changed``, ``_helpers.py is used by revisions 006 and 007``."""
    parts = [file] if comparison.script else []
    if comparison.edited:
        s = "s" if len(comparison.edited) > 1 else ""
        parts.append(f"{'its' if parts else 'the'} helper{s} {names(comparison.edited)} it imports")
    said = f"{' and '.join(parts)} changed" if parts else ""
    more = []
    if comparison.added:
        more.append(f"it now imports {names(comparison.added)}, which it did not import when it ran")
    if comparison.dropped:
        more.append(f"it no longer imports {names(comparison.dropped)}, which it imported when it ran")
    what = ", and ".join(x for x in [said, *more] if x)
    used = "; ".join(
        f"{name} is used by {'revision' if len(by) == 1 else 'revisions'} {names(by)}"
        for name in (*comparison.edited, *comparison.added)
        if (by := users(scripts, name))
    )
    return what, used


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
                step = "cosmigrate repair (its script or a helper it imports changed since), then cosmigrate up"
                message = (
                    f"revision {script.revision} ({name}) was interrupted going up ({why}) and its script or a "
                    "helper it imports changed since: check its effects, then cosmigrate repair (it becomes pending) "
                    "and cosmigrate up"
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


def _changed(script: Script, record: Record, scripts: ScriptSet, comparison: Comparison) -> RevisionView:
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
    elif not comparison.helpers:
        recorded = record.script_checksum or record.checksum
        error = (
            f"revision {script.revision}: {script.path.name} changed since it was applied (recorded "
            f"{recorded[:19]}…, file {script.script_checksum[:19]}…); restore the file, or see the difference and "
            "accept it with cosmigrate repair"
        )
        step = "restore the file, or cosmigrate repair (shows the difference, asks)"
    else:
        what, used = helper_words(scripts, comparison, script.path.name)
        error = (
            f"revision {script.revision} ({script.path.name}): {what} since it was applied"
            + (f" ({used})" if used else "")
            + "; restore what ran, or see the difference and accept it with cosmigrate repair (a change meant for "
            "the database belongs in a new migration)"
        )
        step = "restore what it ran (script and helpers), or cosmigrate repair (shows the difference, asks)"
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
