"""Opening the database a command works on, and turning the client's failures into one-line errors.

Only ``up`` may create a missing database, and only when asked (``create_database``): every other command
says it does not exist and creates nothing, so a mistyped name never yields a fresh, fully migrated twin.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from azure.core.exceptions import AzureError
from azure.cosmos import CosmosClient, DatabaseProxy
from azure.cosmos import exceptions as cosmos_errors

from cosmigrate import logs
from cosmigrate.app.planes import plane_for
from cosmigrate.config import Config
from cosmigrate.errors import DatabaseMissing
from cosmigrate.store import client as cosmos
from cosmigrate.store import outage
from cosmigrate.store.client import NOT_DONE, resilient
from cosmigrate.store.history import HistoryStore
from cosmigrate.store.lock import Lease
from cosmigrate.store.records import LockView

Confirm = Callable[[str], bool]  # asks a yes/no question (the CLI: a terminal, or --yes)
log = logs.LOG
WaitCallback = Callable[[LockView], None]  # told who holds the lock while a command waits for it


@contextmanager
def connected(config: Config) -> Iterator[CosmosClient]:
    """A client for the configured account; the SDK's errors come out as one-line :class:`DatabaseError`. The
    command's steps share one outage clock, bounded by ``outage_timeout``."""
    outage.watch(config.outage_timeout)
    client = cosmos.connect(config)
    try:
        yield client
    except AzureError as exc:
        doing = f"{config.endpoint}, database {config.database}"
        raise cosmos.failure(exc, doing, config) from exc
    finally:
        cosmos.close(client)


def database_exists(client: CosmosClient, name: str) -> bool:
    database = client.get_database_client(name)

    def read() -> bool:
        try:
            database.read()
            return True
        except cosmos_errors.CosmosResourceNotFoundError:
            return False

    return resilient(f"read database {name}", read)


def missing(config: Config, *, creatable: bool = False, hint: str | None = None) -> DatabaseMissing:
    """``hint``, what to do, replaces the default advice (check the name, or create the database)."""
    name = config.database_name
    fix = (
        "or let this command create it: --create-database, COSMIGRATE_CREATE_DATABASE=1 or create_database = true"
        if creatable
        else "or create it with cosmigrate up --create-database"
    )
    return DatabaseMissing(
        f"database {name} (from {config.source_of('database')}) does not exist at {config.endpoint}; "
        + (hint or f"nothing was created: check the name, {fix}")
    )


def require_database(client: CosmosClient, config: Config, hint: str | None = None) -> DatabaseProxy:
    """The configured database, which must exist (``hint``: what to do when it does not, see :func:`missing`)."""
    if not database_exists(client, config.database_name):
        raise missing(config, hint=hint)
    return client.get_database_client(config.database_name)


def open_for_up(client: CosmosClient, config: Config) -> DatabaseProxy:
    """The database ``up`` migrates: created only when the configuration asks for it."""
    name = config.database_name
    if database_exists(client, name):
        return client.get_database_client(name)
    if not config.create_database:
        raise missing(config, creatable=True)
    database = client.get_database_client(name)

    def exists() -> DatabaseProxy:
        return database if database_exists(client, name) else NOT_DONE

    def create() -> DatabaseProxy:
        with contextlib.suppress(cosmos_errors.CosmosResourceExistsError):  # a concurrent first deploy made it
            plane_for(config).create_database(client, name, config.database_throughput)
        return database

    return resilient(f"create database {name}", create, recover=exists)


@contextmanager
def locked(
    config: Config,
    command: str,
    on_wait: WaitCallback | None,
    *,
    create_history: bool = False,
    create_database: bool = False,
) -> Iterator[tuple[DatabaseProxy, HistoryStore, Lease]]:
    """The database, its history and this command's lease on the migration lock, released on the way out.

    The database must exist unless ``create_database`` (and the configuration asks for it); the history
    container is created only with ``create_history``."""
    with connected(config) as client:
        database = open_for_up(client, config) if create_database else require_database(client, config)
        history = HistoryStore(database, config.history_container)
        if create_history:
            history.ensure(plane_for(config).create_container)
        lease = Lease(history, ttl=config.lock_ttl, command=command)
        with lease_held(lease, config, on_wait):
            yield database, history, lease


@contextmanager
def lease_held(lease: Lease, config: Config, on_wait: WaitCallback | None) -> Iterator[Lease]:
    """The lease, acquired, and released on the way out. When the command fails, its own error is the one
    reported: a release that fails too (the database gone) only says that the lock expires by itself."""
    lease.acquire(config.lock_timeout, on_wait)
    try:
        yield lease
    except BaseException:
        try:
            lease.release()
        except Exception as exc:
            log.warning(
                f"could not release the migration lock: it expires within {config.lock_ttl:g} s",
                error=" ".join(str(exc).split())[:300],
            )
        raise
    lease.release()
