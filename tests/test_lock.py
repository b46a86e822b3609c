"""The lease lock against the real local endpoint: exclusion, expiry, takeover races, renewal, loss, unlock."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from azure.cosmos import CosmosClient, DatabaseProxy

from cosmigrate.app import commands as command
from cosmigrate.config import Config
from cosmigrate.errors import LockError
from cosmigrate.store.history import LOCK_ID, SCOPE, SchemaHistory
from cosmigrate.store.lock import Lease, read_holder
from tests.conftest import CliResult, concurrent_deploys


@pytest.fixture
def history(database: DatabaseProxy) -> SchemaHistory:
    store = SchemaHistory(database, "cosmigrate_history")
    store.ensure()
    return store


def plant_lock(history: SchemaHistory, lease_id: str, expires_in: float) -> None:
    """A lock document as a crashed run leaves it behind."""
    history.container.upsert_item(
        {
            "id": LOCK_ID, "scope": SCOPE, "kind": "lock", "owner": "ghost@elsewhere", "pid": 4242,
            "lease_id": lease_id, "command": "up", "acquired_at": "2026-01-01T00:00:00Z",
            "expires_at": time.time() + expires_in,
        }
    )  # fmt: skip


def test_second_contender_waits_then_times_out_naming_the_holder(history: SchemaHistory) -> None:
    first = Lease(history, ttl=30)
    first.acquire(timeout=0)
    try:
        second = Lease(history, ttl=30)
        seen = []
        started = time.monotonic()
        with pytest.raises(LockError, match=r"held by .*cosmigrate unlock"):
            second.acquire(timeout=0.6, on_wait=seen.append)
        assert time.monotonic() - started >= 0.6
        assert [h.lease_id for h in seen] == [first.lease_id]
    finally:
        first.release()
    second.acquire(timeout=0)  # free again once released
    holder = read_holder(history)
    assert holder is not None and holder[0].lease_id == second.lease_id
    second.release()
    assert read_holder(history) is None


def test_an_expired_lease_is_taken_over(history: SchemaHistory) -> None:
    plant_lock(history, "dead", expires_in=-1)
    lease = Lease(history, ttl=30)
    lease.acquire(timeout=0)
    holder = read_holder(history)
    assert holder is not None and holder[0].lease_id == lease.lease_id
    lease.release()


def test_a_live_lease_is_not_taken_over(history: SchemaHistory) -> None:
    plant_lock(history, "alive", expires_in=30)
    with pytest.raises(LockError, match="ghost@elsewhere"):
        Lease(history, ttl=30).acquire(timeout=0.2)
    holder = read_holder(history)
    assert holder is not None and holder[0].lease_id == "alive"


def test_exactly_one_of_many_contenders_takes_over_an_expired_lease(history: SchemaHistory) -> None:
    for _round in range(5):
        plant_lock(history, "dead", expires_in=-1)
        leases = [Lease(history, ttl=30) for _ in range(6)]
        barrier = threading.Barrier(len(leases))
        winners: list[Lease] = []

        def contend(lease: Lease, barrier: threading.Barrier = barrier, winners: list[Lease] = winners) -> None:
            barrier.wait()
            try:
                lease.acquire(timeout=0)
                winners.append(lease)
            except LockError:
                pass

        threads = [threading.Thread(target=contend, args=(lease,)) for lease in leases]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(winners) == 1
        holder = read_holder(history)
        assert holder is not None and holder[0].lease_id == winners[0].lease_id
        winners[0].release()


def test_the_holder_renews_its_lease_in_the_background(history: SchemaHistory) -> None:
    lease = Lease(history, ttl=0.9)
    lease.acquire(timeout=0)
    first = read_holder(history)
    time.sleep(1.5)  # longer than the lease: only renewal keeps it
    lease.check()
    renewed = read_holder(history)
    assert first and renewed and renewed[0].lease_id == lease.lease_id
    assert renewed[0].expires_at > first[0].expires_at and not renewed[0].expired()
    assert renewed[0].acquired_at == first[0].acquired_at  # a renewal is not a new acquisition
    lease.release()


def test_a_lost_lease_stops_the_holder(history: SchemaHistory) -> None:
    lease = Lease(history, ttl=0.9)
    lease.acquire(timeout=0)
    plant_lock(history, "usurper", expires_in=30)  # e.g. an operator's unlock and another run's take-over
    time.sleep(0.8)
    with pytest.raises(LockError, match=r"lost.*ghost@elsewhere"):
        lease.check()
    lease.release()  # does not delete someone else's lease
    holder = read_holder(history)
    assert holder is not None and holder[0].lease_id == "usurper"


def test_up_waits_for_a_held_lock_and_names_the_holder(
    history: SchemaHistory, run_cli: Callable[..., CliResult]
) -> None:
    plant_lock(history, "alive", expires_in=60)
    result = run_cli("up", "--lock-timeout", "1")
    assert result.code == 1
    assert "ghost@elsewhere" in result.stderr and "cosmigrate unlock" in result.stderr
    assert "Traceback" not in result.stderr


def test_unlock_shows_the_holder_and_releases(history: SchemaHistory, run_cli: Callable[..., CliResult]) -> None:
    plant_lock(history, "stuck", expires_in=600)
    refused = run_cli("unlock")  # no terminal and no --yes: refuses instead of waiting for an answer
    assert refused.code == 2 and "--yes" in refused.stderr
    assert read_holder(history) is not None
    done = run_cli("unlock", "--yes")
    assert done.code == 0 and "ghost@elsewhere" in done.stdout
    assert read_holder(history) is None
    again = run_cli("unlock", "--yes")
    assert again.code == 0 and "not held" in again.stdout


def test_lock_is_released_after_a_failed_run(
    make_config: Callable[..., Config], tmp_path: Path, cosmos: CosmosClient
) -> None:
    (tmp_path / "001_boom.py").write_text(
        '"""Boom."""\nrevision = "001"\ndown_revision = None\n\n\n'
        'def upgrade(op):\n    raise RuntimeError("boom")\n\n\ndef downgrade(op):\n    pass\n'
    )
    config = make_config(migrations=tmp_path)
    with pytest.raises(Exception, match="boom"):
        command.up(config)
    database = cosmos.get_database_client(config.database)
    assert read_holder(SchemaHistory(database, config.history_container)) is None


def test_eight_concurrent_up_processes_apply_each_revision_once(
    cli_env: dict[str, str], cosmos: CosmosClient, database_name: str
) -> None:
    """Eight deploys at once on a fresh database, 20 rounds: all succeed, each revision runs exactly once."""
    concurrent_deploys(cli_env, cosmos, database_name, processes=8, rounds=20)
