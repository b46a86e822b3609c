"""Failed and interrupted revisions, changed and missing scripts, repair and stamp, on the real endpoint."""

from __future__ import annotations

import json
import os
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
from cosmigrate.errors import DatabaseMissing, HistoryConflict, MigrationFailed, ScriptError, UsageError
from cosmigrate.model.definitions import normalise_indexing_policy, normalise_unique_keys
from cosmigrate.store.history import HistoryStore as SchemaHistory
from tests.conftest import ROOT, CliResult, copy_schema_migrations


def YES(_question: str) -> bool:
    return True


def NO(_question: str) -> bool:
    return False


@pytest.fixture
def scripts(tmp_path: Path) -> Path:
    """A copy of the project's migrations that a test may break, fix or extend."""
    folder = tmp_path / "migrations"
    copy_schema_migrations(folder)
    return folder


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def end_state(cosmos: CosmosClient, config: Config) -> dict[str, Any]:
    """What a run leaves: every container's definition and the history (state and checksum per revision)."""
    database = cosmos.get_database_client(config.database)
    containers = {}
    for properties in database.list_containers():
        if properties["id"] == config.history_container:
            continue
        containers[properties["id"]] = (
            properties["partitionKey"]["paths"],
            normalise_unique_keys(properties.get("uniqueKeyPolicy")),
            normalise_indexing_policy(properties.get("indexingPolicy")),
            properties.get("defaultTtl"),
        )
    records = SchemaHistory(database, config.history_container).snapshot().records
    return {
        "containers": containers,
        "history": {rev: (r.state, r.checksum, r.description) for rev, r in sorted(records.items())},
    }


def test_a_failing_revision_is_recorded_and_blocks_until_repaired(
    make_config: Callable[..., Config], scripts: Path, cosmos: CosmosClient
) -> None:
    script = scripts / "003_reindex_integration_connections.py"
    broken = "    if not op.planning:\n        raise RuntimeError('disk on fire')\n"
    edit(script, "def upgrade(op):\n", "def upgrade(op):\n" + broken)
    config = make_config(migrations=scripts)
    with pytest.raises(MigrationFailed, match=r"revision 003 .*failed going up.*disk on fire.*cosmigrate repair"):
        command.up(config)
    status = command.status(config)
    assert [v.revision for v in status.applied] == ["001", "002"]
    assert [(v.revision, v.error, v.direction) for v in status.failed] == [("003", "RuntimeError: disk on fire", "up")]
    assert [v.revision for v in status.pending] == ["004"]
    with pytest.raises(HistoryConflict, match=r"revision 003 .*failed going up.*cosmigrate repair"):
        command.up(config)

    edit(script, broken, "")  # the fix
    with pytest.raises(HistoryConflict, match="003"):  # fixed, but still marked failed until repaired
        command.up(config)
    repaired = command.repair(config, YES)
    assert repaired.to_pending == ["003"]
    assert [v.revision for v in command.status(config).pending] == ["003", "004"]
    assert [s.revision for s in command.up(config).steps] == ["003", "004"]


def test_status_cli_reports_failed_revisions_in_json_and_exits_1(
    make_config: Callable[..., Config], scripts: Path, run_cli: Callable[..., CliResult]
) -> None:
    edit(
        scripts / "002_create_integrations.py",
        "def upgrade(op):\n",
        "def upgrade(op):\n    if not op.planning:\n        1 / 0\n",
    )
    failed_up = run_cli("up", "--migrations", str(scripts))
    assert failed_up.code == 1 and "Traceback" not in failed_up.stderr
    assert failed_up.stderr.strip().splitlines()[-1].startswith("error: revision 002")
    status = run_cli("status", "--json", "--migrations", str(scripts))
    assert status.code == 1  # blocked: up would refuse
    body = json.loads(status.stdout)
    assert body["current"] == "001" and body["head"] == "004"
    failed = body["failed"][0]
    assert body["failed"] == [
        {
            "revision": "002",
            "description": failed["description"],
            "state": "failed",
            "direction": "up",
            "applied_at": None,
            "checksum": failed["checksum"],
            "error": "ZeroDivisionError: division by zero",
            "applied_by": failed["applied_by"],
            "idempotent": True,
            "next_step": (
                "fix the script (or the data it failed on), cosmigrate repair (it becomes pending again), then "
                "cosmigrate up"
            ),
            "unverified_helpers": [],
            "note": None,
        }
    ]
    assert body["blocked"] is True and "002" in body["refusal"]
    assert [p["revision"] for p in body["pending"]] == ["003", "004"]
    table = run_cli("status", "--migrations", str(scripts))
    assert "002       failed" in table.stdout and "ZeroDivisionError" in table.stdout


def test_a_changed_script_blocks_up_but_a_crlf_checkout_does_not(
    make_config: Callable[..., Config], scripts: Path
) -> None:
    config = make_config(migrations=scripts)
    command.up(config, target="002")
    first = scripts / "001_create_integration_providers.py"
    first.write_bytes(first.read_bytes().replace(b"\n", b"\r\n"))  # what git autocrlf does on Windows
    assert command.status(config).changed == []
    assert [s.revision for s in command.up(config, target="003").steps] == ["003"]

    edit(first, '"/status/*"', '"/state/*"')
    status = command.status(config)
    assert [v.revision for v in status.changed] == ["001"] and status.blocked
    with pytest.raises(HistoryConflict, match=r"revision 001: 001_create_integration_providers.py changed"):
        command.up(config)
    repaired = command.repair(config, YES)
    assert repaired.accepted == ["001"]
    assert "001_create_integration_providers.py: run cosmigrate hash" in (repaired.sum_hint or "")
    assert command.status(config).changed == []
    assert [s.revision for s in command.up(config).steps] == ["004"]


def test_a_missing_script_of_an_applied_revision_blocks_up(make_config: Callable[..., Config], scripts: Path) -> None:
    config = make_config(migrations=scripts)
    command.up(config)
    (scripts / "004_drop_deprecated_containers.py").unlink()
    status = command.status(config)
    assert [v.revision for v in status.missing] == ["004"]
    with pytest.raises(HistoryConflict, match="004 is recorded applied but no script declares"):
        command.down(config)
    repaired = command.repair(config, YES)
    assert repaired.forgotten == ["004"]
    assert repaired.sum_hint is None  # the file may only be away on another branch: no advice to rewrite the sum
    assert command.status(config).current == "003"


def test_repair_asks_before_accepting_changes(make_config: Callable[..., Config], scripts: Path) -> None:
    config = make_config(migrations=scripts)
    command.up(config, target="001")
    edit(scripts / "001_create_integration_providers.py", '"/name/*"', '"/title/*"')
    with pytest.raises(Exception, match="repair cancelled"):
        command.repair(config, lambda _question: False)
    assert [v.revision for v in command.status(config).changed] == ["001"]


def test_stamp_adopts_an_existing_database_and_base_clears(
    make_config: Callable[..., Config], cosmos: CosmosClient
) -> None:
    config = make_config()
    database = cosmos.create_database(config.database)  # an existing database, migrated by hand so far
    stamped = command.stamp(config, "002", NO)  # recording more than before asks nothing
    assert stamped.stamped == ["001", "002"]
    assert [c["id"] for c in database.list_containers()] == ["cosmigrate_history"]  # nothing ran
    history = command.history(config)
    assert [(r["revision"], r["stamped"]) for r in history.records] == [("001", True), ("002", True)]
    assert [(e["event"], e["revision"]) for e in history.events] == [("stamped", "001"), ("stamped", "002")]
    assert [s.revision for s in command.up(config, target="004").steps] == ["003", "004"]
    with pytest.raises(UsageError, match="stamp cancelled"):
        command.stamp(config, "base", NO)  # forgetting applied revisions asks
    assert command.status(config).current == "004"
    cleared = command.stamp(config, "base", YES)
    assert cleared.removed == ["001", "002", "003", "004"]
    assert command.status(config).current is None
    events = [(e["event"], e["revision"]) for e in command.history(config).events]
    assert events[-4:] == [("unstamped", r) for r in ("001", "002", "003", "004")]


def test_stamp_says_in_words_what_it_recorded_and_what_it_unmarked(
    cosmos: CosmosClient, database_name: str, run_cli: Callable[..., CliResult]
) -> None:
    cosmos.create_database(database_name)
    said = [run_cli("stamp", *args).stdout.strip() for args in (("002",), ("001", "--yes"), ("001",))]
    assert said == [
        "stamped 002: recorded 001, 002 as applied",
        "stamped 001: 002 no longer recorded as applied",
        "stamped 001: nothing changed (the history already said so)",
    ]


def test_stamp_on_a_database_that_does_not_exist_creates_nothing(
    make_config: Callable[..., Config], cosmos: CosmosClient
) -> None:
    config = make_config()
    with pytest.raises(DatabaseMissing, match=f"database {config.database} .*does not exist"):
        command.stamp(config, "002", YES)
    assert config.database not in {d["id"] for d in cosmos.list_databases()}


def start_hanging_up(
    scripts: Path, config: Config, cli_env: dict[str, str], idempotent: bool = True, lock_ttl: int = 2
) -> subprocess.Popen[bytes]:
    """``cosmigrate up`` in a process of its own, hanging in the middle of 003 (after its container exists,
    before it is recorded), returned once 003 shows as running."""
    script = scripts / "003_reindex_integration_connections.py"
    edit(
        script,
        "    op.create_container(CONTAINER, partition_key=PARTITION_KEY, indexing_policy=INDEXING_POLICY)\n",
        "    op.create_container(CONTAINER, partition_key=PARTITION_KEY, indexing_policy=INDEXING_POLICY)\n"
        "    op.container(CONTAINER)  # data work from here: the planning pass stops at it\n"
        "    if op.flag('hang'):\n        import time\n        time.sleep(120)\n",
    )
    edit(script, "idempotent = True\n", f"idempotent = {idempotent}\narguments = {{'hang': 'hang in 003'}}\n")
    process = subprocess.Popen(
        [sys.executable, "-m", "cosmigrate", "up", "--lock-ttl", str(lock_ttl), "-x", "hang=true"],
        env={**cli_env, "COSMIGRATE_MIGRATIONS": str(scripts)},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while not running(config):
        assert time.monotonic() < deadline, "003 never started"
        time.sleep(0.1)
    assert running(config) == ["003"]
    return process


def running(config: Config) -> list[str]:
    try:
        return [v.revision for v in command.status(config).running]
    except DatabaseMissing:
        return []


@pytest.mark.parametrize("idempotent", [True, False], ids=["idempotent", "not idempotent"])
def test_up_killed_mid_revision_is_resumed_when_idempotent_and_repaired_otherwise(
    make_config: Callable[..., Config], scripts: Path, cosmos: CosmosClient, cli_env: dict[str, str], idempotent: bool
) -> None:
    """SIGKILL in the middle of 003 (an eviction, the OOM killer): nothing can be cleaned up; the lease's expiry
    by the database's clock tells the next run that 003 was interrupted."""
    config = make_config(migrations=scripts)
    process = start_hanging_up(scripts, config, cli_env, idempotent)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()

    time.sleep(3.5)  # the 2 s lease expires (+1 s for whole-second clocks)
    status = command.status(config)
    assert [(v.revision, v.direction) for v in status.interrupted] == [("003", "up")]
    assert "lock expired" in (status.interrupted[0].error or "")
    if idempotent:
        assert status.refusal is None  # not a failure: the next deploy simply finishes it
        result = command.up(config)
        assert [(s.revision, s.resumed) for s in result.steps] == [("003", True), ("004", False)]
        events = command.history(config).events
        assert ("resumed", "003") in [(e["event"], e["revision"]) for e in events]
        resumed = next(e for e in events if e["event"] == "resumed")
        assert "its lock expired before it finished" in resumed["detail"]["was"]  # a SIGKILL leaves no error
    else:
        assert status.refusal is not None and "not declared idempotent" in status.refusal
        assert "or declare" not in status.refusal  # editing the script would only make it "changed" as well
        with pytest.raises(HistoryConflict, match=r"revision 003 .*interrupted going up.*cosmigrate repair"):
            command.up(config)
        assert command.repair(config, YES).to_pending == ["003"]
        assert [s.revision for s in command.up(config).steps] == ["003", "004"]

    clean = make_config(migrations=scripts, database=config.database + "clean")
    try:
        command.up(clean)
        assert end_state(cosmos, config)["containers"] == end_state(cosmos, clean)["containers"]
    finally:
        cosmos.delete_database(clean.database)


def test_unlock_of_a_dead_run_says_so_in_its_revision_and_the_next_up_resumes_it(
    make_config: Callable[..., Config], scripts: Path, cli_env: dict[str, str]
) -> None:
    config = make_config(migrations=scripts)
    process = start_hanging_up(scripts, config, cli_env, lock_ttl=600)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert [v.revision for v in command.status(config).running] == ["003"]  # its lease runs for 10 minutes
    assert command.unlock(config, YES).released
    status = command.status(config)
    assert [(v.revision, v.direction) for v in status.interrupted] == [("003", "up")]
    assert "released by cosmigrate unlock" in (status.interrupted[0].error or "")
    assert "lock expired" not in (status.interrupted[0].error or "")
    assert [(s.revision, s.resumed) for s in command.up(config).steps] == [("003", True), ("004", False)]


def test_an_invalid_definition_anywhere_up_to_the_target_stops_before_anything_is_written(
    make_config: Callable[..., Config], scripts: Path, cosmos: CosmosClient
) -> None:
    (scripts / "005_bad.py").write_text(
        '"""Bad."""\nrevision = "005"\ndown_revision = "004"\n\n\n'
        'def upgrade(op):\n    op.create_container("audit", partition_key="tenantId")\n\n\n'
        'def downgrade(op):\n    op.delete_container("audit")\n'
    )
    config = make_config(migrations=scripts)
    with pytest.raises(ScriptError, match=r"005_bad.py:7: container 'audit': partition key 'tenantId'"):
        command.up(config)
    assert config.database not in {d["id"] for d in cosmos.list_databases()}  # not even the database was created


def test_sigterm_records_the_revision_interrupted_and_releases_the_lock_at_once(
    make_config: Callable[..., Config], scripts: Path, cli_env: dict[str, str]
) -> None:
    """A cancelled deploy (SIGTERM) unwinds: no waiting for the lease to expire before the next run, and an
    idempotent revision is simply finished by the next deploy."""
    config = make_config(migrations=scripts)
    process = start_hanging_up(scripts, config, cli_env)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 1
    last = stderr.decode().strip().splitlines()[-1]
    assert last.startswith("error: revision 003") and "the next cosmigrate up resumes it" in last, last
    status = command.status(config)
    assert status.lock is None and status.running == [] and status.failed == []
    assert [(v.revision, v.error) for v in status.interrupted] == [("003", "stopped by signal SIGTERM")]
    assert [s.revision for s in command.up(config).steps] == ["003", "004"]


def test_a_reindex_that_outlasts_the_index_timeout_fails_the_revision(
    make_config: Callable[..., Config], cosmos: CosmosClient
) -> None:
    config = make_config(index_timeout="0.3")  # the local endpoint takes 1 s to "reindex"
    database = cosmos.create_database(config.database)
    database.create_container("integration-connections", partition_key=PartitionKey("/integrationId"))
    with pytest.raises(MigrationFailed, match=r"revision 003 .*reindex of integration-connections is at \d+%"):
        command.up(config)
    assert [v.revision for v in command.status(config).failed] == ["003"]
