"""Progress on stderr: a bar on a terminal, a log line every few seconds otherwise (CI logs stay readable)."""

from __future__ import annotations

import math
import time

from cosmigrate import logs


class IndexProgress:
    """Index transformation progress of a container, 0-100."""

    def __init__(self) -> None:
        self.tty = logs.STDERR.isatty()
        self.last_log = -math.inf  # the first value is logged (the monotonic clock may start near 0 at boot)

    def __call__(self, container: str, percent: int) -> None:
        if self.tty:
            bar = "#" * (percent // 4)
            logs.STDERR.write(f"\r  reindexing {container} [{bar:<25}] {percent:3d}%")
            if percent >= 100:
                logs.STDERR.write("\n")
            logs.STDERR.flush()
        elif percent >= 100 or time.monotonic() - self.last_log >= 5:
            self.last_log = time.monotonic()
            logs.get().info("index transformation", container=container, progress=percent)
