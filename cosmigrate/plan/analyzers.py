"""Migration lint (Atlas's analyzers, in Cosmos DB terms): what a revision does that deserves a second look.

Pure: the planner's replay of the upgrades from an empty database is walked change by change on a simulated
state, and each analyzer looks at one change with the state before it. A finding has a code, the revision and
its file, and one line saying what and what to do instead. A revision silences a finding with a reason, in the
script itself: ``lint_ignore = {"CM101": "tenant-integrations is empty in every environment (checked in 004)"}``.

Codes:
  CM101 destructive       a container is deleted (its documents are exported first, but the application loses it)
  CM102 recreate          a container is deleted and created again under the same id in one revision
  CM201 index removed     an index path or a composite/spatial/full-text index goes away: queries that used it
                          become scans, an ORDER BY on it is refused
  CM202 index replaced    one revision removes an index and adds another: the service stops using the old one at
                          once and the new one only when the transformation ends; add first, remove later
  CM301 unique over data  a copy into a container with unique keys the source does not have: duplicates are
                          refused document by document (dead letters)
  CM401 analytical TTL 0  the analytical store is turned off for good
  CM501 data step         a transform or copy in a revision that does not declare ``idempotent = True``: an
                          interrupted run waits for a person; guard ``fn`` (return None when already done) and
                          declare it
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from cosmigrate.model.definitions import normalise_indexing_policy
from cosmigrate.model.difference import show
from cosmigrate.model.properties.indexing import LIST_LABELS
from cosmigrate.model.state import DatabaseState
from cosmigrate.ops.change import Change, apply_change
from cosmigrate.plan.planner import Plan, RevisionPlan
from cosmigrate.scripts.loader import LINT_CODES

CODES = LINT_CODES
INDEX_LISTS = ("compositeIndexes", "spatialIndexes", "fullTextIndexes", "vectorIndexes")


@dataclass(frozen=True)
class Finding:
    code: str
    revision: str
    file: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "name": CODES[self.code], "revision": self.revision, "file": self.file,
                "message": self.message}  # fmt: skip


def analyze(plan: Plan, idempotent: Mapping[str, bool], ignored: Mapping[str, Mapping[str, str]]) -> list[Finding]:
    """Every finding of the upgrades in ``plan`` (replayed from nothing), but those a revision silences."""
    state = DatabaseState()
    found: list[Finding] = []
    for revision in plan.revisions:
        silenced = ignored.get(revision.revision, {})
        for finding in _revision(revision, state, idempotent.get(revision.revision, False)):
            if finding.code not in silenced:
                found.append(finding)
    return found


def _revision(revision: RevisionPlan, state: DatabaseState, idempotent: bool) -> Iterable[Finding]:
    deleted: set[str] = set()

    def finding(code: str, message: str) -> Finding:
        return Finding(code, revision.revision, revision.file, message)

    for change in revision.changes:
        for analyzer in ANALYZERS:
            yield from (finding(code, text) for code, text in analyzer(change, state, deleted, idempotent))
        if change.effect == "delete" and change.container:
            deleted.add(change.container)
        apply_change(state, change)


Analyzer = Callable[[Change, DatabaseState, set[str], bool], Iterable[tuple[str, str]]]


def destructive(change: Change, state: DatabaseState, deleted: set[str], idempotent: bool) -> Iterable[tuple[str, str]]:
    if change.kind == "delete_container" and change.effect in ("delete", "none"):
        # replayed from nothing, a container the migrations did not create is not there: the call still deletes
        # it wherever it exists
        yield (
            "CM101",
            (
                f"deletes container {change.container}: the application loses it and its documents (exported first); "
                "make sure nothing reads it any more"
            ),
        )
    if change.effect == "create" and change.container in deleted:
        yield (
            "CM102",
            (
                f"recreates container {change.container} in one revision: its documents are gone meanwhile; use the "
                "swap pattern (a new container, op.copy_container, switch, drop the old one later)"
            ),
        )


def indexes(change: Change, state: DatabaseState, deleted: set[str], idempotent: bool) -> Iterable[tuple[str, str]]:
    if change.effect != "update" or "indexingPolicy" not in change.changed or change.before is None:
        return
    assert change.after is not None
    old = normalise_indexing_policy(change.before.get("indexingPolicy"))
    new = normalise_indexing_policy(change.after.get("indexingPolicy"))
    removed = [f"included path {p}" for p in old["includedPaths"] if p not in new["includedPaths"]]
    removed += [f"path {p} (now excluded)" for p in new["excludedPaths"] if p not in old["excludedPaths"]]
    added = [p for p in new["includedPaths"] if p not in old["includedPaths"]]
    for key in INDEX_LISTS:
        label = LIST_LABELS[key]
        removed += [f"{label} {show(e)}" for e in old[key] if e not in new[key]]
        added += [f"{label} {show(e)}" for e in new[key] if e not in old[key]]
    if removed:
        yield (
            "CM201",
            (
                f"container {change.container} loses {', '.join(str(r) for r in removed[:3])}: queries that filter or "
                "sort on it become scans or are refused (ORDER BY); check the application's queries first"
            ),
        )
    if removed and added:
        yield (
            "CM202",
            (
                f"container {change.container} gets new indexes and loses old ones in one revision: the service stops "
                "using the removed ones at once and uses the new ones only when the transformation ends; add the new "
                "ones in this revision and remove the old ones in a later one"
            ),
        )


def unique_over_data(
    change: Change, state: DatabaseState, deleted: set[str], idempotent: bool
) -> Iterable[tuple[str, str]]:
    if change.kind != "copy_container" or change.data is None or change.container is None:
        return
    target, source = state.get(change.container), state.get(change.data.source or "")
    if target is None or not target.unique_keys:
        return
    theirs = set(source.unique_keys) if source is not None else set()
    new = [k for k in target.unique_keys if k not in theirs]
    if new:
        yield (
            "CM301",
            (
                f"copies {change.data.source} into {change.container}, whose unique keys "
                f"{'; '.join('[' + ', '.join(k) + ']' for k in new)} the source does not "
                "have: duplicates are refused document by document (dead letters); look for them before the copy"
            ),
        )


def analytical_off(
    change: Change, state: DatabaseState, deleted: set[str], idempotent: bool
) -> Iterable[tuple[str, str]]:
    if (
        change.after is not None
        and change.effect in ("create", "update")
        and change.after.get("analyticalStorageTtl") == 0
    ):
        before = change.before.get("analyticalStorageTtl") if change.before is not None else None
        if before != 0:
            yield (
                "CM401",
                (
                    f"container {change.container}: analytical_storage_ttl 0 turns the analytical store off for good "
                    "(it can never be turned on again); use -1 or seconds unless that is meant"
                ),
            )


def data_step(change: Change, state: DatabaseState, deleted: set[str], idempotent: bool) -> Iterable[tuple[str, str]]:
    if change.kind in ("transform_items", "copy_container") and not idempotent:
        yield (
            "CM501",
            (
                f"{change.note}: the revision does not declare idempotent = True, so an interrupted run waits for "
                "cosmigrate repair; guard fn (return None when a document is already done) and declare it"
            ),
        )


ANALYZERS: tuple[Analyzer, ...] = (destructive, indexes, unique_over_data, analytical_off, data_step)
