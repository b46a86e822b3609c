"""The verbs: plain functions taking a :class:`Config` and returning a typed result.

The CLI only parses flags, calls these and renders the results (a table, or JSON from ``to_dict``); tests and
other programs call them directly. Scripts are loaded and targets checked before the database is touched, so a
usage error never leaves anything written.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from azure.core import MatchConditions
from azure.core.exceptions import AzureError
from azure.cosmos import CosmosClient, DatabaseProxy
from azure.cosmos import exceptions as cosmos_errors

from cosmigrate.app.results import (
    CheckResult,
    HistoryResult,
    NewResult,
    RepairResult,
    RevisionView,
    RunResult,
    StampResult,
    StatusResult,
    UnlockResult,
)
from cosmigrate.app.runner import Runner, StepResult, validate
from cosmigrate.config import Config
from cosmigrate.errors import DatabaseError, HistoryConflict, UsageError
from cosmigrate.ops.facade import DryRunStop, Operations, ProgressCallback
from cosmigrate.scripts.graph import BASE, HEAD
from cosmigrate.scripts.loader import FILE_NAME, ScriptSet, load_all
from cosmigrate.store import client as cosmos
from cosmigrate.store.history import Record, SchemaHistory, now_iso, who
from cosmigrate.store.lock import Holder, Lease, read_holder

Confirm = Callable[[str], bool]
WaitCallback = Callable[[Holder], None]


# -- reading the state ------------------------------------------------------------------------------------


def _evaluate(
    config: Config,
    scripts: ScriptSet,
    records: dict[str, Record],
    lock: tuple[Holder, str] | None,
) -> StatusResult:
    """Combine files and records. A ``running`` record is live only while its lease is; otherwise it was
    interrupted and counts as failed (the "dirty" state, named and explained)."""
    live_lease = lock[0].lease_id if lock and not lock[0].expired() else None
    applied, pending, failed, changed, running = [], [], [], [], []
    for script in scripts.ordered:
        record = records.get(script.revision)
        if record is None:
            pending.append(RevisionView(script.revision, script.description, "pending"))
            continue
        view = dict(revision=script.revision, description=record.description or script.description)
        if record.state == "running":
            if record.lease_id == live_lease:
                running.append(RevisionView(**view, state="running", applied_by=record.applied_by))
                continue
            failed.append(
                RevisionView(**view, state="failed", error=record.interruption(), applied_by=record.applied_by)
            )
        elif record.state == "failed":
            failed.append(RevisionView(**view, state="failed", error=record.error, applied_by=record.applied_by))
        else:
            applied_view = RevisionView(
                **view,
                state="applied",
                applied_at=record.applied_at,
                checksum=record.checksum,
                applied_by=record.applied_by,
            )
            applied.append(applied_view)
            if record.checksum != script.checksum:
                changed.append(
                    RevisionView(
                        **view,
                        state="changed",
                        checksum=script.checksum,
                        error=f"{script.path.name} changed since it was applied "
                        f"(recorded {record.checksum[:19]}…, file {script.checksum[:19]}…)",
                    )
                )
    missing = [
        RevisionView(
            r.revision,
            r.description,
            "missing",
            r.applied_at,
            r.checksum,
            f"no script declares revision {r.revision} (recorded {r.state})",
        )
        for rev, r in sorted(records.items())
        if rev not in scripts.by_revision
    ]
    current = applied[-1].revision if applied else None
    holder = None
    if lock:
        holder = {**asdict(lock[0]), "expired": lock[0].expired(), "description": lock[0].describe()}
    return StatusResult(
        database=config.database,
        current=current,
        head=scripts.graph.head,
        applied=applied,
        pending=pending,
        failed=failed,
        changed=changed,
        missing=missing,
        running=running,
        lock=holder,
    )


@contextmanager
def _database(config: Config) -> Iterator[tuple[CosmosClient, DatabaseProxy]]:
    client = cosmos.connect(config)
    try:
        yield client, client.get_database_client(config.database)
    except AzureError as exc:
        doing = f"{config.endpoint}, database {config.database}"
        raise DatabaseError(cosmos.describe(exc, doing, config)) from exc
    finally:
        client.__exit__()  # type: ignore[no-untyped-call]


def status(config: Config) -> StatusResult:
    """Applied, pending, failed and changed revisions. Reads only: creates nothing, takes no lock."""
    scripts = load_all(config.migrations)
    with _database(config) as (_, database):
        records, lock = _read_history(SchemaHistory(database, config.history_container))
    return _evaluate(config, scripts, records, lock)


def _read_history(store: SchemaHistory) -> tuple[dict[str, Record], tuple[Holder, str] | None]:
    """Records and lock in one query (they share a partition)."""
    documents = store.documents()
    lock_doc = next((d for d in documents if d.get("kind") == "lock"), None)
    lock = (Holder.from_document(lock_doc), lock_doc["_etag"]) if lock_doc else None
    return SchemaHistory.records_of(documents), lock


def history(config: Config) -> HistoryResult:
    """Every stored record, in revision order, with who applied it and how long it took."""
    scripts = load_all(config.migrations)
    with _database(config) as (_, database):
        records = SchemaHistory(database, config.history_container).records()
    order = {node.revision: i for i, node in enumerate(scripts.graph.order)}
    rows = sorted(records.values(), key=lambda r: (order.get(r.revision, len(order)), r.revision))
    return HistoryResult(config.database, [{k: v for k, v in asdict(r).items() if k != "extra"} for r in rows])


# -- changing the state ------------------------------------------------------------------------------------


@contextmanager
def _locked(
    config: Config, command: str, on_wait: WaitCallback | None = None
) -> Iterator[tuple[DatabaseProxy, SchemaHistory, Lease]]:
    with _database(config) as (client, _):
        database = cosmos.ensure_database(client, config.database)
        history_store = SchemaHistory(database, config.history_container)
        history_store.ensure()
        lease = Lease(history_store, ttl=config.lock_ttl, command=command)
        lease.acquire(config.lock_timeout, on_wait)
        try:
            yield database, history_store, lease
        finally:
            lease.release()


def _records_under_lock(history_store: SchemaHistory, lease: Lease) -> dict[str, Record]:
    """Records, with runs interrupted before ours turned into explicit failures."""
    records = history_store.records()
    for record in records.values():
        if record.state == "running" and record.lease_id != lease.lease_id:
            record.state, record.error = "failed", record.interruption()
            history_store.save(record)
    return records


def _refuse_if_blocked(state: StatusResult) -> None:
    if state.failed:
        first = state.failed[0]
        raise HistoryConflict(
            f"revision {first.revision} failed ({first.error}); fix the cause, then cosmigrate repair "
            "(it becomes pending again) and cosmigrate up"
        )
    if state.changed:
        first = state.changed[0]
        raise HistoryConflict(
            f"revision {first.revision}: {first.error}; restore the file, or accept it with cosmigrate repair"
        )
    if state.missing:
        first = state.missing[0]
        raise HistoryConflict(
            f"revision {first.revision} is recorded but {first.error}; restore the script, "
            "or forget the record with cosmigrate repair"
        )


def up(
    config: Config,
    target: str = HEAD,
    *,
    dry_run: bool = False,
    on_progress: ProgressCallback | None = None,
    on_wait: WaitCallback | None = None,
) -> RunResult:
    """Apply pending revisions up to ``target``; a contender that waited for the lock finds the work done."""
    scripts = load_all(config.migrations)
    validate(scripts.ordered[: scripts.graph.resolve(target)], "up", config.x, config.history_container)
    if dry_run:
        return _dry_run(config, scripts, target)
    with _locked(config, "up", on_wait) as (database, history_store, lease):
        records = _records_under_lock(history_store, lease)
        state = _evaluate(config, scripts, records, None)
        _refuse_if_blocked(state)
        applied = [r for r, rec in records.items() if rec.state == "applied"]
        plan = [scripts.by_revision[n.revision] for n in scripts.graph.upgrade_plan(applied, target)]
        runner = Runner(history_store, lease, _operations(config, database, on_progress), config.redact)
        steps = runner.run(plan, "up", records)
    current = plan[-1].revision if plan else state.current
    return RunResult(config.database, "up", False, steps, current, scripts.graph.head)


def down(
    config: Config,
    target: str | None = None,
    steps: int | None = None,
    *,
    on_progress: ProgressCallback | None = None,
    on_wait: WaitCallback | None = None,
) -> RunResult:
    """Undo revisions, newest first: one by default, ``steps`` of them, or down to ``target`` (``base``)."""
    scripts = load_all(config.migrations)
    scripts.graph.check_downgrade(target, steps)
    floor = scripts.graph.resolve(target) if target is not None else 0
    validate(scripts.ordered[floor:], "down", config.x, config.history_container)
    with _locked(config, "down", on_wait) as (database, history_store, lease):
        records = _records_under_lock(history_store, lease)
        _refuse_if_blocked(_evaluate(config, scripts, records, None))
        applied = [r for r, rec in records.items() if rec.state == "applied"]
        plan = [scripts.by_revision[n.revision] for n in scripts.graph.downgrade_plan(applied, target, steps)]
        runner = Runner(history_store, lease, _operations(config, database, on_progress), config.redact)
        results = runner.run(plan, "down", records)
        remaining = scripts.graph.applied_count(applied) - len(plan)
    current = scripts.graph.order[remaining - 1].revision if remaining > 0 else None
    return RunResult(config.database, "down", False, results, current, scripts.graph.head)


def _operations(
    config: Config, database: DatabaseProxy, on_progress: ProgressCallback | None
) -> Callable[[], Operations]:
    return lambda: Operations(
        database,
        config.x,
        index_timeout=config.index_timeout,
        on_progress=on_progress,
        history_container=config.history_container,
    )


def _dry_run(config: Config, scripts: ScriptSet, target: str) -> RunResult:
    """What ``up`` would do, read-only: no lock, no record, nothing created (not even the history)."""
    with _database(config) as (_, database):
        records, lock = _read_history(SchemaHistory(database, config.history_container))
        _refuse_if_blocked(_evaluate(config, scripts, records, lock))
        applied = [r for r, rec in records.items() if rec.state == "applied"]
        plan = [scripts.by_revision[n.revision] for n in scripts.graph.upgrade_plan(applied, target)]
        results: list[StepResult] = []
        refused = None
        for script in plan:
            op = Operations(database, config.x, dry_run=True, history_container=config.history_container)
            try:
                script.upgrade(op)
            except DryRunStop as stop:
                op.actions.append(f"{stop} (not simulated in a dry run)")
            except cosmos_errors.CosmosResourceNotFoundError:
                op.actions.append("reads a database or container that does not exist yet")
            except Exception as exc:
                refused = f"revision {script.revision}: {exc}"
                results.append(StepResult(script.revision, script.description, "up", 0.0, op.actions))
                break
            results.append(StepResult(script.revision, script.description, "up", 0.0, op.actions))
    current = next((r.revision for r in reversed(scripts.ordered) if r.revision in applied), None)
    return RunResult(config.database, "up", True, results, current, scripts.graph.head, refused)


def unlock(config: Config, confirm: Confirm) -> UnlockResult:
    """Release a lease left by a dead run, after showing who holds it and asking."""
    with _database(config) as (_, database):
        history_store = SchemaHistory(database, config.history_container)
        current = read_holder(history_store)
        if current is None:
            return UnlockResult(config.database, False, None)
        holder, etag = current
        if not confirm(f"Release the migration lock held by {holder.describe()}?"):
            raise UsageError("unlock cancelled: the lock is still held")
        try:
            history_store.container.delete_item(
                "lock", partition_key="history", etag=etag, match_condition=MatchConditions.IfNotModified
            )
        except cosmos_errors.CosmosAccessConditionFailedError:
            raise HistoryConflict("the lock changed hands while you were asked; run cosmigrate unlock again") from None
        except cosmos_errors.CosmosResourceNotFoundError:
            pass
    return UnlockResult(config.database, True, holder.describe())


def repair(config: Config, confirm: Confirm, on_wait: WaitCallback | None = None) -> RepairResult:
    """Make failed revisions pending again, accept changed checksums and forget records of missing scripts."""
    scripts = load_all(config.migrations)
    with _locked(config, "repair", on_wait) as (_, history_store, lease):
        records = _records_under_lock(history_store, lease)
        state = _evaluate(config, scripts, records, None)
        if state.changed and not confirm(
            "Accept the current files of " + ", ".join(v.revision for v in state.changed) + " as applied?"
        ):
            raise UsageError("repair cancelled: nothing was changed")
        if state.missing and not confirm(
            "Forget the records of " + ", ".join(v.revision for v in state.missing) + " (no script)?"
        ):
            raise UsageError("repair cancelled: nothing was changed")
        for view in state.failed:
            history_store.remove(view.revision)
        for view in state.changed:
            record = records[view.revision]
            record.checksum = scripts.by_revision[view.revision].checksum
            history_store.save(record)
        for view in state.missing:
            history_store.remove(view.revision)
    return RepairResult(
        config.database,
        [v.revision for v in state.failed],
        [v.revision for v in state.changed],
        [v.revision for v in state.missing],
    )


def stamp(config: Config, target: str, on_wait: WaitCallback | None = None) -> StampResult:
    """Record revisions up to ``target`` as applied without running them; ``base`` clears the record."""
    scripts = load_all(config.migrations)
    count = scripts.graph.resolve(target)
    with _locked(config, "stamp", on_wait) as (_, history_store, _lease):
        records = history_store.records()
        keep = scripts.ordered[:count]
        stamped = []
        for script in keep:
            existing = records.get(script.revision)
            if existing and existing.state == "applied" and existing.checksum == script.checksum:
                continue
            history_store.save(
                Record(
                    revision=script.revision,
                    description=script.description,
                    checksum=script.checksum,
                    state="applied",
                    started_at=now_iso(),
                    applied_at=now_iso(),
                    duration_s=0.0,
                    applied_by=who(),
                    stamped=True,
                )
            )
            stamped.append(script.revision)
        kept = {s.revision for s in keep}
        removed = sorted(r for r in records if r not in kept)
        for revision in removed:
            history_store.remove(revision)
    return StampResult(config.database, target, stamped, removed)


def check(config: Config) -> CheckResult:
    """Offline validation for CI: every script loads and the revisions form one chain with one head."""
    scripts = load_all(config.migrations)
    return CheckResult(str(config.migrations), scripts.graph.head, [n.revision for n in scripts.graph.order])


def new(config: Config, message: str) -> NewResult:
    """Write the next migration file, numbered after the head and chained to it."""
    slug = re.sub(r"[^a-z0-9]+", "_", message.lower()).strip("_")
    if not slug:
        raise UsageError(f"message {message!r} has no letters or digits to name the file with")
    scripts = load_all(config.migrations)
    head = scripts.graph.head
    width = max([3, *(len(s.revision) for s in scripts.ordered)])
    number = int(head) + 1 if head and head.isdigit() else len(scripts.ordered) + 1
    revision = str(number).zfill(width)
    path = Path(config.migrations) / f"{revision}_{slug[:60]}.py"
    if not FILE_NAME.match(path.name):
        raise UsageError(f"cannot build a valid file name from {message!r}")
    path.write_text(_TEMPLATE.format(message=message.strip(), revision=revision, down=repr(head), date=now_iso()))
    return NewResult(str(path), revision, head)


_TEMPLATE = '''"""{message}

Created {date}.
"""

revision = "{revision}"
down_revision = {down}


def upgrade(op):
    # e.g. op.create_container("things", partition_key="/tenantId", indexing_policy={{...}})
    raise NotImplementedError("write the upgrade of revision {revision}")


def downgrade(op):
    raise NotImplementedError("write the downgrade of revision {revision}")
'''

__all__ = ["BASE", "HEAD", "check", "down", "history", "new", "repair", "stamp", "status", "unlock", "up"]
