"""The verbs that need no database: ``check``, ``new``, ``hash``, ``init``. Importing this pulls in no Cosmos DB client.

``check`` is the CI gate: every problem at once, one line each, exit 1 when there are any. Beyond what
``scripts.lint`` finds (loading, naming, ordering, the sum file) it replays every revision's upgrade (from
nothing, in order) and downgrade (in reverse) on a simulated database, so that what ``up`` would refuse — an
invalid definition, a misspelt keyword, an undeclared ``-x`` key, an untouched template — is caught with its
file and line before a deploy. A broken folder is replayed too, all but the scripts that cannot run, so that
one run says everything (``replay_problems`` says why the scripts after a broken one are still replayed).
``--online`` adds what only the database knows (``app/inspect.check_online``).
"""

from __future__ import annotations

import itertools
import json
import operator
import re
import tomllib
from collections.abc import Sequence
from pathlib import Path

from cosmigrate.app.results import CheckResult, HashResult, InitResult, NewResult
from cosmigrate.config import Config
from cosmigrate.errors import UsageError
from cosmigrate.model.state import DatabaseState
from cosmigrate.plan import planner
from cosmigrate.plan.analyzers import Finding, analyze
from cosmigrate.plan.planner import Plan
from cosmigrate.plan.query_lint import QueryFinding, lint_queries, load_queries
from cosmigrate.scripts import sumfile
from cosmigrate.scripts.lint import LintReport, lint
from cosmigrate.scripts.loader import FILE_NAME, Script, load_all
from cosmigrate.scripts.problems import Problem
from cosmigrate.store.records import now_iso


def replay_problems(scripts: Sequence[Script], history_container: str | None = None) -> list[Problem]:
    """Every fault of every script, found by replaying all upgrades then all downgrades on a simulated state.

    ``scripts`` are replayed in the order given, each upgrade on the state the ones before it left (from nothing),
    then each downgrade in reverse: for a sound folder, its chain. A broken folder gives what it can: the scripts
    that loaded and are structurally fine, some of which follow a revision that cannot run (it failed to load,
    lacks a function, or its ``down_revision`` names no script or loops). That revision is skipped, and the ones
    after it are still replayed, on the state so far, without what it would have done. This is sound because
    ``check`` reports only a script's faults (an invalid definition, a misspelt keyword, an undeclared ``-x``
    key, an untouched template, an exception), and the state does not decide those: what the state decides —
    that a container exists, or does not, at that point (a conflict), or that a precondition refuses — ``check``
    never reports, since the database the revisions will run on is unknown offline. The one way the state reaches
    a fault is through the script itself: having been told what exists (``op.exists``, ``op.is_legacy``,
    ``op.count``, the result of ``op.delete_container``) it may take another path. So on a state that a skipped
    revision may have left wrong — an upgrade whose chain is broken below it, and every downgrade replayed after
    such an upgrade — a fault is reported only when the script had been told nothing yet: that fault is the
    script's own whatever the earlier revisions do. The others are left for the run after the broken revision is
    fixed (a hidden fault, never a false one). A script that branches on a returned change's ``effect`` is not
    followed that far.
    """
    scripts = list(scripts)
    ups = planner.plan(scripts, "up", DatabaseState(), history_container=history_container, keep_going=True)
    downs = planner.plan(scripts[::-1], "down", ups.end_state, history_container=history_container, keep_going=True)
    up_unsure = _after_a_broken_link(scripts)
    down_unsure = list(itertools.accumulate(up_unsure[::-1], operator.or_))  # downs run in reverse order
    problems = []
    for revision, unsure in zip(ups.revisions + downs.revisions, up_unsure + down_unsure, strict=True):
        if revision.fault and not (unsure and revision.asked):
            problems.append(revision.fault)
    return problems


def replay_order(scripts: Sequence[Script]) -> list[Script]:
    """``scripts`` (in file order) in the order to replay them when they form no sound chain: each after the
    script its ``down_revision`` names when that is one of them (the first file declaring it), otherwise in file
    order; a loop as its chain runs, ending at its first file."""
    first: dict[str, Script] = {}
    for script in scripts:
        first.setdefault(script.revision, script)
    order: list[Script] = []
    placed: set[int] = set()
    for script in scripts:
        trail: list[Script] = []  # script, then the one it follows, ... down to one placed, first or missing
        on_trail: set[int] = set()
        cursor: Script | None = script
        while cursor is not None and id(cursor) not in placed and id(cursor) not in on_trail:
            trail.append(cursor)
            on_trail.add(id(cursor))
            parent = cursor.down_revision
            cursor = None if parent is None else first.get(parent)
        for earlier in reversed(trail):
            placed.add(id(earlier))
            order.append(earlier)
    return order


def _after_a_broken_link(order: Sequence[Script]) -> list[bool]:
    """For each script of a replay order: whether a revision below it in its chain is not replayed before it (a
    file that cannot run, a ``down_revision`` that names no script, a loop), so that its state lacks something."""
    sound: dict[str, bool] = {}  # revision -> its chain down to a first revision was all replayed
    unsure = []
    for script in order:
        parent = script.down_revision
        whole = parent is None or sound.get(parent, False)
        sound.setdefault(script.revision, whole)  # a duplicate revision: the first file, as replay_order follows
        unsure.append(not whole)
    return unsure


def check_report(config: Config) -> LintReport:
    """Lint, then the replay of every script that can run: the chain's order when it is sound, otherwise the
    scripts that loaded and are structurally fine, in ``replay_order`` (see ``replay_problems`` for what is said
    about those after a broken link)."""
    report = lint(config.migrations)
    scripts = report.order if report.order is not None else replay_order(report.scripts)
    report.add(*replay_problems(scripts, config.history_container))
    return report


def upgrades(scripts: Sequence[Script], history_container: str | None = None) -> Plan:
    """The chain's upgrades replayed from nothing, which both lints judge."""
    return planner.plan(list(scripts), "up", DatabaseState(), history_container=history_container, keep_going=True)


def lint_findings(
    scripts: Sequence[Script], history_container: str | None = None, ups: Plan | None = None
) -> list[Finding]:
    """Migration lint of a sound chain: the upgrades replayed from nothing (``ups``, when replayed already), each
    change judged (``plan/analyzers.py``), less what each revision silences in ``lint_ignore``."""
    ups = ups or upgrades(scripts, history_container)
    return analyze(ups, {s.revision: s.idempotent for s in scripts}, {s.revision: s.lint_ignore for s in scripts})


def query_findings(config: Config, ups: Plan) -> list[QueryFinding]:
    """The queries of ``migrations/queries.sql`` judged at every revision of the chain (none without the file)."""
    queries = load_queries(config.migrations)
    return lint_queries(queries, ups) if queries else []


def check(config: Config, online: bool = False, strict: bool = False) -> CheckResult:
    """For CI: every problem of the migrations folder, one per line; ``online`` adds the database's view.
    Migration lint findings are warnings, failures with ``strict``."""
    report = check_report(config)
    if online and report.order is not None:
        from cosmigrate.app.inspect import check_online  # the Cosmos DB client, only when asked

        report.add(*check_online(config, list(report.order)))
    order = list(report.order or [])
    findings: list[Finding] = []
    queries: list[QueryFinding] = []
    if order and not report.problems:
        ups = upgrades(order, config.history_container)
        findings = lint_findings(order, ups=ups)
        queries = query_findings(config, ups)
    return CheckResult(
        str(config.migrations),
        order[-1].revision if order else None,
        [script.revision for script in order],
        [problem.to_dict() for problem in report.problems],
        online,
        [finding.to_dict() for finding in findings],
        strict,
        [finding.to_dict() for finding in queries],
    )


def write_sum(config: Config) -> HashResult:
    """Rewrite ``cosmigrate.sum`` from the migration files as they are now."""
    path = sumfile.write(config.migrations)
    return HashResult(str(path), len(sumfile.compute(config.migrations).splitlines()) - 1)


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
    down = "None" if head is None else json.dumps(head)  # a string literal in double quotes, as revision's
    text = TEMPLATE.format(message=docstring_safe(message), revision=revision, down=down, date=now_iso())
    path.write_text(text, encoding="utf-8")
    sumfile.write(config.migrations)  # a second branch adding a revision now conflicts in git
    return NewResult(str(path), revision, head)


def docstring_safe(message: str) -> str:
    """One line that reads back as ``message`` inside a triple-quoted docstring, whatever it holds."""
    return " ".join(message.split()).replace("\\", "\\\\").replace('"', '\\"')


TEMPLATE = '''"""{message}

Created {date}.
"""

revision = "{revision}"
down_revision = {down}

# True promises that running upgrade (or downgrade) again after an interruption is safe: it converges
# instead of repeating work. cosmigrate's own operations do (create adopts, delete skips what is gone, seed
# upserts); data work must be written so (transform_items with an idempotent fn). An interrupted idempotent
# revision is simply run again by the next `cosmigrate up`; any other waits for a person and `cosmigrate repair`.
idempotent = False

# The -x arguments this revision reads (op.x["key"], op.flag("key")), each with what it does. Any other
# -x key is refused, so a typo never passes silently.
arguments = {{}}


def upgrade(op):
    # A deploy that applies it runs this twice: first with op.planning True, when nothing is sent (definitions are
    # checked, `cosmigrate plan` and --dry-run show the operations), then for real. Code before the first
    # op.container()/op.database runs in both: guard side effects of your own with `if not op.planning:`.
    # e.g. op.create_container("things", partition_key="/tenantId", indexing_policy={{...}})
    raise NotImplementedError("write the upgrade of revision {revision}")


def downgrade(op):
    # Undo upgrade; for a change that cannot be undone: op.refuse("irreversible: why")
    raise NotImplementedError("write the downgrade of revision {revision}")
'''


def init(folder: Path, database: str | None = None) -> InitResult:
    """Set up a project: a migrations folder with its sum file, ``[tool.cosmigrate]`` in pyproject.toml (created
    or added to, never overwritten), and a ``tests/conftest.py`` showing the pytest plugin (when there is none)."""
    folder = folder.resolve()
    pyproject = folder / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8") if pyproject.exists() else ""
    if database and "[tool.cosmigrate]" in text:
        _refuse_another_database(pyproject, text, database)
    created: list[str] = []
    kept: list[str] = []
    migrations = folder / "migrations"
    if migrations.is_dir():
        kept.append(str(migrations))
    else:
        migrations.mkdir(parents=True)
        created.append(str(migrations))
    if not (migrations / sumfile.SUM_FILE).exists():
        created.append(str(sumfile.write(migrations)))
    if "[tool.cosmigrate]" in text:
        kept.append(f"{pyproject} [tool.cosmigrate]")
    else:
        name = (
            f'database = "{database}"'
            if database
            else '# database = "app"        # or COSMOS_DATABASE; there is no default'
        )
        table = PYPROJECT_TABLE.format(database=name)
        pyproject.write_text((text.rstrip() + "\n\n" if text.strip() else "") + table, encoding="utf-8")
        created.append(f"{pyproject} [tool.cosmigrate]")
    conftest = folder / "tests" / "conftest.py"
    if conftest.exists():
        kept.append(str(conftest))
    else:
        conftest.parent.mkdir(exist_ok=True)
        conftest.write_text(CONFTEST, encoding="utf-8")
        created.append(str(conftest))
    return InitResult(str(folder), created, kept)


def _refuse_another_database(pyproject: Path, text: str, database: str) -> None:
    """init never edits an existing [tool.cosmigrate]: a --database it would not write is refused (exit 2)
    before anything is written, instead of being silently ignored."""
    try:
        table = tomllib.loads(text).get("tool", {}).get("cosmigrate", {})
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{pyproject} is not valid TOML ({exc}); nothing was written") from None
    configured = table.get("database")
    if configured == database:
        return
    has = f'sets database = "{configured}" in' if configured else "has, without a database,"
    raise UsageError(
        f"{pyproject} already {has} [tool.cosmigrate], and init does not change an existing setting: nothing "
        f'was written. To use {database}, put database = "{database}" there yourself, or give --database '
        f"{database} (or COSMOS_DATABASE={database}) to each command"
    )


NO_DATABASE = '# database = "app"        # or COSMOS_DATABASE; there is no default'
PYPROJECT_TABLE = """[tool.cosmigrate]
# Settings of `cosmigrate`; flags and environment variables (COSMOS_ENDPOINT, COSMOS_KEY, ...) override them.
migrations = "migrations"
{database}
"""

CONFTEST = '''"""Migration tests with cosmigrate's pytest plugin.

`pytest --cosmigrate` runs the built-in tests: one head and a current sum file, every script checks, upgrade
from your baseline to head, verify after upgrade (no drift), up/down consistency, and downgrades that leave no
trace. Each test gets a fresh database on COSMOS_ENDPOINT, or on a local endpoint the plugin starts (Node.js
and npm needed). To run only some, import them into a test module instead:

    from cosmigrate.testing.builtin import test_upgrade, test_up_down_consistency
"""

import pytest


@pytest.fixture
def cosmigrate_baseline():
    """What exists in your database before your first migration; each test database starts from it."""

    def prepare(database):
        # e.g. database.create_container("legacy", partition_key=azure.cosmos.PartitionKey("/id"))
        pass

    return prepare
'''
