"""The ``cosmigrate`` command line: parses flags, calls the verbs in :mod:`cosmigrate.app`, renders results.

Global options go before or after the verb (``cosmigrate --database x up`` = ``cosmigrate up --database x``);
given in both places, the one after the verb wins. Exit codes: 0 success, 1 a migration or the database
failed, 2 usage or configuration. Errors are one line on stderr (``--json``: a JSON object on stdout with the
error and the steps done before it); a traceback only with ``--debug``. Secrets are redacted from everything
printed. Each verb's module is imported only when it runs: ``--help``, ``check`` and ``new`` never load the
Cosmos DB client.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from cosmigrate import __version__, logs
from cosmigrate.config import EMULATOR_KEY, Config, load_config, parse_x_args, redact
from cosmigrate.errors import CosmigrateError, UsageError

if TYPE_CHECKING:  # results are imported by the verbs when they run, not at start-up
    from cosmigrate.app.results import (
        AdoptResult,
        ExportResult,
        GenerateResult,
        ImportResult,
        InitResult,
        PlanResult,
        Result,
        RevisionsResult,
        ShowResult,
    )

_secrets: list[str] = [EMULATOR_KEY]
_state: dict[str, Any] = {"json": False}


def _redact(text: str) -> str:
    return redact(text, tuple(_secrets))


# -- options ------------------------------------------------------------------------------------------------

_CONFIG_FLAGS = (
    "endpoint", "key", "connection_string", "database", "migrations", "history_container", "insecure",
    "lock_ttl", "lock_timeout", "index_timeout", "outage_timeout", "create_database", "database_throughput",
    "backup_dir", "auth", "subscription", "resource_group", "account", "arm_endpoint",
)  # fmt: skip


def _global_option_list() -> list[Callable[[Any], Any]]:
    return [
        click.option("--endpoint", help="Account URL [COSMOS_ENDPOINT; default https://localhost:8081]"),
        click.option("--key", help="Account key [COSMOS_KEY; default: the emulator key, local endpoints only]"),
        click.option("--connection-string", help="AccountEndpoint=…;AccountKey=…; [COSMOS_CONNECTION_STRING]"),
        click.option(
            "--auth",
            type=click.Choice(["key", "entra"]),
            default=None,
            help="Sign in with the account key or Microsoft Entra ID (DefaultAzureCredential) [COSMIGRATE_AUTH; key]",
        ),
        click.option(
            "--subscription", help="Azure subscription of the account, for auth entra [AZURE_SUBSCRIPTION_ID]"
        ),
        click.option("--resource-group", help="Resource group of the account, for auth entra [AZURE_RESOURCE_GROUP]"),
        click.option("--account", help="Account name for ARM [COSMIGRATE_ACCOUNT; default: from the endpoint]"),
        click.option(
            "--arm-endpoint", help="Azure Resource Manager URL [COSMIGRATE_ARM_ENDPOINT; management.azure.com]"
        ),
        click.option("--database", help="Database id [COSMOS_DATABASE; no default]"),
        click.option("--migrations", help="Migrations folder [COSMIGRATE_MIGRATIONS; default ./migrations]"),
        click.option("--history-container", help="History container [COSMIGRATE_HISTORY_CONTAINER]"),
        click.option("--insecure", is_flag=True, default=None, help="Skip TLS verification [COSMIGRATE_INSECURE]"),
        click.option("--lock-ttl", help="Lease length in seconds [COSMIGRATE_LOCK_TTL; default 60]"),
        click.option("--lock-timeout", help="Seconds to wait for the lock [COSMIGRATE_LOCK_TIMEOUT; default 300]"),
        click.option("--index-timeout", help="Seconds to wait for a reindex [COSMIGRATE_INDEX_TIMEOUT; 3600]"),
        click.option(
            "--outage-timeout",
            help="Seconds to keep retrying a database that does not answer [COSMIGRATE_OUTAGE_TIMEOUT; 60]",
        ),
        click.option("--backup-dir", help="Where backups before a drop go [COSMIGRATE_BACKUP_DIR; ./backups]"),
        click.option("--json", "as_json", is_flag=True, default=None, help="Print the result (or the error) as JSON."),
        click.option(
            "--log-format", type=click.Choice(["text", "json"]), default=None, help="Logs on stderr: text or json."
        ),
        click.option("--debug", is_flag=True, default=None, help="Debug logs and tracebacks."),
    ]


def global_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_global_option_list()):
        func = option(func)
    return func


def command_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The global options, also after the verb; merged with those given before it into one :class:`Config`."""
    func = global_options(func)

    @functools.wraps(func)
    @click.pass_context
    def wrapper(ctx: click.Context, /, **kwargs: Any) -> Any:
        given = dict((ctx.obj or {}).get("globals", {}))
        for name in [*_CONFIG_FLAGS, "as_json", "log_format", "debug"]:
            value = kwargs.pop(name, None)
            if value not in (None, ""):
                given[name] = value
        x_pairs = kwargs.pop("x", ())
        _state["json"] = bool(given.get("as_json"))
        for name in ("key", "connection_string"):
            if given.get(name):
                _secrets.append(str(given[name]))
        for variable in ("COSMOS_KEY", "COSMOS_CONNECTION_STRING"):
            if os.environ.get(variable):
                _secrets.append(os.environ[variable])
        logs.configure(given.get("log_format") or "text", bool(given.get("debug")), _redact)
        flags = {name: given.get(name) for name in _CONFIG_FLAGS}
        if "create_database" in kwargs:
            flags["create_database"] = kwargs.pop("create_database") or None
        if "database_throughput" in kwargs:
            flags["database_throughput"] = kwargs.pop("database_throughput")
        config = load_config(flags, x=parse_x_args(x_pairs))
        _secrets.append(config.key)
        return ctx.invoke(func, config=config, as_json=bool(given.get("as_json")), **kwargs)

    return wrapper


x_option = click.option(
    "-x", "x", multiple=True, metavar="KEY=VALUE", help="Argument for the scripts (declared in their arguments)."
)
yes_option = click.option("--yes", "-y", is_flag=True, help="Do not ask; assume yes.")


def _emit(result: Result, as_json: bool, render: Callable[[Any], None]) -> None:
    if as_json:
        click.echo(_redact(json.dumps(result.to_dict(), indent=2, default=str)))
    else:
        render(result)


def _confirm(yes: bool) -> Callable[[str], bool]:
    def ask(question: str) -> bool:
        if yes:
            return True
        lines = question.strip().splitlines() or [question]
        for line in lines[:-1]:  # what would be done, diffs included: also shown when refusing, for a CI log
            click.echo(_redact(line), err=True)
        if not sys.stdin.isatty():
            shown = "read what it would do above, then " if len(lines) > 1 else ""
            raise UsageError(f'no terminal to answer "{lines[-1]}"; nothing was changed: {shown}run again with --yes')
        return click.confirm(lines[-1], default=False, err=True)

    return ask


def _on_wait(holder: Any) -> None:
    logs.get().info("waiting for the migration lock", holder=holder.describe())


# -- the commands ---------------------------------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="cosmigrate")
@global_options
@click.pass_context
def cli(ctx: click.Context, /, **options: Any) -> None:
    """Schema and data migrations for Azure Cosmos DB (NoSQL API).

    Options shown here may also follow the command: cosmigrate --database app up = cosmigrate up --database app.
    """
    ctx.obj = {"globals": {k: v for k, v in options.items() if v not in (None, "")}}


@cli.command()
@click.option("--to", "target", default="head", show_default=True, help="Revision to stop at.")
@click.option("--dry-run", is_flag=True, help="Show what would run and do, change nothing.")
@click.option(
    "--create-database",
    is_flag=True,
    default=None,
    help="Create the database if it does not exist [COSMIGRATE_CREATE_DATABASE].",
)
@click.option(
    "--database-throughput",
    metavar="RU|autoscale:MAX",
    default=None,
    help="Shared throughput of a database --create-database creates: 400 or autoscale:4000 "
    "[COSMIGRATE_DATABASE_THROUGHPUT].",
)
@click.option("--no-backup", is_flag=True, help="Drop containers holding documents without exporting them first.")
@x_option
@command_options
def up(config: Config, target: str, dry_run: bool, no_backup: bool, as_json: bool) -> None:
    """Apply pending revisions (up to --to)."""
    from cosmigrate.app import deploy
    from cosmigrate.cli.progress import IndexProgress

    result = deploy.up(
        config, target, dry_run=dry_run, on_progress=IndexProgress(), on_wait=_on_wait, backup=not no_backup
    )
    _finish_run(result, as_json)


@cli.command()
@click.option("--to", "target", help="Revision to go back to, or 'base' for none.")
@click.option("--steps", type=int, help="How many revisions to undo.")
@click.option("--dry-run", is_flag=True, help="Show what would run and do, change nothing.")
@click.option("--no-backup", is_flag=True, help="Drop containers holding documents without exporting them first.")
@yes_option
@x_option
@command_options
def down(
    config: Config, target: str | None, steps: int | None, dry_run: bool, no_backup: bool, yes: bool, as_json: bool
) -> None:
    """Undo the last revision, --steps N of them, or down to --to (asks before dropping data)."""
    from cosmigrate.app import deploy
    from cosmigrate.cli.progress import IndexProgress

    result = deploy.down(
        config, target, steps, dry_run=dry_run, confirm=_confirm(yes), on_progress=IndexProgress(), on_wait=_on_wait,
        backup=not no_backup,
    )  # fmt: skip
    _finish_run(result, as_json)


@cli.command()
@click.option("--to", "target", default=None, help="Revision to plan to (default: head; with --down, one step).")
@click.option("--down", "going_down", is_flag=True, help="Plan a downgrade instead.")
@click.option("--steps", type=int, help="With --down: how many revisions.")
@click.option("--schema", is_flag=True, help="Show how migrations/schema.toml (or the live database) differs instead.")
@x_option
@command_options
def plan(config: Config, target: str | None, going_down: bool, steps: int | None, schema: bool, as_json: bool) -> None:
    """Show, per revision, what each operation would do, with full definitions; writes nothing."""
    from cosmigrate.app import deploy

    if schema:
        from cosmigrate.app.generate import schema_plan

        _emit(schema_plan(config), as_json, _render_generated)
        return
    if going_down:
        result: Any = deploy.down(config, target, steps, dry_run=True)
    else:
        result = deploy.up(config, target or "head", dry_run=True)
    _emit_plan(result, as_json)


def _emit_plan(result: PlanResult, as_json: bool) -> None:
    """A plan; one that refuses exits 1, with ``--json`` as one object: the plan and the error's keys."""
    from cosmigrate.cli import render

    error = result.error()
    if error is None:
        _emit(result, as_json, render.plan)
        return
    if as_json:
        body = {**result.to_dict(), "error": error.to_dict(), "steps": []}
        click.echo(_redact(json.dumps(body, indent=2, default=str)))
        _state["json"] = False  # said: the error goes to stderr only, not as a second object
    else:
        render.plan(result)
    raise error


def _finish_run(result: Any, as_json: bool) -> None:
    from cosmigrate.app.results import PlanResult
    from cosmigrate.cli import render

    if isinstance(result, PlanResult):
        _emit_plan(result, as_json)
        return
    _emit(result, as_json, render.run)


@cli.command()
@command_options
def status(config: Config, as_json: bool) -> None:
    """Where every revision stands and the one safe next step; exit 1 exactly when up would refuse."""
    from cosmigrate.app import inspect
    from cosmigrate.cli import render

    result = inspect.status(config)
    _emit(result, as_json, render.status)
    if result.blocked:
        sys.exit(1)


@cli.command()
@command_options
def current(config: Config, as_json: bool) -> None:
    """Print the revision the database is at (base when none is applied)."""
    from cosmigrate.app import inspect

    def render(r: RevisionsResult) -> None:
        head = f" (head {r.heads[0]})" if r.heads and r.heads[0] != r.current else " (head)" if r.heads else ""
        click.echo(f"{r.current or 'base'}{head}")

    _emit(inspect.current(config), as_json, render)


@cli.command()
@command_options
def heads(config: Config, as_json: bool) -> None:
    """Print the head revision of the migrations folder (no database needed)."""
    from cosmigrate.app import inspect

    def render(r: RevisionsResult) -> None:
        click.echo("\n".join(f"{h} (head)" for h in r.heads) or "no revisions yet")

    _emit(inspect.heads(config), as_json, render)


@cli.command()
@click.argument("revision")
@command_options
def show(config: Config, revision: str, as_json: bool) -> None:
    """Show one revision: its file, what it declares, its state in the database and its events."""
    from cosmigrate.app import inspect

    def render(r: ShowResult) -> None:
        click.echo(f"revision {r.revision}  {r.description}")
        click.echo(f"  file          {r.file}")
        click.echo(f"  follows       {r.down_revision or 'base'}")
        click.echo(f"  idempotent    {'yes' if r.idempotent else 'no'}")
        click.echo(f"  arguments     {', '.join(f'{k} ({v})' for k, v in r.arguments.items()) or 'none'}")
        click.echo(f"  helpers       {', '.join(r.helpers) or 'none'}")
        click.echo(f"  checksum      {r.checksum}")
        if r.state is None:
            where = f"database {r.database} does not exist" if r.database else "no database configured"
            click.echo(f"  state         unknown ({where})")
        else:
            click.echo(f"  state         {r.state}{f' since {r.applied_at}' if r.applied_at else ''} in {r.database}")
        for event in r.events:
            click.echo(f"  {event['at']:<25} {event['event']} {event.get('direction') or ''}".rstrip())

    _emit(inspect.show(config, revision), as_json, render)


@cli.command()
@command_options
def history(config: Config, as_json: bool) -> None:
    """The log: every revision applied, reverted, failed, interrupted, repaired, stamped, forced; unlocks."""
    from cosmigrate.app import inspect
    from cosmigrate.cli import render

    _emit(inspect.history(config), as_json, render.history)


@cli.command()
@click.option("--strict", is_flag=True, help="Count containers no migration declares as drift too.")
@command_options
def verify(config: Config, strict: bool, as_json: bool) -> None:
    """Compare the live containers with what the applied migrations declare (drift); exit 1 on drift."""
    from cosmigrate.app import inspect
    from cosmigrate.cli import render

    result = inspect.verify(config, strict)
    _emit(result, as_json, render.verify)
    if not result.clean:
        sys.exit(1)


@cli.command()
@yes_option
@command_options
def unlock(config: Config, yes: bool, as_json: bool) -> None:
    """Release the migration lock left by a dead run (shows the holder, asks first)."""
    from cosmigrate.app import maintain

    result = maintain.unlock(config, _confirm(yes))
    _emit(
        result,
        as_json,
        lambda r: click.echo(f"released the lock held by {r.holder}" if r.released else "the lock is not held"),
    )


@cli.command()
@yes_option
@click.option(
    "--accept", multiple=True, metavar="REV", help="Accept this changed revision even though its description changed."
)
@click.option(
    "--restart-data",
    is_flag=True,
    help="The repaired revisions' data steps start over instead of resuming from their checkpoints.",
)
@command_options
def repair(config: Config, yes: bool, accept: tuple[str, ...], restart_data: bool, as_json: bool) -> None:
    """Put failed, interrupted, changed or missing revisions back on a safe path (shows what, asks first)."""
    from cosmigrate.app import maintain
    from cosmigrate.cli import render

    result = maintain.repair(config, _confirm(yes), accept, on_wait=_on_wait, restart_data=restart_data)
    _emit(result, as_json, render.repair)


@cli.command()
@click.option("--container", "containers", multiple=True, metavar="NAME", help="A container to export (repeatable).")
@click.option("--out", type=click.Path(file_okay=False), help="Folder to write (default: backup dir/database/time).")
@click.option("--gzip", is_flag=True, help="Compress the documents (documents.jsonl.gz).")
@command_options
def export(config: Config, containers: tuple[str, ...], out: str | None, gzip: bool, as_json: bool) -> None:
    """Back up containers to files: definition, documents (JSON Lines), a manifest with counts and sha256s."""
    from pathlib import Path

    from cosmigrate.app import backups

    result = backups.export(config, list(containers), Path(out) if out else None, gzip)

    def render(r: ExportResult) -> None:
        for name, count in r.documents.items():
            click.echo(f"exported {name}: {count} documents")
        click.echo(f"backup in {r.folder} (restore: cosmigrate import {r.folder})")

    _emit(result, as_json, render)


@cli.command(name="import")
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("--container", "containers", multiple=True, metavar="NAME", help="A container to import (repeatable).")
@click.option("--create-database", is_flag=True, default=None, help="Create the database if it does not exist.")
@click.option(
    "--adopt-live", is_flag=True, help="Keep an existing container's TTL, indexing and throughput where they differ."
)
@click.option(
    "--apply-definition",
    is_flag=True,
    help="Bring an existing container to the backup's TTL, indexing and throughput before importing.",
)
@command_options
def import_(
    config: Config, folder: str, containers: tuple[str, ...], adopt_live: bool, apply_definition: bool, as_json: bool
) -> None:
    """Restore a backup: missing containers from their saved definitions, documents upserted (run again freely)."""
    from pathlib import Path

    from cosmigrate.app import backups
    from cosmigrate.cli.progress import IndexProgress

    if adopt_live and apply_definition:
        raise UsageError("import: --adopt-live and --apply-definition exclude each other; give one of them")
    keep = "live" if adopt_live else "backup" if apply_definition else None
    result = backups.import_(
        config, Path(folder), list(containers), on_wait=_on_wait, keep=keep, on_progress=IndexProgress()
    )

    def render(r: ImportResult) -> None:
        for note in r.applied:
            click.echo(f"changed: {note}")
        for name, count in r.documents.items():
            created = " (container created)" if name in r.created else ""
            click.echo(f"imported {name}: {count} documents{created}")
        if r.hint:
            click.echo(f"next: {r.hint}")

    _emit(result, as_json, render)


@cli.command()
@click.argument("target")
@yes_option
@command_options
def stamp(config: Config, target: str, yes: bool, as_json: bool) -> None:
    """Record revisions up to TARGET as applied without running them ('base' clears; asks before forgetting)."""
    from cosmigrate.app import maintain

    result = maintain.stamp(config, target, _confirm(yes), on_wait=_on_wait)
    _emit(
        result,
        as_json,
        lambda r: click.echo(f"stamped {r.target}: {_stamp_changes(r.stamped, r.removed)}"),
    )


def _stamp_changes(stamped: list[str], removed: list[str]) -> str:
    said = [f"recorded {', '.join(stamped)} as applied"] if stamped else []
    said += [f"{', '.join(removed)} no longer recorded as applied"] if removed else []
    return "; ".join(said) or "nothing changed (the history already said so)"


@cli.command()
@click.option("--online", is_flag=True, help="Also compare with the database's history (reads only).")
@click.option("--strict", is_flag=True, help="Fail on migration lint findings too (not only on problems).")
@command_options
def check(config: Config, online: bool, strict: bool, as_json: bool) -> None:
    """For CI: every problem of the migrations folder, one line each (exit 1 when there are any), and the
    migration lint's findings (CM codes; silence one with lint_ignore in the script)."""
    from cosmigrate.app import offline
    from cosmigrate.cli import render

    result = offline.check(config, online, strict)
    _emit(result, as_json, render.check)
    if not result.ok:
        sys.exit(1)


@cli.command()
@click.argument("folder", default=".", type=click.Path(file_okay=False))
@click.option("--database", "database_name", help="Database id to write into [tool.cosmigrate].")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def init(ctx: click.Context, /, folder: str, database_name: str | None, as_json: bool) -> None:
    """Set up a project: migrations/, [tool.cosmigrate] in pyproject.toml, a tests/conftest.py for the plugin."""
    from pathlib import Path

    from cosmigrate.app import offline

    database_name = database_name or (ctx.obj or {}).get("globals", {}).get("database")  # cosmigrate --database x init
    result = offline.init(Path(folder), database_name)

    def render(r: InitResult) -> None:
        for path in r.created:
            click.echo(f"created {path}")
        for path in r.kept:
            click.echo(f"kept    {path} (already there)")
        click.echo('next: cosmigrate new "what the migration does"')

    _emit(result, as_json or bool(_state["json"]), render)


@cli.command()
@click.option(
    "--exclude", "exclude", multiple=True, metavar="NAME", help="A container to leave unmanaged (repeatable)."
)
@click.option("--message", default=None, help="The baseline's description.")
@command_options
def adopt(config: Config, exclude: tuple[str, ...], message: str | None, as_json: bool) -> None:
    """Write a baseline migration from the live database, verify it, and record it as applied there."""
    from cosmigrate.app.adopt import adopt as adopt_database

    def render(r: AdoptResult) -> None:
        click.echo(f"wrote {r.file}: {len(r.containers)} containers ({', '.join(r.containers) or 'none'})")
        if r.excluded:
            click.echo(f"left unmanaged: {', '.join(r.excluded)}")
        click.echo(f"recorded {r.revision} as applied in {r.database} (it verified); next: cosmigrate verify")

    _emit(adopt_database(config, list(exclude), message), as_json, render)


@cli.command(name="hash")
@command_options
def hash_(config: Config, as_json: bool) -> None:
    """Rewrite migrations/cosmigrate.sum from the migration files (new does it too)."""
    from cosmigrate.app import offline

    result = offline.write_sum(config)
    _emit(result, as_json, lambda r: click.echo(f"wrote {r.path} ({r.files} files)"))


@cli.command()
@click.argument("message")
@click.option(
    "--autogenerate",
    is_flag=True,
    help="Write the operations that take the migrations to migrations/schema.toml (or to the live database).",
)
@command_options
def new(config: Config, message: str, autogenerate: bool, as_json: bool) -> None:
    """Write the next migration file, chained after the head."""
    from cosmigrate.app import offline

    if not autogenerate:
        made = offline.new(config, message)
        _emit(made, as_json, lambda r: click.echo(f"created {r.path} (revision {r.revision})"))
        return
    from cosmigrate.app.generate import autogenerate as generate

    _emit(generate(config, message), as_json, _render_generated)


def _render_generated(r: GenerateResult) -> None:
    for step in r.steps:
        click.echo(f"  {step['kind']:<11} {step['note']}")
    if r.file:
        click.echo(f"created {r.file} (revision {r.revision}) from {r.source}; review it, then cosmigrate up")
    elif not r.steps:
        click.echo(f"no difference: {r.source} is what the migrations declare")
    for finding in r.findings:
        click.echo(f"warning {finding['code']} ({finding['name']}): {finding['message']}")


# -- running it -------------------------------------------------------------------------------------------------


class Terminated(KeyboardInterrupt):
    """SIGTERM (a cancelled deploy) unwinds like Ctrl-C: the running revision is recorded as interrupted and
    the lock released at once, instead of both waiting for the lease to expire."""


cli.add_command(up, name="upgrade")  # Alembic's names, for those who know them
cli.add_command(down, name="downgrade")


def _terminate(signum: int, _frame: object) -> None:
    raise Terminated(f"stopped by signal {signal.Signals(signum).name}")


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    signal.signal(signal.SIGTERM, _terminate)
    debug = "--debug" in args or os.environ.get("COSMIGRATE_DEBUG") == "1"
    _state["json"] = "--json" in args
    try:
        code = cli.main(args, prog_name="cosmigrate", standalone_mode=False)
    except CosmigrateError as exc:
        if exc.steps and not _state["json"]:
            _done_before(exc.steps)
        _fail(str(exc), exc.exit_code, debug, exc)
    except click.exceptions.Abort:  # click's form of Ctrl-C at a prompt
        _fail(
            "interrupted (Ctrl-C); nothing more was done: run cosmigrate status to see where it stopped",
            1,
            debug,
            kind="Interrupted",
        )
    except click.ClickException as exc:  # the command line itself: an unknown command or option, a bad value
        _fail(exc.format_message() + " (see cosmigrate --help)", 2, debug, kind=UsageError.__name__)
    except KeyboardInterrupt as exc:
        why = str(exc) or "interrupted (Ctrl-C)"
        _fail(f"{why}; run cosmigrate status to see where it stopped", 1, debug, kind="Interrupted")
    except BrokenPipeError:  # whoever read our output went away: what was done is done
        _quiet_stdout()
        sys.exit(0)
    except Exception as exc:
        _fail(f"unexpected {type(exc).__name__}: {exc} (a bug: run with --debug and report it)", 1, debug, kind="Bug")
    _flush_or_quiet()
    sys.exit(code if isinstance(code, int) else 0)


def _done_before(steps: list[Any]) -> None:
    from cosmigrate.cli import render

    try:
        render.done_before(steps)
    except BrokenPipeError:
        _quiet_stdout()


def _quiet_stdout() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _flush_or_quiet() -> None:
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _quiet_stdout()


def _fail(
    message: str, code: int, debug: bool, error: CosmigrateError | None = None, kind: str = "CosmigrateError"
) -> None:
    """Exit ``code`` with ``message`` on stderr; with ``--json`` also the documented object on stdout, the same
    keys for every error (``kind`` is its ``type`` when it is not a :class:`CosmigrateError`)."""
    text = _redact(f"error: {' '.join(message.split())}")
    try:
        if debug:
            click.echo(_redact(traceback.format_exc()), err=True)
        if _state["json"]:
            if error is not None:
                detail, steps = error.to_dict(), error.steps
            else:
                detail = {"type": kind, "message": " ".join(message.split()), "exit_code": code}
                detail.update(revision=None, file=None)
                steps = []
            body: dict[str, Any] = {
                "ok": False,
                "error": detail,
                "steps": [step.to_dict() if hasattr(step, "to_dict") else _as_dict(step) for step in steps],
            }
            click.echo(_redact(json.dumps(body, indent=2, default=str)))
        click.echo(text, err=True)
    except BrokenPipeError:
        _quiet_stdout()
    sys.exit(code)


def _as_dict(value: Any) -> Any:
    from dataclasses import asdict, is_dataclass

    return asdict(value) if is_dataclass(value) and not isinstance(value, type) else value
