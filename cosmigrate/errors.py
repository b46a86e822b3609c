"""The errors cosmigrate reports to its users.

Every error a user can meet is one of these: its message is one line that says what went wrong, where, and
what to do, and its ``exit_code`` is 2 for usage or configuration mistakes and 1 for failures of a migration
or of the database. Anything else escaping is a bug, reported as such.
"""

from typing import Any


class CosmigrateError(Exception):
    """Base of all expected errors; ``exit_code`` 1.

    Besides its one-line message an error may carry where it happened (``revision``, ``file``) and what was
    done before it (``steps``, the results of the revisions that did run), for ``--json`` and for callers.
    """

    exit_code = 1

    def __init__(
        self,
        message: str,
        *,
        revision: str | None = None,
        file: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.revision = revision
        self.file = file
        self.detail = detail or {}  # what the failing revision did before it stopped (data totals, backups)
        self.steps: list[Any] = []

    def to_dict(self) -> dict[str, Any]:
        said = {
            "type": type(self).__name__,
            "message": " ".join(str(self).split()),
            "exit_code": self.exit_code,
            "revision": self.revision,
            "file": self.file,
        }
        return {**said, "detail": self.detail} if self.detail else said


class UsageError(CosmigrateError):
    """A mistake in flags, configuration or migration scripts: exit code 2, nothing was touched."""

    exit_code = 2


class ScriptError(UsageError):
    """A migration file cannot be loaded or does not declare what it must."""


class GraphError(UsageError):
    """The revisions do not form one straight chain, or a target names no revision."""


class InvalidDefinition(UsageError):
    """A container definition given to an operation is not valid Cosmos DB."""


class UnknownKeyword(InvalidDefinition):
    """An operation was called with a keyword it does not know (a misspelt ``unique_key=``)."""


class DatabaseError(CosmigrateError):
    """Cosmos DB could not be reached or refused a request, after retries."""


class DefinitionConflict(CosmigrateError):
    """An existing container differs in a property Cosmos DB cannot change in place."""


class DefinitionDiffers(CosmigrateError):
    """An existing container's mutable properties (TTL, indexing, throughput…) differ from a saved definition."""

    def __init__(self, message: str, *, container: str = "", properties: list[str] | None = None) -> None:
        super().__init__(message, detail={"container": container, "properties": list(properties or [])})


class PreconditionRefused(CosmigrateError):
    """A script refused to run before changing anything (``op.refuse``); the revision stays pending."""


class MigrationFailed(CosmigrateError):
    """A migration script raised (recorded as failed) or its run was interrupted (recorded as interrupted)."""


class HistoryConflict(CosmigrateError):
    """The recorded history does not allow the command: a failed, interrupted or changed revision."""


class LockError(CosmigrateError):
    """The migration lock could not be taken in time, or was lost while migrating."""


class DatabaseMissing(CosmigrateError):
    """The database named by the configuration does not exist (and this command does not create one)."""


class CredentialError(UsageError):
    """The account refused the key (401): a configuration mistake, exit code 2."""


class DatabaseUnreachable(DatabaseError):
    """Cosmos DB did not answer for the whole outage timeout: the step gave up (``seconds`` how long it tried)."""

    def __init__(self, message: str, *, seconds: float, timeout: float) -> None:
        super().__init__(message)
        self.seconds = seconds
        self.timeout = timeout
