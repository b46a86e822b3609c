"""The marker a data function returns to delete a document. Pure, so that scripts (``op.DELETE``), the planner
and the data engine share one value without importing the Cosmos DB client."""

from __future__ import annotations

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
