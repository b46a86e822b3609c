"""The revision graph alone: pure, no database, no files."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from cosmigrate.errors import GraphError, HistoryConflict, UsageError
from cosmigrate.scripts.graph import BASE, HEAD, Node, RevisionGraph


def chain(*revisions: str) -> list[Node]:
    """Nodes for a straight chain, each following the one before; sources are ``<revision>_x.py``."""
    nodes, parent = [], None
    for revision in revisions:
        nodes.append(Node(revision, parent, f"{revision}_x.py"))
        parent = revision
    return nodes


def revisions(nodes: list[Node]) -> list[str]:
    return [node.revision for node in nodes]


@pytest.fixture
def graph() -> RevisionGraph:
    return RevisionGraph(chain("001", "002", "003", "004"))


# ordering


@pytest.mark.parametrize(
    "shuffle",
    [lambda n: n, lambda n: list(reversed(n)), lambda n: [n[2], n[0], n[3], n[1]]],
    ids=["in order", "reversed", "mixed"],
)
def test_order_follows_down_revision_not_input_order(shuffle: Callable[[list[Node]], list[Node]]) -> None:
    graph = RevisionGraph(shuffle(chain("001", "002", "003", "004")))
    assert revisions(list(graph.order)) == ["001", "002", "003", "004"]
    assert graph.head == "004"


def test_order_follows_down_revision_not_revision_names() -> None:
    """Names are labels: the chain decides the order, even when it disagrees with sorting."""
    nodes = [Node("b", None, "b.py"), Node("a", "c", "a.py"), Node("c", "b", "c.py")]
    graph = RevisionGraph(nodes)
    assert revisions(list(graph.order)) == ["b", "c", "a"]
    assert graph.head == "a"


def test_membership() -> None:
    graph = RevisionGraph(chain("001", "002"))
    assert "001" in graph and "002" in graph
    assert "003" not in graph and None not in graph and BASE not in graph


def test_empty_graph() -> None:
    graph = RevisionGraph([])
    assert graph.order == () and graph.head is None
    assert graph.resolve(BASE) == 0 and graph.resolve(HEAD) == 0
    with pytest.raises(GraphError, match="unknown revision '001': use base, head or one of: none"):
        graph.resolve("001")
    assert graph.applied_count([]) == 0
    assert graph.upgrade_plan([]) == []
    assert graph.downgrade_plan([]) == []
    assert graph.downgrade_plan([], target=BASE) == []


def test_a_single_revision() -> None:
    graph = RevisionGraph(chain("001"))
    assert graph.head == "001"
    assert revisions(graph.upgrade_plan([])) == ["001"]
    assert revisions(graph.downgrade_plan(["001"])) == ["001"]


# broken chains: refused up front, naming the file


@pytest.mark.parametrize(
    ("nodes", "message"),
    [
        pytest.param(
            [*chain("001", "002"), Node("002", "001", "002_again.py")],
            r"^002_again\.py: revision '002' is also declared by 002_x\.py",
            id="duplicate revision",
        ),
        pytest.param(
            [*chain("001"), Node("003", "002", "003_x.py")],
            r"^003_x\.py: down_revision '002' names no script",
            id="dangling down_revision",
        ),
        pytest.param(
            [*chain("001", "002"), Node("003", "001", "003_x.py")],
            r"^003_x\.py: down_revision '001' is also the parent of 002_x\.py; two heads",
            id="two heads",
        ),
        pytest.param(
            [*chain("001"), Node("002", None, "002_x.py")],
            r"^002_x\.py: down_revision None, but 001_x\.py is already the first revision",
            id="two first revisions",
        ),
        pytest.param(
            [*chain("001"), Node("002", "003", "002_x.py"), Node("003", "002", "003_x.py")],
            r"^002_x\.py: its down_revision chain loops",
            id="loop beside a good chain",
        ),
        pytest.param(
            [Node("001", "002", "001_x.py"), Node("002", "001", "002_x.py")],
            r"^001_x\.py: its down_revision chain loops",
            id="loop with no first revision",
        ),
        pytest.param(
            [*chain("001"), Node("002", "002", "002_x.py")],
            r"^002_x\.py: its down_revision chain loops",
            id="revision is its own parent",
        ),
    ],
)
def test_broken_chains_are_refused_naming_the_file(nodes: list[Node], message: str) -> None:
    with pytest.raises(GraphError, match=message) as refused:
        RevisionGraph(nodes)
    assert refused.value.exit_code == 2 and isinstance(refused.value, UsageError)


def test_broken_chains_are_refused_whatever_the_input_order() -> None:
    nodes = [Node("003", "001", "003_x.py"), *chain("001", "002")]
    with pytest.raises(GraphError, match="two heads"):
        RevisionGraph(nodes)


# targets


@pytest.mark.parametrize(
    ("target", "count"),
    [(BASE, 0), ("001", 1), ("002", 2), ("004", 4), (HEAD, 4)],
)
def test_targets_resolve_to_applied_counts(graph: RevisionGraph, target: str, count: int) -> None:
    assert graph.resolve(target) == count


def test_an_unknown_target_lists_the_known_ones(graph: RevisionGraph) -> None:
    with pytest.raises(GraphError, match=r"^unknown revision '005': use base, head or one of: 001, 002, 003, 004$"):
        graph.resolve("005")


# upgrade plans


@pytest.mark.parametrize(
    ("applied", "target", "expected"),
    [
        ([], HEAD, ["001", "002", "003", "004"]),
        (["001"], HEAD, ["002", "003", "004"]),
        (["001"], "003", ["002", "003"]),
        (["001", "002"], "002", []),
        (["001", "002", "003", "004"], HEAD, []),
        ([], BASE, []),
    ],
)
def test_upgrade_plans(graph: RevisionGraph, applied: list[str], target: str, expected: list[str]) -> None:
    assert revisions(graph.upgrade_plan(applied, target)) == expected


def test_upgrade_defaults_to_head(graph: RevisionGraph) -> None:
    assert revisions(graph.upgrade_plan(["001", "002"])) == ["003", "004"]


def test_applied_order_does_not_matter(graph: RevisionGraph) -> None:
    assert revisions(graph.upgrade_plan(["002", "001"])) == ["003", "004"]


@pytest.mark.parametrize("target", ["001", BASE])
def test_upgrading_to_a_target_below_the_current_revision_is_refused(graph: RevisionGraph, target: str) -> None:
    with pytest.raises(GraphError, match=f"target '{target}' is below the current revision 003: .*cosmigrate down"):
        graph.upgrade_plan(["001", "002", "003"], target)


def test_upgrading_to_an_unknown_target_is_refused(graph: RevisionGraph) -> None:
    with pytest.raises(GraphError, match="unknown revision '009'"):
        graph.upgrade_plan([], "009")


# downgrade plans

APPLIED = ["001", "002", "003"]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, ["003"]),
        ({"steps": 1}, ["003"]),
        ({"steps": 2}, ["003", "002"]),
        ({"steps": 3}, ["003", "002", "001"]),
        ({"steps": 10}, ["003", "002", "001"]),
        ({"target": "002"}, ["003"]),
        ({"target": "001"}, ["003", "002"]),
        ({"target": "003"}, []),
        ({"target": BASE}, ["003", "002", "001"]),
    ],
    ids=["one step by default", "steps 1", "steps 2", "steps all", "steps too many", "to 002", "to 001",
         "to current", "to base"],
)  # fmt: skip
def test_downgrade_plans_are_newest_first(graph: RevisionGraph, kwargs: dict[str, Any], expected: list[str]) -> None:
    assert revisions(graph.downgrade_plan(APPLIED, **kwargs)) == expected


def test_downgrading_with_nothing_applied_is_empty(graph: RevisionGraph) -> None:
    assert graph.downgrade_plan([]) == []
    assert graph.downgrade_plan([], steps=3) == []
    assert graph.downgrade_plan([], target=BASE) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target": "004"}, r"target '004' is not applied yet: use 'cosmigrate up --to 004'"),
        ({"target": HEAD}, r"target 'head' is not applied yet"),
        ({"target": "009"}, r"unknown revision '009'"),
        ({"target": "001", "steps": 1}, r"^give either --to or --steps, not both$"),
        ({"target": BASE, "steps": 2}, r"^give either --to or --steps, not both$"),
        ({"steps": 0}, r"^--steps must be 1 or more, not 0$"),
        ({"steps": -2}, r"^--steps must be 1 or more, not -2$"),
    ],
    ids=["target above current", "head not applied", "unknown target", "both", "base and steps", "steps 0",
         "steps negative"],
)  # fmt: skip
def test_bad_downgrades_are_refused(graph: RevisionGraph, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(GraphError, match=message):
        graph.downgrade_plan(APPLIED, **kwargs)


@pytest.mark.parametrize(
    ("target", "steps", "message"),
    [("001", 2, "either --to or --steps"), ("zzz", None, "unknown revision 'zzz'"), (None, 0, "--steps must be 1")],
)
def test_down_arguments_are_checked_before_anything_is_known_to_be_applied(
    graph: RevisionGraph, target: str | None, steps: int | None, message: str
) -> None:
    with pytest.raises(GraphError, match=message):
        graph.check_downgrade(target, steps)
    graph.check_downgrade(None, None)
    graph.check_downgrade("002", None)
    graph.check_downgrade(None, 3)


# applied revisions must be a prefix of the chain


@pytest.mark.parametrize(
    ("applied", "count"),
    [([], 0), (["001"], 1), (["001", "002", "003", "004"], 4), (["003", "001", "002"], 3)],
)
def test_applied_count(graph: RevisionGraph, applied: list[str], count: int) -> None:
    assert graph.applied_count(applied) == count


@pytest.mark.parametrize(
    ("applied", "message"),
    [
        (["001", "003"], "revision 002 is pending but 003 after it is applied"),
        (["002"], "revision 001 is pending but 002 after it is applied"),
        (["001", "002", "004"], "revision 003 is pending but 004 after it is applied"),
    ],
)
def test_a_pending_revision_below_an_applied_one_is_refused(
    graph: RevisionGraph, applied: list[str], message: str
) -> None:
    """Out of order: a script was slipped in under revisions already run (golang-migrate#179)."""
    with pytest.raises(HistoryConflict, match=message) as refused:
        graph.applied_count(applied)
    assert refused.value.exit_code == 1
    with pytest.raises(HistoryConflict):
        graph.upgrade_plan(applied)
    with pytest.raises(HistoryConflict):
        graph.downgrade_plan(applied)


def test_the_graph_module_imports_nothing_of_cosmos_db() -> None:
    """Imported alone in a fresh interpreter, the graph pulls in no Cosmos DB client."""
    code = "import sys, cosmigrate.scripts.graph; print(sorted(m for m in sys.modules if m.startswith('azure')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
