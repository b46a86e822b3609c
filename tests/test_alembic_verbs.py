"""What Alembic users reach for: relative targets (pure, on the revision graph), ``current``, ``heads``, ``show REV``
and the ``upgrade``/``downgrade`` aliases (through the CLI, against the local endpoint)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from azure.cosmos import CosmosClient

from cosmigrate.errors import GraphError
from cosmigrate.scripts.graph import Node, RevisionGraph
from tests.conftest import CliResult


@pytest.fixture
def graph() -> RevisionGraph:
    return RevisionGraph([Node("001", None, "a"), Node("002", "001", "b"), Node("003", "002", "c")])


def test_relative_targets_count_from_what_is_applied(graph: RevisionGraph) -> None:
    assert [n.revision for n in graph.upgrade_plan(["001"], "+1")] == ["002"]
    assert [n.revision for n in graph.upgrade_plan(["001"], "+2")] == ["002", "003"]
    assert [n.revision for n in graph.downgrade_plan(["001", "002", "003"], "-2")] == ["003", "002"]
    assert graph.upgrade_plan(["001"], "+0") == []
    with pytest.raises(GraphError, match="past head from 001"):
        graph.upgrade_plan(["001"], "+3")
    with pytest.raises(GraphError, match="below base"):
        graph.downgrade_plan(["001"], "-2")
    with pytest.raises(GraphError, match="below the current revision 002: use 'cosmigrate down"):
        graph.upgrade_plan(["001", "002"], "-1")
    with pytest.raises(GraphError, match=r"down goes back: --to \+1 goes forward; use -1"):
        graph.downgrade_plan(["001"], "+1")
    graph.check_downgrade("-1", None)  # the form alone is checked before the database is read


def test_current_heads_show_and_the_alembic_aliases(
    run_cli: Callable[..., CliResult], cosmos: CosmosClient, database_name: str
) -> None:
    heads = json.loads(run_cli("heads", "--json").stdout)
    assert heads["heads"] == ["005"] and run_cli("heads").stdout.strip() == "005 (head)"
    assert run_cli("upgrade", "--to", "+3").code == 0
    assert run_cli("current").stdout.strip() == "003 (head 005)"
    assert json.loads(run_cli("current", "--json").stdout)["current"] == "003"
    assert run_cli("downgrade", "--to", "-2", "--yes").code == 0
    assert run_cli("current").stdout.strip() == "001 (head 005)"
    shown = json.loads(run_cli("show", "002", "--json").stdout)
    assert (shown["revision"], shown["down_revision"], shown["state"]) == ("002", "001", "pending")  # reverted
    assert [(e["event"], e["direction"]) for e in shown["events"]] == [("applied", "up"), ("reverted", "down")]
    assert shown["file"].endswith("002_create_integrations.py") and shown["checksum"].startswith("sha256:")
    assert json.loads(run_cli("show", "head", "--json").stdout)["revision"] == "005"
    text = run_cli("show", "001").stdout
    assert "state         applied since" in text and "follows       base" in text
    unknown = run_cli("show", "999")
    assert unknown.code == 2 and "unknown revision '999'" in unknown.stderr and "001, 002" in unknown.stderr
    far = run_cli("up", "--to", "+9")
    assert far.code == 2 and "past head from 001" in far.stderr


def test_show_without_a_database_says_so(run_cli: Callable[..., CliResult], database_name: str) -> None:
    shown = run_cli("show", "004")
    assert shown.code == 0 and f"unknown (database {database_name} does not exist)" in shown.stdout
