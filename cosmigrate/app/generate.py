"""``new --autogenerate`` and ``plan --schema``: the next migration from a declared state (Alembic's autogenerate,
Atlas's ``migrate diff``).

The desired state is ``migrations/schema.toml`` when the project keeps one (one ``[containers.NAME]`` table per
container, the ``op.create_container`` keywords as keys), otherwise the live database (what someone changed by
hand becomes a migration). It is compared, property by property through the registry, with the state the
migrations replay to, and each difference becomes an operation in the upgrade and its reverse in the downgrade:
a new container is created (and deleted going down), one no longer declared is deleted (and created again), a
mutable property is changed in place (``alter_container``; ``replace_indexing_policy`` for the indexing policy; a
throughput mode change is the service's offer migration), and a create-only one (partition key, unique keys,
vector embeddings…) is the swap pattern: a new container ``NAME_v2`` with the new definition and a
``copy_container`` into it — never an in-place change. The file is written after the head, the sum file
rewritten, and ``check`` reviews it.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cosmigrate.app.context import connected, database_exists, missing
from cosmigrate.app.offline import check, new
from cosmigrate.app.planes import plane_for
from cosmigrate.app.results import GenerateResult
from cosmigrate.app.state import evaluate
from cosmigrate.config import Config
from cosmigrate.errors import UsageError
from cosmigrate.model.container import ContainerDef
from cosmigrate.model.properties import REGISTRY
from cosmigrate.model.state import DatabaseState
from cosmigrate.plan import planner
from cosmigrate.scripts import render, sumfile
from cosmigrate.scripts.loader import load_all
from cosmigrate.store.history import HistoryStore
from cosmigrate.store.live import read_state

SCHEMA_FILE = "schema.toml"


@dataclass
class Step:
    """One difference: how it is classified, and the operations that make it and undo it."""

    container: str
    kind: str  # create, delete, in place, throughput, reindex, recreate (swap)
    note: str
    upgrade: list[str] = field(default_factory=list)
    downgrade: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"container": self.container, "kind": self.kind, "note": self.note}


def declared_schema(folder: Path) -> list[ContainerDef] | None:
    """The containers ``migrations/schema.toml`` declares, or None without the file."""
    path = Path(folder) / SCHEMA_FILE
    if not path.is_file():
        return None
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML ({exc})") from None
    unknown = sorted(set(data) - {"containers"})
    if unknown:
        raise UsageError(f"{path}: unknown table {unknown[0]!r}; declare containers as [containers.NAME]")
    found = []
    for name, keywords in (data.get("containers") or {}).items():
        if not isinstance(keywords, dict) or "partition_key" not in keywords:
            raise UsageError(f'{path}: [containers.{name}] needs partition_key = "/..."')
        given = dict(keywords)
        found.append(ContainerDef.declare(name, given.pop("partition_key"), **given))
    return found


def replayed(config: Config) -> DatabaseState:
    """What the migrations declare: all of them replayed from nothing."""
    scripts = load_all(config.migrations)
    return planner.plan(scripts.ordered, "up", DatabaseState(), history_container=config.history_container).end_state


def desired(config: Config, before: DatabaseState) -> tuple[list[ContainerDef], str]:
    """The state to reach, and where it comes from."""
    schema = declared_schema(config.migrations)
    if schema is not None:
        return schema, str(Path(config.migrations) / SCHEMA_FILE)
    with connected(config) as client:
        if not database_exists(client, config.database_name):
            raise missing(config)
        database = client.get_database_client(config.database_name)
        snapshot = HistoryStore(database, config.history_container).snapshot()
        scripts = load_all(config.migrations)
        if evaluate(scripts, snapshot).current != scripts.graph.head:
            raise UsageError(
                f"database {config.database_name} is not at head ({scripts.graph.head}): generating from it would "
                "mix pending revisions with changes made by hand; run cosmigrate up first, or keep a schema.toml"
            )
        live = read_state(database, config.history_container, plane_for(config).throughputs)
    managed = [d for d in live if d.id in before]  # containers no migration declares stay unmanaged
    return managed, f"database {config.database_name}"


def differences(before: DatabaseState, wanted: list[ContainerDef]) -> list[Step]:
    steps: list[Step] = []
    wanted_ids = {d.id for d in wanted}
    for target in sorted(wanted, key=lambda d: d.id):
        current = before.get(target.id)
        if current is None:
            undo = [render.call("delete_container", [target.id])]
            steps.append(Step(target.id, "create", f"create container {target.id}", [render.create(target)], undo))
            continue
        found = _changes(current, target)
        swap = before.get(f"{target.id}_v2")
        if found and found[0].kind == "recreate" and swap is not None and not _fixed(swap, target):
            # an earlier generated revision made the swap: the application switches, then the table is renamed
            wanted_ids.add(swap.id)
            note = (
                f"{target.id} was swapped into {swap.id} already: once the application uses {swap.id}, rename "
                f"[containers.{target.id}] to [containers.{swap.id}] in schema.toml and delete {target.id} then"
            )
            found = [Step(target.id, "swapped", note)]
        steps += found
    for gone in sorted((d for d in before if d.id not in wanted_ids), key=lambda d: d.id):
        note = f"delete container {gone.id} (no longer declared)"
        steps.append(Step(gone.id, "delete", note, [render.call("delete_container", [gone.id])], [render.create(gone)]))
    return steps


def _differing(current: ContainerDef, target: ContainerDef) -> list[str]:
    """The properties that differ either way round (a side that leaves a detail unsaid, such as the partition key
    version a replayed create does not declare, takes the other's)."""
    return [
        p.name
        for p in target.properties()
        if (target.declares(p.name) or p.managed_when_omitted)
        and not (p.same(target.get(p.name), current.get(p.name)) or p.same(current.get(p.name), target.get(p.name)))
    ]


def _fixed(current: ContainerDef, target: ContainerDef, changed: list[str] | None = None) -> list[str]:
    """The differing properties (``changed``, when already found) that cannot change in place."""
    found = _differing(current, target) if changed is None else changed
    return [n for n in found if REGISTRY[n].refusal(target.id, current.get(n), target.get(n))]


def _changes(current: ContainerDef, target: ContainerDef) -> list[Step]:
    changed = _differing(current, target)
    fixed = _fixed(current, target, changed)
    if fixed:
        return [_swap(current, target, fixed)]
    steps = []
    if "indexingPolicy" in changed:
        default = {"includedPaths": [{"path": "/*"}]}
        wanted = REGISTRY["indexingPolicy"].keyword(target.get("indexingPolicy"))
        was = REGISTRY["indexingPolicy"].keyword(current.get("indexingPolicy"))
        steps.append(
            Step(
                target.id,
                "reindex",
                f"replace the indexing policy of {target.id} (in place: a reindex the run waits for)",
                [render.call("replace_indexing_policy", [target.id, wanted[1] if wanted else default])],
                [render.call("replace_indexing_policy", [target.id, was[1] if was else default])],
            )
        )
    rest = [n for n in changed if n != "indexingPolicy"]
    if rest:
        modes = (current.get("throughput") or {}).keys(), (target.get("throughput") or {}).keys()
        note = f"change {', '.join(REGISTRY[n].label for n in rest)} of {target.id} in place"
        if "throughput" in rest and modes[0] and modes[0] != modes[1]:
            note += " (manual ↔ autoscale: a migration of the offer)"
        kind = "throughput" if rest == ["throughput"] else "in place"
        upgrade, downgrade = (
            render.alter(target.id, target, rest),
            render.alter(target.id, current, rest),
        )
        steps.append(Step(target.id, kind, note, [upgrade], [downgrade]))
    return steps


def _swap(current: ContainerDef, target: ContainerDef, fixed: list[str]) -> Step:
    """A create-only change: the swap pattern, never an in-place change."""
    swap = f"{target.id}_v2"
    labels = ", ".join(REGISTRY[n].label for n in fixed)
    upgrade = [
        f"    # {labels} of {target.id} cannot change in place: a new container and a copy (the swap pattern).",
        f"    # Switch the application to {swap}, then delete {target.id} in a later revision.",
        render.create(target, swap),
        render.call("copy_container", [target.id, swap]),
    ]
    if "partitionKey" in fixed:
        paths = ", ".join(target.partition_key)
        upgrade[2:2] = [
            f"    # Each document needs its new partition key value ({paths}) before it is copied: give copy_container",
            "    # transform=lambda doc: {**doc, …}; one without it is copied into the undefined partition.",
        ]
    note = f"{labels} of {target.id} cannot change in place: the swap pattern, into {swap}"
    return Step(target.id, "recreate", note, upgrade, [render.call("delete_container", [swap])])


def schema_plan(config: Config) -> GenerateResult:
    """``plan --schema``: the differences, classified, without writing anything."""
    before = replayed(config)
    wanted, source = desired(config, before)
    steps = differences(before, wanted)
    return GenerateResult(source, None, None, [s.to_dict() for s in steps], [])


def autogenerate(config: Config, message: str) -> GenerateResult:
    """Write the next migration from the differences; refuses when there are none."""
    before = replayed(config)
    wanted, source = desired(config, before)
    steps = differences(before, wanted)
    if not any(s.upgrade for s in steps):
        said = "; ".join(s.note for s in steps)
        raise UsageError(
            f"nothing to generate: {source} is what the migrations declare" + (f" ({said})" if said else "")
        )
    made = new(config, message)
    path = Path(made.path)
    text = path.read_text(encoding="utf-8")
    upgrade = "\n".join(line for s in steps for line in s.upgrade)
    downgrade = "\n".join(line for s in reversed(steps) for line in s.downgrade)
    start = text.index("def upgrade(op):")
    header = text[:start].replace("idempotent = False", "idempotent = True", 1)
    said = "\n".join(f"# - {s.kind}: {s.note}" for s in steps)
    body = (
        f"# Generated by cosmigrate new --autogenerate from {source}:\n{said}\n\n\n"
        f"def upgrade(op):\n{upgrade}\n\n\ndef downgrade(op):\n{downgrade}\n"
    )
    path.write_text(header + body, encoding="utf-8")
    sumfile.write(config.migrations)
    reviewed = check(config)
    problems = [p["message"] for p in reviewed.problems]
    if problems:
        path.unlink()
        sumfile.write(config.migrations)
        raise UsageError(f"the generated migration does not pass check ({problems[0]}); nothing was written")
    own = [f for f in reviewed.findings if f["revision"] == made.revision]  # the new file's, not older ones'
    return GenerateResult(source, made.path, made.revision, [s.to_dict() for s in steps], own)
