"""The pure model the product plans with: container definitions, the simulated state, operations, the planner
and drift comparison. No endpoint: these are the product's own models, tested on their own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cosmigrate.errors import DefinitionConflict, InvalidDefinition
from cosmigrate.model.container import ContainerDef
from cosmigrate.model.diff import diff
from cosmigrate.model.state import DatabaseState
from cosmigrate.ops.operations import CreateContainer, DeleteContainer, ReplaceIndexingPolicy, apply_change
from cosmigrate.plan.planner import plan
from cosmigrate.scripts.loader import load_all

POLICY = {
    "indexingMode": "consistent",
    "automatic": True,
    "includedPaths": [{"path": "/tenantId/*"}, {"path": "/status/*"}],
    "excludedPaths": [{"path": "/*"}],
}
# What the service returns for POLICY: its additions and spellings.
STORED = {
    "indexingMode": "Consistent",
    "automatic": True,
    "includedPaths": [{"path": "/status/*", "indexes": []}, {"path": "/tenantId/*", "indexes": []}],
    "excludedPaths": [{"path": "/*"}, {"path": '/"_etag"/?'}],
    "compositeIndexes": [],
    "spatialIndexes": [],
}


def things(**changes: object) -> ContainerDef:
    args: dict[str, object] = {"partition_key": "/tenantId", "indexing_policy": POLICY, **changes}
    return ContainerDef.declare("things", **args)  # type: ignore[arg-type]


# -- container definitions ----------------------------------------------------------------------------------


def test_a_declared_definition_equals_what_the_service_stores_for_it() -> None:
    stored = ContainerDef.from_properties(
        {
            "id": "things",
            "partitionKey": {"paths": ["/tenantId"], "kind": "Hash", "version": 2},
            "indexingPolicy": STORED,
        }
    )
    assert stored == things()
    assert diff(things(), stored) == []


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"partition_key": "tenantId"}, "partition key 'tenantId' must be a path"),
        ({"partition_key": ["/a", "/b", "/c", "/d"]}, "a list of 1 to 3 paths"),
        ({"unique_keys": ["/a"]}, "each unique key is a non-empty list of paths"),
        ({"indexing_policy": {"includedPaths": [{"path": "/a/*"}]}}, "does not declare the root path"),
        ({"default_ttl": 0}, "default_ttl must be -1"),
    ],
)
def test_invalid_declarations_are_refused_naming_what_is_wrong(changes: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidDefinition, match=message):
        things(**changes)


def test_a_hierarchical_partition_key_is_multihash() -> None:
    definition = things(partition_key=["/tenantId", "/userId"])
    assert definition.to_body()["partitionKey"] == {
        "paths": ["/tenantId", "/userId"],
        "kind": "MultiHash",
        "version": 2,
    }


# -- operations decide on a state ------------------------------------------------------------------------------


def test_create_on_an_empty_state_creates_and_on_the_same_definition_keeps() -> None:
    state = DatabaseState()
    change = CreateContainer(things()).plan(state)
    assert (change.effect, change.after) == ("create", things())
    apply_change(state, change)
    again = CreateContainer(things()).plan(state)
    assert again.effect == "none" and "already as declared" in again.note


def test_create_over_another_partition_key_is_a_conflict_and_a_new_policy_an_update() -> None:
    state = DatabaseState.from_live([things()])
    with pytest.raises(DefinitionConflict, match="partition key /tenantId, not /userId"):
        CreateContainer(things(partition_key="/userId")).plan(state)
    with pytest.raises(DefinitionConflict, match="unique keys cannot change"):
        CreateContainer(things(unique_keys=[["/tenantId", "/name"]])).plan(state)
    wider = {**POLICY, "includedPaths": [*POLICY["includedPaths"], {"path": "/name/*"}]}  # type: ignore[list-item]
    update = CreateContainer(things(indexing_policy=wider)).plan(state)
    assert update.effect == "update" and update.changed == ("indexingPolicy",)
    assert [d.describe() for d in diff(update.after, update.before)] == [  # type: ignore[arg-type]
        "things: included path /name/* is declared but not live"
    ]
    apply_change(state, update)
    assert state.holds_live_data("things")  # an update keeps the live container and its documents


def test_replace_and_delete_of_a_missing_container() -> None:
    state = DatabaseState()
    with pytest.raises(DefinitionConflict, match="does not exist, so its indexing policy cannot be replaced"):
        ReplaceIndexingPolicy.declare("things", POLICY).plan(state)
    assert DeleteContainer("things").plan(state).effect == "none"
    with pytest.raises(DefinitionConflict, match="cannot be deleted"):
        DeleteContainer("things", if_exists=False).plan(state)


# -- drift ------------------------------------------------------------------------------------------------------


def test_drift_is_reported_path_by_path_and_service_additions_are_not_drift() -> None:
    live = ContainerDef.from_properties(
        {
            "id": "things",
            "partitionKey": {"paths": ["/tenantId"]},
            "indexingPolicy": {**STORED, "includedPaths": [{"path": "/tenantId/*"}, {"path": "/extra/*"}]},
            "defaultTtl": 60,
        }
    )
    assert sorted(d.describe() for d in diff(things().created(), live)) == [
        "things: defaultTtl is 60 live, none declared",
        "things: included path /extra/* is live but not declared",
        "things: included path /status/* is declared but not live",
    ]
    # a definition that adopts an existing container without naming a TTL leaves the live TTL alone
    assert "defaultTtl" not in {d.what for d in diff(things(), live)}


# -- the planner ------------------------------------------------------------------------------------------------


def write(folder: Path, revision: str, down: str | None, upgrade: str, downgrade: str = "pass", top: str = "") -> None:
    (folder / f"{revision}_s.py").write_text(
        f'"""Revision {revision}."""\n{top}revision = "{revision}"\ndown_revision = {down!r}\n\n\n'
        f"def upgrade(op):\n{upgrade}\n\n\ndef downgrade(op):\n    {downgrade}\n"
    )


POLICY_SRC = "{'includedPaths': [{'path': '/*'}]}"
NARROW_SRC = "{'includedPaths': [{'path': '/p/*'}], 'excludedPaths': [{'path': '/*'}]}"


def test_a_two_step_plan_is_simulated_on_the_state_the_first_step_leaves(tmp_path: Path) -> None:
    """001 creates things, 002 reindexes it: the second step sees the first's container, without any database."""
    write(tmp_path, "001", None, f"    op.create_container('things', '/p', indexing_policy={POLICY_SRC})")
    write(tmp_path, "002", "001", f"    op.replace_indexing_policy('things', {NARROW_SRC})")
    scripts = load_all(tmp_path).ordered
    result = plan(scripts, "up", DatabaseState())
    assert [[c.effect for c in r.changes] for r in result.revisions] == [["create"], ["update"]]
    assert result.exact and result.first_block is None
    assert result.end_state.get("things") == ContainerDef.declare("things", "/p", indexing_policy=eval(NARROW_SRC))
    body = result.to_dict()["revisions"][1]["operations"][0]
    assert body["before"]["indexingPolicy"]["includedPaths"] == [{"path": "/*"}]
    assert body["after"]["indexingPolicy"]["excludedPaths"] == [{"path": "/*"}]


def test_data_work_stops_the_simulation_of_that_script_and_later_steps_are_a_best_guess(tmp_path: Path) -> None:
    write(
        tmp_path,
        "001",
        None,
        "    op.create_container('things', '/p')\n    op.container('things')\n    raise SystemError",
    )
    write(tmp_path, "002", "001", "    op.replace_indexing_policy('other', {'includedPaths': [{'path': '/*'}]})")
    result = plan(load_all(tmp_path).ordered, "up", DatabaseState())
    first, second = result.revisions
    assert first.stopped and "data work on things" in first.stopped and not first.blocked
    assert [c.kind for c in first.changes] == ["create_container", "data_access"]
    assert second.conflict and second.uncertain and not result.exact


@pytest.mark.parametrize(
    ("body", "code", "line", "says"),
    [
        ("    op.create_container('things', partition_key='/p', unique_key=[['/a']])", "bad-call", 7, "unique_key"),
        ("    raise NotImplementedError('write the upgrade')", "not-implemented", 7, "write the upgrade"),
        ("    op.create_container('things', partition_key='p')", "invalid-definition", 7, "partition key 'p'"),
        ("    op.flag('force')", "undeclared-argument", 7, "reads -x force but does not declare it"),
        ("    x = {}\n    x['missing']", "script-error", 8, "KeyError"),
    ],
)
def test_a_faulty_script_is_named_with_its_file_line_and_kind(
    tmp_path: Path, body: str, code: str, line: int, says: str
) -> None:
    write(tmp_path, "001", None, body)
    fault = plan(load_all(tmp_path).ordered, "up", DatabaseState()).faults[0]
    assert (fault.file, fault.code, fault.line) == ("001_s.py", code, line)
    assert says in fault.message


def test_a_refusal_and_a_declared_argument(tmp_path: Path) -> None:
    write(
        tmp_path, "001", None, "    if not op.flag('go'):\n        op.refuse('not yet')",
        top="arguments = {'go': 'really do it'}\n",
    )  # fmt: skip
    scripts = load_all(tmp_path).ordered
    assert plan(scripts, "up", DatabaseState()).revisions[0].refused == "not yet"
    assert plan(scripts, "up", DatabaseState(), x={"go": "true"}).first_block is None


def test_planning_is_visible_to_scripts(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    write(tmp_path, "001", None, f"    if not op.planning:\n        open({str(marker)!r}, 'w').close()")
    plan(load_all(tmp_path).ordered, "up", DatabaseState())
    assert not marker.exists()


def test_the_planning_modules_import_no_cosmos_client() -> None:
    """The model, the operations, the planner, the offline verbs and the CLI's start import no azure module, so
    check, new and --help start fast and the planner stays pure."""
    modules = [
        "cosmigrate.model.container", "cosmigrate.model.state", "cosmigrate.model.diff", "cosmigrate.ops.operations",
        "cosmigrate.ops.facade", "cosmigrate.ops.simulate", "cosmigrate.plan.planner", "cosmigrate.app.state",
        "cosmigrate.app.results", "cosmigrate.app.offline", "cosmigrate.cli.main", "cosmigrate.cli.render",
    ]  # fmt: skip
    code = f"import sys\nfor m in {modules!r}: __import__(m)\n"
    code += "print(sorted(m for m in sys.modules if m.startswith('azure')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
