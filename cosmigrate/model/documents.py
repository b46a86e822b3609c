"""The marker a data function returns to delete a document, and the words for containers holding documents.
Pure, so that scripts (``op.DELETE``), the planner, the data engine and the CLI share them without importing the
Cosmos DB client."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final


class Delete:
    """Type of :data:`DELETE`, what ``fn`` returns to have a document deleted (transform) or left out (copy)."""

    _instance: Delete | None = None

    def __new__(cls) -> Delete:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "DELETE"


DELETE: Final = Delete()


def documents(count: int) -> str:
    """``1 document``, ``2,000 documents``."""
    return f"{count:,} document{'s' if count != 1 else ''}"


def holding(containers: Iterable[tuple[str, int]]) -> str:
    """``orders (3 documents), logs (1 document)``: what a destructive step would delete, as asked and planned."""
    return ", ".join(f"{name} ({documents(count)})" for name, count in containers)
