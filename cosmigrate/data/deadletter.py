"""The dead-letter file: one JSON line per document that could not be migrated, so nothing is skipped silently.

Each line says which document (its id and partition key value as read from the source, before ``fn`` ran: fn
may change its argument; the run did not write that document), what went wrong (one line) and when. It does
not hold the document's body: read it by that id and partition key. The file is opened for appending, lazily
(a clean run leaves none), and flushed line by line: a killed run keeps what it wrote, and a resumed run adds to
it (a document of a page that was in flight at the kill may then appear twice).
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any


def one_line(text: str) -> str:
    """Collapse whitespace and line breaks: a dead-letter error and an exception message are one line each."""
    return " ".join(str(text).split())


class DeadLetterFile:
    """Thread-safe appender of dead-letter lines (JSON Lines)."""

    def __init__(self, path: Path, operation: str, container: str) -> None:
        self.path = path
        self.operation = operation
        self.container = container
        self.count = 0
        self._file: IO[str] | None = None
        self._lock = threading.Lock()

    def add(self, document_id: Any, partition_key: Any, error: str) -> None:
        line = {
            "id": document_id,
            "partitionKey": partition_key,
            "error": one_line(error),
            "when": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "operation": self.operation,
            "container": self.container,
        }
        text = json.dumps(line, ensure_ascii=False, default=str) + "\n"
        with self._lock:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = self.path.open("a", encoding="utf-8")
            self._file.write(text)
            self._file.flush()
            self.count += 1

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def read_dead_letters(path: Path) -> list[dict[str, Any]]:
    """The lines of a dead-letter file (empty when there is none): for callers and tests."""
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]
