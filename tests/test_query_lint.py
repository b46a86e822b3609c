"""Query lint: the parser, each rule, the revision that breaks a query, the seed's queries file in check, and the
local endpoint confirming the error cases (it refuses what the lint calls an error, and answers the rest)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from azure.cosmos import DatabaseProxy, PartitionKey
from azure.cosmos import exceptions as cosmos_errors

from cosmigrate.model.container import ContainerDef
from cosmigrate.model.sql import Filter, QueryError, parse
from cosmigrate.model.state import DatabaseState
from cosmigrate.plan import planner
from cosmigrate.plan.query_lint import NamedQuery, judge, lint_queries, load_queries
from cosmigrate.scripts.loader import load_all
from tests.conftest import CliResult

POLICY = {
    "includedPaths": [{"path": "/*"}],
    "excludedPaths": [{"path": "/blob/*"}, {"path": "/meta/secret/?"}],
    "compositeIndexes": [[{"path": "/a", "order": "ascending"}, {"path": "/b", "order": "descending"}]],
}
THINGS = ContainerDef.declare("things", "/tenantId", indexing_policy=POLICY)


def findings(query: str, container: ContainerDef = THINGS) -> list[tuple[str, str]]:
    return [(f.level, f.message) for f in judge(NamedQuery("q", container.id, query, 1), parse(query), container)]


def levels(query: str) -> list[str]:
    return [level for level, _ in findings(query)]


def test_the_parser_keeps_filters_and_orders() -> None:
    query = parse(
        "SELECT DISTINCT VALUE o.id FROM orders o JOIN t IN o.tags WHERE o.tenantId = @t AND o.total > 10 "
        "AND t.name IN ('a', 'b') AND IS_DEFINED(o[\"x\"]) AND (o.s = 1 OR o.u = 2) ORDER BY o.total DESC, o.id"
    )
    assert query.alias == "o"
    assert query.filters == [
        Filter("/tenantId", "equality"), Filter("/total", "range"), Filter("/tags/[]/name", "equality"),
        Filter("/x", "other"), Filter("/s", "other"), Filter("/u", "other"),
    ]  # fmt: skip
    assert query.order_by == [("/total", "descending"), ("/id", "ascending")]
    for broken in ("SELECT FROM c", "SELECT * FROM c WHERE", "SELECT * FROM c ORDER BY LOWER(c.a)", "DELETE c"):
        with pytest.raises(QueryError):
            parse(broken)


def test_each_rule() -> None:
    assert levels("SELECT * FROM c WHERE c.tenantId = @t ORDER BY c.a") == []
    excluded = findings("SELECT * FROM c WHERE c.tenantId = @t ORDER BY c.blob.size")
    assert excluded[0][0] == "error" and "excluded by /blob/*" in excluded[0][1]
    assert levels("SELECT * FROM c WHERE c.tenantId = @t ORDER BY c.meta.secret")[0] == "error"  # /x/? exact
    assert levels("SELECT * FROM c WHERE c.tenantId = @t ORDER BY c.a, c.b DESC") == []
    assert levels("SELECT * FROM c WHERE c.tenantId = @t ORDER BY c.a DESC, c.b") == []  # all reversed
    wrong = findings("SELECT * FROM c WHERE c.tenantId = @t ORDER BY c.a, c.b")  # one direction differs
    assert wrong[0][0] == "error" and "composite index [/a asc, /b asc]" in wrong[0][1]
    assert levels("SELECT * FROM c WHERE c.tenantId = @t ORDER BY c.b, c.a")[0] == "error"  # order matters
    scan = findings("SELECT * FROM c WHERE c.tenantId = @t AND c.blob.kind = 'x'")
    assert scan == [("warning", scan[0][1])] and "scans" in scan[0][1]
    cheaper = findings("SELECT * FROM c WHERE c.tenantId = @t AND c.status = 'x' ORDER BY c.name")
    assert cheaper == [("note", cheaper[0][1])] and "[/status asc, /name asc]" in cheaper[0][1]
    cross = findings("SELECT * FROM c WHERE c.status = 'x'")
    assert cross == [("note", cross[0][1])] and "partition key /tenantId" in cross[0][1]
    off = ContainerDef.declare("things", "/tenantId", indexing_policy={"indexingMode": "none", "automatic": False})
    assert "error" in [level for level, _ in findings("SELECT * FROM c WHERE c.tenantId = @t ORDER BY c.a", off)]


def test_a_revision_that_breaks_a_query_is_named(tmp_path: Path) -> None:
    for revision, down, body in (
        ("001", None, f"op.create_container('things', '/tenantId', indexing_policy={POLICY!r})"),
        ("002", "001", "op.replace_indexing_policy('things', {'includedPaths': [{'path': '/*'}]})"),
    ):
        (tmp_path / f"{revision}_r.py").write_text(
            f'"""R."""\nrevision = "{revision}"\ndown_revision = {down!r}\n\n\ndef upgrade(op):\n    {body}\n\n\n'
            "def downgrade(op):\n    pass\n"
        )
    (tmp_path / "queries.sql").write_text(
        "-- name: sorted\n-- container: things\nSELECT * FROM c WHERE c.tenantId = @t ORDER BY c.a, c.b DESC\n\n"
        "-- name: fine\n-- container: things\nSELECT * FROM c WHERE c.tenantId = @t\n"
    )
    queries = load_queries(tmp_path)
    assert queries is not None and [q.name for q in queries] == ["sorted", "fine"]
    plan = planner.plan(load_all(tmp_path).ordered, "up", DatabaseState())
    found = [(f.level, f.query, f.revision) for f in lint_queries(queries, plan)]
    assert ("error", "sorted", "002") in found and all(q != "fine" for _, q, _ in found if _ == "error")
    message = next(f.message for f in lint_queries(queries, plan) if f.revision == "002")
    assert message.startswith("revision 002 (002_r.py) breaks it: ORDER BY on 2 properties needs the composite")
    (tmp_path / "003_r.py").write_text(
        '"""R."""\nrevision = "003"\ndown_revision = "002"\n\n\ndef upgrade(op):\n    op.delete_container("things")'
        "\n\n\ndef downgrade(op):\n    pass\n"
    )
    plan = planner.plan(load_all(tmp_path).ordered, "up", DatabaseState())
    gone = [f.message for f in lint_queries(queries, plan) if f.revision == "003"]
    assert gone == ["revision 003 (003_r.py) breaks it: it deletes container things"] * 2


def test_the_seed_queries_are_checked_in_ci(run_cli: Callable[..., CliResult]) -> None:
    result = run_cli("check", "--json")
    assert result.code == 0, result.stdout
    queries = json.loads(result.stdout)["queries"]
    expired = [q for q in queries if q["query"] == "expired-connections"]
    assert ("warning", True) in [(q["level"], "c.oauth.expiresAt" in q["message"] and "/oauth/*" in q["message"])
                                 for q in expired]  # fmt: skip
    assert not [q for q in queries if q["level"] == "error"]


CONFIRM = [
    "SELECT * FROM c WHERE c.tenantId = 't' ORDER BY c.a",
    "SELECT * FROM c WHERE c.tenantId = 't' ORDER BY c.blob.size",
    "SELECT * FROM c WHERE c.tenantId = 't' ORDER BY c.meta.secret",
    "SELECT * FROM c WHERE c.tenantId = 't' ORDER BY c.a, c.b DESC",
    "SELECT * FROM c WHERE c.tenantId = 't' ORDER BY c.a DESC, c.b",
    "SELECT * FROM c WHERE c.tenantId = 't' ORDER BY c.a, c.b",
    "SELECT * FROM c WHERE c.tenantId = 't' ORDER BY c.b, c.a",
]


@pytest.mark.parametrize("query", CONFIRM)
def test_the_local_endpoint_refuses_exactly_what_the_lint_calls_an_error(query: str, database: DatabaseProxy) -> None:
    container = database.create_container("things", PartitionKey("/tenantId"), indexing_policy=POLICY)
    container.create_item({"id": "1", "tenantId": "t", "a": 1, "b": 2, "blob": {"size": 3}, "meta": {"secret": 4}})
    error = "error" in levels(query)
    try:
        rows = list(container.query_items(query, partition_key="t"))
    except cosmos_errors.CosmosHttpResponseError as refused:
        assert error and refused.status_code == 400, (query, refused.message)
        assert "order-by item is excluded" in refused.message or "corresponding composite index" in refused.message
        return
    assert not error and len(rows) == 1, query
