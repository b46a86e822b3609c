"""structlog set-up: log lines go to stderr (human or JSON), with every secret redacted.

A log line must never fail a migration: when stderr is a closed pipe (``cosmigrate up 2>&1 | head -1``), the
write is dropped instead of raising ``BrokenPipeError`` in the middle of a revision.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, MutableMapping
from typing import Any, TextIO


class SafeStream:
    """stderr that swallows the errors of a closed pipe (and stops writing to it)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self.closed_pipe = False

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stderr

    def write(self, text: str) -> int:
        if self.closed_pipe:
            return len(text)
        try:
            return self.stream.write(text)
        except (BrokenPipeError, ValueError, OSError):
            self.closed_pipe = True
            return len(text)

    def flush(self) -> None:
        if self.closed_pipe:
            return
        try:
            self.stream.flush()
        except (BrokenPipeError, ValueError, OSError):
            self.closed_pipe = True

    def isatty(self) -> bool:
        try:
            return bool(self.stream.isatty())
        except (ValueError, OSError):
            return False


STDERR = SafeStream()


class LogStream:
    """Where log lines go: ``target``, above a progress bar drawn on it (tqdm clears the bar and draws it again
    below the line) instead of glued to the bar's end."""

    def __init__(self, target: SafeStream) -> None:
        self.target = target

    def write(self, text: str) -> int:
        bars = sys.modules.get("tqdm")  # only when a bar may exist: logging never imports tqdm
        if bars is not None and getattr(bars.tqdm, "_instances", None):
            with bars.tqdm.external_write_mode(file=self.target):
                return self.target.write(text)
        return self.target.write(text)

    def flush(self) -> None:
        self.target.flush()


LOG_STREAM = LogStream(STDERR)


def configure(log_format: str = "text", debug: bool = False, redact: Callable[[str], str] = str) -> None:
    import logging

    import structlog  # imported here: check, new and --help never log, and start faster without it

    def scrub(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        for key, value in list(event.items()):
            if isinstance(value, str):
                event[key] = redact(value)
            elif not isinstance(value, int | float | bool | type(None)):
                event[key] = redact(str(value))
        return event

    renderer: Any = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False, pad_event_to=0)
    )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            scrub,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG if debug else logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(file=LOG_STREAM),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )


class _Lazy:
    """The ``cosmigrate`` logger, created on first use so that importing a module does not import structlog."""

    _logger: Any = None

    def __getattr__(self, name: str) -> Any:
        if _Lazy._logger is None:
            import structlog

            _Lazy._logger = structlog.get_logger("cosmigrate")
        return getattr(_Lazy._logger, name)


LOG: Any = _Lazy()


def get() -> Any:
    return LOG
