"""plan, dry runs and verify against the real local endpoint; options before or after the verb."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.cosmos import CosmosClient, PartitionKey
from azure.cosmos import exceptions as cosmos_errors

from cosmigrate.app import commands as command
from cosmigrate.config import Config, load_config
from cosmigrate.store.history import HistoryStore
from cosmigrate.store.lock import Lease
from tests.conftest import ROOT, CliResult

SEED_CONTAINERS = ["integration_providers", "integrations", "integration-connections"]


def everything(cosmos: CosmosClient) -> dict[str, Any]:
    """Every database, container definition and document of the endpoint: what a dry run must not change."""
    state: dict[str, Any] = {}
    for database in cosmos.list_databases():
        proxy = cosmos.get_database_client(database["id"])
        for container in proxy.list_containers():
            documents = proxy.get_container_client(container["id"]).query_items(
                "SELECT * FROM c", enable_cross_partition_query=True
            )
            state[f"{database['id']}/{container['id']}"] = (container, sorted(d["id"] for d in documents))
    return state


def test_plan_on_a_fresh_database_shows_every_definition_and_changes_nothing(
    run_cli: Callable[..., CliResult], cosmos: CosmosClient, database_name: str
) -> None:
    before = everything(cosmos)
    text = run_cli("plan")
    assert text.code == 0, text.stderr
    assert "does not exist yet" in text.stdout
    for name in SEED_CONTAINERS:
        assert f"create container {name}" in text.stdout
    assert "partition key    /category" in text.stdout and "unique keys      [/category, /provider]" in text.stdout
    assert "composite        [/category asc, /status asc, /audience asc, /displayName asc]" in text.stdout
    assert "excluded         /*, /availableEntities/*, /description/*, /oauthConfig/*" in text.stdout
    body = json.loads(run_cli("plan", "--json").stdout)
    assert [r["revision"] for r in body["revisions"]] == ["001", "002", "003", "004", "005"]
    created = {
        o["container"]: o["definition"] for r in body["revisions"] for o in r["operations"] if o["effect"] == "create"
    }
    assert sorted(created) == sorted(SEED_CONTAINERS)
    assert created["integrations"]["uniqueKeys"] == [["/tenantId", "/providerName", "/name"]]
    assert created["integrations"]["indexingPolicy"]["compositeIndexes"][1][2] == {
        "path": "/updatedAt",
        "order": "descending",
    }
    assert everything(cosmos) == before  # reads only: not even the database was created


def test_a_two_step_dry_run_plans_the_second_step_on_the_first_ones_container(
    tmp_path: Path, run_cli: Callable[..., CliResult], make_config: Callable[..., Config], cosmos: CosmosClient
) -> None:
    """001 creates things, 002 reindexes it: the dry run shows both, each with its definition."""
    (tmp_path / "001_things.py").write_text(
        '"""Create things."""\nrevision = "001"\ndown_revision = None\n\n\ndef upgrade(op):\n'
        "    op.create_container('things', '/p', indexing_policy={'includedPaths': [{'path': '/*'}]})\n\n\n"
        "def downgrade(op):\n    op.delete_container('things')\n"
    )
    (tmp_path / "002_reindex.py").write_text(
        '"""Reindex things."""\nrevision = "002"\ndown_revision = "001"\n\n\ndef upgrade(op):\n'
        "    op.replace_indexing_policy('things', {'includedPaths': [{'path': '/p/*'}], "
        "'excludedPaths': [{'path': '/*'}]})\n\n\n"
        "def downgrade(op):\n    op.replace_indexing_policy('things', {'includedPaths': [{'path': '/*'}]})\n"
    )
    env = {"COSMIGRATE_MIGRATIONS": str(tmp_path)}
    dry = run_cli("up", "--dry-run", env=env)
    assert dry.code == 0, dry.stderr
    assert "+ create container things" in dry.stdout and "~ replace indexing policy of things" in dry.stdout
    assert "+ included path /p/*" in dry.stdout and "- included path /*" in dry.stdout
    assert "+ excluded path /*" in dry.stdout
    assert run_cli("up", env=env).code == 0
    down = json.loads(run_cli("down", "--dry-run", "--steps", "2", "--json", env=env).stdout)
    assert [(r["revision"], [o["effect"] for o in r["operations"]]) for r in down["revisions"]] == [
        ("002", ["update"]), ("001", ["delete"]),
    ]  # fmt: skip
    assert [
        c["id"] for c in cosmos.get_database_client(make_config().database).list_containers() if c["id"] == "things"
    ]


def test_verify_is_clean_after_up_and_names_a_path_removed_behind_the_tools_back(
    run_cli: Callable[..., CliResult], cosmos: CosmosClient, database_name: str
) -> None:
    assert run_cli("up").code == 0
    clean = run_cli("verify")
    assert clean.code == 0, clean.stdout
    assert "no drift" in clean.stdout
    database = cosmos.get_database_client(database_name)
    database.create_container("scratch", partition_key=PartitionKey("/id"))  # someone's experiment
    unmanaged = json.loads(run_cli("verify", "--json").stdout)
    assert unmanaged["clean"] is True
    assert {c["container"]: c["state"] for c in unmanaged["containers"]}["scratch"] == "unmanaged"
    assert run_cli("verify", "--strict").code == 1

    # an index path removed in the portal
    container = database.get_container_client("integration-connections")
    properties = container.read()
    policy = properties["indexingPolicy"]
    policy["includedPaths"] = [p for p in policy["includedPaths"] if p["path"] != "/userId/*"]
    database.replace_container(container, partition_key=PartitionKey("/integrationId"), indexing_policy=policy)
    drift = run_cli("verify")
    assert drift.code == 1
    assert "integration-connections: included path /userId/* is declared but not live" in drift.stdout
    body = json.loads(run_cli("verify", "--json").stdout)
    states = {c["container"]: c["state"] for c in body["containers"]}
    assert states == {
        **dict.fromkeys(SEED_CONTAINERS, "ok"),
        "integration-connections": "drift",
        "scratch": "unmanaged",
    }


def test_verify_says_a_deploy_holds_the_lock_instead_of_reporting_drift(
    run_cli: Callable[..., CliResult], cosmos: CosmosClient, database_name: str
) -> None:
    assert run_cli("up").code == 0
    lease = Lease(HistoryStore(cosmos.get_database_client(database_name), "cosmigrate_history"), ttl=30)
    lease.acquire(timeout=0)
    try:
        result = run_cli("verify")
    finally:
        lease.release()
    assert result.code == 1 and "a deploy holds the migration lock" in result.stdout


@pytest.fixture(scope="module")
def migrated(endpoint: str, cosmos: CosmosClient) -> Iterator[str]:
    """One database with every revision applied, shared by the tests below: none of their commands changes it
    (dry runs, an unlock with no lock, a stamp at the head, a repair with nothing to repair)."""
    name = f"t{uuid.uuid4().hex[:12]}"
    command.up(load_config({"endpoint": endpoint, "database": name, "create_database": True}, environ={}, cwd=ROOT))
    try:
        yield name
    finally:
        cosmos.delete_database(name)


@pytest.mark.parametrize(
    "args",
    [
        ("status", "--json"), ("history", "--json"), ("verify", "--json"), ("plan", "--json"), ("check", "--json"),
        ("up", "--dry-run", "--json"), ("down", "--dry-run", "--json"), ("unlock", "--yes", "--json"),
        ("stamp", "005", "--json"), ("repair", "--yes", "--json"),
    ],
)  # fmt: skip
def test_global_options_go_before_or_after_the_verb(
    args: tuple[str, ...], tmp_path: Path, run_cli: Callable[..., CliResult], migrated: str
) -> None:
    """`cosmigrate --database x --migrations m up` and `cosmigrate up --database x --migrations m` are the same."""
    database_name = migrated
    env = {"COSMOS_DATABASE": "", "COSMIGRATE_MIGRATIONS": str(tmp_path / "nowhere")}
    from tests.conftest import MIGRATIONS

    where = ("--database", database_name, "--migrations", str(MIGRATIONS))
    before, after = run_cli(*where, *args, env=env), run_cli(*args, *where, env=env)
    assert before.code == after.code == 0, before.stderr + after.stderr
    assert json.loads(before.stdout).keys() == json.loads(after.stdout).keys()
    wins = run_cli("--database", "nope", *args, "--database", database_name, "--migrations", str(MIGRATIONS), env=env)
    assert wins.code == 0  # given twice, the one after the verb wins


def test_help_and_a_bad_option_before_the_verb(run_cli: Callable[..., CliResult]) -> None:
    helped = run_cli("--help")
    assert helped.code == 0 and "--database" in helped.stdout and "plan" in helped.stdout and "verify" in helped.stdout
    bad = run_cli("--lock-ttl", "abc", "status")
    assert bad.code == 2 and "--lock-ttl must be a number of seconds" in bad.stderr


def test_a_database_that_does_not_exist_yet_is_planned_from_nothing(
    make_config: Callable[..., Config], cosmos: CosmosClient
) -> None:
    config = make_config(create_database=False)
    result = command.plan(config)
    assert not result.database_exists and len(result.revisions) == 5
    with pytest.raises(cosmos_errors.CosmosResourceNotFoundError):
        cosmos.get_database_client(config.database).read()


@pytest.mark.parametrize(
    ("upgrade", "kind"),
    [
        ("    op.refuse('not before the freeze ends')", "PreconditionRefused"),
        ("    op.create_container('things', partition_key='/other')", "DefinitionConflict"),
    ],
)
def test_a_plan_that_cannot_run_names_the_revision_and_file_in_its_json_error(
    tmp_path: Path, run_cli: Callable[..., CliResult], upgrade: str, kind: str
) -> None:
    first = "    op.create_container('things', partition_key='/p')"
    for revision, down, body, name in (("001", None, first, "things"), ("002", "001", upgrade, "blocked")):
        (tmp_path / f"{revision}_{name}.py").write_text(
            f'"""{name}."""\nrevision = "{revision}"\ndown_revision = {down!r}\n\n\ndef upgrade(op):\n{body}\n\n\n'
            "def downgrade(op):\n    pass\n"
        )
    planned = run_cli("plan", "--json", env={"COSMIGRATE_MIGRATIONS": str(tmp_path)})
    assert planned.code == 1, planned.stderr
    body = json.loads(planned.stdout)
    assert body["ok"] is False and [r["revision"] for r in body["revisions"]] == ["001", "002"]
    assert (body["error"]["type"], body["error"]["revision"], body["error"]["file"]) == (kind, "002", "002_blocked.py")
