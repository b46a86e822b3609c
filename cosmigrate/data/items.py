"""What the data engine needs to know about documents: partition key values, system properties, RU charges.

Kept apart from the engine so that the copy, the backups and the tests use the same rules: a document is
addressed by its id and its partition key value (a list of values for hierarchical keys), and the properties the
service adds (``_rid``, ``_etag``…) are never written back to another container.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from azure.core.exceptions import ServiceRequestError, ServiceResponseError
from azure.cosmos import ContainerProxy
from azure.cosmos import exceptions as cosmos_errors
from azure.cosmos.partition_key import NonePartitionKeyValue

from cosmigrate.errors import DatabaseError
from cosmigrate.store.client import SYSTEM_PROPERTIES, describe, resilient

# The properties the service adds to every document (SYSTEM_PROPERTIES lists those of containers too).
DOCUMENT_SYSTEM_PROPERTIES = frozenset((*SYSTEM_PROPERTIES, "_attachments"))
CHARGE_HEADER = "x-ms-request-charge"
_MISSING = object()


class PartitionKeyPaths:
    """The partition key path(s) of a container, read once, and how to take a document's value from them."""

    def __init__(self, definition: Mapping[str, Any]) -> None:
        self.paths: tuple[str, ...] = tuple(definition.get("paths") or ("/_partitionKey",))
        self.hierarchical = definition.get("kind") == "MultiHash" or len(self.paths) > 1
        self._parts = [tuple(path.strip("/").split("/")) for path in self.paths]

    @classmethod
    def of(cls, container: ContainerProxy) -> PartitionKeyPaths:
        """Read the container's definition (one metadata request) and keep its partition key paths."""
        return cls(read_properties(container).get("partitionKey") or {})

    def value(self, document: Mapping[str, Any]) -> Any:
        """The partition key value for point operations: one value, or a list for hierarchical keys.

        A document without the property lives under the "undefined" key, which the SDK names
        ``NonePartitionKeyValue`` (``None`` would mean JSON null, another partition)."""
        values = [self._lookup(document, parts) for parts in self._parts]
        if self.hierarchical:
            return [None if v is _MISSING else v for v in values]
        return NonePartitionKeyValue if values[0] is _MISSING else values[0]

    def printable(self, document: Mapping[str, Any]) -> Any:
        """The value as JSON can carry it (dead-letter lines): missing properties become null."""
        values = [self._lookup(document, parts) for parts in self._parts]
        plain = [None if v is _MISSING else v for v in values]
        return plain if self.hierarchical else plain[0]

    def address(self, document: Mapping[str, Any]) -> dict[str, Any]:
        """Where to read ``document`` again, as JSON can carry it (a checkpoint's list of failed documents): its
        id and partition key value, with ``undefined`` telling a missing property from JSON null."""
        undefined = not self.hierarchical and self._lookup(document, self._parts[0]) is _MISSING
        return {"id": document.get("id"), "partitionKey": self.printable(document), "undefined": undefined}

    @staticmethod
    def key_of(address: Mapping[str, Any]) -> Any:
        """The partition key value for a point read of an :meth:`address`."""
        return NonePartitionKeyValue if address.get("undefined") else address.get("partitionKey")

    @staticmethod
    def _lookup(document: Mapping[str, Any], parts: tuple[str, ...]) -> Any:
        value: Any = document
        for part in parts:
            if not isinstance(value, Mapping) or part not in value:
                return _MISSING
            value = value[part]
        return value


def read_properties(container: ContainerProxy) -> dict[str, Any]:
    """The container's stored properties; a missing container or an unreachable endpoint is a DatabaseError."""
    try:
        return dict(resilient(f"read container {container.id}", container.read))
    except cosmos_errors.CosmosResourceNotFoundError:
        raise DatabaseError(
            f"container {container.id} does not exist (or its database does not); create it first or check the name"
        ) from None
    except (cosmos_errors.CosmosHttpResponseError, ServiceRequestError, ServiceResponseError) as exc:
        raise DatabaseError(describe(exc, f"read container {container.id}")) from exc


def without_system_properties(document: Mapping[str, Any]) -> dict[str, Any]:
    """The document as a user wrote it: what is compared after a lost write and what is copied elsewhere."""
    return {k: v for k, v in document.items() if k not in DOCUMENT_SYSTEM_PROPERTIES}


def request_charge(headers: Mapping[str, str]) -> float:
    """The RU charge of one response (0 when the header is absent or unreadable, e.g. an injected fault)."""
    raw = headers.get(CHARGE_HEADER)
    if raw is None:
        return 0.0
    try:
        return float(raw)
    except ValueError:
        return 0.0
