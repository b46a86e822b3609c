"""``status``, ``history`` and ``verify``: reading only, never creating anything, never taking the lock."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from cosmigrate.app.context import connected, database_exists, missing, require_database
from cosmigrate.app.datasteps import saved_steps
from cosmigrate.app.planes import plane_for
from cosmigrate.app.results import (
    ContainerDrift,
    HistoryResult,
    RevisionsResult,
    ShowResult,
    StatusResult,
    VerifyResult,
)
from cosmigrate.app.state import RevisionView, evaluate, refusal
from cosmigrate.config import Config
from cosmigrate.errors import GraphError, HistoryConflict
from cosmigrate.model.diff import Difference, diff
from cosmigrate.model.state import DatabaseState
from cosmigrate.plan import planner
from cosmigrate.scripts.graph import RevisionGraph
from cosmigrate.scripts.loader import Script, ScriptSet, load_all
from cosmigrate.scripts.problems import Problem
from cosmigrate.store.history import HistoryStore
from cosmigrate.store.live import read_state


def status(config: Config) -> StatusResult:
    """Where every revision stands; ``refusal`` is why ``up`` would refuse (the same function ``up`` uses)."""
    scripts = load_all(config.migrations)
    name = config.database_name
    with connected(config) as client:
        history = HistoryStore(client.get_database_client(name), config.history_container)
        snapshot = history.snapshot()
        if not snapshot.exists and not database_exists(client, name):
            raise missing(config)
        evaluation = evaluate(scripts, snapshot)
        views = with_data_steps(config, history, evaluation.views)
    return StatusResult(
        database=name,
        current=evaluation.current,
        head=scripts.graph.head,
        revisions=views,
        lock=snapshot.lock.to_dict() if snapshot.lock else None,
        refusal=refusal(evaluation, scripts, "up"),
        history_exists=snapshot.exists,
        changed=evaluation.changed,
    )


def with_data_steps(config: Config, history: HistoryStore, views: list[RevisionView]) -> list[RevisionView]:
    """A failed or interrupted revision's next step also says where its data steps resume (one more read, only
    when some revision is stuck): running it again does not start them over unless told to."""
    stuck = {v.revision: v.description for v in views if v.state in ("failed", "interrupted")}
    saved = saved_steps(config, history).of_revisions(stuck)
    return [
        replace(
            v,
            next_step=f"{v.next_step}; when it runs again, its {'; its '.join(saved[v.revision])} (cosmigrate "
            "repair --restart-data starts its data steps over)",
        )
        if v.revision in saved and v.next_step
        else v
        for v in views
    ]


def check_online(config: Config, ordered: list[Script]) -> list[Problem]:
    """What only the database can tell, read without writing: applied revisions whose file is gone or changed,
    and pending revisions numbered below the applied head (a branch cut before another landed)."""
    scripts = ScriptSet(RevisionGraph(s.node for s in ordered), {s.revision: s for s in ordered})
    with connected(config) as client:
        snapshot = HistoryStore(require_database(client, config), config.history_container).snapshot()
    evaluation = evaluate(scripts, snapshot)
    problems = [
        Problem(scripts.by_revision[v.revision].path.name, v.revision, None, "changed", str(v.error))
        for v in evaluation.changed
    ]
    problems += [
        Problem("history", v.revision, None, "missing", f"revision {v.revision} is {v.error}")
        for v in evaluation.of("missing")
    ]
    try:
        scripts.graph.applied_count(evaluation.applied)
    except HistoryConflict as exc:
        pending = next(s for s in scripts.ordered if s.revision not in evaluation.applied)
        problems.append(Problem(pending.path.name, pending.revision, None, "out-of-order", str(exc)))
    return problems


def history(config: Config) -> HistoryResult:
    """The log of everything that happened, oldest first, and each revision's current record."""
    name = config.database_name
    with connected(config) as client:
        store = HistoryStore(require_database(client, config), config.history_container)
        events = store.events()
        records = store.snapshot().records
    return HistoryResult(
        name,
        [event.to_dict() for event in events],
        [record.to_document() for _, record in sorted(records.items())],
    )


def compare(declared: DatabaseState, live: DatabaseState, database: str) -> list[ContainerDrift]:
    """Each declared container against the live one, path by path (missing, drift or ok), the live ones no
    migration declares (unmanaged), and the database's shared throughput when it is declared: ``verify``'s
    comparison, which ``adopt`` makes too before it records a baseline."""
    containers: list[ContainerDrift] = []
    for definition in declared:
        found = live.get(definition.id)
        if found is None:
            containers.append(
                ContainerDrift(
                    definition.id, "missing", [{"message": f"{definition.id} is declared but does not exist"}]
                )
            )
            continue
        differences = diff(definition, found)
        containers.append(
            ContainerDrift(definition.id, "drift" if differences else "ok", [d.to_dict() for d in differences])
        )
    for definition in live:
        if definition.id not in declared:
            containers.append(ContainerDrift(definition.id, "unmanaged"))
    if declared.database_throughput and live.database_throughput != declared.database_throughput:
        moved = Difference(database, "throughput", declared.database_throughput, live.database_throughput)
        containers.append(ContainerDrift(f"database {database}", "drift", [moved.to_dict()]))
    return containers


def verify(config: Config, strict: bool = False) -> VerifyResult:
    """Do the live containers match what the applied migrations declare?

    The applied revisions are replayed on an empty simulated database to compute what they declare; both
    sides are normalised alike before comparing (``model/diff.py``). Containers no migration declares are
    listed as unmanaged: not drift, unless ``strict``.
    """
    scripts = load_all(config.migrations)
    name = config.database_name
    with connected(config) as client:
        database = require_database(client, config)
        snapshot = HistoryStore(database, config.history_container).snapshot()
        evaluation = evaluate(scripts, snapshot)
        if snapshot.lock is not None and not snapshot.lock.expired:
            busy = "a deploy holds the migration lock: the database may be half-way through it; verify again later"
            return VerifyResult(name, evaluation.current, False, [], [busy], snapshot.lock.describe())
        live = read_state(database, config.history_container, plane_for(config).throughputs)
    applied = [scripts.by_revision[rev] for rev in evaluation.applied if rev in scripts.by_revision]
    replay = planner.plan(
        applied, "up", DatabaseState(), x=config.x, history_container=config.history_container, keep_going=True
    )
    notes = [
        f"revision {r.revision}: {r.stopped}; what it does after that is not verified"
        for r in replay.revisions
        if r.stopped
    ]
    notes += [
        f"revision {r.revision} could not be replayed: {r.fault if r.fault else r.conflict or r.refused}"
        for r in replay.revisions
        if r.blocked
    ]
    containers = compare(replay.end_state, live, name)
    bad = {"drift", "missing"} | ({"unmanaged"} if strict else set())
    clean = not any(c.state in bad for c in containers)
    return VerifyResult(name, evaluation.current, clean, containers, notes)


def current(config: Config) -> RevisionsResult:
    """The revision the database is at (``None``: base) and the folder's head."""
    found = status(config)
    return RevisionsResult(found.database, found.current, [found.head] if found.head else [])


def heads(config: Config) -> RevisionsResult:
    """The head of the migrations folder (one chain: one head); needs no database."""
    scripts = load_all(config.migrations)
    return RevisionsResult(None, None, [scripts.graph.head] if scripts.graph.head else [])


def show(config: Config, revision: str) -> ShowResult:
    """One revision: its file and declarations, and when a database is configured and exists, its state and
    every event recorded for it."""
    scripts = load_all(config.migrations)
    if revision == "head" and scripts.graph.head:
        revision = scripts.graph.head
    if revision not in scripts.by_revision:
        known = ", ".join(s.revision for s in scripts.ordered) or "none"
        raise GraphError(f"unknown revision {revision!r}: the migrations in {config.migrations} are {known}")
    script = scripts.by_revision[revision]
    state = applied_at = None
    events: list[dict[str, Any]] = []
    if config.database:
        with connected(config) as client:
            if database_exists(client, config.database_name):
                store = HistoryStore(client.get_database_client(config.database_name), config.history_container)
                snapshot = store.snapshot()
                view = next(v for v in evaluate(scripts, snapshot).views if v.revision == revision)
                state, applied_at = view.state, view.applied_at
                events = [e.to_dict() for e in store.events() if e.revision == revision]
    return ShowResult(
        revision=script.revision,
        file=str(script.path),
        description=script.description,
        down_revision=script.down_revision,
        idempotent=script.idempotent,
        arguments=dict(script.arguments or {}),
        checksum=script.checksum,
        helpers=[h.name for h in script.helpers],
        database=config.database,
        state=state,
        applied_at=applied_at,
        events=events,
    )
