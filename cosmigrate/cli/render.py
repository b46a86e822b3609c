"""Rendering results as text for people (``--json`` gives the same results as data)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from cosmigrate.model.container import ContainerDef
from cosmigrate.model.documents import holding
from cosmigrate.model.properties.throughput import describe_throughput
from cosmigrate.ops.change import MARKS, ThroughputChange, change_lines

if TYPE_CHECKING:  # the results are data; importing app at run time would load every verb for rendering
    from cosmigrate.app.results import (
        CheckResult,
        HistoryResult,
        PlanResult,
        RepairResult,
        RunResult,
        StatusResult,
        VerifyResult,
    )


def operation_lines(operation: dict[str, Any], verbose: bool = True) -> list[str]:
    """An operation of a plan or a run (its JSON, as ``--json`` gives it) in words: its mark and note, and
    (verbose) the whole definition it creates or what it changes, in Cosmos DB terms (the property registry's)."""
    detail = operation.get("detail") or {}
    lines = [f"{MARKS.get(operation['effect'], '*')} {operation['note']}"]
    if operation["effect"] == "check" and "found" in detail:
        lines[0] += f" (found {detail['found']}{', forced' if detail.get('forced') else ''})"
    if not verbose:
        return lines
    if operation["effect"] == "create" and "definition" in operation:
        lines += ["    " + line for line in ContainerDef.from_dict(operation["definition"]).lines()]
    elif operation["effect"] == "update" and "before" in operation:
        before, after = ContainerDef.from_dict(operation["before"]), ContainerDef.from_dict(operation["after"])
        lines += ["    " + line for line in change_lines(before, after, tuple(detail.get("changed") or ()))]
    elif operation["effect"] == "update" and detail.get("throughput"):
        moved = detail["throughput"]
        lines.append("    " + ThroughputChange(moved["scope"], moved["before"], moved["after"]).describe())
    return lines


def plan(result: PlanResult) -> None:
    verb = {"up": "would apply", "down": "would revert"}[result.direction]
    if not result.database_exists:
        click.echo(f"database {result.database} does not exist yet: planned from an empty database")
    if result.throughput:
        now = dict(result.throughput)
        said = [f"database {describe_throughput(now.pop(''))} (shared)"] if "" in now else []
        said += [f"{name} {describe_throughput(value)}" for name, value in sorted(now.items()) if value]
        said += [
            f"{name} the database's" for name, value in sorted(now.items()) if not value and "" in result.throughput
        ]
        click.echo("throughput now: " + ("; ".join(said) if said else "none provisioned"))
    if not result.revisions:
        click.echo(f"nothing to do: database {result.database} is at {result.current or 'base'} (head {result.head})")
        return
    for revision in result.revisions:
        click.echo(f"{verb} {revision['revision']}  {revision['description']}  ({revision['file']})")
        for operation in revision["operations"]:
            for line in operation_lines(operation):
                click.echo(f"    {line}")
        if revision["stopped"]:
            click.echo(f"    … the rest of {revision['file']} is data work: not simulated")
        for resumed in result.resumes.get(revision["revision"], []):
            click.echo(f"    saved from an earlier run: its {resumed} (repair --restart-data starts it over)")
        if revision["uncertain"]:
            click.echo("    (planned after data work that could not be simulated: a best guess)")
        for key in ("refused", "conflict"):
            if revision[key]:
                click.echo(f"    ! {key}: {revision[key]}")
        if revision["fault"]:
            click.echo(f"    ! {revision['fault']['message']}")
    if result.deletes_documents:
        listed = holding(result.deletes_documents.items())
        asks = "; down asks first (--yes)" if result.direction == "down" else ""
        click.echo(
            f"deletes containers holding documents now: {listed}; each is exported to the backup folder before it "
            f"is deleted (--no-backup skips that){asks}"
        )


def run(result: RunResult) -> None:
    if not result.steps:
        click.echo(f"nothing to do: database {result.database} is at {result.current or 'base'} (head {result.head})")
        return
    steps(result.steps)
    click.echo(f"database {result.database} is at {result.current or 'base'} (head {result.head})")


def done_before(done: list[Any]) -> None:
    """The revisions a run finished before it failed, so that a log shows what changed before the error."""
    done = [step for step in done if hasattr(step, "revision") and hasattr(step, "direction")]
    if done:
        steps(done)
        click.echo(f"{len(done)} revision{'s' if len(done) != 1 else ''} done before the error")


def _count(n: Any) -> str:
    return f"{n:,}" if isinstance(n, int) else str(n)


def data_totals_line(operation: dict[str, Any]) -> str | None:
    """A data step's counts in one line (``transform orders: 20,000 read, 19,998 written, 20,412 RU, 2
    dead-lettered → <file>``), the dead letters always named with their file when there are any; None for other
    steps."""
    detail = operation.get("detail") or {}
    totals = detail.get("totals")
    if not totals:
        return None
    copy = operation.get("kind") == "copy_container"
    what = (
        f"copy {detail.get('source')} → {operation.get('container')}"
        if copy
        else f"transform {operation.get('container')}"
    )
    counts = [f"{_count(totals.get('read', 0))} read", f"{_count(totals.get('written', 0))} written"]
    if totals.get("unchanged"):
        counts.append(f"{_count(totals['unchanged'])} unchanged")
    if totals.get("deleted"):
        counts.append(f"{_count(totals['deleted'])} {'left out' if copy else 'deleted'}")
    if totals.get("retried_412"):
        counts.append(f"{_count(totals['retried_412'])} redone after a concurrent change (412)")
    if totals.get("ru"):
        counts.append(f"{totals['ru']:,.0f} RU")
    line = f"{what}: {', '.join(counts)}"
    if totals.get("dead_lettered"):
        line += f", {_count(totals['dead_lettered'])} dead-lettered → {detail.get('dead_letter') or '(no file)'}"
    return line


def steps(done: list[Any]) -> None:
    for step in done:
        verb = {"up": "applied", "down": "reverted"}[step.direction]
        resumed = " (resumed after an interruption)" if step.resumed else ""
        click.echo(f"{verb} {step.revision}  {step.description} ({step.duration_s:.2f}s){resumed}")
        for operation in step.operations:
            for line in operation_lines(operation, verbose=False):
                click.echo(f"    {line}")
            backup = (operation.get("detail") or {}).get("backup")
            if backup:
                count = backup.get("documents", "?")
                documents = f"{count} document{'s' if count != 1 else ''}"
                where = "none (--no-backup)" if backup.get("skipped") else backup.get("path")
                click.echo(f"      backup: {where} ({documents})")
            totals = data_totals_line(operation)
            if totals:
                click.echo(f"      {totals}")


def status(result: StatusResult) -> None:
    click.echo(f"database {result.database}: current {result.current or 'base'}, head {result.head or '-'}")
    changed = {view.revision: view for view in result.changed}
    click.echo(f"{'REVISION':<10}{'STATE':<13}{'APPLIED AT':<26}DESCRIPTION")
    for view in result.revisions:
        state = view.state
        if view.state in ("failed", "interrupted") and view.direction:
            state = f"{view.state[:6]} {view.direction}" if view.state == "failed" else f"intr. {view.direction}"
        if view.revision in changed:
            state = "changed"
        click.echo(f"{view.revision:<10}{state:<13}{view.applied_at or '':<26}{view.description}")
    for view in [*result.revisions, *result.changed]:
        if view.state in ("failed", "interrupted", "missing", "changed", "forgotten"):
            click.echo(f"  {view.revision}: {view.error}")
            if view.next_step:
                click.echo(f"    next: {view.next_step}")
        elif view.state == "interrupted" and view.next_step:
            click.echo(f"  {view.revision}: next: {view.next_step}")
        if view.note and view.revision not in changed:
            click.echo(f"  {view.revision}: note: {view.note}")
    if result.lock and not result.lock["expired"]:
        click.echo(f"locked by {result.lock['description']}")
        if result.pending:
            click.echo("a run is under way: revisions shown pending may be running now; wait for it to end")
    elif result.lock:
        click.echo(f"an expired lock is left by {result.lock['description']}; the next run takes it over")
    if result.refusal:
        click.echo(f"up would refuse: {result.refusal}")


EMPTY: tuple[Any, ...] = (None, "", [], {})


def _words(value: Any, nested: bool = False) -> str:
    """A detail value in words, never a Python repr: a mapping's fields as ``(key=value …)`` (empty ones left
    out), a checksum shortened, a text with spaces quoted inside a mapping."""
    if isinstance(value, dict):
        return "(" + " ".join(f"{k}={_words(v, True)}" for k, v in value.items() if v not in EMPTY) + ")"
    if isinstance(value, list | tuple):
        return ",".join(_words(v, True) for v in value)
    if isinstance(value, str):
        # repair records what a revision was as "<state> going <direction>: <error>", the error None for a run
        # killed outright (its record still says running, the lease expired)
        text: str = value.removesuffix(": None")
        if text.startswith("sha256:") and len(text) > 19:
            return text[:19] + "…"
        return f'"{text}"' if nested and " " in text else text
    return str(value)


def history(result: HistoryResult) -> None:
    if not result.events:
        click.echo(f"no history in database {result.database}")
    for event in result.events:
        detail = event.get("detail") or {}
        bits = []
        for key in ("error", "reason", "was", "now", "duration_s", "container", "documents", "holder", "target"):
            if key in detail and detail[key] not in EMPTY:
                bits.append(f"{key}={_words(detail[key])}")
        for backup in detail.get("backups") or []:
            bits.append(f"backup={'none (--no-backup)' if backup.get('skipped') else backup.get('path')}")
        for totals in detail.get("totals") or []:
            if isinstance(totals, dict) and totals.get("dead_lettered"):
                # a record written before the file was kept names the container only
                where = f"→ {totals['dead_letter']}" if totals.get("dead_letter") else f"in {totals.get('container')}"
                bits.append(f"dead_lettered={_count(totals['dead_lettered'])} {where}")
        if event.get("args"):
            bits.append("args=" + ",".join(f"{k}={v}" for k, v in event["args"].items()))
        what = f"{event['event']} {event.get('direction') or ''}".strip()
        revision = event.get("revision") or "-"
        line = f"{event['at']:<25} {what:<16} {revision:<8} {event['by']:<24} v{event['tool_version']}  " + " ".join(
            bits
        )
        click.echo(line.rstrip())


def verify(result: VerifyResult) -> None:
    if result.locked_by:
        click.echo(f"not verified: a deploy holds the migration lock ({result.locked_by}); run verify when it is done")
        return
    for container in result.containers:
        click.echo(f"{container.state:<10} {container.container}")
        for difference in container.differences:
            click.echo(f"    {difference['message']}")
    for note in result.notes:
        click.echo(f"note: {note}")
    drift = [c.container for c in result.containers if c.state in ("drift", "missing")]
    if result.clean:
        click.echo(
            f"no drift: database {result.database} matches the migrations applied up to {result.current or 'base'}"
        )
    else:
        click.echo(f"drift in {', '.join(drift) or 'unmanaged containers'}")


def repair(result: RepairResult) -> None:
    if result.nothing:
        click.echo("nothing to repair")
    for rev in result.to_pending:
        click.echo(f"{rev}: pending again (cosmigrate up runs it)")
        _data_steps(result, rev)
    for rev in result.to_applied:
        click.echo(f"{rev}: applied again (fix its downgrade, then cosmigrate down)")
        _data_steps(result, rev)
    for rev in result.restarted:
        if rev not in result.to_pending + result.to_applied:
            click.echo(f"{rev}: pending")
            _data_steps(result, rev)
    for rev in result.restored:
        click.echo(f"{rev}: applied again, without running it (its script is back)")
    for rev in result.accepted:
        click.echo(f"{rev}: the current script is accepted as applied")
    for rev in result.forgotten:
        click.echo(f"{rev}: record of a missing script forgotten")
    for rev in result.recorded:
        click.echo(f"{rev}: the helpers it imports are recorded as they are now (an edit to them now shows)")
    if result.sum_hint:
        click.echo(f"next: {result.sum_hint}")


def _data_steps(result: RepairResult, revision: str) -> None:
    for said in result.resumes.get(revision, []):
        click.echo(f"  when it runs again, its {said}")
    if revision in result.restarted:
        click.echo("  its data steps start over (their checkpoints were dropped)")


def check(result: CheckResult) -> None:
    for problem in result.problems:
        where = f"{problem['file']}:{problem['line']}" if problem.get("line") else problem["file"]
        click.echo(f"{where}: {problem['message']}")
    for finding in result.findings:
        level = "error" if result.strict else "warning"
        click.echo(f"{finding['file']}: {level} {finding['code']} ({finding['name']}): {finding['message']}")
    for query in result.queries:
        click.echo(f"queries.sql: {query['level']} {query['query']} ({query['container']}): {query['message']}")
    if result.findings and not result.strict:
        click.echo('  (silence one with lint_ignore = {"CMxxx": "why"} in the script; --strict fails on them)')
    if result.ok:
        count = len(result.revisions)
        click.echo(f"ok: {count} revision{'s' if count != 1 else ''} in one chain, head {result.head}")
    elif result.problems:
        click.echo(f"{len(result.problems)} problem{'s' if len(result.problems) != 1 else ''} found", err=True)
    elif any(q["level"] == "error" for q in result.queries):
        broken = len({q["query"] for q in result.queries if q["level"] == "error"})
        click.echo(f"{broken} quer{'ies' if broken != 1 else 'y'} the service would refuse", err=True)
    else:
        found = len(result.findings)
        click.echo(f"{found} lint finding{'s' if found != 1 else ''} (--strict)", err=True)
