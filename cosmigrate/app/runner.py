"""The run loop: for each planned revision, record ``running``, run the script, record how it ended.

Kept short on purpose. Every write goes through the lease (:meth:`Lease.commit`: one batch with a conditional
renewal). ``running`` is written ahead of a revision's first change (not of its first line), together with
the end of the revisions before it: no revision changes anything before the previous one is recorded, and a
run of revisions that change nothing costs one history write per 30 of them.

How a revision ends:

* it returns: ``applied`` (up) or ``reverted`` (down), with its script's source kept;
* a precondition refuses (``op.refuse``): nothing of it happened, the record goes back to what it was;
* the script raises: ``failed``, with the direction (a failed down leaves the revision applied, dirty);
* the run is interrupted (SIGTERM, Ctrl-C, a connection that stays down): ``interrupted``; an idempotent
  revision is simply run again by the next run, anything else waits for ``repair``;
* the lock is lost: nothing more is written; the next run sees the revision as interrupted.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from azure.cosmos import exceptions as cosmos_errors

from cosmigrate import logs
from cosmigrate.data import checkpoints
from cosmigrate.data.errors import ItemsFailed, ProgressKeptLocally
from cosmigrate.errors import CosmigrateError, MigrationFailed, PreconditionRefused
from cosmigrate.ops.facade import Operations
from cosmigrate.scripts.loader import Script, line_in
from cosmigrate.store.client import explain_403, is_transient, service_message
from cosmigrate.store.lock import Lease, LockLost
from cosmigrate.store.records import Event, Record, now_iso, source_document, source_id, who

log = logs.LOG
Direction = Literal["up", "down"]
DATA_KINDS = frozenset({"transform_items", "copy_container"})  # steps that keep checkpoints
BATCH_DOCUMENTS = 90
BATCH_BYTES = 1_500_000


@dataclass(frozen=True)
class StepResult:
    revision: str
    description: str
    direction: Direction
    duration_s: float
    actions: list[str] = field(default_factory=list)
    operations: list[dict[str, Any]] = field(default_factory=list)
    resumed: bool = False
    forced: list[dict[str, Any]] = field(default_factory=list)


def one_line(exc: BaseException) -> str:
    if isinstance(exc, cosmos_errors.CosmosHttpResponseError) and exc.status_code == 403:
        text = explain_403(exc, service_message(exc))
    elif isinstance(exc, cosmos_errors.CosmosHttpResponseError):
        text = f"Cosmos DB answered {exc.status_code} ({service_message(exc)})"
    else:
        text = " ".join(str(exc).split()) or "(no message)"
    return f"{type(exc).__name__}: {text}"[:600]


def interruption(exc: BaseException) -> str | None:
    """Why a run stopped when it was not the script's own doing, or None for a script failure."""
    if isinstance(exc, KeyboardInterrupt):
        return str(exc) or "interrupted by Ctrl-C (SIGINT)"
    transient = next((cause for cause in causes(exc) if is_transient(cause)), None)
    return f"the database stayed unreachable ({one_line(transient)})" if transient else None


def causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, then what caused it, and so on (``raise … from`` first, else the exception being handled)."""
    seen: BaseException | None = exc
    while seen is not None:
        yield seen
        seen = seen.__cause__ or seen.__context__


class Runner:
    def __init__(
        self,
        lease: Lease,
        make_op: Callable[[Script, Callable[[], None]], Operations],
        redact: Callable[[str], str],
        x: Mapping[str, str],
        forget_data: Callable[[str], object] | None = None,
        saved_data: Mapping[str, set[str]] | None = None,
        describe_saved: Callable[[str, str], list[tuple[str, int | None]]] | None = None,
    ) -> None:
        self.lease = lease
        self.make_op = make_op
        self.redact = redact
        self.x = dict(x)
        self.forget_data = forget_data  # clears a revision's saved data steps (their checkpoints)
        self.saved_data = saved_data or {}  # revision -> tags of its data steps saved when the run began
        self.describe_saved = describe_saved  # (revision, description) -> where its saved data steps resume
        self.results: list[StepResult] = []
        self._pending: list[dict[str, Any]] = []  # the end of the last revision, written with the next start
        self._ended: list[str] = []  # revisions whose end is in _pending: their data steps are forgotten once written

    def run(self, plan: list[Script], direction: Direction, records: Mapping[str, Record]) -> list[StepResult]:
        try:
            for script in plan:
                self.lease.check()
                self.results.append(self._step(script, direction, records.get(script.revision)))
            self._flush()
        except LockLost as lost:
            error = self._lost(lost)
            error.steps = list(self.results)
            raise error from lost
        except CosmigrateError as error:
            error.steps = list(self.results)
            raise
        finally:
            if self._pending and self.lease.held:
                try:  # a signal between two revisions: the finished one is still recorded
                    self._flush()
                except Exception as exc:  # the caller reports the first error
                    log.warning("could not record the last revision", error=one_line(exc))
        return self.results

    def _lost(self, lost: LockLost) -> LockLost:
        """Say which revision's outcome the history cannot show, now that this run may write nothing."""
        if lost.revision:
            outcome = f"the outcome of revision {lost.revision} is unknown"
        elif self._pending:
            revision = self._pending[0].get("revision")
            outcome = f"revision {revision} ran to its end but could not be recorded"
        else:
            return lost
        return LockLost(
            f"{lost}; {outcome}: the next run sees it as interrupted (cosmigrate status)", revision=lost.revision
        )

    def _flush(self, documents: list[dict[str, Any]] | None = None) -> None:
        for chunk in batches([*self._pending, *(documents or [])]):
            self.lease.commit(chunk)
        self._pending = []
        ended, self._ended = self._ended, []
        for revision in ended:  # recorded applied or reverted: its finished data steps are done with
            self._forget(revision)

    def _forget(self, revision: str) -> None:
        if self.forget_data is None:
            return
        try:
            self.forget_data(revision)
        except Exception as exc:  # harmless: cleared again when the revision next starts afresh
            log.warning("could not clear the revision's data checkpoints", revision=revision, error=one_line(exc))

    def _event(self, kind: str, revision: str, direction: Direction, **detail: Any) -> dict[str, Any]:
        return Event.new(
            kind, revision, direction=direction, detail=detail, args=self.x, lease_id=self.lease.lease_id
        ).to_document()

    def _step(self, script: Script, direction: Direction, previous: Record | None) -> StepResult:
        started = time.monotonic()
        resumed = (
            previous is not None and previous.state in ("running", "interrupted") and previous.direction == direction
        )
        record = Record(
            revision=script.revision,
            description=script.description,
            checksum=script.checksum,
            script_checksum=script.script_checksum,
            helpers=script.helper_checksums,
            state="running",
            direction=direction,
            started_at=now_iso(),
            applied_at=previous.applied_at if previous else None,
            applied_by=who(),
            lease_id=self.lease.lease_id,
            idempotent=script.idempotent,
            args=self.x,
            source=previous.source if previous else None,
        )
        start = [record.to_document()]
        fresh = direction == "up" and (previous is None or previous.state in ("reverted", "forgotten"))
        tags = self.saved_data.get(script.revision, set())
        if tags and (fresh or tags != {checkpoints.tag(script.description)}):
            # applied afresh, or another migration under its number: what is saved under it is not this run's
            self._forget(script.revision)
        if resumed and previous is not None:
            # a run killed outright left no error: what the history can say is that its lock expired
            why = previous.error or (
                f"started {previous.started_at} by {previous.applied_by}; its lock expired before it finished"
            )
            log.info("resuming an interrupted revision", revision=script.revision, direction=direction, was=why)
            if self.describe_saved is not None and script.revision in self.saved_data:
                for said, at_risk in self.describe_saved(script.revision, script.description):
                    say = log.info if at_risk == 0 else log.warning  # some documents may be done a second time
                    say(f"revision {script.revision}: its {said}", revision=script.revision)
            start.append(self._event("resumed", script.revision, direction, was=why))
        written = False

        def before_effect() -> None:
            """Write-ahead: ``running`` is recorded before the revision's first change, not before its first
            line, so a revision that changes nothing costs no write of its own (its end is written later)."""
            nonlocal written
            if not written:
                self._flush(start)
                written = True

        op = self.make_op(script, before_effect)
        try:
            (script.upgrade if direction == "up" else script.downgrade)(op)
        except PreconditionRefused as refusal:
            refused = self._event("refused", script.revision, direction, reason=str(refusal))
            if written:
                back = previous or Record(
                    script.revision, script.description, script.checksum, "pending",
                    script_checksum=script.script_checksum, helpers=script.helper_checksums,
                )  # fmt: skip
                if direction == "up" and back.state != "pending":  # not applied; its finished data steps count
                    back = replace(back, state="pending")  # (a "reverted" record would have them cleared)
                self._flush([back.to_document(), refused])
            else:
                self._pending.append(refused)
            raise
        except LockLost as lost:
            raise LockLost(str(lost), revision=script.revision) from lost
        except BaseException as exc:
            if not isinstance(exc, Exception | KeyboardInterrupt):
                raise
            raise self._ended_badly(script, direction, record, exc, started, written, op) from exc
        duration = round(time.monotonic() - started, 3)
        record.duration_s = duration
        record.finished_at = now_iso()
        record.result = {k: v for k, v in {"forced": op.forced, **_collected(op)}.items() if v}
        if direction == "up":
            record.state, record.applied_at = "applied", record.finished_at
            record.source = source_id(script.revision, script.checksum)
            self._pending += [
                record.to_document(),
                source_document(script.revision, script.checksum, script.source, script.helper_sources),
                self._event("applied", script.revision, direction, duration_s=duration, **record.result),
            ]
        else:
            record.state = "reverted"
            self._pending += [
                record.to_document(),
                self._event("reverted", script.revision, direction, duration_s=duration, **record.result),
            ]
        self._pending += [self._event("forced", script.revision, direction, **forced) for forced in op.forced]
        if script.revision in self.saved_data or any(c.kind in DATA_KINDS for c in op.changes):
            self._ended.append(script.revision)
        if len(self._pending) >= BATCH_DOCUMENTS:
            self._flush()
        return StepResult(
            script.revision,
            script.description,
            direction,
            duration,
            [change.describe() for change in op.changes],
            [change.to_dict() for change in op.changes],
            resumed,
            list(op.forced),
        )

    def _ended_badly(
        self,
        script: Script,
        direction: Direction,
        record: Record,
        exc: BaseException,
        started: float,
        written: bool,
        op: Operations,
    ) -> MigrationFailed:
        why = interruption(exc)
        if why and not written:  # stopped before its first change: nothing happened, it stays as it was
            try:
                self._flush([self._event("interrupted", script.revision, direction, error=why, before_any_change=True)])
            except Exception as write_error:
                log.warning("could not record the interruption", error=one_line(write_error))
            return MigrationFailed(
                f"revision {script.revision} ({script.path.name}) was interrupted ({why}) before it changed anything; "
                f"nothing of it happened: run cosmigrate {direction} again",
                revision=script.revision,
                file=script.path.name,
            )
        record.state = "interrupted" if why else "failed"
        record.error = self.redact(why or one_line(exc))
        record.duration_s = round(time.monotonic() - started, 3)
        record.finished_at = now_iso()
        record.result = _failure_detail(op, exc)
        recorded = True
        try:
            event = self._event(record.state, script.revision, direction, error=record.error, **record.result)
            self._flush([record.to_document(), event])
        except Exception as write_error:  # the lease expiry tells the story instead
            recorded = False
            log.warning("could not record how the revision ended", error=one_line(write_error))
        line = line_in(script.path, exc) if why is None else None
        name = f"{script.path.name}:{line}" if line else script.path.name  # where the script failed
        if why is None and direction == "up":
            text = (
                f"revision {script.revision} ({name}) failed going up: {record.error}; it is recorded as failed and "
                "nothing after it ran: fix the script (or the data it failed on), then cosmigrate repair and "
                "cosmigrate up"
            )
        elif why is None:
            text = (
                f"revision {script.revision} ({name}) failed going down: {record.error}; it is still applied "
                "(recorded as failed going down): fix its downgrade, then cosmigrate repair (it is applied again) "
                "and cosmigrate down"
            )
        else:
            text = f"revision {script.revision} ({name}) was interrupted going {direction} ({record.error})"
            if not recorded:
                text += "; the database could not record it (the next run sees it as interrupted once its lock expires)"
            if script.idempotent:
                text += f"; it is idempotent: the next cosmigrate {direction} resumes it"
            else:
                text += "; it is recorded as interrupted" if recorded else ""
                text += ": check its effects, then cosmigrate repair and run again"
        kept = next((cause for cause in causes(exc) if isinstance(cause, ProgressKeptLocally)), None)
        if kept is not None:
            text += (
                f"; its data step's progress is kept on this machine in {kept.path}: run from this machine to resume"
            )
        return MigrationFailed(text, revision=script.revision, file=script.path.name, detail=record.result)


def batches(documents: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Documents in groups a transactional batch takes: 100 operations (one is the lease), 2 MB in all."""
    chunk: list[dict[str, Any]] = []
    size = 0
    for document in documents:
        length = len(json.dumps(document, default=str))
        if chunk and (len(chunk) >= BATCH_DOCUMENTS or size + length > BATCH_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(document)
        size += length
    if chunk:
        yield chunk


def _failure_detail(op: Operations, exc: BaseException) -> dict[str, Any]:
    """What a failed or interrupted revision did before it stopped (backups, data totals), and the data step that
    failed on documents with its totals and dead-letter file: for ``--json`` and the history."""
    detail = {k: v for k, v in _collected(op).items() if v}
    failed = next((cause for cause in causes(exc) if isinstance(cause, ItemsFailed)), None)
    if failed is not None:
        detail["failed_step"] = {**failed.totals.to_dict(), "dead_letter": str(failed.dead_letter)}
    return detail


def _collected(op: Operations) -> dict[str, Any]:
    """What the operations reported that the history keeps: backups taken, data totals (with the dead-letter
    file when documents were dead-lettered)."""
    backups = [dict(change.outcome.backup) for change in op.changes if change.outcome.backup]
    totals = [
        {
            "kind": change.kind,
            "container": change.container,
            **dict(change.outcome.totals),
            **({"dead_letter": change.outcome.dead_letter} if change.outcome.dead_letter else {}),
        }
        for change in op.changes
        if change.outcome.totals
    ]
    return {"backups": backups, "totals": totals}
