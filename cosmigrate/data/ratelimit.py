"""A request-unit budget: a token bucket fed by what the service says each request cost.

Why not count requests: a query page of 100 documents and a 1 KB write cost very different RU, and only the
response knows (``x-ms-request-charge``). So each request reserves the recent average cost before it is sent
and settles the difference when its charge is known; the bucket may go into debt, and then every thread waits
until it is paid back. In-flight requests can overshoot by at most one average charge each.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RuBudget:
    """At most ``ru_per_second`` on average, with bursts of up to one second's worth."""

    def __init__(
        self,
        ru_per_second: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not ru_per_second > 0:
            raise ValueError(f"max_ru_per_second must be positive, not {ru_per_second!r}")
        self.rate = float(ru_per_second)
        self.capacity = self.rate
        self._tokens = 0.0  # start empty: a run's first second is not a free burst
        self._estimate = 1.0
        self._clock = clock
        self._sleep = sleep
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Wait until the budget allows a request; returns the RU reserved for it (pass it to :meth:`settle`)."""
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
                self._last = now
                if self._tokens > 0:
                    reserved = self._estimate
                    self._tokens -= reserved
                    return reserved
                wait = -self._tokens / self.rate
            self._sleep(min(max(wait, 0.001), 1.0))

    def settle(self, reserved: float, charged: float) -> None:
        """The request cost ``charged``: give back or take what the reservation missed."""
        with self._lock:
            self._tokens += reserved - charged
            if charged > 0:
                self._estimate = 0.8 * self._estimate + 0.2 * charged
