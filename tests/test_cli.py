"""The command line as a deploy pipeline and a developer use it: output, JSON, exit codes, dry run, new, check."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from azure.cosmos import CosmosClient, PartitionKey
from azure.cosmos import exceptions as cosmos_errors

from tests.conftest import CliResult, copy_schema_migrations


def containers(cosmos: CosmosClient, database_name: str) -> set[str]:
    try:
        return {c["id"] for c in cosmos.get_database_client(database_name).list_containers()}
    except cosmos_errors.CosmosResourceNotFoundError:
        return set()


def test_up_status_down_through_the_cli(run_cli: Callable[..., CliResult]) -> None:
    missing = run_cli("status")  # the database does not exist yet: said, not created
    assert missing.code == 1 and "does not exist" in missing.stderr

    up = run_cli("up")
    assert up.code == 0, up.stderr
    assert [line.split()[1] for line in up.stdout.splitlines() if line.startswith("applied")] == [
        "001", "002", "003", "004", "005",
    ]  # fmt: skip
    assert "is at 005 (head 005)" in up.stdout

    status = json.loads(run_cli("status", "--json").stdout)
    assert status["ok"] is True  # every command's success JSON says so, as every error's says "ok": false
    assert status["database"] and status["current"] == "005" and status["head"] == "005"
    assert [a["revision"] for a in status["applied"]] == ["001", "002", "003", "004", "005"]
    for applied in status["applied"]:
        assert applied["checksum"].startswith("sha256:") and applied["applied_at"].endswith("Z")
        assert applied["description"]
    assert status["pending"] == [] and status["failed"] == []

    again = run_cli("up")
    assert again.code == 0 and "nothing to do" in again.stdout

    down = run_cli("down", "--steps", "2", "--json")
    assert down.code == 0
    body = json.loads(down.stdout)
    assert [s["revision"] for s in body["steps"]] == ["005", "004"] and body["current"] == "003"
    assert body["ok"] is True

    history = json.loads(run_cli("history", "--json").stdout)
    assert history["ok"] is True
    assert [(r["revision"], r["state"]) for r in history["records"]] == [
        ("001", "applied"), ("002", "applied"), ("003", "applied"), ("004", "reverted"), ("005", "reverted"),
    ]  # fmt: skip
    assert [(e["event"], e["revision"]) for e in history["events"]] == [
        ("applied", "001"), ("applied", "002"), ("applied", "003"), ("applied", "004"), ("applied", "005"),
        ("reverted", "005"), ("reverted", "004"),
    ]  # fmt: skip
    assert all(e["by"] and e["tool_version"] and e["at"].endswith("Z") for e in history["events"])


def test_dry_run_writes_nothing_and_says_what_would_happen(
    run_cli: Callable[..., CliResult], cosmos: CosmosClient, database_name: str
) -> None:
    database = cosmos.create_database(database_name)
    legacy = database.create_container("tenant-integrations", partition_key=PartitionKey("/tenantId"))
    legacy.create_item({"id": "a", "tenantId": "t", "status": "active"})
    result = run_cli("up", "--dry-run")
    assert result.code == 1  # the legacy guard would stop 004
    assert "would apply 001" in result.stdout and "create container integration_providers" in result.stdout
    assert "partition key    /category" in result.stdout  # the full definition, for a reviewer
    assert "tenant-integrations still has 1 active" in result.stderr
    assert containers(cosmos, database_name) == {"tenant-integrations"}  # not even the history container
    refused = run_cli("up", "--dry-run", "--json")  # one JSON object: the plan, with the error's keys
    assert refused.code == 1
    body = json.loads(refused.stdout)
    assert body["ok"] is False and "tenant-integrations" in body["error"]["message"] and body["steps"] == []
    error = body["error"]
    assert (error["type"], error["revision"], error["file"]) == (
        "PreconditionRefused", "004", "004_drop_deprecated_containers.py"
    )  # fmt: skip
    assert [r["revision"] for r in body["revisions"]][:4] == ["001", "002", "003", "004"]

    legacy.delete_item("a", partition_key="t")
    clean = run_cli("up", "--dry-run", "--json")
    assert clean.code == 0 and json.loads(clean.stdout)["ok"] is True
    revisions = json.loads(clean.stdout)["revisions"]
    assert [r["revision"] for r in revisions] == ["001", "002", "003", "004", "005"]
    assert [(o["kind"], o["effect"]) for o in revisions[3]["operations"]] == [
        ("assert_unused", "check"), ("delete_container", "delete"),
    ]  # fmt: skip
    assert revisions[0]["operations"][0]["definition"]["partitionKey"] == ["/category"]
    assert containers(cosmos, database_name) == {"tenant-integrations"}


def test_json_logs_are_one_object_per_line(run_cli: Callable[..., CliResult]) -> None:
    result = run_cli("up", "--log-format", "json")
    assert result.code == 0
    events = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    assert any(e["event"].startswith("create container integration_providers") for e in events)
    assert all({"level", "timestamp", "event"} <= set(e) for e in events)


def test_new_writes_the_next_chained_script_and_check_accepts_it(
    run_cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    folder = copy_schema_migrations(tmp_path / "migrations")
    created = run_cli("new", "Add audit container!", "--migrations", str(folder))
    assert created.code == 0, created.stderr
    path = folder / "005_add_audit_container.py"
    assert str(path) in created.stdout
    text = path.read_text()
    assert 'revision = "005"\ndown_revision = "004"\n' in text  # the same quotes
    untouched = run_cli("check", "--json", "--migrations", str(folder))
    assert untouched.code == 1  # the template raises NotImplementedError until it is written
    assert {p["code"] for p in json.loads(untouched.stdout)["problems"]} == {"not-implemented"}
    assert json.loads(untouched.stdout)["ok"] is False  # "ok" is true exactly when the exit code is 0
    text = text.replace(
        'raise NotImplementedError("write the upgrade of revision 005")', 'op.create_container("audit", "/t")'
    )
    text = text.replace(
        'raise NotImplementedError("write the downgrade of revision 005")', 'op.delete_container("audit")'
    )
    path.write_text(text)
    edited = run_cli("check", "--json", "--migrations", str(folder))  # the sum file catches the edit
    assert edited.code == 1 and [p["code"] for p in json.loads(edited.stdout)["problems"]] == ["sum-mismatch"]
    assert run_cli("hash", "--migrations", str(folder)).code == 0
    check = run_cli("check", "--json", "--migrations", str(folder))
    assert check.code == 0, check.stdout
    assert json.loads(check.stdout)["revisions"] == ["001", "002", "003", "004", "005"]
    assert json.loads(check.stdout)["ok"] is True
    hashed = run_cli("hash", "--json", "--migrations", str(folder))
    assert json.loads(hashed.stdout) == {"ok": True, "path": str(folder / "cosmigrate.sum"), "files": 5}
    # a second head (another 005 chained after 004) is what CI must catch, and the sum file says it is new
    (folder / "006_other.py").write_text(text.replace('revision = "005"', 'revision = "006"'))
    second_head = run_cli("check", "--migrations", str(folder))
    assert second_head.code == 1 and "two heads" in second_head.stdout
    assert "006_other.py" in second_head.stdout and "cosmigrate.sum" in second_head.stdout


def test_command_line_mistakes_in_json_have_the_documented_error_shape(run_cli: Callable[..., CliResult]) -> None:
    for args, said in [
        (("--json", "upp"), "No such command 'upp'"),
        (("status", "--bogus", "--json"), "No such option '--bogus'"),
        (("up", "--steps", "2", "--json"), "No such option '--steps'"),
    ]:
        result = run_cli(*args)
        assert result.code == 2, args
        body = json.loads(result.stdout)
        assert body == {
            "ok": False,
            "error": {"type": "UsageError", "message": body["error"]["message"], "exit_code": 2, "revision": None,
                      "file": None},
            "steps": [],
        }  # fmt: skip
        assert said in body["error"]["message"] and result.stderr.startswith("error: ")


def test_init_refuses_a_database_it_would_not_write(run_cli: Callable[..., CliResult], tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    assert run_cli("--database", "shop", "init", str(fresh)).code == 0  # before the verb too
    assert 'database = "shop"' in (fresh / "pyproject.toml").read_text()
    assert run_cli("init", str(fresh), "--database", "shop").code == 0  # the same: kept

    project = tmp_path / "project"  # configured, but migrations/ and tests/ not made yet
    project.mkdir()
    pyproject = project / "pyproject.toml"
    pyproject.write_text('[tool.cosmigrate]\ndatabase = "app"\n')
    for args in [("init", str(project), "--database", "other"), ("--database", "other", "init", str(project))]:
        refused = run_cli(*args)
        assert refused.code == 2, refused.stdout
        last = refused.stderr.strip().splitlines()[-1]
        assert 'already sets database = "app"' in last and "nothing was written" in last
        assert 'put database = "other" there' in last and "COSMOS_DATABASE=other" in last
        assert sorted(p.name for p in project.iterdir()) == ["pyproject.toml"]  # nothing half-written
        assert pyproject.read_text() == '[tool.cosmigrate]\ndatabase = "app"\n'
    pyproject.write_text("[tool.cosmigrate]\n")
    unnamed = run_cli("init", str(project), "--database", "other")
    assert unnamed.code == 2 and "without a database" in unnamed.stderr
    assert run_cli("init", str(project)).code == 0 and (project / "migrations").is_dir()


def test_version_and_help(run_cli: Callable[..., CliResult]) -> None:
    version = run_cli("--version")
    assert version.code == 0 and version.stdout.startswith("cosmigrate, version ")
    helped = run_cli("up", "--help")
    assert helped.code == 0 and "--dry-run" in helped.stdout and "-x KEY=VALUE" in helped.stdout


def test_reindex_progress_is_logged_without_a_terminal(
    run_cli: Callable[..., CliResult], cosmos: CosmosClient, database_name: str
) -> None:
    database = cosmos.create_database(database_name)
    database.create_container("integration-connections", partition_key=PartitionKey("/integrationId"))
    result = run_cli("up", "--log-format", "json")
    assert result.code == 0
    progress = [e for e in map(json.loads, result.stderr.splitlines()) if e["event"] == "index transformation"]
    assert progress and progress[-1] == {**progress[-1], "container": "integration-connections", "progress": 100}
    assert "reindexing" not in result.stderr  # no terminal bar in a log
