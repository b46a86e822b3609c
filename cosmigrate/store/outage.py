"""One bound on how long cosmigrate keeps trying while the database does not answer.

Every step retries transient failures (cut connections, 503, 429 after the client's own retries) because the
service has them and the client does not retry a write whose outcome is unknown. Without a bound shared by the
steps, an outage multiplied out: each step retried on its own, each read-back inside a step retried again, and
after the data step gave up the runner's record of the interruption, the checkpoint and the lock release each
retried in turn — 427 s before a run gave up on a database that was gone.

Here a process keeps one :class:`Outage` per command (:func:`watch`, with ``outage_timeout``): it knows since
when the database has not answered, across all threads — from when the first request that failed was *sent*
(a request that hangs counts from its start, not from its timeout). A step gives up once its own failures, or
the database's silence, have lasted ``timeout`` seconds; after that, any later step (the checkpoint, the record
of the interruption, the release of the lock) is tried once and not retried, so the run ends soon after the
bound. Any answer — a success or a definite refusal such as 404 or 412 — ends the outage.

:func:`on_request` (the ``raw_request_hook`` of cosmigrate's clients) stamps each attempt's send time and keeps
each attempt within the bound: while the database is silent, an attempt may wait only for what is left of it, and
once the bound has passed, a few seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from cosmigrate.config import DEFAULT_OUTAGE_TIMEOUT

# Seconds between attempts: short at first (a cut connection is usually alone), then at most 5 s.
BACKOFF = (0.2, 0.5, 1.0, 2.0, 4.0, 5.0)
# Once the bound has passed, the attempts that are still made (saving a checkpoint, recording the interruption,
# releasing the lock) each wait this long at most for the connection and for the answer.
LAST_TRIES_SECONDS = 3.0
_sent = threading.local()  # the send time of this thread's last attempt (on_request)


class Outage:
    """Since when the database has not answered (monotonic seconds), shared by every thread of a command."""

    def __init__(self, timeout: float = DEFAULT_OUTAGE_TIMEOUT, clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout = timeout
        self.clock = clock
        self._since: float | None = None
        self._lock = threading.Lock()

    def answered(self) -> None:
        """The database answered (a success, or a definite refusal): whatever failed before, it is reachable."""
        _sent.at = None
        if self._since is not None:
            with self._lock:
                self._since = None

    def failed(self) -> float:
        """A transient failure of this thread's last attempt; returns since when the database has not answered
        (the earliest send time of an attempt that failed since the last answer)."""
        sent = getattr(_sent, "at", None)
        _sent.at = None  # used once: a client without on_request must not inherit an old stamp
        now = self.clock()
        started = sent if sent is not None and sent <= now else now
        with self._lock:
            if self._since is None or started < self._since:
                self._since = started
            return self._since

    def left(self) -> float | None:
        """Seconds left of the bound while the database is silent (0 once it has passed); None when it answers."""
        since = self._since
        return None if since is None else max(0.0, self.timeout - (self.clock() - since))

    @property
    def over(self) -> bool:
        """The database has not answered for the whole bound: later steps try once, without retrying."""
        since = self._since
        return since is not None and self.clock() - since >= self.timeout


_current = Outage()


def current() -> Outage:
    return _current


def watch(timeout: float) -> Outage:
    """A fresh outage clock for a command (what an earlier command in this process saw does not count)."""
    global _current
    _current = Outage(timeout)
    return _current


def on_request(request: object) -> None:
    """The ``raw_request_hook`` of cosmigrate's clients, run before every attempt the client makes (its own retries
    included): stamp the send time (see :meth:`Outage.failed`) and cap the attempt's connection and read timeouts to
    what is left of the outage bound, or to :data:`LAST_TRIES_SECONDS` once it has passed."""
    outage = current()
    _sent.at = outage.clock()
    left = outage.left()
    if left is None:
        return
    cap = max(left, LAST_TRIES_SECONDS)
    options = getattr(getattr(request, "context", None), "options", None)
    if isinstance(options, dict):
        for name in ("connection_timeout", "read_timeout"):
            given = options.get(name)
            options[name] = cap if not given else min(float(given), cap)


def end_bound(timeout: float) -> float:
    """How long after a database stops answering a run has ended, at most, as documented: the bound, then the last
    tries (the step in flight, the checkpoint, the record of the interruption, the lock's release; each may be
    retried by the client itself a few times, at :data:`LAST_TRIES_SECONDS` each)."""
    return timeout + 8 * LAST_TRIES_SECONDS


class StepRetry:
    """The retries of one step: when to wait and try again, and when to give up (see the module docstring)."""

    def __init__(self, step: str, outage: Outage | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        self.step = step
        self.outage = outage or current()
        self.sleep = sleep
        self.attempt = 0
        self.first: float | None = None

    def give_up_after(self) -> float:
        """How long this step has been failing, counted from the earlier of its first failure and the start of
        the outage; after ``timeout`` of that, :meth:`wait` says give up."""
        since = self.outage.failed()
        now = self.outage.clock()
        self.first = now if self.first is None else self.first
        return now - min(since, self.first)

    def wait(self) -> bool:
        """After a transient failure: sleep and return True to try again, or False to give up."""
        failing = self.give_up_after()
        left = self.outage.timeout - failing
        if left <= 0:
            return False
        self.sleep(min(BACKOFF[min(self.attempt, len(BACKOFF) - 1)], left))
        self.attempt += 1
        return True

    def failing_for(self) -> float:
        """Seconds since this step (or the outage it met) began failing, for the error that gives up."""
        now = self.outage.clock()
        since = self.outage._since
        starts = [t for t in (since, self.first) if t is not None]
        return now - min(starts) if starts else 0.0
