"""The ``cosmigrate`` command line: parses flags, calls :mod:`cosmigrate.command`, renders the result.

Exit codes: 0 success, 1 a migration or the database failed, 2 usage or configuration. Errors are one line on
stderr; a traceback only with ``--debug``. Secrets are redacted from everything printed.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

import click
import structlog

from cosmigrate import __version__, logs
from cosmigrate.app import commands as command
from cosmigrate.app import results
from cosmigrate.config import EMULATOR_KEY, Config, load_config, parse_x_args, redact
from cosmigrate.errors import CosmigrateError, UsageError
from cosmigrate.store.lock import Holder

log = structlog.get_logger("cosmigrate")
_secrets: list[str] = [EMULATOR_KEY]


def _redact(text: str) -> str:
    return redact(text, tuple(_secrets))


def common_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Connection and run options, accepted by every command (``cosmigrate up --database x``)."""
    options = [
        click.option("--endpoint", help="Account URL [COSMOS_ENDPOINT; default https://localhost:8081]"),
        click.option("--key", help="Account key [COSMOS_KEY; default: the emulator key, local only]"),
        click.option("--connection-string", help="AccountEndpoint=…;AccountKey=…; [COSMOS_CONNECTION_STRING]"),
        click.option("--database", help="Database id [COSMOS_DATABASE; default castiel]"),
        click.option("--migrations", help="Migrations folder [COSMIGRATE_MIGRATIONS; default ./migrations]"),
        click.option("--history-container", help="History container [COSMIGRATE_HISTORY_CONTAINER]"),
        click.option("--insecure", is_flag=True, default=None, help="Skip TLS verification [COSMIGRATE_INSECURE]"),
        click.option("--lock-ttl", help="Lease length in seconds [COSMIGRATE_LOCK_TTL; default 60]"),
        click.option("--lock-timeout", help="Seconds to wait for the lock [COSMIGRATE_LOCK_TIMEOUT; default 300]"),
        click.option("--index-timeout", help="Seconds to wait for a reindex [COSMIGRATE_INDEX_TIMEOUT; 3600]"),
        click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True),
        click.option("--debug", is_flag=True, help="Debug logs and tracebacks."),
    ]
    for option in reversed(options):
        func = option(func)

    @functools.wraps(func)
    def wrapper(**kwargs: Any) -> Any:
        x_pairs = kwargs.pop("x", ())
        flags = {name: kwargs.pop(name) for name in list(kwargs) if name in _CONFIG_FLAGS}
        log_format, debug = kwargs.pop("log_format"), kwargs.pop("debug")
        for name in ("key", "connection_string"):
            if flags.get(name):
                _secrets.append(str(flags[name]))
        for variable in ("COSMOS_KEY", "COSMOS_CONNECTION_STRING"):
            if os.environ.get(variable):
                _secrets.append(os.environ[variable])
        logs.configure(log_format, debug, _redact)
        config = load_config(flags, x=parse_x_args(x_pairs))
        _secrets.append(config.key)
        return func(config=config, **kwargs)

    return wrapper


_CONFIG_FLAGS = {
    "endpoint",
    "key",
    "connection_string",
    "database",
    "migrations",
    "history_container",
    "insecure",
    "lock_ttl",
    "lock_timeout",
    "index_timeout",
}
x_option = click.option(
    "-x", "x", multiple=True, metavar="KEY=VALUE", help="Argument for the scripts, read as op.x[KEY]."
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
yes_option = click.option("--yes", "-y", is_flag=True, help="Do not ask; assume yes.")


def _emit(result: results.Result, as_json: bool, render: Callable[[Any], None]) -> None:
    if as_json:
        click.echo(_redact(json.dumps(result.to_dict(), indent=2, default=str)))
    else:
        render(result)


def _confirm(yes: bool) -> command.Confirm:
    def ask(question: str) -> bool:
        if yes:
            return True
        if not sys.stdin.isatty():
            raise UsageError(f"{question} needs an answer and there is no terminal: run again with --yes")
        return click.confirm(question, default=False, err=True)

    return ask


def _on_wait(holder: Holder) -> None:
    log.info("waiting for the migration lock", holder=holder.describe())


class _Progress:
    """Index transformation progress: a bar on a terminal, a log line every few seconds otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last_log = 0.0

    def __call__(self, container: str, percent: int) -> None:
        if self.tty:
            bar = "#" * (percent // 4)
            sys.stderr.write(f"\r  reindexing {container} [{bar:<25}] {percent:3d}%")
            if percent >= 100:
                sys.stderr.write("\n")
            sys.stderr.flush()
        elif percent >= 100 or time.monotonic() - self.last_log >= 5:
            self.last_log = time.monotonic()
            log.info("index transformation", container=container, progress=percent)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="cosmigrate")
def cli() -> None:
    """Schema and data migrations for Azure Cosmos DB (NoSQL API)."""


@cli.command()
@click.option("--to", "target", default="head", show_default=True, help="Revision to stop at.")
@click.option("--dry-run", is_flag=True, help="Show what would run and do, change nothing.")
@x_option
@json_option
@common_options
def up(config: Config, target: str, dry_run: bool, as_json: bool) -> None:
    """Apply pending revisions (up to --to)."""
    result = command.up(config, target, dry_run=dry_run, on_progress=_Progress(), on_wait=_on_wait)
    _emit(result, as_json, _render_run)
    if result.refused:
        raise CosmigrateError(result.refused)


@cli.command()
@click.option("--to", "target", help="Revision to go back to, or 'base' for none.")
@click.option("--steps", type=int, help="How many revisions to undo.")
@x_option
@json_option
@common_options
def down(config: Config, target: str | None, steps: int | None, as_json: bool) -> None:
    """Undo the last revision, --steps N of them, or down to --to."""
    result = command.down(config, target, steps, on_progress=_Progress(), on_wait=_on_wait)
    _emit(result, as_json, _render_run)


@cli.command()
@json_option
@common_options
def status(config: Config, as_json: bool) -> None:
    """Show applied, pending, failed and changed revisions (exit 1 when up would refuse)."""
    result = command.status(config)
    _emit(result, as_json, _render_status)
    if result.blocked:
        sys.exit(1)


@cli.command()
@json_option
@common_options
def history(config: Config, as_json: bool) -> None:
    """Show every stored record: when, by whom, how long, which checksum."""
    result = command.history(config)

    def render(r: results.HistoryResult) -> None:
        if not r.records:
            click.echo(f"no history in database {r.database}")
        for rec in r.records:
            when = rec["applied_at"] or rec["started_at"]
            took = f"{rec['duration_s']:.2f}s" if rec["duration_s"] is not None else "-"
            extra = " (stamped)" if rec["stamped"] else (f" ({rec['error']})" if rec["error"] else "")
            click.echo(
                f"{rec['revision']:<8} {rec['state']:<8} {when:<25} {took:>8}  {rec['applied_by']:<24} "
                f"v{rec['tool_version']}  {rec['description']}{extra}"
            )

    _emit(result, as_json, render)


@cli.command()
@yes_option
@json_option
@common_options
def unlock(config: Config, yes: bool, as_json: bool) -> None:
    """Release the migration lock left by a dead run (shows the holder, asks first)."""
    result = command.unlock(config, _confirm(yes))
    _emit(
        result,
        as_json,
        lambda r: click.echo(f"released the lock held by {r.holder}" if r.released else "the lock is not held"),
    )


@cli.command()
@yes_option
@json_option
@common_options
def repair(config: Config, yes: bool, as_json: bool) -> None:
    """Make failed revisions pending again and accept changed scripts (asks first)."""
    result = command.repair(config, _confirm(yes), on_wait=_on_wait)

    def render(r: results.RepairResult) -> None:
        if not (r.removed_failed or r.realigned or r.removed_missing):
            click.echo("nothing to repair")
        for rev in r.removed_failed:
            click.echo(f"{rev}: failed record removed; pending again")
        for rev in r.realigned:
            click.echo(f"{rev}: checksum brought in line with the file")
        for rev in r.removed_missing:
            click.echo(f"{rev}: record of a missing script forgotten")

    _emit(result, as_json, render)


@cli.command()
@click.argument("target")
@json_option
@common_options
def stamp(config: Config, target: str, as_json: bool) -> None:
    """Record revisions up to TARGET as applied without running them ('base' clears the record)."""
    result = command.stamp(config, target, on_wait=_on_wait)
    _emit(
        result,
        as_json,
        lambda r: click.echo(
            f"stamped {r.target}: recorded {', '.join(r.stamped) or 'nothing new'}; "
            f"removed {', '.join(r.removed) or 'nothing'}"
        ),
    )


@cli.command()
@json_option
@common_options
def check(config: Config, as_json: bool) -> None:
    """Check offline that every script loads and the revisions form one chain (for CI)."""
    result = command.check(config)
    _emit(
        result,
        as_json,
        lambda r: click.echo(f"ok: {len(r.revisions)} revisions in one chain, head {r.head}"),
    )


@cli.command()
@click.argument("message")
@json_option
@common_options
def new(config: Config, message: str, as_json: bool) -> None:
    """Write the next migration file, chained after the head."""
    result = command.new(config, message)
    _emit(result, as_json, lambda r: click.echo(f"created {r.path} (revision {r.revision})"))


def _render_run(result: results.RunResult) -> None:
    verb = {"up": "applied", "down": "reverted"}[result.direction]
    if result.dry_run:
        verb = "would apply"
    if not result.steps:
        where = result.current or "base"
        click.echo(f"nothing to do: database {result.database} is at {where} (head {result.head})")
        return
    for step in result.steps:
        took = "" if result.dry_run else f" ({step.duration_s:.2f}s)"
        click.echo(f"{verb} {step.revision}  {step.description}{took}")
        for action in step.actions:
            click.echo(f"    {action}")
    click.echo(f"database {result.database} is at {result.current or 'base'} (head {result.head})")


def _render_status(result: results.StatusResult) -> None:
    click.echo(f"database {result.database}: current {result.current or 'base'}, head {result.head or '-'}")
    rows: list[tuple[str, str, str, str]] = []
    problems = {v.revision: v for v in result.failed + result.changed + result.running}
    for view in result.applied + result.failed + result.running + result.pending:
        if view.state == "applied" and view.revision in problems:
            continue
        rows.append((view.revision, view.state, view.applied_at or "", view.description))
    for view in result.changed:
        rows.append((view.revision, "changed", "", view.description))
    for view in result.missing:
        rows.append((view.revision, "missing", view.applied_at or "", view.description))
    rows.sort(key=lambda row: row[0])
    click.echo(f"{'REVISION':<10}{'STATE':<10}{'APPLIED AT':<26}DESCRIPTION")
    for revision, state, applied_at, description in rows:
        click.echo(f"{revision:<10}{state:<10}{applied_at:<26}{description}")
    for view in result.failed + result.changed + result.missing:
        click.echo(f"  {view.revision}: {view.error}")
    if result.lock and not result.lock["expired"]:
        click.echo(f"locked by {result.lock['description']}")


class Terminated(KeyboardInterrupt):
    """SIGTERM (a cancelled deploy) unwinds like Ctrl-C: the running revision is recorded as failed and the
    lock released at once, instead of both waiting for the lease to expire."""


def _terminate(signum: int, _frame: object) -> None:
    raise Terminated(f"stopped by signal {signal.Signals(signum).name}")


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    signal.signal(signal.SIGTERM, _terminate)
    debug = "--debug" in args or os.environ.get("COSMIGRATE_DEBUG") == "1"
    try:
        code = cli.main(args, prog_name="cosmigrate", standalone_mode=False)
    except CosmigrateError as exc:
        _fail(str(exc), exc.exit_code, debug)
    except click.exceptions.Abort:  # click's form of Ctrl-C / SIGTERM outside a revision
        _fail("interrupted; run cosmigrate status to see where it stopped", 1, debug)
    except click.ClickException as exc:
        _fail(exc.format_message() + " (see cosmigrate --help)", 2, debug)
    except KeyboardInterrupt as exc:
        _fail(f"{exc or 'interrupted'}; run cosmigrate status to see where it stopped", 1, debug)
    except Exception as exc:
        _fail(f"unexpected {type(exc).__name__}: {exc} (a bug: run with --debug and report it)", 1, debug)
    sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str, code: int, debug: bool) -> None:
    if debug:
        click.echo(_redact(traceback.format_exc()), err=True)
    click.echo(_redact(f"error: {' '.join(message.split())}"), err=True)
    sys.exit(code)
