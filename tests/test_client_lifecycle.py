"""A closed client leaves nothing running behind it.

azure-cosmos starts a background check of the account's endpoints with every client, and closing the client
does not stop it. A check still running then fails on the closed transport and logs an error with its
traceback from that thread, at any later moment: under pytest (which attaches its log capture to the SDK's
non-propagating logger) into whatever test runs then, and on Python 3.11 formatting that traceback while the
main thread parses Python can raise ``SystemError: AST constructor recursion depth mismatch`` there (CPython
gh-106905; it failed a ``cosmigrate check`` in a project's plugin run). The fault proxy holds the account reads
so that the check is surely still running when the command's client closes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import pytest

from cosmigrate.app.context import connected, database_exists
from tests.harness.local_endpoint import NodeServer, start_fault_proxy
from tests.test_faults import config_for

ACCOUNT_DELAY_MS = 600


@pytest.fixture
def slow_account(endpoint: str) -> Iterator[NodeServer]:
    proxy = start_fault_proxy(endpoint, rate429=0, rate503=0, rate_reset=0, seed=1, account_delay_ms=ACCOUNT_DELAY_MS)
    try:
        yield proxy
    finally:
        proxy.stop()


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_client_closed_while_its_endpoint_check_runs_leaves_no_thread_and_logs_nothing(
    slow_account: NodeServer, database_name: str
) -> None:
    sdk_log = logging.getLogger("azure")
    records = Records()
    sdk_log.addHandler(records)
    before = set(threading.enumerate())
    try:
        with connected(config_for(slow_account.url, database_name)) as client:
            assert database_exists(client, database_name) is False
            started = [t for t in set(threading.enumerate()) - before if t.name == "cosmos-endpoint-refresh"]
            assert started and started[0].is_alive()  # the check is waiting for its held account read
        check_alive_after_close = started[0].is_alive()
        deadline = time.monotonic() + 30  # a wait for the threads to end, as long as a busy machine needs
        while time.monotonic() < deadline and set(threading.enumerate()) - before:
            time.sleep(0.05)
        left = sorted(t.name for t in set(threading.enumerate()) - before)
        time.sleep(2 * ACCOUNT_DELAY_MS / 1000)  # a check left running would have failed and logged by now
    finally:
        sdk_log.removeHandler(records)
    assert check_alive_after_close is False  # closing waited for the check
    assert left == []  # nor does the check's thread pool outlive the client
    assert [f"{r.name}: {r.getMessage()}" for r in records.records if r.levelno >= logging.WARNING] == []
