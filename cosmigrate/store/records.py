"""The schema history: one document per revision, in a metadata container of the migrated database.

All documents (revision records and the lock lease, see ``lock.py``) live in one logical partition, so the
whole history and the lock come back in a single query: ``status`` costs the same with 4 or 400 revisions.
Every write is an upsert or a delete that accepts 404, so a retry after an unknown outcome is harmless.
"""

from __future__ import annotations

import contextlib
import getpass
import socket
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from azure.cosmos import ContainerProxy, DatabaseProxy
from azure.cosmos import exceptions as cosmos_errors

from cosmigrate import __version__
from cosmigrate.store.client import create_container, read_container, resilient

SCOPE = "history"
PARTITION_KEY_PATH = "/scope"
LOCK_ID = "lock"
State = Literal["running", "applied", "failed"]


def now_iso(epoch: float | None = None) -> str:
    moment = datetime.fromtimestamp(time.time() if epoch is None else epoch, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def who() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


@dataclass
class Record:
    """What is known of one revision in this database."""

    revision: str
    description: str
    checksum: str
    state: State
    direction: Literal["up", "down"] = "up"
    started_at: str = ""
    applied_at: str | None = None
    duration_s: float | None = None
    applied_by: str = ""
    tool_version: str = __version__
    lease_id: str | None = None
    error: str | None = None
    stamped: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def to_document(self) -> dict[str, Any]:
        body = asdict(self)
        body.pop("extra")
        return {"id": f"rev-{self.revision}", "scope": SCOPE, "kind": "revision", **body}

    def interruption(self) -> str:
        """The error of a ``running`` record whose run died (its lease expired before it finished)."""
        return (
            f"interrupted while running {self.direction} (started {self.started_at} by {self.applied_by}; "
            "its lock expired)"
        )

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> Record:
        known = set(cls.__dataclass_fields__) - {"extra"}
        return cls(**{k: v for k, v in doc.items() if k in known})


class SchemaHistory:
    """The history container of one database: revision records and the lock document."""

    def __init__(self, database: DatabaseProxy, container_id: str) -> None:
        self.database = database
        self.container_id = container_id
        self.container: ContainerProxy = database.get_container_client(container_id)

    def ensure(self) -> None:
        """Create the container on first use (concurrent first runs settle on 409)."""
        if read_container(self.database, self.container_id) is not None:
            return
        create_container(
            self.database,
            {
                "id": self.container_id,
                "partitionKey": {"paths": [PARTITION_KEY_PATH], "kind": "Hash", "version": 2},
            },
        )

    def documents(self) -> list[dict[str, Any]]:
        """Every document of the history in one query; empty when the container does not exist yet."""

        def query() -> list[dict[str, Any]]:
            try:
                # The filter on the partition key is redundant with partition_key= for Azure, but the local
                # endpoint only accepts single-partition queries that name their partition key.
                return list(
                    self.container.query_items(
                        "SELECT * FROM c WHERE c.scope = @scope",
                        parameters=[{"name": "@scope", "value": SCOPE}],
                        partition_key=SCOPE,
                        max_item_count=1000,
                    )
                )
            except cosmos_errors.CosmosResourceNotFoundError:
                return []

        return resilient("read history", query)

    @staticmethod
    def records_of(documents: Iterable[dict[str, Any]]) -> dict[str, Record]:
        return {d["revision"]: Record.from_document(d) for d in documents if d.get("kind") == "revision"}

    def records(self) -> dict[str, Record]:
        return self.records_of(self.documents())

    def save(self, record: Record) -> None:
        document = record.to_document()
        resilient(f"record revision {record.revision}", lambda: self.container.upsert_item(document))

    def remove(self, revision: str) -> None:
        def delete() -> None:
            with contextlib.suppress(cosmos_errors.CosmosResourceNotFoundError):
                self.container.delete_item(f"rev-{revision}", partition_key=SCOPE)

        resilient(f"remove record of revision {revision}", delete)
