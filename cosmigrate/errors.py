"""The errors cosmigrate reports to its users.

Every error a user can meet is one of these: its message is one line that says what went wrong, where, and
what to do, and its ``exit_code`` is 2 for usage or configuration mistakes and 1 for failures of a migration
or of the database. Anything else escaping is a bug, reported as such.
"""


class CosmigrateError(Exception):
    """Base of all expected errors; ``exit_code`` 1."""

    exit_code = 1


class UsageError(CosmigrateError):
    """A mistake in flags, configuration or migration scripts: exit code 2, nothing was touched."""

    exit_code = 2


class ScriptError(UsageError):
    """A migration file cannot be loaded or does not declare what it must."""


class GraphError(UsageError):
    """The revisions do not form one straight chain, or a target names no revision."""


class InvalidDefinition(UsageError):
    """A container definition given to an operation is not valid Cosmos DB."""


class DatabaseError(CosmigrateError):
    """Cosmos DB could not be reached or refused a request, after retries."""


class DefinitionConflict(CosmigrateError):
    """An existing container differs in a property Cosmos DB cannot change in place."""


class PreconditionRefused(CosmigrateError):
    """A script refused to run before changing anything (``op.refuse``); the revision stays pending."""


class MigrationFailed(CosmigrateError):
    """A migration script raised; its revision is recorded as failed."""


class HistoryConflict(CosmigrateError):
    """The recorded history does not allow the command: a failed, interrupted or changed revision."""


class LockError(CosmigrateError):
    """The migration lock could not be taken in time, or was lost while migrating."""
