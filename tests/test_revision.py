"""The revision graph alone: pure, no database, no files."""

from __future__ import annotations

from pathlib import Path

import pytest

from cosmigrate.errors import GraphError, HistoryConflict
from cosmigrate.revision import Node, RevisionGraph


def chain(*revisions: str) -> list[Node]:
    nodes, parent = [], None
    for revision in revisions:
        nodes.append(Node(revision, parent, f"{revision}_x.py"))
        parent = revision
    return nodes


def test_order_follows_down_revision_not_input_order() -> None:
    graph = RevisionGraph(reversed(chain("001", "002", "003")))
    assert [n.revision for n in graph.order] == ["001", "002", "003"]
    assert graph.head == "003" and "002" in graph and "009" not in graph


def test_empty_graph() -> None:
    graph = RevisionGraph([])
    assert graph.head is None and graph.order == ()
    assert graph.upgrade_plan([]) == []


@pytest.mark.parametrize(
    ("nodes", "message"),
    [
        (
            [*chain("001", "002"), Node("002", "001", "002_again.py")],
            "002_again.py: revision '002' is also declared by",
        ),
        ([*chain("001"), Node("003", "002", "003_x.py")], "003_x.py: down_revision '002' names no script"),
        ([*chain("001", "002"), Node("003", "001", "003_x.py")], "is also the parent of"),
        (
            [*chain("001"), Node("002", None, "002_x.py")],
            "down_revision None, but 001_x.py is already the first revision",
        ),
        ([*chain("001"), Node("002", "003", "002_x.py"), Node("003", "002", "003_x.py")], "loops"),
    ],
    ids=["duplicate", "dangling", "two heads", "two bases", "cycle"],
)
def test_broken_chains_are_refused_naming_the_file(nodes: list[Node], message: str) -> None:
    with pytest.raises(GraphError, match=message):
        RevisionGraph(nodes)


def test_targets_resolve_to_applied_counts() -> None:
    graph = RevisionGraph(chain("001", "002", "003"))
    assert graph.resolve("base") == 0 and graph.resolve("head") == 3 and graph.resolve("002") == 2
    with pytest.raises(GraphError, match="unknown revision '004': use base, head or one of: 001, 002, 003"):
        graph.resolve("004")


def test_upgrade_plans() -> None:
    graph = RevisionGraph(chain("001", "002", "003", "004"))
    assert [n.revision for n in graph.upgrade_plan([])] == ["001", "002", "003", "004"]
    assert [n.revision for n in graph.upgrade_plan(["001"], "003")] == ["002", "003"]
    assert graph.upgrade_plan(["001", "002", "003", "004"]) == []
    with pytest.raises(GraphError, match="below the current revision 003"):
        graph.upgrade_plan(["001", "002", "003"], "001")


def test_downgrade_plans() -> None:
    graph = RevisionGraph(chain("001", "002", "003", "004"))
    applied = ["001", "002", "003"]
    assert [n.revision for n in graph.downgrade_plan(applied)] == ["003"]
    assert [n.revision for n in graph.downgrade_plan(applied, steps=2)] == ["003", "002"]
    assert [n.revision for n in graph.downgrade_plan(applied, steps=10)] == ["003", "002", "001"]
    assert [n.revision for n in graph.downgrade_plan(applied, target="001")] == ["003", "002"]
    assert [n.revision for n in graph.downgrade_plan(applied, target="base")] == ["003", "002", "001"]
    assert graph.downgrade_plan([], target="base") == []
    with pytest.raises(GraphError, match="not applied yet"):
        graph.downgrade_plan(applied, target="004")
    with pytest.raises(GraphError, match="either --to or --steps"):
        graph.downgrade_plan(applied, target="001", steps=1)
    with pytest.raises(GraphError, match="--steps must be 1 or more, not 0"):
        graph.downgrade_plan(applied, steps=0)


def test_a_pending_revision_below_an_applied_one_is_refused() -> None:
    """Out of order: a script was slipped in under revisions already run (golang-migrate#179)."""
    graph = RevisionGraph(chain("001", "002", "003"))
    assert graph.applied_count(["001", "002"]) == 2
    with pytest.raises(HistoryConflict, match="revision 002 is pending but 003 after it is applied"):
        graph.applied_count(["001", "003"])
    with pytest.raises(HistoryConflict):
        graph.upgrade_plan(["001", "003"])


def test_the_graph_module_imports_nothing_of_cosmos_db() -> None:
    import cosmigrate.revision as revision

    source = Path(revision.__file__).read_text(encoding="utf-8")
    assert "azure" not in source and "cosmos" not in source.replace("cosmigrate", "")
