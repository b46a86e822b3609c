"""Query lint: the application's queries judged against the indexing policy the migrations replay to, at every
revision (pure).

A project keeps its queries in ``migrations/queries.sql``, each after a header naming it and its container::

    -- name: expired-connections
    -- container: integration-connections
    SELECT * FROM c WHERE c.status = 'expired' OR c.oauth.expiresAt < @now

Rules (the service's, see shared/NOTES.md): an ORDER BY on a path that is not indexed is refused (error); an
ORDER BY on several properties needs a composite index with the same paths in the same order and directions,
or all reversed (error); a filter on an excluded path runs as a scan (warning); a filter with an ORDER BY that a
composite index would serve more cheaply (equality filters first, then the order) gets a note naming the index to
add; a filter without the partition key is a cross-partition query (note). A revision that turns a query's
finding into an error names both: the revision that breaks the query.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cosmigrate.errors import UsageError
from cosmigrate.model.container import ContainerDef
from cosmigrate.model.definitions import normalise_indexing_policy
from cosmigrate.model.sql import Query, QueryError, parse
from cosmigrate.model.state import DatabaseState
from cosmigrate.ops.change import apply_change
from cosmigrate.plan.planner import Plan

QUERIES_FILE = "queries.sql"
HEADER = re.compile(r"^\s*--\s*(name|container)\s*:\s*(\S.*?)\s*$", re.IGNORECASE)
LEVELS = ("error", "warning", "note")


@dataclass(frozen=True)
class NamedQuery:
    name: str
    container: str
    text: str
    line: int


@dataclass(frozen=True)
class QueryFinding:
    level: str  # error, warning, note
    query: str
    container: str
    message: str
    revision: str | None = None  # the revision that breaks it (errors that appear at a revision)

    def to_dict(self) -> dict[str, Any]:
        return {"level": self.level, "query": self.query, "container": self.container, "message": self.message,
                "revision": self.revision}  # fmt: skip


def load_queries(folder: Path) -> list[NamedQuery] | None:
    """The queries of ``migrations/queries.sql``, or None without the file; a malformed entry is a usage error."""
    path = Path(folder) / QUERIES_FILE
    if not path.is_file():
        return None
    found: list[NamedQuery] = []
    header: dict[str, str] = {}
    body: list[str] = []
    start = 0

    def close() -> None:
        text = "\n".join(body).strip()
        if not header and not text:
            return
        if "name" not in header or "container" not in header or not text:
            raise UsageError(f"{path}:{start}: each query needs -- name: and -- container: lines, then the query")
        found.append(NamedQuery(header["name"], header["container"], text, start))

    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        match = HEADER.match(line)
        if match:
            if body and "".join(body).strip():
                close()
                header, body = {}, []
            if not header:
                start = number
            header[match.group(1).lower()] = match.group(2)
        elif not line.strip().startswith("--"):
            body.append(line)
    close()
    return found


def judge(query: NamedQuery, parsed: Query, container: ContainerDef) -> list[QueryFinding]:
    """The findings of one query against one container's definition."""
    policy = normalise_indexing_policy(container.indexing_policy)
    said: list[QueryFinding] = []

    def add(level: str, message: str) -> None:
        said.append(QueryFinding(level, query.name, query.container, message))

    none = str(policy.get("indexingMode", "consistent")).lower() == "none"
    if len(parsed.order_by) == 1:
        path = parsed.order_by[0][0]
        if none or not indexed(path, policy):
            add("error", f"ORDER BY {_dotted(path)}: {path} is not indexed in {container.id} ({_why(path, policy)}): "
                         "the service refuses the query; include the path")  # fmt: skip
    elif len(parsed.order_by) > 1 and not _composite_for(parsed.order_by, policy):
        wanted = ", ".join(f"{p} {'desc' if d == 'descending' else 'asc'}" for p, d in parsed.order_by)
        add("error", f"ORDER BY on {len(parsed.order_by)} properties needs the composite index [{wanted}] (or all "
                     f"reversed) in {container.id}: the service refuses the query without it")  # fmt: skip
    for path in dict.fromkeys(f.path for f in parsed.filters):
        if not none and not indexed(path, policy):
            add("warning", f"filters on {_dotted(path)}, which {container.id} does not index ({_why(path, policy)}): "
                           "the query scans every document in its partitions; include the path")  # fmt: skip
    key = list(container.partition_key)
    equality = [p for p in parsed.equality_paths if p not in key]
    served = any(_serves(c, parsed.equality_paths, equality, parsed.order_by) for c in policy["compositeIndexes"])
    refused = any(f.level == "error" for f in said)  # the error names the index already
    if parsed.order_by and parsed.filters and equality and not served and not refused:
        index = [(p, "ascending") for p in equality] + list(parsed.order_by)
        shown = ", ".join(f"{p} {'desc' if d == 'descending' else 'asc'}" for p, d in index)
        add("note", f"a composite index [{shown}] in {container.id} would serve this filter and order more "
                    "cheaply")  # fmt: skip
    key = list(container.partition_key)
    if key and not all(p in parsed.equality_paths for p in key):
        add("note", f"no equality on the partition key {', '.join(key)}: a cross-partition query")
    return said


def lint_queries(queries: Iterable[NamedQuery], plan: Plan) -> list[QueryFinding]:
    """Each query at head, and the revisions that break one (an error that was not there before it)."""
    parsed: dict[str, Query] = {}
    findings: list[QueryFinding] = []
    for query in queries:
        try:
            parsed[query.name] = parse(query.text)
        except QueryError as exc:
            findings.append(QueryFinding("error", query.name, query.container, f"cannot read it: {exc}"))
    named = {q.name: q for q in queries if q.name in parsed}
    state = DatabaseState()
    previous: dict[str, set[str] | None] = {name: None for name in named}  # None: the container is not there
    gone: set[str] = set()  # queries whose container a revision deleted (said once, at that revision)
    for revision in plan.revisions:
        for change in revision.changes:
            apply_change(state, change)
        for name, query in named.items():
            container = state.get(query.container)
            errors = None
            if container is not None:
                errors = {f.message for f in judge(query, parsed[name], container) if f.level == "error"}
            was = previous[name]
            if was is not None and errors is not None:
                for message in sorted(errors - was):
                    said = f"revision {revision.revision} ({revision.file}) breaks it: {message}"
                    findings.append(QueryFinding("error", name, query.container, said, revision.revision))
            elif was is not None and errors is None:
                said = (
                    f"revision {revision.revision} ({revision.file}) breaks it: it deletes container {query.container}"
                )
                findings.append(QueryFinding("error", name, query.container, said, revision.revision))
                gone.add(name)
            previous[name] = errors
    for name, query in named.items():
        container = state.get(query.container)
        if container is None and name in gone:
            continue
        if container is None:
            findings.append(QueryFinding("error", name, query.container,
                                         f"container {query.container} is not declared by the migrations"))  # fmt: skip
            continue
        findings += judge(query, parsed[name], container)
    return findings


# -- the service's rules --------------------------------------------------------------------------------------


def _pattern(text: str) -> tuple[str, bool]:
    """(base path, exact) of an index path: /a/* covers /a and below, /a/? (or /a) is /a alone, /* everything."""
    if text.endswith("/*"):
        return text[:-2], False
    return text.removesuffix("/?"), True


def _covers(path: str, pattern: str) -> bool:
    base, exact = _pattern(pattern)
    return path == base if exact else base == "" or path == base or path.startswith(base + "/")


def indexed(path: str, policy: Mapping[str, Any]) -> bool:
    """Whether the most specific included or excluded path covering ``path`` includes it (the root ``/*`` is
    the least specific; for the same base, an excluded path wins)."""
    best: tuple[int, int] | None = None
    include = False
    for key, included in (("includedPaths", True), ("excludedPaths", False)):
        for pattern in map(str, policy.get(key) or []):
            if _covers(path, pattern):
                base, exact = _pattern(pattern)
                rank = (len(base) + (1 if exact else 0), 0 if included else 1)
                if best is None or rank > best:
                    best, include = rank, included
    return include


def _why(path: str, policy: Mapping[str, Any]) -> str:
    excluded = sorted((str(p) for p in policy.get("excludedPaths") or [] if _covers(path, str(p))), key=len)[::-1]
    return f"excluded by {excluded[0]}" if excluded else "no included path covers it"


def _composite_for(items: list[tuple[str, str]], policy: Mapping[str, Any]) -> bool:
    """A composite index with exactly these paths in this order, with the same directions or all reversed."""
    return any(_serves(c, [], [], items) for c in policy.get("compositeIndexes") or [])


def _serves(
    composite: list[dict[str, Any]], filtered: list[str], needed: list[str], order: list[tuple[str, str]]
) -> bool:
    """Whether a composite index serves equality filters on ``filtered`` (all of ``needed`` among them) followed
    by ``order``: its last entries are the order (same directions or all reversed), the ones before are
    equality-filtered paths."""
    if not order:
        return False
    entries = [(e["path"], e.get("order", "ascending")) for e in composite]
    head, tail = entries[: -len(order)], entries[-len(order) :]
    if [p for p, _ in tail] != [p for p, _ in order]:
        return False
    same = all(a == b for (_, a), (_, b) in zip(tail, order, strict=True))
    flipped = all(a != b for (_, a), (_, b) in zip(tail, order, strict=True))
    heads = [p for p, _ in head]
    return (same or flipped) and set(heads) <= set(filtered) and set(needed) <= set(heads)


def _dotted(path: str) -> str:
    return "c" + path.replace("/", ".")
