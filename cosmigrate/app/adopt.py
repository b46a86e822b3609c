"""``adopt``: a baseline migration from a live database (Flyway's baseline, Atlas's ``schema inspect``).

It reads every container of the database (every property of the registry, throughput included), writes the
first revision of an empty migrations folder with one ``op.create_container`` per container in the keywords a
person would write, replays it on an empty simulated database and compares the result with the live containers
— the same comparison ``verify`` makes — and only when they are equal records the baseline as applied (a stamp).
So ``verify`` is clean right after, and on a new database the baseline creates the containers as they are here.
A difference (a property the registry cannot express) removes the file again and names it.
"""

from __future__ import annotations

from pathlib import Path

from cosmigrate.app.context import connected, require_database
from cosmigrate.app.inspect import compare
from cosmigrate.app.maintain import stamp
from cosmigrate.app.offline import docstring_safe
from cosmigrate.app.planes import plane_for
from cosmigrate.app.results import AdoptResult
from cosmigrate.config import Config
from cosmigrate.errors import UsageError
from cosmigrate.model.container import ContainerDef
from cosmigrate.model.state import DatabaseState
from cosmigrate.plan import planner
from cosmigrate.scripts import render as render_code
from cosmigrate.scripts import sumfile
from cosmigrate.scripts.loader import load_all
from cosmigrate.store.history import HistoryStore
from cosmigrate.store.live import read_state
from cosmigrate.store.records import now_iso

REVISION = "001"


def adopt(config: Config, exclude: list[str] | None = None, message: str | None = None) -> AdoptResult:
    folder = Path(config.migrations)
    if folder.is_dir() and load_all(folder).ordered:
        raise UsageError(
            f"adopt writes the first revision, but {folder} holds revisions already: adopt into an empty "
            "migrations folder (to record existing revisions as applied, use cosmigrate stamp REV)"
        )
    excluded = set(exclude or ())
    with connected(config) as client:
        database = require_database(client, config)
        snapshot = HistoryStore(database, config.history_container).snapshot()
        active = sorted(
            r for r, rec in snapshot.records.items() if rec.state not in ("pending", "reverted", "forgotten")
        )
        if active:
            raise UsageError(
                f"database {config.database_name} already has applied revisions ({', '.join(active)}) from another "
                "migrations folder: adopt writes the first revision of a database without history; work in that "
                "folder instead, or record what applies with cosmigrate stamp REV"
            )
        live = read_state(database, config.history_container, plane_for(config).throughputs)
    unknown = sorted(excluded - {d.id for d in live})
    if unknown:
        raise UsageError(f"--exclude {unknown[0]}: database {config.database_name} has no such container")
    adopted = sorted((d for d in live if d.id not in excluded), key=lambda d: d.id)
    name = config.database_name
    said = message or f"Baseline: the containers of {name} as they were when adopted."
    path = folder / f"{REVISION}_baseline.py"
    folder.mkdir(parents=True, exist_ok=True)  # only now: a refused adopt leaves nothing behind
    path.write_text(render(said, name, adopted, sorted(excluded), live.database_throughput), encoding="utf-8")
    sumfile.write(folder)
    try:
        differences = _replay_differences(config, live, adopted)
        if differences:
            raise UsageError(
                f"the baseline would not verify ({'; '.join(differences[:3])}): nothing was recorded and "
                f"{path.name} was removed; report it, or exclude that container (--exclude)"
            )
        stamp(config, REVISION, confirm=lambda _question: True)
    except BaseException:  # not verified, or not recorded: the baseline is not left behind half-done
        path.unlink(missing_ok=True)
        sumfile.write(folder)
        raise
    return AdoptResult(name, str(path), REVISION, [d.id for d in adopted], sorted(excluded))


def _replay_differences(config: Config, live: DatabaseState, adopted: list[ContainerDef]) -> list[str]:
    """What ``verify`` would report after the stamp: the baseline replayed from nothing against the live state
    (the same comparison), an adopted container left undeclared included."""
    scripts = load_all(config.migrations)
    replay = planner.plan(scripts.ordered, "up", DatabaseState(), history_container=config.history_container)
    ids = {d.id for d in adopted}
    found = []
    for container in compare(replay.end_state, live, config.database_name):
        if container.state in ("drift", "missing"):
            found += [d["message"] for d in container.differences]
        elif container.state == "unmanaged" and container.container in ids:
            found.append(f"{container.container} is not declared by the baseline")
    return found


def render(
    message: str,
    database: str,
    definitions: list[ContainerDef],
    excluded: list[str],
    shared: dict[str, int] | None = None,
) -> str:
    """The baseline's source: one create per container, in the keywords azure-cosmos users know."""
    creates = "\n".join(render_code.create(d) for d in definitions) or "    pass  # the database held no containers"
    deletes = "\n".join(f"    op.delete_container({d.id!r})" for d in reversed(definitions)) or "    pass"
    left = f"\n# Left unmanaged when adopted (adopt --exclude): {', '.join(excluded)}.\n" if excluded else ""
    if shared:
        given = f"autoscale:{shared['autoscale_max']}" if "autoscale_max" in shared else str(shared["manual"])
        left += (
            f"\n# The database has shared throughput ({given}): a database is given it when it is created, so "
            f"create a new one\n# with cosmigrate up --create-database --database-throughput {given}.\n"
        )
    return f'''"""{docstring_safe(message)}

Written by cosmigrate adopt from database {database} on {now_iso()}:
every container as it was then, with every property cosmigrate manages. It was recorded as applied there without
running (a stamp that verified); on a new database it creates the containers.
"""

revision = "{REVISION}"
down_revision = None

# Creating adopts a container that exists with these create-only properties: running it again converges.
idempotent = True

arguments = {{}}
{left}

def upgrade(op):
{creates}


def downgrade(op):
    # Below the baseline there were no containers: each one is exported first when it holds documents, and
    # down asks before deleting any that do.
{deletes}
'''
