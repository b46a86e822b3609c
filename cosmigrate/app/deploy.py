"""``up``, ``down`` and ``plan``: plan against the live state, then run under the lock.

The order of a run, and why:

1. Scripts are loaded and the target checked: a usage mistake touches nothing.
2. The history and the live containers are read (no lock) and the revisions about to run — only those, in
   the direction they will run — are planned on a simulated state. A script that would fail (an invalid
   definition, a misspelt keyword, an undeclared ``-x`` key, an untouched template) is a usage error here,
   before the database or the history container is created. A ``down`` that would delete containers holding
   documents asks first.
3. Under the lock, the history is read again and the plan rebuilt from a fresh read of the live containers;
   a revision the plan shows refused or conflicting (on an exact simulation) stops the run before the first
   write, so nothing is half-done. Then the runner applies the revisions one by one.

A ``up`` with nothing to do takes no lock and costs two reads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from azure.cosmos import DatabaseProxy

from cosmigrate.app.context import Confirm, WaitCallback, connected, database_exists, lease_held, missing, open_for_up
from cosmigrate.app.datasteps import RunData, saved_steps
from cosmigrate.app.planes import plane_for
from cosmigrate.app.results import PlanResult, RunResult
from cosmigrate.app.runner import Runner
from cosmigrate.app.state import Evaluation, evaluate, refuse
from cosmigrate.config import Config
from cosmigrate.errors import DefinitionConflict, PreconditionRefused, ScriptError, UsageError
from cosmigrate.model.documents import holding
from cosmigrate.model.state import DatabaseState
from cosmigrate.ops.cosmos_impl import CosmosExecutor, ProgressCallback
from cosmigrate.ops.facade import Operations
from cosmigrate.plan import planner
from cosmigrate.plan.planner import Direction, Plan
from cosmigrate.scripts.graph import HEAD
from cosmigrate.scripts.loader import Script, ScriptSet, load_all
from cosmigrate.store.history import HistoryStore
from cosmigrate.store.live import counter, read_state
from cosmigrate.store.lock import Lease
from cosmigrate.store.records import Snapshot


def up(
    config: Config,
    target: str = HEAD,
    *,
    dry_run: bool = False,
    on_progress: ProgressCallback | None = None,
    on_wait: WaitCallback | None = None,
    backup: bool = True,
) -> RunResult | PlanResult:
    """Apply pending revisions up to ``target``; a contender that waited for the lock finds the work done.

    A container holding documents that a revision drops is exported first (``backup=False``: not)."""
    scripts = load_all(config.migrations)
    scripts.graph.resolve(target)
    return _run(config, scripts, "up", {"target": target}, dry_run, None, on_progress, on_wait, backup)


def down(
    config: Config,
    target: str | None = None,
    steps: int | None = None,
    *,
    dry_run: bool = False,
    confirm: Confirm | None = None,
    on_progress: ProgressCallback | None = None,
    on_wait: WaitCallback | None = None,
    backup: bool = True,
) -> RunResult | PlanResult:
    """Undo revisions, newest first: one by default, ``steps`` of them, or down to ``target`` (``base``).

    A plan that deletes containers holding documents needs ``confirm`` to say yes (the CLI asks on a
    terminal, or takes ``--yes``); without it the command refuses before touching anything."""
    scripts = load_all(config.migrations)
    scripts.graph.check_downgrade(target, steps)
    return _run(
        config, scripts, "down", {"target": target, "steps": steps}, dry_run, confirm, on_progress, on_wait, backup
    )


def plan(config: Config, target: str = HEAD, direction: Direction = "up", steps: int | None = None) -> PlanResult:
    """What ``up`` (or ``down``) would do, per revision and operation, with full definitions; writes nothing."""
    result = (
        up(config, target, dry_run=True)
        if direction == "up"
        else down(config, None if target == HEAD else target, steps, dry_run=True)
    )
    assert isinstance(result, PlanResult)
    return result


def _scripts_to_run(
    scripts: ScriptSet, evaluation: Evaluation, direction: Direction, where: Mapping[str, Any]
) -> list[Script]:
    graph = scripts.graph
    if direction == "up":
        nodes = graph.upgrade_plan(evaluation.applied, where["target"])
    else:
        nodes = graph.downgrade_plan(evaluation.applied, where.get("target"), where.get("steps"))
    return [scripts.by_revision[node.revision] for node in nodes]


def check_arguments(x: Mapping[str, str], planned: Sequence[Script], scripts: ScriptSet) -> None:
    """Every ``-x`` key must be declared by a revision about to run (by any revision when none is to run)."""
    pool = list(planned) or scripts.ordered
    declared: dict[str, str] = {}
    for script in pool:
        declared.update(script.arguments or {})
    unknown = sorted(set(x) - set(declared))
    if unknown:
        known = ", ".join(f"{k} ({v})" for k, v in sorted(declared.items())) or "none"
        raise UsageError(f"-x {unknown[0]}: no revision to run declares it; check the spelling (declared: {known})")


def _plan(
    scripts: Sequence[Script], direction: Direction, database: DatabaseProxy | None, config: Config
) -> tuple[Plan, DatabaseState]:
    if database is None:
        live = DatabaseState()
    else:
        live = read_state(database, config.history_container, plane_for(config).throughputs)
    result = planner.plan(
        scripts,
        direction,
        live,
        counter=counter(database) if database is not None else None,
        x=config.x,
        history_container=config.history_container,
    )
    fault = next(iter(result.faults), None)
    if fault is not None:
        error = ScriptError(f"{fault}; nothing was changed", revision=fault.revision, file=fault.file)
        raise error
    return result, live


def _refuse_blocked(result: Plan) -> None:
    """Stop before the first write when the plan shows a revision that cannot run (on an exact simulation)."""
    block = result.first_block
    if block is None or block.uncertain:
        return
    if block.refused:
        raise PreconditionRefused(
            f"revision {block.revision} ({block.file}) refused: {block.refused}; nothing was changed",
            revision=block.revision,
            file=block.file,
        )
    if block.conflict:
        raise DefinitionConflict(
            f"revision {block.revision} ({block.file}) cannot run: {block.conflict}; nothing was changed",
            revision=block.revision,
            file=block.file,
        )


def destructive(result: Plan, live: DatabaseState, count: Callable[[str], int]) -> list[tuple[str, int]]:
    """Containers the plan deletes that hold documents now, with their counts."""
    found = []
    for revision in result.revisions:
        for change in revision.changes:
            if change.effect == "delete" and change.container and live.holds_live_data(change.container):
                documents = count(change.container)
                if documents:
                    found.append((change.container, documents))
    return found


def _run(
    config: Config,
    scripts: ScriptSet,
    direction: Direction,
    where: Mapping[str, Any],
    dry_run: bool,
    confirm: Confirm | None,
    on_progress: ProgressCallback | None,
    on_wait: WaitCallback | None,
    backup: bool,
) -> RunResult | PlanResult:
    name = config.database_name
    with connected(config) as client:
        database = client.get_database_client(name)
        history = HistoryStore(database, config.history_container)
        snapshot = history.snapshot()  # its container answers for the database too: no extra read when it exists
        exists = snapshot.exists or database_exists(client, name)
        if not exists and (direction == "down" or not (dry_run or config.create_database)):
            if direction == "down":
                raise missing(
                    config, hint="nothing was created and there is nothing to revert: check the name (--database, "
                    "COSMOS_DATABASE or database in [tool.cosmigrate])",
                )  # fmt: skip
            raise missing(config, creatable=True)
        evaluation = evaluate(scripts, snapshot)
        refuse(evaluation, scripts, direction)
        planned = _scripts_to_run(scripts, evaluation, direction, where)
        check_arguments(config.x, planned, scripts)
        if not planned:
            if dry_run:
                return _plan_result(config, direction, where, scripts, evaluation, None, exists)
            return RunResult(name, direction, [], evaluation.current, scripts.graph.head)
        result, live = _plan(planned, direction, database if exists else None, config)
        if dry_run:
            doomed = destructive(result, live, _counting(database)) if exists else []
            revisions = {script.revision: script.description for script in planned}
            resumes = saved_steps(config, history).of_revisions(revisions) if snapshot.exists else {}
            return _plan_result(
                config, direction, where, scripts, evaluation, result, exists, doomed, resumes, throughput_now(live)
            )
        if direction == "down":
            _ask_before_dropping(result, live, database, confirm)
        database = open_for_up(client, config) if direction == "up" else database
        history.ensure(plane_for(config).create_container)
        lease = Lease(history, ttl=config.lock_ttl, command=direction)
        with lease_held(lease, config, on_wait):
            seen, seen_planned = snapshot, [script.revision for script in planned]
            snapshot = history.snapshot()
            evaluation = evaluate(scripts, snapshot, own_lease=lease.lease_id)
            refuse(evaluation, scripts, direction)
            planned = _scripts_to_run(scripts, evaluation, direction, where)
            if not planned:  # a deploy that waited for the lock finds the work done
                return RunResult(name, direction, [], evaluation.current, scripts.graph.head)
            if _records(snapshot) != _records(seen) or [s.revision for s in planned] != seen_planned:
                # someone else ran meanwhile: plan again on what they left
                result, _ = _plan(planned, direction, database, config)
            _refuse_blocked(result)

            def make_op(script: Script, before_effect: Callable[[], None]) -> Operations:
                executor = CosmosExecutor(
                    database,
                    implementation=plane_for(config).implementation,
                    extra=plane_for(config).extra,
                    index_timeout=config.index_timeout,
                    on_progress=on_progress,
                    data=RunData(
                        config,
                        script.revision,
                        history,
                        direction=direction,
                        description=script.description,
                        should_continue=lease.check,
                        backup=backup,
                    ),
                    before_effect=before_effect,
                )
                return Operations(
                    executor,
                    x=config.x,
                    arguments=script.arguments,
                    script=script.path.name,
                    revision=script.revision,
                    history_container=config.history_container,
                )

            steps_saved = saved_steps(config, history)
            runner = Runner(
                lease,
                make_op,
                config.redact,
                config.x,
                forget_data=steps_saved.forget,
                saved_data=steps_saved.revisions(),
                describe_saved=steps_saved.resuming,
            )
            steps = runner.run(planned, direction, snapshot.records)
    current: str | None = planned[-1].revision
    if direction == "down":
        below = scripts.graph.resolve(planned[-1].revision) - 1
        current = scripts.graph.order[below - 1].revision if below > 0 else None
    return RunResult(name, direction, steps, current, scripts.graph.head)


def throughput_now(live: DatabaseState) -> dict[str, dict[str, int] | None]:
    """The live throughput: the database's shared one (key ``""``, when it has one) and each container's own
    (None: it shares the database's), as ``plan`` shows it before the changes."""
    now: dict[str, dict[str, int] | None] = {}
    if live.database_throughput:
        now[""] = dict(live.database_throughput)
    for definition in live:
        now[definition.id] = definition.throughput
    return now


def _records(snapshot: Snapshot) -> dict[str, Any]:
    return {revision: record.to_document() for revision, record in snapshot.records.items()}


def _counting(database: DatabaseProxy) -> Callable[[str], int]:
    """Documents in a container now (one count query)."""
    count = counter(database)
    return lambda container: count(container, "true", [])


def _ask_before_dropping(result: Plan, live: DatabaseState, database: DatabaseProxy, confirm: Confirm | None) -> None:
    doomed = destructive(result, live, _counting(database))
    if not doomed:
        return
    listed = holding(doomed)
    question = f"This down deletes containers holding documents: {listed}. Go on?"
    if confirm is None or not confirm(question):
        raise UsageError(
            f"down would delete containers holding documents: {listed}; nothing was changed: run it on a terminal "
            "to answer, or with --yes"
        )


def _plan_result(
    config: Config,
    direction: Direction,
    where: Mapping[str, Any],
    scripts: ScriptSet,
    evaluation: Evaluation,
    result: Plan | None,
    exists: bool,
    doomed: list[tuple[str, int]] | None = None,
    resumes: dict[str, list[str]] | None = None,
    throughput: dict[str, dict[str, int] | None] | None = None,
) -> PlanResult:
    block = result.first_block if result else None
    refused = None
    if block is not None and (block.refused or block.conflict):
        refused = f"revision {block.revision} ({block.file}): {block.refused or block.conflict}"
    return PlanResult(
        database=config.database_name,
        direction=direction,
        current=evaluation.current,
        target=where.get("target"),
        head=scripts.graph.head,
        exact=result.exact if result else True,
        revisions=[r.to_dict() for r in result.revisions] if result else [],
        refused=refused,
        database_exists=exists,
        deletes_documents=dict(doomed or []),
        resumes=resumes or {},
        throughput=throughput or {},
    )
