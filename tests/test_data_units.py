"""The data engine's pure parts, without an endpoint: the RU token bucket, the progress renderer, partition key
values, the dead-letter file."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest
from azure.cosmos.partition_key import NonePartitionKeyValue
from structlog.testing import capture_logs

from cosmigrate.data import DELETE, Progress, ProgressRenderer, Totals
from cosmigrate.data.checkpoints import describe as describe_checkpoint
from cosmigrate.data.deadletter import DeadLetterFile, read_dead_letters
from cosmigrate.data.items import PartitionKeyPaths, request_charge, without_system_properties
from cosmigrate.data.ratelimit import RuBudget
from cosmigrate.logs import LogStream, SafeStream
from cosmigrate.model.documents import Delete


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_the_budget_holds_the_average_to_its_rate_whatever_each_request_costs() -> None:
    clock = FakeClock()
    budget = RuBudget(100, clock=clock, sleep=clock.sleep)
    charges = [1.0, 25.0, 3.0, 60.0, 5.0] * 40  # cheap reads and dear writes, as a migration mixes them
    for charge in charges:
        reserved = budget.acquire()
        budget.settle(reserved, charge)
    spent = sum(charges)
    # one request may overdraw by its own charge; over the run the average stays at the budget
    assert spent / clock.now <= 100 * 1.05, f"{spent / clock.now:.0f} RU/s"
    assert spent / (clock.now + 60 / 100) >= 100 * 0.9  # and it does not wait much longer than it must


def test_the_budget_is_shared_by_threads() -> None:
    budget = RuBudget(2000)
    granted: list[float] = []

    def work() -> None:
        for _ in range(50):
            reserved = budget.acquire()
            budget.settle(reserved, 10.0)
            granted.append(10.0)

    import time

    started = time.monotonic()
    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(granted) == 2000 and time.monotonic() - started >= 0.8  # 2000 RU at 2000 RU/s from an empty bucket


def test_a_budget_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        RuBudget(0)


def test_on_a_terminal_progress_is_a_bar_with_rate_ru_and_eta() -> None:
    stream = io.StringIO()
    render = ProgressRenderer(stream, tty=True)
    render(Progress("transform", "orders", 400, 1000, 200.0, 210.0, 420.0, 2.0))
    render(Progress("transform", "orders", 1000, 1000, 250.0, 260.0, 1040.0, 4.0, finished=True))
    text = stream.getvalue()
    assert "transform orders" in text and "1000/1000" in text and "RU/s" in text and "doc/s" in text


def test_a_log_line_during_a_bar_goes_above_it_not_glued_to_its_end() -> None:
    screen = SafeStream(io.StringIO())
    render = ProgressRenderer(screen, tty=True)  # type: ignore[arg-type]
    render(Progress("transform", "orders", 400, 1000, 200.0, 210.0, 420.0, 2.0))
    LogStream(screen).write("a warning\n")
    before, after = screen.stream.getvalue().split("a warning\n")
    assert before.endswith("\r") and "400/1000" in before  # the bar was drawn, then cleared for the line
    assert "400/1000" in after  # and drawn again below it
    render.close()


def test_without_a_terminal_progress_is_a_log_line_every_few_seconds_and_one_at_the_end() -> None:
    render = ProgressRenderer(io.StringIO(), interval=3600, tty=False)
    with capture_logs() as logs:
        for done in (100, 200, 300):
            render(Progress("copy", "orders", done, 1000, 100.0, 90.0, 1.0, 1.0))
        render(Progress("copy", "orders", 1000, 1000, 100.0, 90.0, 1.0, 10.0, finished=True))
    assert [entry["event"] for entry in logs] == ["copy progress", "copy done"]
    assert logs[0]["done"] == 100 and logs[0]["eta_seconds"] == 9 and logs[1]["done"] == 1000


def test_a_progress_log_line_leaves_out_what_is_not_known() -> None:
    render = ProgressRenderer(io.StringIO(), interval=3600, tty=False)
    with capture_logs() as logs:
        render(Progress("transform", "orders", 100, None, 50.0, 20.0, 40.0, 2.0))  # a query: no total, no ETA
    assert logs[0]["event"] == "transform progress" and logs[0]["done"] == 100
    assert "total" not in logs[0] and "eta_seconds" not in logs[0]
    assert None not in logs[0].values()


def test_progress_eta_needs_a_total_and_a_rate() -> None:
    assert Progress("t", "c", 10, None, 5.0, 1.0, 1.0, 1.0).eta_seconds is None
    assert Progress("t", "c", 10, 110, 0.0, 1.0, 1.0, 1.0).eta_seconds is None
    assert Progress("t", "c", 10, 110, 5.0, 1.0, 1.0, 1.0).eta_seconds == 20


def test_partition_key_values_for_point_operations() -> None:
    single = PartitionKeyPaths({"paths": ["/tenant/id"], "kind": "Hash"})
    assert single.value({"tenant": {"id": "t1"}}) == "t1"
    assert single.value({"tenant": {}}) is NonePartitionKeyValue  # the "undefined" partition, not JSON null
    assert single.value({"tenant": {"id": None}}) is None
    assert single.printable({}) is None
    hierarchical = PartitionKeyPaths({"paths": ["/a", "/b"], "kind": "MultiHash"})
    assert hierarchical.value({"a": 1, "b": "x"}) == [1, "x"]


def test_system_properties_and_charges() -> None:
    stored = {"id": "1", "_rid": "r", "_etag": "e", "_ts": 1, "_self": "s", "_attachments": "a", "_mine": 2}
    assert without_system_properties(stored) == {"id": "1", "_mine": 2}  # a user's own _field stays
    assert request_charge({"x-ms-request-charge": "5.71"}) == 5.71
    assert request_charge({}) == 0 and request_charge({"x-ms-request-charge": "n/a"}) == 0


def test_dead_letter_lines_are_one_line_each_and_appended(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "dead.jsonl"
    first = DeadLetterFile(path, "transform", "orders")
    first.add("1", "p", "boom\n  at line 2")
    first.close()
    second = DeadLetterFile(path, "transform", "orders")  # a resumed run adds to the file
    second.add("2", ["a", 1], "413 too large")
    second.close()
    lines = read_dead_letters(path)
    assert [(line["id"], line["partitionKey"], line["error"]) for line in lines] == [
        ("1", "p", "boom at line 2"),
        ("2", ["a", 1], "413 too large"),
    ]
    assert len(path.read_text().splitlines()) == 2


def test_delete_is_one_sentinel_and_totals_round_trip() -> None:
    assert Delete() is DELETE and repr(DELETE) == "DELETE"
    totals = Totals(read=3, written=2, unchanged=1, ru=2.5, seconds=1.25)
    assert Totals.from_dict({**totals.to_dict(), "unknown": 1}) == totals


def test_a_write_with_a_lost_answer_is_judged_landed_by_its_own_changes() -> None:
    """After a cut connection the engine reads the document back: its write landed when every change it made is
    there, even if another writer changed other properties after it; a change of ours missing means it did not."""
    from cosmigrate.data.engine import changes_present

    original = {"id": "d", "pk": "p", "n": 1, "x": 5, "_etag": "e1"}
    ours = {"id": "d", "pk": "p", "n": 2, "a": 1}  # changes n, adds a, removes x
    assert changes_present(original, ours, {**ours, "_etag": "e2"})  # nobody wrote after us
    assert changes_present(original, ours, {**ours, "b": 1, "_etag": "e3"})  # someone added b after us
    assert not changes_present(original, ours, {**original, "b": 1, "_etag": "e3"})  # only theirs landed
    assert not changes_present(original, ours, {**ours, "x": 5, "_etag": "e3"})  # our removal is not there
    assert not changes_present(original, ours, {**ours, "n": 3, "_etag": "e3"})  # they changed what we changed


def test_a_saved_data_step_is_described_by_where_it_resumes() -> None:
    ranges = [{"range": {}, "continuation": "t", "finished": False}, {"range": {}, "finished": True}]
    transform = {"operation": "transform", "container": "customers"}
    totals = {"read": 1200, "written": 995, "unchanged": 3, "deleted": 0, "dead_lettered": 2}
    failed = [{"id": "c4"}, {"id": "c9"}]
    clean = {"identity": transform, "ranges": ranges, "totals": totals, "clean": True}
    assert describe_checkpoint({**clean, "failed": []}) == "transform of customers resumes after 1,000 documents"
    assert describe_checkpoint({**clean, "failed": failed}) == (
        "transform of customers resumes after 998 documents, and retries the 2 documents that failed"
    )
    # saved by a cosmigrate that did not say whether it stopped cleanly: exactness unknown, and said so
    assert describe_checkpoint({**clean, "clean": None, "failed": []}).endswith(
        "; the run that saved it did not stop cleanly: documents it handled after its last checkpoint (a few pages) "
        "are done again"
    )
    done = [{**r, "finished": True} for r in ranges]
    copy = {"operation": "copy", "container": "orders", "target": "orders_v2"}
    assert describe_checkpoint(
        {"identity": copy, "ranges": done, "totals": totals, "failed": failed[:1], "clean": True}
    ) == ("copy of orders to orders_v2 retries only the document that failed")
    finished = {"identity": transform, "ranges": done, "totals": totals, "failed": [], "done": True}
    assert (
        describe_checkpoint(finished)
        == "transform of customers was done by an earlier run (1,000 documents): it does not run again"
    )
