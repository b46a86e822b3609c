"""``repair``, ``stamp`` and ``unlock``: changing the history itself, each change logged as an event.

``repair`` is the way out of every stuck state, and it never makes an upgrade run twice: a revision that
failed going *up* becomes pending (its upgrade did not complete); one that failed going *down* becomes
applied again (its upgrade is still in effect). A changed script is shown as a diff against the source that
ran, and one whose description changed — a different migration under the same number — is accepted only
when named (``accept``). A record forgotten while its upgrade was in effect remembers that, so that when its
script comes back, repair records it applied again instead of letting ``up`` run it a second time.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

from cosmigrate import logs
from cosmigrate.app.context import Confirm, WaitCallback, connected, locked, require_database
from cosmigrate.app.datasteps import saved_steps
from cosmigrate.app.results import RepairResult, StampResult, UnlockResult
from cosmigrate.app.runner import batches
from cosmigrate.app.state import Comparison, Evaluation, compare, evaluate, in_effect
from cosmigrate.app.state import names as _names
from cosmigrate.config import Config
from cosmigrate.data.checkpoints import SavedSteps
from cosmigrate.errors import HistoryConflict, UsageError
from cosmigrate.scripts import sumfile
from cosmigrate.scripts.loader import Script, ScriptSet, load_all
from cosmigrate.scripts.sumfile import SUM_FILE
from cosmigrate.store.history import HistoryStore
from cosmigrate.store.lock import Lease, force_release
from cosmigrate.store.records import Event as HistoryEvent
from cosmigrate.store.records import Record, Snapshot, Source, now_iso, source_document, source_id, who

log = logs.LOG


def commit_all(lease: Lease, documents: list[dict[str, Any]]) -> None:
    for chunk in batches(documents):
        lease.commit(chunk)


def _event(kind: str, revision: str | None, lease: Lease, **detail: Any) -> dict[str, Any]:
    return HistoryEvent.new(kind, revision, detail=detail, lease_id=lease.lease_id).to_document()


# -- repair -----------------------------------------------------------------------------------------------


def _diff(revision: str, recorded: str | None, current: str, file: str) -> str:
    if recorded is None:
        return f"(the source that ran for {revision} was not kept: no difference to show)"
    lines = difflib.unified_diff(
        recorded.splitlines(keepends=True), current.splitlines(keepends=True), f"{file} (as applied)", f"{file} (now)"
    )
    return "".join(lines) or "(no difference in the text: line endings only)"


def _diffs(revision: str, ran: Source | None, script: Script, comparison: Comparison) -> str:
    """The difference between what ran and what is there now: the script's (when it changed, or when nothing
    else did), then each changed helper's against the helper's text that ran (kept in the same source document).
    A helper that was not kept — applied by a cosmigrate that did not cover helpers — is said to be so."""
    parts = []
    if comparison.script or not comparison.helpers:
        parts.append(_diff(revision, ran.text if ran else None, script.source, script.path.name))
    kept = ran.helpers if ran is not None else None
    now = script.helper_sources
    for name in comparison.helpers:
        if kept is None:
            parts.append(f"(the text of {name} that ran for {revision} was not kept: no difference to show)\n")
            continue
        before, after = kept.get(name), now.get(name)
        lines = difflib.unified_diff(
            (before or "").splitlines(keepends=True),
            (after or "").splitlines(keepends=True),
            f"{name} (as applied)" if before is not None else f"{name} (not imported when applied)",
            f"{name} (now)" if after is not None else f"{name} (no longer imported)",
        )
        parts.append("".join(lines) or f"({name}: no difference in the text: line endings only)\n")
    if comparison.unverified:
        one = len(comparison.unverified) == 1
        parts.append(
            f"(its helper{'' if one else 's'} {_names(comparison.unverified)} {'was' if one else 'were'} not "
            "recorded by the cosmigrate that applied it: accepted as they are now)\n"
        )
    return "".join(part if part.endswith("\n") else part + "\n" for part in parts).rstrip("\n")


def repair(
    config: Config,
    confirm: Confirm,
    accept: Sequence[str] = (),
    on_wait: WaitCallback | None = None,
    restart_data: bool = False,
) -> RepairResult:
    """Put stuck revisions back on a safe path, after showing what changes and asking.

    Failed or interrupted going up → pending; going down → applied; a changed script → its new checksum is
    accepted (one whose description changed only when named in ``accept``); a record of a deleted script →
    forgotten; a forgotten one whose script came back → applied again, not run. Each change is logged as an event.
    The question says where the data steps of a failed or interrupted revision will resume from their
    checkpoints; ``restart_data`` drops those checkpoints, so that they start over (after their effects were
    undone by hand, say).
    """
    scripts = load_all(config.migrations)
    unknown = sorted(set(accept) - set(scripts.by_revision))
    if unknown:
        raise UsageError(f"--accept {unknown[0]}: no script declares that revision")
    name = config.database_name
    with connected(config) as client:
        history = HistoryStore(require_database(client, config), config.history_container)
        snapshot = history.snapshot()
        if not snapshot.exists:
            return RepairResult(name)
        evaluation = evaluate(scripts, snapshot)
        decided = _decide(scripts, evaluation, snapshot, set(accept), history)
        # pending revisions too: a failed one repaired earlier keeps its data steps' checkpoints until it runs
        pending = [v.revision for v in evaluation.views if v.state == "pending"] if restart_data else []
        stuck = {r: scripts.by_revision[r].description for r in decided.to_pending + decided.to_applied + pending}
        decided.resumes = saved_steps(config, history).of_revisions(stuck)
        decided.restart = restart_data
        decided.restart_only = [r for r in pending if r in decided.resumes]
        if decided.nothing and not decided.refused:
            return RepairResult(name)
        if not decided.nothing and not confirm(decided.question(scripts)):
            raise UsageError("repair cancelled: nothing was changed")
    restarted: list[str] = []
    if not decided.nothing:
        with locked(config, "repair", on_wait) as (_, history, lease):
            snapshot = history.snapshot()
            # the same decisions on what holds under the lock; the diffs were shown already, not read again
            evaluation = evaluate(scripts, snapshot, own_lease=lease.lease_id)
            fresh = _decide(scripts, evaluation, snapshot, set(accept))
            commit_all(lease, fresh.documents(scripts, snapshot, lease, decided))
            steps_saved = saved_steps(config, history)
            if restart_data:
                still = fresh.to_pending + fresh.to_applied
                still += [v.revision for v in evaluation.views if v.state == "pending"]
                restarted = _restart(steps_saved, set(still) & set(decided.resumes))
            else:  # progress kept on this machine goes into the database: the next run resumes it exactly anywhere
                for revision in fresh.to_pending + fresh.to_applied:
                    steps_saved.reconcile(revision)
    result = RepairResult(
        name,
        decided.to_pending,
        decided.to_applied,
        decided.accepted,
        decided.forgotten,
        decided.diffs,
        decided.restored,
        _stale_sum(config, scripts, decided.to_pending + decided.to_applied + decided.accepted + decided.restored),
        {} if restart_data else decided.resumes,
        restarted,
        decided.recorded,
    )
    if decided.refused:
        error = HistoryConflict(" ".join(decided.refused.values()))
        error.steps = [result]
        raise error
    return result


def _was(record: Record, direction: str) -> str:
    """``interrupted going up: <why>``, without a reason when none was recorded (a killed run)."""
    return f"{record.state} going {direction}: {record.error}" if record.error else f"{record.state} going {direction}"


def _restart(saved: SavedSteps, revisions: set[str]) -> list[str]:
    """Drop the checkpoints of these revisions' data steps (in the database and on this machine): their next run
    starts over."""
    for revision in sorted(revisions):
        saved.forget(revision)
        log.info("data steps start over", revision=revision)
    return sorted(revisions)


def _stale_sum(config: Config, scripts: ScriptSet, repaired: list[str]) -> str | None:
    """The usual reason for a repair is a fixed or edited script: say that the sum file wants rewriting when
    it no longer matches one of the scripts repaired (not for a forgotten one: its file may only be away on
    another branch)."""
    files = {scripts.by_revision[r].path.name for r in repaired if r in scripts.by_revision}
    files |= {h.name for r in repaired if r in scripts.by_revision for h in scripts.by_revision[r].helpers}
    if not files:
        return None
    stale = sorted({p.file for p in sumfile.verify(config.migrations) if p.code == "sum-mismatch"} & files)
    if not stale:
        return None
    return (
        f"{SUM_FILE} does not match {', '.join(stale)}: run cosmigrate hash and commit it (cosmigrate check fails "
        "until then)"
    )


class _Decision:
    def __init__(self) -> None:
        self.to_pending: list[str] = []
        self.to_applied: list[str] = []
        self.accepted: list[str] = []
        self.forgotten: list[str] = []
        self.restored: list[str] = []
        self.diffs: dict[str, str] = {}
        self.refused: dict[str, str] = {}
        self.resumes: dict[str, list[str]] = {}  # revision -> its saved data steps, in words
        self.restart = False  # drop those checkpoints: the data steps start over
        self.restart_only: list[str] = []  # pending revisions whose saved data steps start over, nothing else
        # applied by a cosmigrate that did not record helpers, script unchanged: its helpers are recorded as they
        # are now (revision -> their names), so that an edit to them is seen from then on
        self.recorded: list[str] = []
        self.unverified: dict[str, tuple[str, ...]] = {}

    @property
    def nothing(self) -> bool:
        changes = self.to_pending or self.to_applied or self.accepted or self.forgotten or self.restored
        return not (changes or self.restart_only or self.recorded)

    def question(self, scripts: ScriptSet) -> str:
        lines = ["cosmigrate repair will:"]
        for r in self.restart_only:
            lines.append(f"  {r}: pending, with saved data steps")
            lines += self._data_lines(r)
        for r in self.to_pending:
            lines.append(f"  {r}: failed or interrupted going up → pending (cosmigrate up runs it again)")
            lines += self._data_lines(r)
        for r in self.to_applied:
            lines.append(f"  {r}: failed or interrupted going down → applied again (its upgrade is still in effect)")
            lines += self._data_lines(r)
        lines += [
            f"  {r}: its script is back after its record was forgotten → applied again, without running it (what it "
            "did stayed in the database)"
            for r in self.restored
        ]
        for revision in self.accepted:
            script = scripts.by_revision[revision]
            helpers = f" and its helpers ({_names([h.name for h in script.helpers])})" if script.helpers else ""
            lines.append(f"  {revision}: accept the current {script.path.name}{helpers} as applied:")
            lines += ["    " + line for line in self.diffs[revision].splitlines()]
        lines += [
            f"  {r}: forget the record (no script declares it; what it did stays in the database, and should its "
            "script come back, cosmigrate will not run it again)"
            for r in self.forgotten
        ]
        lines += [
            f"  {r}: record the helpers it imports ({_names(self.unverified[r])}) as they are now (it was applied by "
            "a cosmigrate that did not record helpers, so what ran is unknown; from now on an edit shows as a change)"
            for r in self.recorded
        ]
        every = set(self.to_pending + self.to_applied + self.accepted + self.forgotten + self.restored)
        every |= set(self.restart_only) | set(self.recorded)
        lines.append(f"Repair {', '.join(sorted(every))}?")
        return "\n".join(lines)

    def _data_lines(self, revision: str) -> list[str]:
        saved = self.resumes.get(revision, [])
        if self.restart:
            return [f"    its data steps start over, dropping what was saved: its {said}" for said in saved]
        lines = [f"    when it runs again, its {said}" for said in saved]
        if saved:
            lines.append("    (to start its data steps over instead, e.g. after undoing them: repair --restart-data)")
        return lines

    def restarting(self, revision: str) -> dict[str, Any]:
        """For the repaired event: the saved data steps that --restart-data drops, in words."""
        return {"data_restarted": self.resumes[revision]} if self.restart and revision in self.resumes else {}

    def documents(self, scripts: ScriptSet, snapshot: Snapshot, lease: Lease, asked: _Decision) -> list[dict[str, Any]]:
        """The writes, limited to what was shown and asked about (and is still so under the lock)."""
        records = snapshot.records
        final: dict[str, Record] = {}  # one record per revision, however many repairs apply to it
        extra: list[dict[str, Any]] = []
        for revision in set(self.to_pending) & set(asked.to_pending):
            record = final[revision] = records[revision]
            was = _was(record, "up")
            record.state, record.error, record.lease_id = "pending", None, None
            extra.append(_event("repaired", revision, lease, was=was, now="pending", **asked.restarting(revision)))
        for revision in set(self.to_applied) & set(asked.to_applied):
            record = final[revision] = records[revision]
            was = _was(record, "down")
            record.state, record.error, record.lease_id, record.direction = "applied", None, None, "up"
            extra.append(_event("repaired", revision, lease, was=was, now="applied", **asked.restarting(revision)))
        for revision in asked.restart_only:  # still pending: no record changes, the event says what was dropped
            if revision not in records or records[revision].state == "pending":
                detail = asked.restarting(revision)
                extra.append(_event("repaired", revision, lease, was="pending", now="pending", **detail))
        for revision in set(self.restored) & set(asked.restored):
            record = final[revision] = records[revision]
            was = f"forgotten while {record.forgotten_was}"
            record.state, record.error, record.lease_id, record.direction = "applied", None, None, "up"
            record.forgotten_was = None
            extra.append(_event("repaired", revision, lease, was=was, now="applied"))
        for revision in set(self.accepted) & set(asked.accepted):
            record, script = records[revision], scripts.by_revision[revision]
            final[revision] = record
            old = {"checksum": record.checksum, "description": record.description, "helpers": record.helpers}
            _take(record, script)
            record.description = script.description
            now = {"checksum": script.checksum, "description": script.description, "helpers": record.helpers}
            extra += [
                source_document(revision, script.checksum, script.source, script.helper_sources),
                _event("accepted", revision, lease, was=old, now=now),
            ]
        for revision in set(self.forgotten) & set(asked.forgotten):
            record = final[revision] = records[revision]
            was = record.state if record.state == "applied" else f"{record.state} going {record.direction}"
            record.forgotten_was = was if in_effect(record) else None
            record.state = "forgotten"
            extra.append(_event("forgotten", revision, lease, was=was))
        for revision in set(self.recorded) & set(asked.recorded):
            record, script = records[revision], scripts.by_revision[revision]
            final[revision] = record
            old = {"checksum": record.checksum, "helpers": "not recorded"}
            _take(record, script)
            now = {"checksum": script.checksum, "helpers": record.helpers}
            extra += [
                source_document(revision, script.checksum, script.source, script.helper_sources),
                _event("accepted", revision, lease, was=old, now=now, helpers_recorded=list(self.unverified[revision])),
            ]
        return [record.to_document() for record in final.values()] + extra


def _take(record: Record, script: Script) -> None:
    """The record now vouches for the script and its helpers as they are: checksums and source."""
    record.checksum, record.script_checksum = script.checksum, script.script_checksum
    record.helpers = script.helper_checksums
    record.source = source_id(record.revision, script.checksum)


def _decide(
    scripts: ScriptSet,
    evaluation: Evaluation,
    snapshot: Snapshot,
    accept: set[str],
    history: HistoryStore | None = None,
) -> _Decision:
    """What repair would do; with ``history``, also the diff of each changed script against the source that ran."""
    decided = _Decision()
    for view in evaluation.views:
        if view.state in ("failed", "interrupted"):
            (decided.to_applied if view.direction == "down" else decided.to_pending).append(view.revision)
        elif view.state == "missing":
            decided.forgotten.append(view.revision)
        elif view.state == "forgotten":
            decided.restored.append(view.revision)
    # A changed script of an applied revision, and of one going back to applied after a failed down (its
    # downgrade was just fixed, as the advice says): both are offered in the same repair, with their diff.
    back = [r for r in decided.to_applied + decided.restored if r in scripts.by_revision]
    comparisons = {r: compare(snapshot.records[r], scripts.by_revision[r]) for r in back}
    changed = [view.revision for view in evaluation.changed] + [r for r in back if not comparisons[r].same]
    for view in evaluation.views:  # applied, script unchanged, helpers never recorded
        if view.unverified_helpers and view.revision not in changed:
            decided.recorded.append(view.revision)
            decided.unverified[view.revision] = tuple(view.unverified_helpers)
    for revision in back:
        if comparisons[revision].same and comparisons[revision].unverified:
            decided.recorded.append(revision)
            decided.unverified[revision] = comparisons[revision].unverified
    for revision in changed:
        record, script = snapshot.records[revision], scripts.by_revision[revision]
        renamed = bool(record.description) and record.description != script.description
        if renamed and revision not in accept:
            decided.refused[revision] = (
                f"{revision} not accepted: it was applied as {record.description!r} and {script.path.name} now "
                f"says {script.description!r}, a different migration under the same number; restore the script that "
                "ran, or if the new file's changes are already in the database: "
                f"cosmigrate repair --accept {revision}."
            )
            continue
        decided.accepted.append(revision)
        if history is not None:
            decided.diffs[revision] = _diffs(revision, history.sources(record.source), script, compare(record, script))
    return decided


# -- stamp ------------------------------------------------------------------------------------------------


def stamp(config: Config, target: str, confirm: Confirm, on_wait: WaitCallback | None = None) -> StampResult:
    """Record revisions up to ``target`` as applied without running them (adopting an existing database);
    records above it become reverted. Forgetting applied revisions (``base``, or a lower target) asks first."""
    scripts = load_all(config.migrations)
    count = scripts.graph.resolve(target)
    keep = scripts.ordered[:count]
    kept = {s.revision for s in keep}
    name = config.database_name
    with connected(config) as client:
        snapshot = HistoryStore(require_database(client, config), config.history_container).snapshot()
    active = {r for r, rec in snapshot.records.items() if rec.state not in ("pending", "reverted", "forgotten")}
    dropping = sorted(active - kept)
    if dropping and not confirm(
        f"Mark {', '.join(dropping)} as not applied, without running their downgrades (the database keeps whatever "
        "they did)?"
    ):
        raise UsageError("stamp cancelled: nothing was changed")
    with locked(config, "stamp", on_wait, create_history=True) as (_, history, lease):
        records = history.snapshot().records
        documents: list[dict[str, Any]] = []
        stamped = []
        for script in keep:
            existing = records.get(script.revision)
            if existing and existing.state == "applied" and compare(existing, script).same:
                continue
            record = Record(
                script.revision, script.description, script.checksum, "applied", started_at=now_iso(),
                finished_at=now_iso(), applied_at=now_iso(), duration_s=0.0, applied_by=who(),
                idempotent=script.idempotent, stamped=True, source=source_id(script.revision, script.checksum),
                script_checksum=script.script_checksum, helpers=script.helper_checksums,
            )  # fmt: skip
            documents += [
                record.to_document(),
                source_document(script.revision, script.checksum, script.source, script.helper_sources),
                _event("stamped", script.revision, lease, target=target),
            ]
            stamped.append(script.revision)
        removed = []
        for revision, record in sorted(records.items()):
            if revision in kept or record.state in ("pending", "reverted", "forgotten"):
                continue
            was = record.state
            record.state, record.stamped, record.error = "reverted", True, None
            documents += [record.to_document(), _event("unstamped", revision, lease, target=target, was=was)]
            removed.append(revision)
        commit_all(lease, documents)
    return StampResult(name, target, stamped, removed)


# -- unlock -----------------------------------------------------------------------------------------------


def unlock(config: Config, confirm: Confirm) -> UnlockResult:
    """Release a lease left by a dead run, after showing who holds it (by the database's clock) and asking."""
    name = config.database_name
    with connected(config) as client:
        history = HistoryStore(require_database(client, config), config.history_container)
        snapshot = history.snapshot()
        holder = snapshot.lock
        if holder is None:
            return UnlockResult(name, False, None)
        if not confirm(f"Release the migration lock held by {holder.describe()}?"):
            raise UsageError("unlock cancelled: the lock is still held")
        event = HistoryEvent.new("unlocked", None, detail={"holder": holder.describe(), "lease_id": holder.lease_id})
        # the holder's running revision says why it stopped; fenced like the holder's own writes, so if the
        # holder wrote since we read, the lease changed and nothing of this lands
        stopped = [
            _interrupted_by_unlock(record, event)
            for record in snapshot.records.values()
            if record.state == "running" and record.lease_id == holder.lease_id
        ]
        if not force_release(history, holder, [event.to_document(), *stopped]):
            raise HistoryConflict("the lock changed hands while you were asked; run cosmigrate unlock again")
    return UnlockResult(name, True, holder.describe())


def _interrupted_by_unlock(record: Record, event: HistoryEvent) -> dict[str, Any]:
    record.state = "interrupted"
    record.error = (
        f"started {record.started_at} by {record.applied_by}; its lock was released by cosmigrate unlock "
        f"({event.by}, {event.at}) before it finished"
    )
    return record.to_document()
