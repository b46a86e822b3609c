"""Data steps through the faults production meets: throttling, 503s and cut connections while the application
writes the same documents, and an outage of the database in the middle of a transform.

Faults come from tests/harness/fault_proxy.js in front of the real local endpoint (it can also take itself down
and come back on the same port); the application is tests/harness/app_writer.py, a process of its own.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.cosmos import DatabaseProxy, PartitionKey

from cosmigrate.data import ContainerCheckpointStore, transform_items
from cosmigrate.data.checkpoints import LocalCheckpointFiles
from cosmigrate.data.engine import change_set, landed
from cosmigrate.scripts import sumfile
from tests.conftest import ROOT, CliResult
from tests.harness.data import all_documents, seeded_container
from tests.harness.local_endpoint import NodeServer, bring_back, fault_counts, start_fault_proxy, take_down


def test_another_threads_request_leaves_a_responses_headers_untouched(endpoint: str, database: DatabaseProxy) -> None:
    """azure-cosmos writes its throttle counters into the headers of whatever request its client last finished,
    often another thread's, while that thread may be copying them (RuntimeError: OrderedDict mutated during
    iteration). cosmigrate keeps them per thread (cosmigrate.store.sdk_fixes): B's request must not touch A's."""
    import cosmigrate.store.client  # noqa: F401 - applies the fix, as every cosmigrate entry point does

    container = database.create_container("h", partition_key=PartitionKey("/pk"))
    container.upsert_item({"id": "1", "pk": "a"})
    seen: list[Any] = []
    container.read_item("1", partition_key="a", response_hook=lambda headers, _: seen.append(headers))
    keys_before = list(seen[0])
    other = threading.Thread(target=lambda: container.read_item("1", partition_key="a"))
    other.start()
    other.join()
    assert list(seen[0]) == keys_before, "another thread's request changed this response's headers"
    # and in this thread the client still reports the headers of this thread's last request
    container.read_item("1", partition_key="a", response_hook=lambda headers, _: seen.append(headers))
    assert container.client_connection.last_response_headers is seen[-1]


def _migrations(folder: Path, body: str, idempotent: bool) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "001_points.py").write_text(
        f'"""Give every order its points."""\nrevision = "001"\ndown_revision = None\nidempotent = {idempotent}\n\n\n'
        f"def upgrade(op):\n{body}\n\n\ndef downgrade(op):\n    pass\n"
    )
    sumfile.write(folder)
    return folder


def _cli(env: dict[str, str], *args: str, timeout: float = 300) -> CliResult:
    done = subprocess.run(
        [sys.executable, "-m", "cosmigrate", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    return CliResult(done.returncode, done.stdout, done.stderr)


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_a_transform_through_faults_with_the_application_writing_does_each_document_once_and_keeps_every_update(
    seed: int, endpoint: str, database: DatabaseProxy, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """The scenario of issue 11: 3,000 documents through 10% 429, 5% 503 and 2% cut connections, with the
    application's read-modify-writes (ETag-conditional, another process, straight to the endpoint) going on all
    along. fn is not
    idempotent (it counts its own calls into the document): each document must end with exactly one, and with
    every update the application was told had landed."""
    count = 3000
    seeded_container(endpoint, database, "orders", count)
    proxy = start_fault_proxy(endpoint, rate429=0.10, rate503=0.05, rate_reset=0.02, seed=seed)
    body = '    op.transform_items("orders", lambda d: {**d, "t": d.get("t", 0) + 1})'
    env = {
        **cli_env,
        "COSMOS_ENDPOINT": proxy.url,
        "COSMIGRATE_MIGRATIONS": str(_migrations(tmp_path / "m", body, True)),
    }
    updates = tmp_path / "updates.log"
    app = subprocess.Popen(
        [sys.executable, "-m", "tests.harness.app_writer", endpoint, database.id, "orders", str(count), str(updates)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert app.stdout is not None and app.stdout.readline().strip() == "ready"
        done = _cli(env, "up", "--json")
    finally:
        app.terminate()
        app.wait(timeout=30)
        injected = fault_counts(proxy.url)
        proxy.stop()
    assert done.code == 0, done.stderr[-3000:]
    totals = json.loads(done.stdout)["steps"][0]["operations"][0]["detail"]["totals"]
    documents = all_documents(database.get_container_client("orders"))
    assert Counter(d.get("t") for d in documents.values()) == Counter({1: count}), "a document was done twice or not"
    confirmed: dict[str, int] = {}
    for line in updates.read_text().split("\n"):
        if line:
            doc_id, value = line.split()
            confirmed[doc_id] = max(confirmed.get(doc_id, 0), int(value))
    lost = sorted(i for i, value in confirmed.items() if int(documents[i].get("b") or 0) < value)
    assert not lost, f"updates of the application overwritten: {lost[:5]}"
    assert len(confirmed) > 100, "the application hardly wrote during the run"
    assert totals["retried_412"] > 0, totals  # the application's writes really raced the transform's
    assert injected["429"] > 300 and injected["503"] > 150 and injected["reset"] > 50, injected


def _lines(path: Path) -> int:
    try:
        return len(path.read_text().split("\n")) - 1
    except FileNotFoundError:
        return 0


POINTS = """    def add(document):
        with open(CALLS, "a") as calls:
            calls.write(document["id"] + "\\n")
        document["points"] = document.get("points", 0) + 100
        return document

    op.transform_items("orders", add, concurrency=4, page_size=50)"""


@pytest.fixture
def outage(endpoint: str) -> Iterator[NodeServer]:
    proxy = start_fault_proxy(endpoint, rate429=0, rate503=0, rate_reset=0, seed=1)
    try:
        yield proxy
    finally:
        proxy.stop()


def _cut_off_mid_transform(outage: NodeServer, env: dict[str, str], calls: Path, count: int) -> tuple[CliResult, float]:
    """Start ``up``, take the database away once about a third of the documents went through fn, and wait for the
    run to give up; returns its result and how long it took after the outage began."""
    run = subprocess.Popen(
        [sys.executable, "-m", "cosmigrate", "up"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while _lines(calls) < count // 3 and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    take_down(outage)
    cut = time.monotonic()
    out, err = run.communicate(timeout=300)
    return CliResult(run.returncode, out, err), time.monotonic() - cut


@pytest.mark.parametrize("idempotent", [False, True], ids=["repair and up", "up by itself"])
def test_an_outage_mid_transform_stops_cleanly_and_the_resumed_run_gives_each_document_its_points_once(
    idempotent: bool,
    outage: NodeServer,
    endpoint: str,
    database: DatabaseProxy,
    cli_env: dict[str, str],
    tmp_path: Path,
) -> None:
    """fn adds 100 points: not idempotent. The database goes away a third of the way through and comes back; the
    run must stop within its outage bound, keep what it knows exactly (on this machine, since the database
    cannot take it), say so, and the resumed run must give each document its points once."""
    count = 1200
    seeded_container(endpoint, database, "orders", count)
    calls = tmp_path / "calls"
    folder = _migrations(tmp_path / "m", POINTS.replace("CALLS", repr(str(calls))), idempotent)
    backups = tmp_path / "backups"
    env = {
        **cli_env,
        "COSMOS_ENDPOINT": outage.url,
        "COSMIGRATE_MIGRATIONS": str(folder),
        "COSMIGRATE_BACKUP_DIR": str(backups),
        "COSMIGRATE_OUTAGE_TIMEOUT": "3",
        "COSMIGRATE_LOCK_TTL": "3",
    }
    stopped, _ = _cut_off_mid_transform(outage, env, calls, count)
    assert stopped.code == 1, stopped.stderr[-2000:]
    error = stopped.stderr.strip().splitlines()[-1]
    assert "was interrupted going up" in error and "the database could not record it" in error, error
    assert "progress is kept on this machine in" in error and str(backups) in error, error
    assert "Traceback" not in stopped.stderr
    kept = LocalCheckpointFiles(backups / database.id / "checkpoints").under()
    assert len(kept) == 1 and next(iter(kept.values()))["clean"], kept

    bring_back(outage)
    time.sleep(3.5)  # the dead run's lease expires (3 s)
    status = _cli(env, "status")
    assert "exactly: its progress is kept on this machine" in status.stdout, status.stdout
    if idempotent:
        resumed = _cli(env, "up")
    else:
        assert _cli(env, "up").code == 1  # not idempotent: up refuses until repair
        repaired = _cli(env, "repair", "--yes")
        assert repaired.code == 0, repaired.stderr[-2000:]
        assert not LocalCheckpointFiles(backups / database.id / "checkpoints").under(), "repair left it on disk"
        resumed = _cli(env, "up")
    assert resumed.code == 0, resumed.stderr[-2000:]
    points = Counter(d.get("points") for d in all_documents(database.get_container_client("orders")).values())
    assert points == Counter({100: count}), points


def test_resumed_on_another_machine_it_says_how_many_documents_may_get_their_points_twice_and_is_right(
    outage: NodeServer, endpoint: str, database: DatabaseProxy, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """Without the progress kept on the machine that ran (another deploy agent), only the last checkpoint saved
    in the database is known: status and repair must say how many documents may be done twice, and no more may be."""
    count = 1200
    seeded_container(endpoint, database, "orders", count)
    calls = tmp_path / "calls"
    folder = _migrations(tmp_path / "m", POINTS.replace("CALLS", repr(str(calls))), False)
    env = {
        **cli_env,
        "COSMOS_ENDPOINT": outage.url,
        "COSMIGRATE_MIGRATIONS": str(folder),
        "COSMIGRATE_BACKUP_DIR": str(tmp_path / "first-machine"),
        "COSMIGRATE_OUTAGE_TIMEOUT": "3",
        "COSMIGRATE_LOCK_TTL": "3",
    }
    stopped, _ = _cut_off_mid_transform(outage, env, calls, count)
    assert stopped.code == 1
    bring_back(outage)
    time.sleep(3.5)
    elsewhere = {**env, "COSMIGRATE_BACKUP_DIR": str(tmp_path / "second-machine")}
    status = _cli(elsewhere, "status")
    said = status.stdout
    assert "did not stop cleanly" in said and "may be done again" in said, said
    at_risk = int(said.split("up to ")[1].split(" documents")[0].replace(",", ""))
    repaired = _cli(elsewhere, "repair", "--yes")
    assert repaired.code == 0 and f"up to {at_risk:,} documents" in repaired.stdout, repaired.stdout
    assert _cli(elsewhere, "up").code == 0
    points = Counter(d.get("points") for d in all_documents(database.get_container_client("orders")).values())
    assert set(points) <= {100, 200} and points[100] + points[200] == count, points
    assert points[200] <= at_risk, f"{points[200]} documents got their points twice; it said up to {at_risk}"


def test_a_write_left_in_doubt_is_read_back_before_the_resumed_run_decides(
    database: DatabaseProxy, tmp_path: Path
) -> None:
    """A checkpoint saved at an outage lists the writes whose answer was lost. Resumed, the engine reads each: one
    that landed is done (fn is not called on it again), one that did not is done now."""
    container = database.create_container("o", partition_key=PartitionKey("/pk"))
    for n in range(10):
        container.create_item({"id": f"d{n}", "pk": "p", "points": 0})
    store = ContainerCheckpointStore(database.create_container("h", partition_key=PartitionKey("/scope")))
    calls: Counter[str] = Counter()

    def add(document: dict[str, Any]) -> dict[str, Any]:
        calls[document["id"]] += 1
        return {**document, "points": document["points"] + 100}

    # a first run stopped by the caller after one page, then turned into an outage's checkpoint by hand: d0's
    # write landed (its answer lost), d1's did not
    stop = [0]

    def stop_after_first_page() -> None:
        stop[0] += 1
        if stop[0] > 1:
            deadline = time.monotonic() + 30
            while len(calls) < 2 and time.monotonic() < deadline:  # the first page's two documents are done
                time.sleep(0.01)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        transform_items(container, add, page_size=2, concurrency=1, checkpoints=store, checkpoint_key="k",
                        should_continue=stop_after_first_page)  # fmt: skip
    state = store.load("k")
    assert state is not None and sorted(calls) == ["d0", "d1"]
    for doc_id in ("d0", "d1"):  # both out of the saved state, as if in flight at the stop
        address = {"id": doc_id, "partitionKey": "p", "undefined": False}
        read = container.read_item(doc_id, partition_key="p")
        if doc_id == "d1":  # not landed: put it back as it was read
            container.upsert_item({"id": "d1", "pk": "p", "points": 0})
            read = container.read_item("d1", partition_key="p")
            etag = read["_etag"]
        else:
            etag = "an etag of the version read before the write"
        entry = {"op": "replace", "etag": etag, **change_set({**read, "points": 0}, {**read, "points": 100})}
        state["doubt"].append({**entry, "address": address, "range": 0})
    state["ranges"][0]["continuation"] = None
    state["ranges"][0]["ahead"] = []
    state["totals"] = {**state["totals"], "read": 0, "written": 0}
    store.save("k", state)
    calls.clear()
    totals = transform_items(container, add, page_size=2, concurrency=1, checkpoints=store, checkpoint_key="k")
    assert "d0" not in calls and calls["d1"] == 1  # d0 landed: not again; d1 did not: done now
    assert {d["id"]: d["points"] for d in all_documents(container).values()} == {f"d{n}": 100 for n in range(10)}
    assert (totals.read, totals.written) == (10, 10)


def test_whether_a_write_in_doubt_landed() -> None:
    read = {"id": "1", "pk": "p", "points": 0, "old": 1, "_etag": "e1"}
    entry = {"op": "replace", "etag": "e1", **change_set(read, {"id": "1", "pk": "p", "points": 100})}
    assert entry["set"] == {"points": 100} and entry["unset"] == ["old"]
    assert not landed(entry, {**read})  # the version read: not written
    assert not landed(entry, None)  # gone meanwhile: nothing to settle, nothing done
    assert landed(entry, {"id": "1", "pk": "p", "points": 100, "_etag": "e2"})
    assert landed(entry, {"id": "1", "pk": "p", "points": 100, "b": 7, "_etag": "e3"})  # and someone else's after it
    assert not landed(entry, {**read, "b": 7, "_etag": "e4"})  # someone else's instead: not ours
    assert not landed(entry, {"id": "1", "pk": "p", "points": 100, "old": 1, "_etag": "e5"})  # half of it: not ours
    assert landed({"op": "delete", "etag": "e1"}, None) and not landed({"op": "delete", "etag": "e1"}, read)


def test_the_engine_never_has_more_documents_unsaved_than_a_checkpoint_says(
    endpoint: str, database: DatabaseProxy
) -> None:
    """Every checkpoint saved mid-run says how many documents a run killed right after it may have done beyond it
    (at_risk): the engine holds new documents back until a save records the earlier ones. Checked at every save."""
    seeded_container(endpoint, database, "bounded", 2000)
    container = database.get_container_client("bounded")
    store = ContainerCheckpointStore(database.create_container("h", partition_key=PartitionKey("/scope")))
    handed: list[int] = [0]
    lock = threading.Lock()
    worst: list[tuple[int, int]] = []

    class Watching:
        def load(self, key: str) -> dict[str, Any] | None:
            return store.load(key)

        def save(self, key: str, state: dict[str, Any]) -> None:
            recorded = sum(int(state["totals"][k]) for k in ("written", "unchanged", "deleted", "dead_lettered"))
            with lock:
                worst.append((handed[0] - recorded, int(state["at_risk"]) if not state["clean"] else 0))
            store.save(key, state)

        def clear(self, key: str) -> None:
            store.clear(key)

    def fn(document: dict[str, Any]) -> dict[str, Any]:
        with lock:
            handed[0] += 1
        return {**document, "x": 1}

    transform_items(container, fn, page_size=20, checkpoint_every=2, concurrency=8, checkpoints=Watching(),
                    checkpoint_key="k")  # fmt: skip
    mid_run = [(unsaved, limit) for unsaved, limit in worst if limit]
    assert len(mid_run) > 5, worst
    # at each save, what fn had been handed beyond what the save records never exceeds what the save says
    assert all(unsaved <= limit for unsaved, limit in mid_run), mid_run
    assert {limit for _, limit in mid_run} == {2 * 2 * 20}


def test_status_of_a_checkpoint_says_how_exact_it_is() -> None:
    from cosmigrate.data.checkpoints import describe

    base = {"identity": {"operation": "transform", "container": "orders"}, "ranges": [{"finished": False}]}
    totals = {"totals": {"written": 1004}}
    assert describe({**base, **totals, "clean": True}) == "transform of orders resumes after 1,004 documents"
    risky = describe({**base, **totals, "clean": False, "at_risk": 1000})
    assert risky.startswith("transform of orders resumes after 1,004 documents; the run that saved it did not stop")
    assert "up to 1,000 documents it handled after this point may be done again" in risky
    kept = describe({**base, **totals, "clean": True}, Path("/b/db/checkpoints/x.json"))
    assert "exactly: its progress is kept on this machine in /b/db/checkpoints/x.json" in kept
    assert "did not stop cleanly" in describe({**base, **totals})  # saved by an older cosmigrate: not known


def test_local_checkpoint_files_are_written_whole_and_read_by_key(tmp_path: Path) -> None:
    files = LocalCheckpointFiles(tmp_path / "cp")
    assert files.load("a") is None and files.under() == {}
    files.save("rev:1", {"seq": 3})
    files.save("rev:1", {"seq": 4})  # replaces
    files.save("other:1", {"seq": 1})
    assert files.load("rev:1") == {"seq": 4} and set(files.under("rev:")) == {"rev:1"}
    files.path("broken").write_text('{"key": "broken", "state": {"se')  # a crash mid-write leaves no valid file
    assert files.load("broken") is None
    assert not list((tmp_path / "cp").glob(".saving-*"))  # no temporary file left behind
    files.clear("rev:1")
    files.clear("rev:1")
    assert files.load("rev:1") is None


def test_unreachable_for_the_whole_bound_gives_up_and_says_how_long_it_tried() -> None:
    from cosmigrate.errors import DatabaseUnreachable
    from cosmigrate.store.client import resilient
    from cosmigrate.store.outage import Outage, StepRetry

    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    outage = Outage(10.0, clock=lambda: now[0])
    from azure.core.exceptions import ServiceRequestError

    def down() -> None:
        now[0] += 1.0  # each attempt takes a second to fail
        raise ServiceRequestError("Connection refused")

    with pytest.raises(DatabaseUnreachable) as gave_up:
        resilient("read a page of orders", down, retry=StepRetry("read a page of orders", outage, sleep=sleep))
    assert 10 <= gave_up.value.seconds <= 12 and gave_up.value.timeout == 10
    assert "read a page of orders" in str(gave_up.value) and "outage timeout is 10 s" in str(gave_up.value)
    assert max(slept) <= 5.0
    assert outage.over
    # a later step while the database is still silent is tried once, not retried for another bound
    started = now[0]
    with pytest.raises(DatabaseUnreachable):
        resilient("save checkpoint", down, retry=StepRetry("save checkpoint", outage, sleep=sleep))
    assert now[0] - started == 1.0
    # an answer ends the outage: the next failure has its whole bound again
    resilient("read", lambda: None, retry=StepRetry("read", outage, sleep=sleep))
    assert not outage.over
