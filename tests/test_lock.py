"""The lease lock against the real local endpoint: exclusion, expiry by the database's clock, takeover races,
renewal, fencing of a holder that lost its lease, unlock; and contenders whose clocks are minutes off.

Clock skew is real here: the contender processes run under Debian's ``faketime`` (installed by the harness
when absent), so their wall clock and monotonic clock are shifted; the local endpoint keeps the true time.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
from azure.cosmos import CosmosClient, DatabaseProxy

from cosmigrate.app import commands as command
from cosmigrate.config import Config
from cosmigrate.errors import DatabaseMissing, LockError
from cosmigrate.store.history import HistoryStore
from cosmigrate.store.lock import Lease, LockLost
from cosmigrate.store.records import LOCK_ID, SCOPE
from tests.conftest import ROOT, CliResult, concurrent_deploys

SLOW_REVISIONS = 6


@pytest.fixture
def history(database: DatabaseProxy) -> HistoryStore:
    store = HistoryStore(database, "cosmigrate_history")
    store.ensure()
    return store


def plant_lock(history: HistoryStore, lease_id: str, ttl: float, claimed: str = "2026-01-01T00:00:00Z") -> None:
    """A lock document as another run leaves it. ``claimed`` is what that run's clock said: never trusted.
    A negative ``ttl`` makes a lease the database's clock already sees as expired."""
    history.container.upsert_item(
        {
            "id": LOCK_ID, "scope": SCOPE, "kind": "lock", "owner": "ghost@elsewhere", "pid": 4242,
            "lease_id": lease_id, "command": "up", "acquired_at": claimed, "renewed_at": claimed, "ttl_s": ttl,
            "seq": 1,
        }
    )  # fmt: skip


def holder_of(history: HistoryStore) -> str | None:
    view = history.read_lock()
    return view.lease_id if view else None


# -- exclusion, expiry, takeover ----------------------------------------------------------------------------


def test_second_contender_waits_then_times_out_naming_the_holder(history: HistoryStore) -> None:
    first = Lease(history, ttl=30)
    first.acquire(timeout=0)
    try:
        second = Lease(history, ttl=30)
        seen = []
        started = time.monotonic()
        with pytest.raises(LockError, match=r"held by ghost|held by .*by the database's clock.*cosmigrate unlock"):
            second.acquire(timeout=0.6, on_wait=seen.append)
        assert time.monotonic() - started >= 0.6
        assert [h.lease_id for h in seen] == [first.lease_id]
    finally:
        first.release()
    second.acquire(timeout=0)  # free again once released
    assert holder_of(history) == second.lease_id
    second.release()
    assert history.read_lock() is None


def test_an_expired_lease_is_taken_over(history: HistoryStore) -> None:
    plant_lock(history, "dead", ttl=-2)
    lease = Lease(history, ttl=30)
    lease.acquire(timeout=0)
    assert holder_of(history) == lease.lease_id
    lease.release()


def test_a_lease_taken_over_after_waiting_says_when_it_was_taken_not_when_the_wait_began(
    history: HistoryStore,
) -> None:
    plant_lock(history, "dying", ttl=1)  # live for one more lease length (and the margin) by the database's clock
    lease = Lease(history, ttl=30)
    began = time.time()
    lease.acquire(timeout=30)
    try:
        taken = history.read_lock()
        assert taken is not None and taken.lease_id == lease.lease_id
        waited = time.time() - began
        assert waited > 1.0  # it did wait for the planted lease to expire
        acquired = datetime.fromisoformat(taken.acquired_at.replace("Z", "+00:00")).timestamp()
        assert acquired >= began + waited - 1.0, (taken.acquired_at, waited)
    finally:
        lease.release()


def test_expiry_is_judged_by_the_database_clock_not_by_the_stored_times(history: HistoryStore) -> None:
    """The stored times are the holder's clock: a lease claiming to be from 2001 but written just now is live, one
    claiming 2099 expires one lease length after its last write all the same."""
    plant_lock(history, "old-clock", ttl=30, claimed="2001-01-01T00:00:00Z")
    with pytest.raises(LockError, match="ghost@elsewhere"):
        Lease(history, ttl=30).acquire(timeout=0.3)
    assert holder_of(history) == "old-clock"

    written = time.monotonic()
    plant_lock(history, "future-clock", ttl=2, claimed="2099-01-01T00:00:00Z")
    view = history.read_lock()
    elapsed = time.monotonic() - written
    assert view is not None and view.age_s is not None and view.age_s <= elapsed + 1  # its age by the database
    assert elapsed >= 2 or not view.expired  # live right after its write (unless this machine took 2 s to read)
    lease = Lease(history, ttl=30)
    started = time.monotonic()
    lease.acquire(timeout=10)  # 1 s lease + 1 s for whole-second clocks
    waited = time.monotonic() - started
    assert holder_of(history) == lease.lease_id and waited > 0.5  # it waited for the expiry, then took it
    lease.release()


def test_exactly_one_of_many_contenders_takes_over_an_expired_lease(history: HistoryStore) -> None:
    for _round in range(5):
        plant_lock(history, "dead", ttl=-2)
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
        assert holder_of(history) == winners[0].lease_id
        winners[0].release()


# -- keeping it, losing it ----------------------------------------------------------------------------------


def test_the_holder_renews_its_lease_in_the_background(history: HistoryStore) -> None:
    lease = Lease(history, ttl=1.5)
    lease.acquire(timeout=0)
    first = history.container.read_item(LOCK_ID, partition_key=SCOPE)
    time.sleep(2.5)  # longer than the lease: only renewals keep it
    lease.check()
    renewed = history.container.read_item(LOCK_ID, partition_key=SCOPE)
    assert renewed["lease_id"] == lease.lease_id and renewed["seq"] > first["seq"]
    assert renewed["_ts"] > first["_ts"]  # written again, by the database's clock
    assert renewed["acquired_at"] == first["acquired_at"]  # a renewal is not a new acquisition
    view = history.read_lock()
    assert view is not None and not view.expired
    lease.release()


def test_a_holder_that_lost_its_lease_writes_nothing(history: HistoryStore) -> None:
    """Fencing: once another run holds the lease, the old holder's history writes fail as a whole."""
    lease = Lease(history, ttl=30)
    lease.acquire(timeout=0)
    plant_lock(history, "usurper", ttl=30)  # e.g. an operator's unlock and another run's take-over
    record = {"id": "rev-999", "scope": SCOPE, "kind": "revision", "revision": "999", "state": "applied"}
    with pytest.raises(LockLost, match=r"lost.*ghost@elsewhere"):
        lease.commit([record])
    assert [d["id"] for d in history.container.query_items(
        "SELECT * FROM c WHERE c.scope = 'history' AND c.id = 'rev-999'", partition_key=SCOPE
    )] == []  # fmt: skip
    with pytest.raises(LockLost):
        lease.check()
    lease.release()  # does not delete someone else's lease
    assert holder_of(history) == "usurper"


def test_a_lease_that_cannot_be_renewed_in_time_stops_the_run(history: HistoryStore) -> None:
    """The holder judges its own deadline on its own monotonic clock: past it without a confirmed renewal, it
    refuses to start another revision."""
    now = [0.0]
    lease = Lease(history, ttl=30, clock=lambda: now[0])
    lease.acquire(timeout=0)
    lease._stop.set()  # no background renewal in this test
    history.container.delete_item(LOCK_ID, partition_key=SCOPE)  # the renewal will find no lease to renew
    now[0] = 25.0  # within the last third of the lease: check() renews first
    with pytest.raises(LockLost):
        lease.check()


# -- through the command line ---------------------------------------------------------------------------------


def test_up_waits_for_a_held_lock_and_names_the_holder(
    history: HistoryStore, run_cli: Callable[..., CliResult]
) -> None:
    plant_lock(history, "alive", ttl=60)
    result = run_cli("up", "--lock-timeout", "1")
    assert result.code == 1
    assert "ghost@elsewhere" in result.stderr and "cosmigrate unlock" in result.stderr
    assert "Traceback" not in result.stderr


def test_unlock_shows_the_holder_releases_and_logs_it(history: HistoryStore, run_cli: Callable[..., CliResult]) -> None:
    plant_lock(history, "stuck", ttl=600)
    refused = run_cli("unlock")  # no terminal and no --yes: refuses instead of waiting for an answer
    assert refused.code == 2 and "--yes" in refused.stderr
    assert history.read_lock() is not None
    done = run_cli("unlock", "--yes")
    assert done.code == 0 and "ghost@elsewhere" in done.stdout
    assert history.read_lock() is None
    assert [(e.event, e.detail["lease_id"]) for e in history.events()] == [("unlocked", "stuck")]
    again = run_cli("unlock", "--yes")
    assert again.code == 0 and "not held" in again.stdout


def test_lock_is_released_after_a_failed_run(
    make_config: Callable[..., Config], tmp_path: Path, cosmos: CosmosClient
) -> None:
    (tmp_path / "001_boom.py").write_text(
        '"""Boom."""\nrevision = "001"\ndown_revision = None\n\n\n'
        'def upgrade(op):\n    if not op.planning:\n        raise RuntimeError("boom")\n\n\n'
        "def downgrade(op):\n    pass\n"
    )
    config = make_config(migrations=tmp_path)
    with pytest.raises(Exception, match="boom"):
        command.up(config)
    database = cosmos.get_database_client(config.database)
    assert HistoryStore(database, config.history_container).read_lock() is None


def test_eight_concurrent_up_processes_apply_each_revision_once(
    cli_env: dict[str, str], cosmos: CosmosClient, database_name: str
) -> None:
    """Eight deploys at once on a fresh database, 3 rounds: all succeed, each revision runs exactly once."""
    concurrent_deploys(cli_env, cosmos, database_name, processes=8, rounds=3)


# -- clocks that disagree -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def faketime() -> str:
    """Debian's faketime, installed when absent (the tests run as root on a Debian machine)."""
    found = shutil.which("faketime")
    if found is None:
        subprocess.run(["apt-get", "install", "-y", "-q", "faketime"], check=True, capture_output=True, timeout=300)
        found = shutil.which("faketime")
    assert found, "faketime is needed for the clock-skew tests: apt-get install faketime"
    return found


@pytest.fixture
def slow_migrations(tmp_path: Path) -> Path:
    """Six idempotent revisions of 1.5 s each (only when running for real), and one that can hang on demand."""
    folder = tmp_path / "migrations"
    folder.mkdir()
    for number in range(1, SLOW_REVISIONS + 1):
        revision, parent = f"{number:03d}", (f"{number - 1:03d}" if number > 1 else None)
        (folder / f"{revision}_slow.py").write_text(
            f'"""Slow revision {revision}."""\n\nimport time\n\nrevision = "{revision}"\ndown_revision = {parent!r}\n'
            'idempotent = True\narguments = {"hang": "sleep a long time in revision 003"}\n\n\n'
            "def upgrade(op):\n"
            f'    op.create_container("c{revision}", partition_key="/p")\n'
            "    if not op.planning:\n"
            f'        time.sleep(120 if op.flag("hang") and "{revision}" == "003" else 1.5)\n\n\n'
            f'def downgrade(op):\n    op.delete_container("c{revision}")\n'
        )
    return folder


def start_up(env: dict[str, str], *args: str, shift: str | None = None, faketime: str = "") -> subprocess.Popen[str]:
    prefix = [faketime, "-f", shift] if shift else []
    return subprocess.Popen(
        [*prefix, sys.executable, "-m", "cosmigrate", "up", "--json", *args],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.fixture
def skew_env(cli_env: dict[str, str], slow_migrations: Path) -> Iterator[dict[str, str]]:
    yield {**cli_env, "COSMIGRATE_MIGRATIONS": str(slow_migrations), "COSMIGRATE_LOCK_TTL": "6"}


def applied_events(cosmos: CosmosClient, database_name: str) -> list[str]:
    events = HistoryStore(cosmos.get_database_client(database_name), "cosmigrate_history").events()
    return [e.revision for e in events if e.event == "applied" and e.revision]


def test_a_contender_five_minutes_ahead_never_takes_over_a_healthy_holder(
    skew_env: dict[str, str],
    faketime: str,
    cosmos: CosmosClient,
    database_name: str,
    make_config: Callable[..., Config],
) -> None:
    holder = start_up(skew_env)
    config = make_config(migrations=Path(skew_env["COSMIGRATE_MIGRATIONS"]))
    wait_for(lambda: bool(_running(config)), 60, "the holder to start")
    contender = start_up(skew_env, shift="+5m", faketime=faketime)
    holder_out, holder_err = holder.communicate(timeout=120)
    contender_out, contender_err = contender.communicate(timeout=120)
    assert holder.returncode == 0, holder_err[-2000:]
    assert contender.returncode == 0, contender_err[-2000:]
    assert "took over" not in contender_err
    assert len(json.loads(holder_out)["steps"]) == SLOW_REVISIONS
    assert json.loads(contender_out)["steps"] == []  # it waited and found the work done
    assert applied_events(cosmos, database_name) == [f"{n:03d}" for n in range(1, SLOW_REVISIONS + 1)]


def _running(config: Config) -> list[str]:
    try:
        return [v.revision for v in command.status(config).running]
    except DatabaseMissing:  # not created yet
        return []


def test_a_contender_five_minutes_behind_takes_over_a_dead_holder_within_two_lease_lengths(
    skew_env: dict[str, str],
    faketime: str,
    cosmos: CosmosClient,
    database_name: str,
    make_config: Callable[..., Config],
) -> None:
    config = make_config(migrations=Path(skew_env["COSMIGRATE_MIGRATIONS"]))
    holder = start_up(skew_env, "-x", "hang=true")
    wait_for(lambda: _running(config) == ["003"], 60, "revision 003 to start")
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    store = HistoryStore(cosmos.get_database_client(database_name), "cosmigrate_history")
    dead_lease = store.container.read_item(LOCK_ID, partition_key=SCOPE)
    contender = start_up(skew_env, shift="-5m", faketime=faketime)
    out, err = contender.communicate(timeout=120)
    assert contender.returncode == 0, err[-2000:]
    ran = [step["revision"] for step in json.loads(out)["steps"]]
    assert ran == ["003", "004", "005", "006"]  # 003 was interrupted; it is idempotent, so it is resumed
    # when it took over, by the database's clock: a contender judging by its own clock, 5 minutes behind, would
    # have waited 300 s more; a busy machine only adds its few seconds of start-up to the lease's 6 (+1)
    applied = next(e for e in store.events() if e.event == "applied" and e.revision == "003")  # by the contender
    assert applied.server_ts is not None
    waited = applied.server_ts - int(dead_lease["_ts"]) - 1.5  # minus 003's own 1.5 s
    assert waited < 60, f"took {waited}s by the database's clock to take over a lease of 6s"
    assert "took over an expired lock" in err
    assert applied_events(cosmos, database_name) == [f"{n:03d}" for n in range(1, SLOW_REVISIONS + 1)]


def test_a_holder_whose_lease_was_taken_over_mid_revision_writes_nothing_after(
    skew_env: dict[str, str], cosmos: CosmosClient, database_name: str, make_config: Callable[..., Config]
) -> None:
    """A holder frozen past its lease (a VM pause, a stopped process) wakes up after another run took over."""
    config = make_config(migrations=Path(skew_env["COSMIGRATE_MIGRATIONS"]))
    holder = start_up({**skew_env, "COSMIGRATE_LOCK_TTL": "3"})
    wait_for(lambda: _running(config) == ["002"], 60, "revision 002 to start")
    os.kill(holder.pid, signal.SIGSTOP)
    store = HistoryStore(cosmos.get_database_client(database_name), "cosmigrate_history")
    usurper = Lease(store, ttl=60, command="test")
    try:
        usurper.acquire(timeout=30)  # waits until the frozen holder's lease expires by the database's clock
        written_before = {d["id"]: d["_etag"] for d in _documents(store)}
        os.kill(holder.pid, signal.SIGCONT)
        _, err = holder.communicate(timeout=60)
        assert holder.returncode == 1
        last = err.strip().splitlines()[-1]
        assert "lock was lost" in last and "revision 002 ran to its end but could not be recorded" in last, last
        after = {d["id"]: d["_etag"] for d in _documents(store) if d["id"] != LOCK_ID}
        assert after == {k: v for k, v in written_before.items() if k != LOCK_ID}  # not one write more
        assert holder_of(store) == usurper.lease_id
    finally:
        usurper.release()
    status = command.status(config)
    assert [v.revision for v in status.interrupted] == ["002"]  # the next run resumes it (idempotent)
    assert [s.revision for s in command.up(config).steps] == ["002", "003", "004", "005", "006"]


def _documents(store: HistoryStore) -> list[dict[str, object]]:
    return list(store.container.query_items("SELECT * FROM c WHERE c.scope = 'history'", partition_key=SCOPE))


def test_status_describes_the_lock_by_the_database_clock(
    history: HistoryStore, run_cli: Callable[..., CliResult]
) -> None:
    written = time.monotonic()
    plant_lock(history, "alive", ttl=60, claimed="2001-01-01T00:00:00Z")
    result = run_cli("status", "--json")
    took = time.monotonic() - written
    lock = json.loads(result.stdout)["lock"]
    assert lock["age_s"] <= took + 1  # its age by the database's clock, not the 25 years its stored times claim
    assert lock["expired"] is False and lock["acquired_at"] == "2001-01-01T00:00:00Z"
    assert "by its clock" in lock["description"] and "by the database's clock" in lock["description"]
    # a live run writes "running" only before a revision's first change: pending ones may be under way
    pending = json.loads(result.stdout)["pending"]
    assert pending and all(view["next_step"].startswith("wait: a run holds the lock") for view in pending)
    assert "may be running now" in run_cli("status").stdout
