"""The paths people walk after something went wrong, following the tool's own advice (issue: recovery paths).

Each test is one problem found by using cosmigrate as a new team would; each asserts the safe outcome: no
upgrade runs twice, nothing is lost or created by accident, and the history tells the whole story.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from azure.cosmos import CosmosClient, PartitionKey

from cosmigrate.app import commands as command
from cosmigrate.config import Config
from cosmigrate.data.checkpoints import ContainerCheckpointStore
from cosmigrate.data.deadletter import read_dead_letters
from cosmigrate.errors import DatabaseMissing, HistoryConflict, MigrationFailed, ScriptError, UsageError
from cosmigrate.store.history import HistoryStore
from tests.conftest import ROOT, CliResult, copy_schema_migrations
from tests.harness.data import all_documents


def YES(_question: str) -> bool:
    return True


def script(
    revision: str, down: str | None, upgrade: str, downgrade: str = "    pass", top: str = "", doc: str = ""
) -> str:
    return (
        f'"""{doc or f"Revision {revision}."}"""\n{top}revision = "{revision}"\ndown_revision = {down!r}\n\n\n'
        f"def upgrade(op):\n{upgrade}\n\n\ndef downgrade(op):\n{downgrade}\n"
    )


CUSTOMERS = script(
    "001", None, "    op.create_container('customers', partition_key='/id')",
    "    op.delete_container('customers')", top="idempotent = True\n", doc="Create customers.",
)  # fmt: skip
WELCOME_POINTS = script(
    "002",
    "001",
    "    customers = op.container('customers')\n"
    "    for doc in list(customers.query_items('SELECT * FROM c', enable_cross_partition_query=True)):\n"
    "        doc['points'] = doc.get('points', 0) + 100\n"
    "        customers.replace_item(doc['id'], doc)",
    "    customers = op.container('customers')\n    raise RuntimeError('the downgrade was never written')",
    doc="Give every customer 100 welcome points.",
)


def points(cosmos: CosmosClient, database: str) -> list[int]:
    container = cosmos.get_database_client(database).get_container_client("customers")
    return sorted(
        d.get("points", 0) for d in container.query_items("SELECT * FROM c", enable_cross_partition_query=True)
    )


def welcomed_customers(folder: Path, make_config: Callable[..., Config], cosmos: CosmosClient, count: int) -> Config:
    """001 creates customers, ``count`` of them arrive with 0 points, 002 gives each 100 welcome points."""
    (folder / "001_customers.py").write_text(CUSTOMERS)
    (folder / "002_welcome_points.py").write_text(WELCOME_POINTS)
    config = make_config(migrations=folder)
    command.up(config, target="001")
    customers = cosmos.get_database_client(config.database).get_container_client("customers")
    for n in range(count):
        customers.create_item({"id": f"c{n}", "points": 0})
    command.up(config)
    return config


# -- 1. a failed down, then the advice: never the upgrade twice ---------------------------------------------


def test_a_failed_down_then_repair_and_up_keeps_the_welcome_points_at_100(
    tmp_path: Path, make_config: Callable[..., Config], cosmos: CosmosClient
) -> None:
    config = welcomed_customers(tmp_path, make_config, cosmos, 20)
    assert points(cosmos, config.database) == [100] * 20

    with pytest.raises(MigrationFailed, match=r"002 .*failed going down.*still applied.*cosmigrate down"):
        command.down(config, confirm=YES)
    status = command.status(config)
    assert [(v.revision, v.state, v.direction) for v in status.failed] == [("002", "failed", "down")]
    assert status.current == "002"  # still applied: its upgrade is in effect
    assert status.failed[0].applied_at  # and when it was applied still shows
    with pytest.raises(HistoryConflict, match="fix its downgrade"):
        command.up(config)  # the printed advice is repair, then down: up refuses meanwhile

    assert command.repair(config, YES).to_applied == ["002"]
    assert command.up(config).steps == []  # the upgrade does not run again
    assert points(cosmos, config.database) == [100] * 20
    events = [(e["event"], e["revision"], e["direction"]) for e in command.history(config).events]
    assert ("failed", "002", "down") in events and ("repaired", "002", None) in events


def test_an_untouched_template_downgrade_is_refused_before_anything_runs(
    tmp_path: Path, make_config: Callable[..., Config], cosmos: CosmosClient
) -> None:
    (tmp_path / "001_customers.py").write_text(
        script("001", None, "    op.create_container('customers', partition_key='/id')",
               "    raise NotImplementedError('write the downgrade of revision 001')")
    )  # fmt: skip
    config = make_config(migrations=tmp_path)
    command.up(config)
    with pytest.raises(
        ScriptError, match=r"001_customers.py:\d+: downgrade raises NotImplementedError.*nothing was changed"
    ):
        command.down(config)
    status = command.status(config)
    assert [v.revision for v in status.applied] == ["001"] and status.failed == []


# -- 2. a different migration under an applied number ---------------------------------------------------------


def test_a_renumbered_branch_is_not_accepted_by_repair_yes(
    tmp_path: Path, make_config: Callable[..., Config], cosmos: CosmosClient, run_cli: Callable[..., CliResult]
) -> None:
    (tmp_path / "001_customers.py").write_text(CUSTOMERS)
    reviews = "    op.create_container('reviews', partition_key='/id')"
    (tmp_path / "002_add_reviews.py").write_text(script("002", "001", reviews, doc="Add the reviews container."))
    config = make_config(migrations=tmp_path)
    command.up(config)  # branch B's 002 ran on the shared database
    # main merged branch A's 002 first; B renumbered its migration to 003
    (tmp_path / "002_add_reviews.py").unlink()
    loyalty = "    op.create_container('loyalty', partition_key='/id')"
    (tmp_path / "002_add_loyalty.py").write_text(script("002", "001", loyalty, doc="Add the loyalty container."))
    (tmp_path / "003_add_reviews.py").write_text(script("003", "002", reviews, doc="Add the reviews container."))

    with pytest.raises(HistoryConflict) as refused:
        command.up(config)
    message = str(refused.value)
    assert "'Add the reviews container.'" in message and "'Add the loyalty container.'" in message
    assert "003_add_reviews.py carries the recorded description" in message and "--accept 002" in message

    env = {"COSMIGRATE_MIGRATIONS": str(tmp_path)}
    blind = run_cli("repair", "--yes", env=env)
    assert blind.code == 1 and "002 not accepted" in blind.stderr
    assert [v.revision for v in command.status(config).changed] == ["002"]  # still refused, loudly
    named = run_cli("repair", "--yes", "--accept", "002", env=env)
    assert named.code == 0 and "002: the current script is accepted" in named.stdout
    events = [e for e in command.history(config).events if e["event"] == "accepted"]
    assert events[0]["detail"]["was"]["description"] == "Add the reviews container."


def test_repair_shows_the_difference_against_the_source_that_ran(
    tmp_path: Path, make_config: Callable[..., Config]
) -> None:
    (tmp_path / "001_customers.py").write_text(CUSTOMERS)
    config = make_config(migrations=tmp_path)
    command.up(config)
    path = tmp_path / "001_customers.py"
    path.write_text(path.read_text().replace("'/id')\n", "'/id')  # the id is the key\n", 1))
    asked: list[str] = []
    result = command.repair(config, lambda question: asked.append(question) or True)
    assert result.accepted == ["001"]
    assert "-    op.create_container('customers', partition_key='/id')" in asked[0]
    assert "+    op.create_container('customers', partition_key='/id')  # the id is the key" in asked[0]


# -- 3. a mistyped database creates nothing -------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("up",),
        ("status",),
        ("history",),
        ("down",),
        ("repair", "--yes"),
        ("unlock", "--yes"),
        ("stamp", "001", "--yes"),
        ("verify",),
    ],
)
def test_a_mistyped_database_creates_nothing(
    args: tuple[str, ...], run_cli: Callable[..., CliResult], cosmos: CosmosClient, database_name: str
) -> None:
    result = run_cli(*args, env={"COSMIGRATE_CREATE_DATABASE": ""})
    assert result.code == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert f"database {database_name} (from COSMOS_DATABASE) does not exist" in last and "nothing was created" in last
    assert database_name not in {d["id"] for d in cosmos.list_databases()}
    if args[0] == "down":  # creating a database to go down in makes no sense: no such advice
        assert "nothing to revert" in last and "--create-database" not in last


def test_export_and_import_of_a_missing_database_give_their_own_advice(
    tmp_path: Path, run_cli: Callable[..., CliResult], cosmos: CosmosClient, database_name: str
) -> None:
    env = {"COSMIGRATE_CREATE_DATABASE": ""}
    exported = run_cli("export", "--out", str(tmp_path / "dump"), env=env)
    assert exported.code == 1, exported.stderr
    last = exported.stderr.strip().splitlines()[-1]
    assert f"database {database_name} (from COSMOS_DATABASE) does not exist" in last
    assert "nothing to export: check the name (--database, COSMOS_DATABASE or database in" in last
    assert "create" not in last and not (tmp_path / "dump").exists()

    source = cosmos.create_database(f"{database_name}-src")  # a real backup to import: a bad one is refused first
    try:
        source.create_container("things", PartitionKey("/id")).create_item({"id": "a"})
        dumped = run_cli("export", "--database", source.id, "--out", str(tmp_path / "backup"), env=env)
        assert dumped.code == 0, dumped.stderr
    finally:
        cosmos.delete_database(source.id)
    imported = run_cli("import", str(tmp_path / "backup"), env=env)
    assert imported.code == 1, imported.stderr
    last = imported.stderr.strip().splitlines()[-1]
    assert f"database {database_name} (from COSMOS_DATABASE) does not exist" in last
    assert "let this command create it: --create-database" in last and "cosmigrate up" not in last
    assert database_name not in {d["id"] for d in cosmos.list_databases()}


def test_up_creates_a_missing_database_only_when_asked(
    run_cli: Callable[..., CliResult], cosmos: CosmosClient, database_name: str
) -> None:
    refused = run_cli("up", env={"COSMIGRATE_CREATE_DATABASE": ""})
    assert refused.code == 1 and "--create-database" in refused.stderr
    assert database_name not in {d["id"] for d in cosmos.list_databases()}
    assert run_cli("up", "--create-database", env={"COSMIGRATE_CREATE_DATABASE": ""}).code == 0
    assert database_name in {d["id"] for d in cosmos.list_databases()}


def test_an_unknown_setting_and_a_missing_database_name_are_usage_errors(
    tmp_path: Path, run_cli: Callable[..., CliResult]
) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.cosmigrate]\ndatabse = "shop"\n')
    typo = run_cli("status", cwd=tmp_path, env={"COSMOS_DATABASE": ""})
    assert typo.code == 2 and "unknown key 'databse' in [tool.cosmigrate]" in typo.stderr and "database" in typo.stderr
    (tmp_path / "pyproject.toml").write_text('[tool.cosmigrate]\nmigrations = "m"\n')
    (tmp_path / "m").mkdir()
    nameless = run_cli("status", cwd=tmp_path, env={"COSMOS_DATABASE": "", "COSMIGRATE_MIGRATIONS": ""})
    assert nameless.code == 2 and "no database named" in nameless.stderr


# -- 4. interruptions ------------------------------------------------------------------------------------------


def test_a_closed_log_pipe_never_fails_a_revision(
    run_cli: Callable[..., CliResult], cli_env: dict[str, str], make_config: Callable[..., Config]
) -> None:
    done = subprocess.run(
        ["bash", "-c", f"{sys.executable} -m cosmigrate up 2>&1 | head -1"],
        env=cli_env, cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0 and len(done.stdout.splitlines()) == 1
    status = command.status(make_config())
    assert [v.revision for v in status.applied] == ["001", "002", "003", "004", "005"]
    assert status.failed == [] and status.interrupted == []


def test_ctrl_c_is_recorded_as_an_interruption_in_words(
    tmp_path: Path, cli_env: dict[str, str], make_config: Callable[..., Config]
) -> None:
    hang = "    op.create_container('customers', partition_key='/id')\n    op.container('customers')\n" \
           "    import time\n    time.sleep(120)"  # fmt: skip
    (tmp_path / "001_customers.py").write_text(script("001", None, hang))
    config = make_config(migrations=tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-m", "cosmigrate", "up"], env={**cli_env, "COSMIGRATE_MIGRATIONS": str(tmp_path)},
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    wait_until_running(config)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 1 and "interrupted by Ctrl-C (SIGINT)" in err.strip().splitlines()[-1]
    status = command.status(config)
    assert [(v.revision, v.error) for v in status.interrupted] == [("001", "interrupted by Ctrl-C (SIGINT)")]
    assert status.refusal is not None and "not declared idempotent" in status.refusal


def wait_until_running(config: Config) -> None:
    """Until a revision shows as running (the process under test may not have created the database yet)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            if command.status(config).running:
                return
        except DatabaseMissing:
            pass
        assert time.monotonic() < deadline
        time.sleep(0.1)


def hanging_customers(idempotent: bool) -> str:
    """001 creates customers, then (with -x hang=true) hangs in its data work until it is killed."""
    return script(
        "001", None,
        "    op.create_container('customers', partition_key='/id')\n    op.container('customers')\n"
        "    if op.flag('hang'):\n        import time\n        time.sleep(120)",
        "    op.delete_container('customers')",
        top=f"idempotent = {idempotent}\narguments = {{'hang': 'hang in the data work'}}\n", doc="Create customers.",
    )  # fmt: skip


def kill_while_running(config: Config, cli_env: dict[str, str]) -> None:
    """``cosmigrate up`` SIGKILLed while 001 runs: its record still says running, its 2 s lease then expires."""
    process = subprocess.Popen(
        [sys.executable, "-m", "cosmigrate", "up", "--lock-ttl", "2", "-x", "hang=true"],
        env={**cli_env, "COSMIGRATE_MIGRATIONS": str(config.migrations)},
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    wait_until_running(config)
    process.kill()
    process.wait()
    time.sleep(3.5)  # the lease expires (+1 s for whole-second clocks)


def test_history_and_logs_say_what_a_revision_was_in_words(
    tmp_path: Path, cli_env: dict[str, str], make_config: Callable[..., Config], run_cli: Callable[..., CliResult]
) -> None:
    """A repair of a killed run, a resumed run and an accepted script: no Python reprs (None, {'checksum': …})."""
    path = tmp_path / "001_customers.py"
    path.write_text(hanging_customers(idempotent=False))
    config = make_config(migrations=tmp_path)
    env = {"COSMIGRATE_MIGRATIONS": str(tmp_path)}
    kill_while_running(config, cli_env)
    assert command.repair(config, YES).to_pending == ["001"]
    path.write_text(hanging_customers(idempotent=True))
    kill_while_running(config, cli_env)
    resumed = run_cli("up", env=env)
    assert resumed.code == 0, resumed.stderr
    [line] = [line for line in resumed.stderr.splitlines() if "resuming an interrupted revision" in line]
    assert "revision=001" in line and "None" not in line
    path.write_text(path.read_text().replace("'/id')\n", "'/id')  # the id is the key\n", 1))
    assert command.repair(config, YES).accepted == ["001"]

    table = run_cli("history", env=env)
    assert table.code == 0, table.stderr
    assert "None" not in table.stdout and "{" not in table.stdout and "'" not in table.stdout
    lines = {line.split()[1]: line for line in table.stdout.splitlines()}
    assert lines["repaired"].endswith("was=running going up now=pending")
    [repaired] = [e for e in command.history(config).events if e["event"] == "repaired"]
    assert repaired["detail"]["was"] == "running going up"  # a killed run left no reason: none is made up
    assert (
        "was=(checksum=sha256:" in lines["accepted"] and 'description="Create customers.") now=(' in lines["accepted"]
    )
    assert lines["resumed"].endswith("its lock expired before it finished")  # a killed run recorded no error


# -- 5. a destructive down asks, and the history keeps everything ----------------------------------------------


def test_down_over_containers_holding_documents_refuses_without_yes(
    run_cli: Callable[..., CliResult], cosmos: CosmosClient, database_name: str
) -> None:
    assert run_cli("up").code == 0
    database = cosmos.get_database_client(database_name)
    for n in range(3):
        database.get_container_client("integrations").create_item(
            {"id": f"i{n}", "tenantId": "t", "providerName": "p", "name": f"n{n}"}
        )
    planned = run_cli("plan", "--down", "--to", "base")  # the plan says it too, before anyone runs down
    assert planned.code == 0, planned.stderr
    assert (
        "deletes containers holding documents now: " in planned.stdout
        and "integrations (3 documents)" in planned.stdout
    )
    assert (
        json.loads(run_cli("plan", "--down", "--to", "base", "--json").stdout)["deletes_documents"]["integrations"] == 3
    )
    refused = run_cli("down", "--to", "base")
    assert refused.code == 2
    last = refused.stderr.strip().splitlines()[-1]
    assert "integrations (3 documents)" in last and "--yes" in last and "nothing was changed" in last
    assert "integration_providers (8 documents)" in last  # the seeded catalog, as it is now
    assert {c["id"] for c in database.list_containers()} >= {"integrations", "integration_providers"}
    assert json.loads(run_cli("status", "--json").stdout)["current"] == "005"

    done = run_cli("down", "--to", "base", "--yes")
    assert done.code == 0, done.stderr
    events = json.loads(run_cli("history", "--json").stdout)["events"]
    assert [(e["event"], e["revision"]) for e in events] == [
        ("applied", "001"), ("applied", "002"), ("applied", "003"), ("applied", "004"), ("applied", "005"),
        ("reverted", "005"), ("reverted", "004"), ("reverted", "003"), ("reverted", "002"), ("reverted", "001"),
    ]  # fmt: skip
    table = run_cli("history")
    assert table.code == 0 and table.stdout.count("reverted") == 5


def test_a_forced_precondition_is_recorded_with_its_arguments(
    make_config: Callable[..., Config], cosmos: CosmosClient
) -> None:
    config = make_config(x={"force": "true"})
    database = cosmos.create_database(config.database)
    legacy = database.create_container("tenant-integrations", partition_key=PartitionKey("/tenantId"))
    legacy.create_item({"id": "a", "tenantId": "t", "status": "active"})
    command.up(config)
    forced = [e for e in command.history(config).events if e["event"] == "forced"]
    assert [(e["revision"], e["detail"]["container"], e["detail"]["documents"], e["args"]) for e in forced] == [
        ("004", "tenant-integrations", 1, {"force": "true"})
    ]


# -- 6. status is the gate up is ------------------------------------------------------------------------------


def test_status_exits_1_exactly_when_up_refuses_and_names_the_down_revision(
    tmp_path: Path, run_cli: Callable[..., CliResult]
) -> None:
    folder = tmp_path / "migrations"
    copy_schema_migrations(folder)
    env = {"COSMIGRATE_MIGRATIONS": str(folder)}
    assert run_cli("up", "--to", "002", env=env).code == 0
    assert run_cli("status", env=env).code == 0
    # a revision slipped in below applied ones: 005 now follows 001, and 002 follows 005
    (folder / "005_inserted.py").write_text(script("005", "001", "    pass"))
    second = folder / "002_create_integrations.py"
    second.write_text(second.read_text().replace('down_revision = "001"', 'down_revision = "005"'))
    status, up = run_cli("status", env=env), run_cli("up", env=env)
    assert status.code == up.code == 1
    assert "up would refuse" in status.stdout and "005_inserted.py has down_revision = '001'" in status.stdout
    assert "005_inserted.py has down_revision = '001'" in up.stderr


# -- 7. only what is about to run is planned ---------------------------------------------------------------------


def test_a_no_op_up_runs_no_script(tmp_path: Path, make_config: Callable[..., Config]) -> None:
    marker = tmp_path / "calls.txt"
    body = (
        f"    open({str(marker)!r}, 'a').write('called\\n')\n    op.create_container('customers', partition_key='/id')"
    )
    (tmp_path / "001_customers.py").write_text(script("001", None, body))
    config = make_config(migrations=tmp_path)
    command.up(config)
    calls = marker.read_text().count("called")
    assert calls == 2  # once planned (op.planning True), once for real
    for _ in range(3):
        assert command.up(config).steps == []
    assert marker.read_text().count("called") == calls


# -- 8. the smaller things ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("as_json", [True, False])
def test_a_failed_up_gives_the_error_and_the_steps_done_before_it(
    tmp_path: Path, run_cli: Callable[..., CliResult], as_json: bool
) -> None:
    """With --json, one object with the error and the steps; without, the steps in words, then the error line."""
    folder = tmp_path / "migrations"
    copy_schema_migrations(folder)
    third = folder / "003_reindex_integration_connections.py"
    third.write_text(
        third.read_text().replace("def upgrade(op):\n", "def upgrade(op):\n    if not op.planning:\n        1 / 0\n")
    )
    result = run_cli("up", *(["--json"] if as_json else []), env={"COSMIGRATE_MIGRATIONS": str(folder)})
    assert result.code == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: revision 003")
    if as_json:
        body = json.loads(result.stdout)
        assert body["ok"] is False and body["error"]["revision"] == "003"
        assert "ZeroDivisionError" in body["error"]["message"]
        assert [step["revision"] for step in body["steps"]] == ["001", "002"]
    else:
        lines = result.stdout.splitlines()
        revisions = [line.split()[:2] for line in lines if not line.startswith(" ")]
        assert revisions[:2] == [["applied", "001"], ["applied", "002"]]
        assert lines[-1] == "2 revisions done before the error"


def test_scripts_import_helpers_beside_them_and_declare_their_arguments(
    tmp_path: Path, make_config: Callable[..., Config], run_cli: Callable[..., CliResult]
) -> None:
    (tmp_path / "_helpers.py").write_text("CONTAINER = 'customers'\n")
    (tmp_path / "001_customers.py").write_text(
        script("001", None, "    op.create_container(CONTAINER, partition_key='/id')\n    op.flag('loud')",
               top="from _helpers import CONTAINER\narguments = {'loud': 'say more'}\n")
    )  # fmt: skip
    assert [s.revision for s in command.up(make_config(migrations=tmp_path, x={"loud": "1"})).steps] == ["001"]
    typo = run_cli("up", "-x", "lodu=1", env={"COSMIGRATE_MIGRATIONS": str(tmp_path)})
    assert (
        typo.code == 2 and "-x lodu: no revision to run declares it" in typo.stderr and "loud (say more)" in typo.stderr
    )


def test_a_malformed_key_is_named_plainly(run_cli: Callable[..., CliResult]) -> None:
    result = run_cli("status", "--key", "not base64!", "--auth", "key")  # a key mistake, in either mode
    assert result.code == 2 and "the account key is not valid base64" in result.stderr
    assert "padding" not in result.stderr.lower() and "not base64!" not in result.stderr


@pytest.mark.parametrize("message", ['a """quoted""" name', "back\\slash \\ and 'single'", 'ends with a quote"'])
def test_new_writes_a_valid_file_whatever_the_message(
    message: str, tmp_path: Path, run_cli: Callable[..., CliResult], make_config: Callable[..., Config]
) -> None:
    for _ in range(2):  # the second chained after the first: down_revision = "001"
        created = run_cli("new", message, "--migrations", str(tmp_path))
        assert created.code == 0, created.stderr
    scripts = command.check(make_config(migrations=tmp_path))
    assert [p["code"] for p in scripts.problems] == ["not-implemented"] * 4  # they load; write them
    from cosmigrate.scripts.loader import load_all

    first, second = load_all(tmp_path).ordered
    assert first.description == second.description == message and second.down_revision == "001"
    assert 'revision = "002"\ndown_revision = "001"\n' in second.path.read_text()


def test_the_local_endpoint_refers_to_no_file_outside_the_repository() -> None:
    text = (ROOT / "cosmigrate" / "testing" / "local_endpoint" / "server.js").read_text()
    assert "../shared" not in text and "NOTES.md" not in text


def test_the_failed_down_advice_followed_literally_needs_one_repair(
    tmp_path: Path, make_config: Callable[..., Config], cosmos: CosmosClient
) -> None:
    """'fix its downgrade, then cosmigrate repair and cosmigrate down': the fix changes the script, and that one
    repair both returns the revision to applied and accepts the fixed file (showing its diff)."""
    (tmp_path / "001_customers.py").write_text(CUSTOMERS)
    (tmp_path / "002_welcome_points.py").write_text(WELCOME_POINTS)
    config = make_config(migrations=tmp_path)
    command.up(config)
    with pytest.raises(MigrationFailed, match="failed going down"):
        command.down(config, confirm=YES)
    script = tmp_path / "002_welcome_points.py"
    script.write_text(script.read_text().replace("raise RuntimeError('the downgrade was never written')", "pass"))
    asked: list[str] = []
    repaired = command.repair(config, lambda question: asked.append(question) or True)
    assert (repaired.to_applied, repaired.accepted) == (["002"], ["002"])
    assert "+    pass" in asked[0]
    assert command.status(config).refusal is None
    assert [s.revision for s in command.down(config, confirm=YES).steps] == ["002"]


def test_a_forgotten_revision_whose_script_comes_back_is_not_run_again(
    tmp_path: Path, make_config: Callable[..., Config], cosmos: CosmosClient
) -> None:
    """'restore the script, or cosmigrate repair to forget the record', then the script comes back (another
    branch checked out again): up refuses instead of giving every customer 100 more points, and one repair
    records it applied again without running it. A different migration under that number still runs."""
    config = welcomed_customers(tmp_path, make_config, cosmos, 5)
    welcome = tmp_path / "002_welcome_points.py"
    moved = tmp_path.parent / "002_welcome_points.py.away"
    welcome.rename(moved)
    asked: list[str] = []
    assert command.repair(config, lambda question: asked.append(question) or True).forgotten == ["002"]
    assert "cosmigrate will not run it again" in asked[0]
    moved.rename(welcome)

    status = command.status(config)
    assert [(v.revision, v.state) for v in status.revisions] == [("001", "applied"), ("002", "forgotten")]
    assert status.blocked and "forgotten by cosmigrate repair while applied" in str(status.refusal)
    with pytest.raises(HistoryConflict, match="002.*will not run it again.*cosmigrate repair records it applied"):
        command.up(config)
    assert points(cosmos, config.database) == [100] * 5

    repaired = command.repair(config, YES)
    assert (repaired.restored, repaired.accepted) == (["002"], [])
    assert command.up(config).steps == []
    assert points(cosmos, config.database) == [100] * 5
    events = [(e["event"], e["revision"], (e.get("detail") or {}).get("was")) for e in command.history(config).events]
    assert ("forgotten", "002", "applied") in events and ("repaired", "002", "forgotten while applied") in events

    # forgotten again, and another branch's 002 takes the number: that is a new migration, and it runs
    welcome.unlink()
    command.repair(config, YES)
    welcome.write_text(
        script("002", "001", "    op.create_container('loyalty', partition_key='/id')", doc="Create loyalty.")
    )
    assert [s.revision for s in command.up(config).steps] == ["002"]
    assert points(cosmos, config.database) == [100] * 5


# -- 9. a data step that failed on some documents ------------------------------------------------------------------

WELCOME_POINTS_STEP = script(
    "002",
    "001",
    "    def welcome(doc):\n"
    "        doc['points'] = doc['points'] + 100  # not idempotent: run twice, a customer gets 200\n"
    "        return doc\n\n"
    "    op.transform_items('customers', welcome)",
    doc="Give every customer 100 welcome points.",
)


def test_a_data_step_that_failed_on_some_documents_gives_the_others_their_points_once(
    tmp_path: Path, make_config: Callable[..., Config], cosmos: CosmosClient
) -> None:
    """The fix is in the data; repair and up then transform only the documents that failed, not all again."""
    config, customers = customers_at_001(tmp_path, make_config, cosmos, WELCOME_POINTS_STEP, bad=(4, 9))

    with pytest.raises(MigrationFailed, match=r"2 documents failed.*reads only these again"):
        command.up(config)
    assert points_of(cosmos, config.database) == {**{f"c{n}": 100 for n in range(20)}, "c4": "unknown", "c9": "unknown"}

    for doc_id in ("c4", "c9"):
        customers.patch_item(doc_id, doc_id, [{"op": "set", "path": "/points", "value": 0}])
    assert command.repair(config, YES).to_pending == ["002"]
    assert [s.revision for s in command.up(config).steps] == ["002"]
    assert points_of(cosmos, config.database) == {f"c{n}": 100 for n in range(20)}  # each exactly once
    applied = next(e for e in command.history(config).events if e["event"] == "applied" and e["revision"] == "002")
    [totals] = applied["detail"]["totals"]
    assert (totals["read"], totals["written"], totals["dead_lettered"]) == (20, 20, 0)


def customers_at_001(
    folder: Path, make_config: Callable[..., Config], cosmos: CosmosClient, second: str, bad: tuple[int, ...] = ()
) -> tuple[Config, Any]:
    """001 creates customers, applied, with 20 of them at 0 points ("unknown" for those in ``bad``); 002 is
    ``second``, not applied yet. Backups and dead letters go beside ``folder``."""
    folder.mkdir(exist_ok=True)
    (folder / "001_customers.py").write_text(CUSTOMERS)
    (folder / "002_second.py").write_text(second)
    config = make_config(migrations=folder, backup_dir=str(folder.with_name(f"{folder.name}-backups")))
    command.up(config, target="001")
    customers = cosmos.get_database_client(config.database).get_container_client("customers")
    for n in range(20):
        customers.create_item({"id": f"c{n}", "points": "unknown" if n in bad else 0})
    return config, customers


def points_of(cosmos: CosmosClient, database: str) -> dict[str, object]:
    container = cosmos.get_database_client(database).get_container_client("customers")
    documents = container.query_items("SELECT * FROM c", enable_cross_partition_query=True)
    return {d["id"]: d.get("points") for d in documents}


def test_a_script_failing_in_the_sdk_names_its_line_and_says_the_service_answer_once(
    tmp_path: Path, make_config: Callable[..., Config]
) -> None:
    (tmp_path / "001_customers.py").write_text(CUSTOMERS)
    (tmp_path / "002_read.py").write_text(
        script("002", "001", "    customers = op.container('customers')\n    customers.read_item('nobody', 'nobody')")
    )
    config = make_config(migrations=tmp_path)
    with pytest.raises(MigrationFailed) as failed:
        command.up(config)
    line = 1 + (tmp_path / "002_read.py").read_text().splitlines().index("    customers.read_item('nobody', 'nobody')")
    message = str(failed.value)
    said = f"revision 002 (002_read.py:{line}) failed going up: CosmosResourceNotFoundError: Cosmos DB answered 404"
    assert said in message
    assert message.count("does not exist") == 1, message


def test_status_and_repair_say_where_data_steps_resume_and_restart_data_starts_them_over(
    tmp_path: Path, make_config: Callable[..., Config], cosmos: CosmosClient
) -> None:
    """Someone undid a failed step's effects by hand: resuming would skip what it had done, starting over does not."""
    config, customers = customers_at_001(tmp_path, make_config, cosmos, WELCOME_POINTS_STEP, bad=(4, 9))
    with pytest.raises(MigrationFailed):
        command.up(config)
    resumes = "transform of customers retries only the 2 documents that failed"
    [failed] = command.status(config).failed
    assert f"when it runs again, its {resumes} (cosmigrate repair --restart-data" in str(failed.next_step)

    for n in range(20):  # undone by hand: every customer back at 0
        customers.upsert_item({"id": f"c{n}", "points": 0})
    asked: list[str] = []
    with pytest.raises(UsageError, match="repair cancelled"):
        command.repair(config, lambda question: asked.append(question) or False)
    assert f"when it runs again, its {resumes}" in asked[0] and "repair --restart-data" in asked[0]
    repaired = command.repair(config, lambda question: asked.append(question) or True, restart_data=True)
    assert f"its data steps start over, dropping what was saved: its {resumes}" in asked[1]
    assert (repaired.to_pending, repaired.restarted, repaired.resumes) == (["002"], ["002"], {})
    [event] = [e for e in command.history(config).events if e["event"] == "repaired"]
    assert event["detail"]["was"].startswith("failed going up: ItemsFailed: transform of container customers")
    assert event["detail"]["data_restarted"] == [resumes]
    command.up(config)
    assert points_of(cosmos, config.database) == {f"c{n}": 100 for n in range(20)}


def test_a_failed_data_step_gives_its_counts_and_dead_letter_file_in_json_and_the_history(
    tmp_path: Path, make_config: Callable[..., Config], cosmos: CosmosClient, run_cli: Callable[..., CliResult]
) -> None:
    config, _ = customers_at_001(tmp_path, make_config, cosmos, WELCOME_POINTS_STEP, bad=(4, 9))
    env = {"COSMIGRATE_MIGRATIONS": str(tmp_path), "COSMIGRATE_BACKUP_DIR": str(tmp_path / "backups")}
    result = run_cli("up", "--json", env=env)
    assert result.code == 1
    error = json.loads(result.stdout)["error"]
    failed_step = error["detail"]["failed_step"]
    assert (failed_step["read"], failed_step["written"], failed_step["dead_lettered"]) == (20, 18, 2)
    assert sorted(line["id"] for line in read_dead_letters(Path(failed_step["dead_letter"]))) == ["c4", "c9"]
    assert (error["revision"], error["file"]) == ("002", "002_second.py")
    event = next(e for e in command.history(config).events if e["event"] == "failed")
    assert event["detail"]["failed_step"] == failed_step


def test_plan_shows_saved_data_steps_of_a_repaired_revision_and_restart_data_drops_them(
    tmp_path: Path, make_config: Callable[..., Config], cosmos: CosmosClient, run_cli: Callable[..., CliResult]
) -> None:
    config, _ = customers_at_001(tmp_path, make_config, cosmos, WELCOME_POINTS_STEP, bad=(4, 9))
    with pytest.raises(MigrationFailed):
        command.up(config)
    assert command.repair(config, YES).to_pending == ["002"]  # pending now, its checkpoint kept

    env = {"COSMIGRATE_MIGRATIONS": str(tmp_path)}
    saved = "saved from an earlier run: its transform of customers retries only the 2 documents that failed"
    assert saved in run_cli("plan", env=env).stdout
    assert command.plan(config).resumes == {"002": ["transform of customers retries only the 2 documents that failed"]}
    restarted = run_cli("repair", "--restart-data", "--yes", env=env)
    assert restarted.code == 0, restarted.stderr
    assert restarted.stdout.splitlines() == [
        "002: pending",
        "  its data steps start over (their checkpoints were dropped)",
    ]
    assert "saved from an earlier run" not in run_cli("plan", env=env).stdout
    assert run_cli("repair", "--restart-data", "--yes", env=env).stdout.strip() == "nothing to repair"
    [event] = [e for e in command.history(config).events if (e.get("detail") or {}).get("data_restarted")]
    assert event["detail"]["data_restarted"] == ["transform of customers retries only the 2 documents that failed"]


TWO_STEPS = script(
    "002",
    "001",
    "    def welcome(doc):\n"
    "        doc['points'] = doc['points'] + 100  # not idempotent\n"
    "        return doc\n\n"
    "    op.transform_items('customers', welcome)\n"
    "    if not op.planning and not os.path.exists(os.environ['READY_FILE']):\n"
    "        raise RuntimeError('the second step is not ready')\n"
    "    op.create_container('loyalty', partition_key='/id')",
    "    op.delete_container('loyalty')",
    top="import os\n",
    doc="Welcome points, then a loyalty container.",
)


def test_a_finished_data_step_does_not_run_again_when_a_later_step_of_its_revision_failed(
    tmp_path: Path, make_config: Callable[..., Config], cosmos: CosmosClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    ready = tmp_path / "ready"
    monkeypatch.setenv("READY_FILE", str(ready))
    config, _ = customers_at_001(tmp_path / "migrations", make_config, cosmos, TWO_STEPS)
    with pytest.raises(MigrationFailed, match="the second step is not ready"):
        command.up(config)
    assert set(points_of(cosmos, config.database).values()) == {100}
    [failed] = command.status(config).failed
    assert "transform of customers was done by an earlier run (20 documents): it does not run again" in str(
        failed.next_step
    )

    ready.touch()
    command.repair(config, YES)
    assert [s.revision for s in command.up(config).steps] == ["002"]
    assert set(points_of(cosmos, config.database).values()) == {100}  # not 200: the step did not run again
    history = HistoryStore(cosmos.get_database_client(config.database), config.history_container)
    assert ContainerCheckpointStore(history.container).under() == {}  # recorded applied: its checkpoint is cleared

    # down and up again: a new application, so the step runs again (a checkpoint left by a crash is no excuse)
    command.down(config, confirm=YES)
    ContainerCheckpointStore(history.container).save(
        "002:up:stale", {"identity": {"operation": "transform"}, "ranges": [], "done": True}
    )
    command.up(config)
    assert set(points_of(cosmos, config.database).values()) == {200}
    assert ContainerCheckpointStore(history.container).under() == {}


def test_another_migration_under_a_failed_revisions_number_runs_its_own_data_steps(
    tmp_path: Path, make_config: Callable[..., Config], cosmos: CosmosClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A finished step of the failed script is no reason to skip a step of the script that replaced it."""
    monkeypatch.setenv("READY_FILE", str(tmp_path / "never"))
    config, _ = customers_at_001(tmp_path / "migrations", make_config, cosmos, TWO_STEPS)
    with pytest.raises(MigrationFailed):
        command.up(config)
    (tmp_path / "migrations" / "002_second.py").write_text(
        script(
            "002",
            "001",
            "    op.transform_items('customers', lambda doc: {**doc, 'tier': 'gold'})",
            doc="Set every customer's tier to gold.",
        )
    )
    command.repair(config, YES)
    assert command.plan(config).resumes == {}  # nothing saved belongs to this migration
    command.up(config)
    customers = cosmos.get_database_client(config.database).get_container_client("customers")
    assert {d.get("tier") for d in all_documents(customers).values()} == {"gold"}
    history = HistoryStore(cosmos.get_database_client(config.database), config.history_container)
    assert ContainerCheckpointStore(history.container).under() == {}


def test_a_history_container_that_is_not_cosmigrates_is_named_before_anything_runs(
    run_cli: Callable[..., CliResult], cosmos: CosmosClient, database_name: str
) -> None:
    database = cosmos.create_database(database_name)
    database.create_container("cosmigrate_history", PartitionKey("/pk"))  # made by someone else
    result = run_cli("up")
    assert result.code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "has partition key /pk, not /scope" in errors[0] and "--history-container" in errors[0]
    assert {c["id"] for c in database.list_containers()} == {"cosmigrate_history"}  # nothing ran


def test_adopt_that_cannot_record_its_baseline_leaves_no_file(
    run_cli: Callable[..., CliResult], cosmos: CosmosClient, database_name: str, tmp_path: Path
) -> None:
    database = cosmos.create_database(database_name)
    database.create_container("orders", PartitionKey("/tenantId"))
    database.create_container("cosmigrate_history", PartitionKey("/pk"))  # not cosmigrate's: the stamp fails
    env = {"COSMIGRATE_MIGRATIONS": str(tmp_path / "migrations")}
    refused = run_cli("adopt", env=env)
    assert refused.code == 1 and "--history-container" in refused.stderr
    assert not list((tmp_path / "migrations").glob("*.py"))  # followed literally, the advice works:
    adopted = run_cli("adopt", "--history-container", "migrations_history", env=env)
    assert adopted.code == 0, adopted.stderr
    assert run_cli("verify", "--history-container", "migrations_history", env=env).code == 0
