"""Progress of a data run: a snapshot the engine sends out, and a renderer for people and for CI logs.

The engine knows nothing about terminals: it calls ``on_progress(Progress)`` about twice a second and once at
the end. :class:`ProgressRenderer` turns that into a tqdm bar (items, items/s, RU/s, ETA) when stderr is a
terminal, and into a structlog line every few seconds otherwise, so that a CI log shows a long migration moving
without thousands of carriage returns.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any, TextIO

import structlog
from tqdm import tqdm

log = structlog.get_logger("cosmigrate")


@dataclass(frozen=True)
class Progress:
    """Where a run is. ``done`` counts documents handled (written, unchanged, deleted or dead-lettered), including
    those of an earlier run this one resumed; ``total`` is an estimate (a count taken at the start) or None;
    ``dead_lettered`` how many of ``done`` went to the dead-letter file."""

    operation: str
    container: str
    done: int
    total: int | None
    items_per_second: float
    ru_per_second: float
    ru: float
    elapsed: float
    finished: bool = False
    dead_lettered: int = 0

    @property
    def eta_seconds(self) -> float | None:
        """Seconds left at the current rate, when a total is known and the rate is not zero."""
        if self.total is None or self.items_per_second <= 0:
            return None
        return max(self.total - self.done, 0) / self.items_per_second

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "eta_seconds": self.eta_seconds}


class ProgressRenderer:
    """``on_progress`` for a command line: a bar on a terminal, a log line every ``interval`` seconds otherwise.

    Call :meth:`close` when the run ends early (an exception): a finished snapshot closes the bar by itself.
    """

    def __init__(self, stream: TextIO | None = None, *, interval: float = 5.0, tty: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self.tty = self._isatty() if tty is None else tty
        self._bar: tqdm[Any] | None = None
        self._last_log = -math.inf  # the first snapshot is logged (the monotonic clock may start near 0 at boot)

    def __call__(self, progress: Progress) -> None:
        if self.tty:
            self._draw(progress)
        elif progress.finished or time.monotonic() - self._last_log >= self.interval:
            self._last_log = time.monotonic()
            eta = progress.eta_seconds
            fields = {
                "container": progress.container,
                "done": progress.done,
                "total": progress.total,
                "items_per_second": round(progress.items_per_second, 1),
                "ru_per_second": round(progress.ru_per_second, 1),
                "eta_seconds": None if eta is None else round(eta),
                # always said at the end (0 included), and along the way once there are any
                "dead_lettered": progress.dead_lettered if progress.finished or progress.dead_lettered else None,
            }
            # what is not known (no total for a query, no rate yet) is left out, not logged as None
            log.info(
                f"{progress.operation} {'done' if progress.finished else 'progress'}",
                **{key: value for key, value in fields.items() if value is not None},
            )
        if progress.finished:
            self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def _draw(self, progress: Progress) -> None:
        if self._bar is None:
            self._bar = tqdm(
                total=progress.total,
                initial=progress.done,
                desc=f"{progress.operation} {progress.container}",
                unit="doc",
                file=self.stream,
                dynamic_ncols=True,
                leave=True,
            )
        if progress.total is not None and progress.total < progress.done:
            self._bar.total = progress.done  # the estimate was low (documents were added meanwhile)
        self._bar.n = progress.done
        dead = f", {progress.dead_lettered} dead-lettered" if progress.dead_lettered else ""
        self._bar.set_postfix_str(f"{progress.ru_per_second:.0f} RU/s{dead}", refresh=False)
        self._bar.refresh()

    def _isatty(self) -> bool:
        try:
            return bool(self.stream.isatty())
        except (AttributeError, ValueError, OSError):
            return False
