"""transform_items against the real local endpoint: through faults, under concurrent writers, with failures,
kills, an RU budget and a caller that says stop. Nothing is mocked; faults come from tests/harness/fault_proxy.js.
"""

from __future__ import annotations

import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core import MatchConditions
from azure.cosmos import ContainerProxy, DatabaseProxy, PartitionKey
from azure.cosmos import exceptions as cosmos_errors
from azure.cosmos.partition_key import NonePartitionKeyValue

from cosmigrate.data import (
    DELETE,
    ContainerCheckpointStore,
    ItemsFailed,
    MemoryCheckpointStore,
    Progress,
    transform_items,
)
from cosmigrate.data.deadletter import read_dead_letters
from cosmigrate.errors import LockError
from tests.conftest import ROOT
from tests.harness.data import all_documents, client_for, seeded_container
from tests.harness.local_endpoint import NodeServer, fault_counts, start_fault_proxy


@pytest.fixture
def faulty(endpoint: str) -> Iterator[NodeServer]:
    seed = int(os.environ.get("COSMIGRATE_FAULT_SEED", "7"))
    proxy = start_fault_proxy(endpoint, rate429=0.05, rate503=0.01, rate_reset=0.01, seed=seed)
    try:
        yield proxy
    finally:
        proxy.stop()


class ConcurrentWriter:
    """Another writer of the same documents, on its own client straight to the endpoint: it sets ``b = 1``
    by read-modify-write with an ETag condition (retrying its own 412s), as an application would.

    It bumps documents on request (``bump_now``, waiting until done: a write that lands between the engine's
    read and its write, so the engine's write must get a 412) and, in between, random ones of ``pool``.
    """

    def __init__(self, container: ContainerProxy, pool: list[int]) -> None:
        self.container = container
        self.pool = pool
        random.Random(3).shuffle(self.pool)
        self.bumped: set[str] = set()
        self.requests: queue.Queue[tuple[str, str, threading.Event]] = queue.Queue()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def bump_now(self, doc_id: str, pk: str) -> None:
        done = threading.Event()
        self.requests.put((doc_id, pk, done))
        assert done.wait(30)

    def bump(self, doc_id: str, pk: str) -> None:
        while True:
            document = self.container.read_item(doc_id, partition_key=pk)
            document["b"] = 1
            try:
                self.container.replace_item(
                    doc_id, document, etag=document["_etag"], match_condition=MatchConditions.IfNotModified
                )
                self.bumped.add(doc_id)
                return
            except cosmos_errors.CosmosAccessConditionFailedError:
                continue  # the engine wrote meanwhile: read again, as it does

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                doc_id, pk, done = self.requests.get(timeout=0.005)
                self.bump(doc_id, pk)
                done.set()
                continue
            except queue.Empty:
                pass
            if self.pool:
                n = self.pool.pop()
                self.bump(f"d{n:06d}", f"p{n % 97}")


def test_two_thousand_documents_through_faults_all_changed_no_concurrent_update_lost(
    endpoint: str, faulty: NodeServer, database: DatabaseProxy
) -> None:
    count = 2_000
    seeded_container(endpoint, database, "orders", count)
    direct = database.get_container_client("orders")
    writer = ConcurrentWriter(direct, [n for n in range(count) if n % 20 == 1])
    triggered: set[int] = set()
    lock = threading.Lock()

    def fn(document: dict[str, Any]) -> dict[str, Any] | None:
        if document.get("a") == 1:
            return None
        n = document["n"]
        with lock:
            first = n % 40 == 0 and n not in triggered
            triggered.add(n)
        if first:  # someone writes this document after we read it: our write must lose, then redo on the fresh one
            writer.bump_now(document["id"], document["pk"])
        document["a"] = 1
        return document

    writer.thread.start()
    with client_for(faulty.url) as client:
        through_faults = client.get_database_client(database.id).get_container_client("orders")
        try:
            totals = transform_items(through_faults, fn, concurrency=8, page_size=100)
        finally:
            writer.stop.set()
            writer.thread.join()

    documents = all_documents(direct)
    assert len(documents) == count
    assert all(d.get("a") == 1 for d in documents.values()), "a document was not transformed"
    lost = sorted(i for i in writer.bumped if documents[i].get("b") != 1)
    assert not lost, f"concurrent updates overwritten: {lost[:5]}"
    forced = count // 40
    assert totals.retried_412 >= forced, totals  # each forced race was detected, re-read and redone
    assert len(writer.bumped) > forced  # the free-running writer bumped documents too, during the run
    assert (totals.read, totals.written, totals.dead_lettered) == (count, count, 0), totals
    injected = fault_counts(faulty.url)
    assert injected["429"] > 50 and injected["503"] > 10 and injected["reset"] > 10, injected


def test_fn_errors_and_refused_writes_are_dead_lettered_counted_and_fail_the_run(
    endpoint: str, database: DatabaseProxy, tmp_path: Path
) -> None:
    container = database.create_container(
        "people", partition_key=PartitionKey("/pk"), unique_key_policy={"uniqueKeys": [{"paths": ["/email"]}]}
    )
    for n in range(300):
        container.create_item({"id": f"d{n:06d}", "pk": f"p{n % 3}", "n": n, "email": f"{n}@x"})

    def fn(document: dict[str, Any]) -> dict[str, Any] | None:
        n = document["n"]
        if n % 100 == 7:
            raise ValueError(f"cannot migrate {n}\nsecond line")
        if n == 9:  # the service refuses this one for good: 409, document 0 holds this email in partition p0
            document["email"] = "0@x"
        if n == 13:
            document["pk"] = "elsewhere"  # a partition key cannot change in place
        document["migrated"] = True
        return document

    dead = tmp_path / "dead.jsonl"
    with pytest.raises(ItemsFailed) as failed:
        transform_items(container, fn, max_failures=4, dead_letter=dead)
    assert failed.value.totals.dead_lettered == 5 and failed.value.dead_letter == dead
    assert str(dead) in str(failed.value) and "max_failures=4" in str(failed.value)
    lines = read_dead_letters(dead)
    assert sorted(line["id"] for line in lines) == ["d000007", "d000009", "d000013", "d000107", "d000207"]
    by_id = {line["id"]: line for line in lines}
    assert by_id["d000007"]["partitionKey"] == "p1"
    assert "ValueError: cannot migrate 7 second line" in by_id["d000007"]["error"]  # one line
    assert "409" in by_id["d000009"]["error"] and "partition key" in by_id["d000013"]["error"]
    assert all(line["when"].endswith("+00:00") for line in lines)
    # everything else was migrated; the failed documents were not touched
    documents = all_documents(container)
    assert sum(1 for d in documents.values() if d.get("migrated")) == 295
    assert "migrated" not in documents["d000007"] and documents["d000009"]["email"] == "9@x"

    # with max_failures at the number that failed, the same run passes and still lists them
    again = tmp_path / "again.jsonl"
    totals = transform_items(container, fn, max_failures=5, dead_letter=again)
    assert totals.dead_lettered == 5 and len(read_dead_letters(again)) == 5
    assert totals.written == 295


def test_a_run_that_failed_on_some_documents_retries_only_those_when_run_again(
    database: DatabaseProxy, tmp_path: Path
) -> None:
    """fn adds 100 points, which is not idempotent: the run after the fix must call it on the failed documents
    only, read again by id (one without a partition key value, one deleted meanwhile), or the others get 200."""
    container = database.create_container("customers", partition_key=PartitionKey("/pk"))
    for n in range(300):
        container.create_item({"id": f"c{n:04d}", "pk": f"p{n % 7}", "points": 0 if n % 50 else "n/a"})
    container.create_item({"id": "no-pk", "points": "n/a"})  # lives under the undefined partition key value
    store = ContainerCheckpointStore(database.create_container("history", partition_key=PartitionKey("/scope")))
    calls: Counter[str] = Counter()

    def add_points(document: dict[str, Any]) -> dict[str, Any]:
        calls[document["id"]] += 1
        document["points"] = document["points"] + 100  # TypeError on "n/a"
        return document

    def run(dead: Path) -> Any:
        calls.clear()
        return transform_items(container, add_points, checkpoints=store, checkpoint_key="k", dead_letter=dead)

    failing = {f"c{n:04d}" for n in range(0, 300, 50)} | {"no-pk"}
    with pytest.raises(ItemsFailed, match=r"7 documents failed.*reads only these again") as first:
        run(tmp_path / "first.jsonl")
    assert first.value.totals.dead_lettered == 7 and len(calls) == 301
    assert {a["id"] for a in store.load("k")["failed"]} == failing  # type: ignore[index]

    # the fix is in the data: all but c0050 get their points; c0100 was deleted meanwhile
    for doc_id in failing - {"c0050", "c0100"}:
        pk = NonePartitionKeyValue if doc_id == "no-pk" else f"p{int(doc_id[1:]) % 7}"
        container.patch_item(doc_id, pk, [{"op": "set", "path": "/points", "value": 0}])
    container.delete_item("c0100", partition_key="p2")
    with pytest.raises(ItemsFailed, match=r"1 document failed.*reads only this one again") as second:
        run(tmp_path / "second.jsonl")
    assert set(calls) == failing - {"c0100"} and set(calls.values()) == {1}  # no other document again
    assert [line["id"] for line in read_dead_letters(tmp_path / "second.jsonl")] == ["c0050"]
    assert second.value.totals.dead_lettered == 1 and second.value.totals.read == 301

    container.patch_item("c0050", "p1", [{"op": "set", "path": "/points", "value": 0}])
    totals = run(tmp_path / "third.jsonl")
    assert list(calls) == ["c0050"]
    assert (totals.read, totals.written, totals.unchanged, totals.dead_lettered) == (301, 300, 1, 0)
    assert {d["points"] for d in all_documents(container).values()} == {100}  # every one exactly once
    assert store.load("k") is None  # done: the checkpoint is gone


def test_dead_letters_name_the_document_as_read_even_when_fn_changed_its_id_or_partition_key(
    database: DatabaseProxy, tmp_path: Path
) -> None:
    container = database.create_container("orders", partition_key=PartitionKey("/partitionKey"))
    for n in range(20):
        container.create_item({"id": f"o{n:05d}", "partitionKey": f"t{n % 2}", "n": n})

    def fn(document: dict[str, Any]) -> dict[str, Any]:
        if document["n"] == 0:
            document["id"] = "renamed"  # refused per document: ids cannot change in place
        if document["n"] == 1:
            document["partitionKey"] = "moved"  # refused per document: nor can a partition key value
        if document["n"] == 2:
            document["id"], document["partitionKey"] = "half-done", "moved"
            raise ValueError("fn changed its argument, then raised")
        document["v2"] = True
        return document

    dead = tmp_path / "dead.jsonl"
    totals = transform_items(container, fn, max_failures=3, dead_letter=dead)
    assert (totals.read, totals.written, totals.dead_lettered) == (20, 17, 3)
    lines = {line["id"]: line for line in read_dead_letters(dead)}
    assert {(i, line["partitionKey"]) for i, line in lines.items()} == {
        ("o00000", "t0"),
        ("o00001", "t1"),
        ("o00002", "t0"),
    }
    assert "'renamed'" in lines["o00000"]["error"] and "ids cannot change" in lines["o00000"]["error"]
    assert "partition key" in lines["o00001"]["error"] and "ValueError" in lines["o00002"]["error"]
    documents = all_documents(container)  # the documents are found where the dead letters say, untouched
    assert all(
        "v2" not in documents[i] and documents[i]["partitionKey"] == line["partitionKey"] for i, line in lines.items()
    )


def test_fn_can_delete_and_leave_documents_unchanged(database: DatabaseProxy) -> None:
    container = database.create_container("c", partition_key=PartitionKey("/pk"))
    for n in range(120):
        container.create_item({"id": f"d{n:06d}", "pk": "p", "n": n})
    totals = transform_items(container, lambda d: DELETE if d["n"] < 20 else None if d["n"] < 50 else {**d, "x": 1})
    assert (totals.deleted, totals.unchanged, totals.written) == (20, 30, 70)
    documents = all_documents(container)
    assert len(documents) == 100 and sum(1 for d in documents.values() if d.get("x") == 1) == 70


def test_a_killed_run_resumes_from_its_checkpoint_rereading_only_the_pages_in_flight(
    endpoint: str, database: DatabaseProxy, tmp_path: Path
) -> None:
    count, page_size = 2000, 50  # the worker runs 4 writers, a checkpoint every page
    container = seeded_container(endpoint, database, "big", count)
    history = database.create_container("cosmigrate_history", partition_key=PartitionKey("/scope"))
    first, second = tmp_path / "first.calls", tmp_path / "second.calls"
    worker = [sys.executable, "-m", "tests.harness.data_worker", endpoint, database.id, "big", history.id, "rev-007"]
    process = subprocess.Popen([*worker, str(first), "0.002"], cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while _lines(first) < count // 2 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    assert process.returncode == -signal.SIGKILL
    calls_first = Counter(first.read_text().split())
    assert count // 2 <= sum(calls_first.values()) < count, "the kill did not land half-way"
    checkpoint = history.read_item("rev-007", partition_key="checkpoints")
    assert checkpoint["state"]["ranges"][0]["continuation"]  # the killed run left its position behind

    done = subprocess.run([*worker, str(second), "0"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    calls_second = Counter(second.read_text().split())
    reread = set(calls_first) & set(calls_second)
    # no more than 2 x checkpoint_every (1 in the worker) x page_size handed to fn beyond the last checkpoint saved
    at_risk = 2 * 1 * page_size
    assert len(reread) <= at_risk, f"{len(reread)} documents done again, more than the {at_risk} a checkpoint allows"
    assert set(calls_first) | set(calls_second) == {f"d{n:06d}" for n in range(count)}  # nothing skipped
    assert all(d.get("v") == 2 for d in all_documents(container).values())
    totals = json.loads(done.stdout.strip().splitlines()[-1])
    assert totals["read"] == count  # the resumed totals count each document once
    with pytest.raises(cosmos_errors.CosmosResourceNotFoundError):  # a finished run clears its checkpoint
        history.read_item("rev-007", partition_key="checkpoints")


def _lines(path: Path) -> int:
    try:
        with path.open("rb") as lines:
            return sum(1 for _ in lines)
    except FileNotFoundError:
        return 0


def test_the_ru_budget_limits_the_rate(endpoint: str, database: DatabaseProxy) -> None:
    """The budget is set from the rate this machine reaches unlimited, measured first in this test: a third of it,
    so that the limit must hold it back whatever the machine's speed or load (a busier machine only makes the
    limited run slower, which passes; one that gets faster must still be held to the budget)."""
    container = seeded_container(endpoint, database, "budget", 800)
    free = transform_items(container, lambda d: {**d, "r": 1})
    budget = free.ru / free.seconds / 3
    limited = transform_items(container, lambda d: {**d, "r": 2}, max_ru_per_second=budget)
    limited_rate = limited.ru / limited.seconds
    assert limited.ru >= 800  # every write was charged (1 RU each on the local endpoint)
    assert limited_rate <= budget * 1.25, f"{limited_rate:.0f} RU/s against a budget of {budget:.0f}"


def test_should_continue_raising_stops_cleanly_and_the_checkpoint_resumes(
    endpoint: str, database: DatabaseProxy
) -> None:
    container = seeded_container(endpoint, database, "locked", 1000)
    store = MemoryCheckpointStore()
    calls = Counter[str]()
    asked = [0]

    def lock_still_mine() -> None:
        asked[0] += 1
        if asked[0] > 6:
            raise LockError("the migration lock was taken over")

    def fn(document: dict[str, Any]) -> dict[str, Any]:
        calls[document["id"]] += 1
        return {**document, "v": 2}

    before = {t.name for t in threading.enumerate()}
    with pytest.raises(LockError):
        transform_items(
            container, fn, page_size=50, checkpoints=store, checkpoint_key="k", should_continue=lock_still_mine
        )
    assert not [t for t in threading.enumerate() if t.name.startswith("cosmigrate-") and t.name not in before]
    state = store.load("k")
    assert state is not None and 0 < state["totals"]["read"] <= 6 * 50  # no page after the refusal
    stopped_at = sum(calls.values())
    assert stopped_at <= 6 * 50

    # stopped again before it gets past the pages the first run had in flight, then to the end
    asked[0] = 3
    with pytest.raises(LockError):
        transform_items(
            container, fn, page_size=50, checkpoints=store, checkpoint_key="k", should_continue=lock_still_mine
        )
    assert 0 < sum(calls.values()) - stopped_at <= 4 * 50
    totals = transform_items(container, fn, page_size=50, checkpoints=store, checkpoint_key="k")
    assert (totals.read, totals.written) == (1000, 1000) and store.load("k") is None
    # a clean stop saves the documents it handled in the pages in flight: none is transformed twice
    assert calls == Counter({f"d{n:06d}": 1 for n in range(1000)})


def test_progress_reports_items_rate_and_an_estimated_total(endpoint: str, database: DatabaseProxy) -> None:
    container = seeded_container(endpoint, database, "progress", 600)
    seen: list[Progress] = []
    transform_items(container, lambda d: {**d, "p": 1}, on_progress=seen.append, concurrency=2)
    assert seen[-1].finished and seen[-1].done == 600 and seen[-1].total == 600
    assert all(p.total == 600 for p in seen) and seen[-1].items_per_second > 0 and seen[-1].ru_per_second > 0
    assert [p.done for p in seen] == sorted(p.done for p in seen)


def test_a_resume_under_another_query_is_refused(database: DatabaseProxy) -> None:
    container = database.create_container("q", partition_key=PartitionKey("/pk"))
    container.create_item({"id": "1", "pk": "a"})
    store = MemoryCheckpointStore()
    store.save("k", {"version": 1, "identity": {"operation": "transform", "container": "other"}, "ranges": []})
    from cosmigrate.data import CheckpointMismatch

    with pytest.raises(CheckpointMismatch, match="another checkpoint_key"):
        transform_items(container, lambda d: None, checkpoints=store, checkpoint_key="k")


def test_checkpoints_live_in_their_own_partition_of_the_history_container(database: DatabaseProxy) -> None:
    history = database.create_container("cosmigrate_history", partition_key=PartitionKey("/scope"))
    history.create_item({"id": "lock", "scope": "history", "kind": "lock"})
    store = ContainerCheckpointStore(history)
    assert store.load("rev-001") is None
    store.save("rev-001", {"ranges": [{"continuation": "x"}]})
    store.save("rev-001", {"ranges": [{"continuation": "y"}]})  # replaces
    assert store.load("rev-001") == {"ranges": [{"continuation": "y"}]}
    stored = history.read_item("rev-001", partition_key="checkpoints")
    assert stored["scope"] == "checkpoints"
    store.clear("rev-001")
    store.clear("rev-001")  # clearing twice is fine
    assert store.load("rev-001") is None
    everything = history.query_items("SELECT * FROM c", enable_cross_partition_query=True)
    assert [d["id"] for d in everything] == ["lock"]  # nothing left behind, the lock untouched


def test_reads_and_writes_carry_the_priority_and_their_own_charge(endpoint: str, database: DatabaseProxy) -> None:
    container = database.create_container("prio", partition_key=PartitionKey("/pk"))
    for n in range(30):
        container.create_item({"id": f"d{n}", "pk": "p", "n": n})
    sent: list[tuple[str, str | None]] = []

    def record(request: Any) -> None:
        http = request.http_request
        if "/docs" in http.url:
            sent.append((http.method, http.headers.get("x-ms-cosmos-priority-level")))

    with client_for(endpoint, raw_request_hook=record) as client:  # sees every request the client sends
        hooked = client.get_database_client(database.id).get_container_client("prio")
        totals = transform_items(hooked, lambda d: {**d, "x": 1}, page_size=10, priority="Low")
    assert {method for method, _ in sent} >= {"POST", "PUT"}  # queries and replaces were seen
    assert all(priority == "Low" for _, priority in sent), sent
    assert totals.ru == len(sent)  # 1 RU per request here: each request's own charge, counted once
