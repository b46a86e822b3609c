"""Time to live: the default TTL (on with a default, on without one, or off) and the analytical store's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cosmigrate.errors import InvalidDefinition
from cosmigrate.model.properties import Mutability, Property, register, require_int


@register
class DefaultTtl(Property):
    """``default_ttl``: seconds (> 0), ``-1`` (on, each document's own ``ttl`` decides) or ``None`` (off; a
    replace without ``defaultTtl`` turns it off). Changes in place, off included. Left out of a declaration, an
    adopted container keeps its TTL (and a new one has none)."""

    name = "defaultTtl"
    shown_when_default = True
    keywords = ("default_ttl",)
    label = "default TTL"
    mutability = Mutability.IN_PLACE
    order = 40
    managed_when_omitted = False

    def declare(self, container_id: str, value: Any, keyword: str) -> Any:
        if value is None:
            return None
        if require_int(container_id, keyword, value) < -1 or value == 0:
            raise InvalidDefinition(
                f"container {container_id!r}: default_ttl must be -1 (on, no default), a number of seconds > 0, "
                f"or None (off), not {value!r}"
            )
        return value

    def check(self, container_id: str, values: Mapping[str, Any]) -> None:
        mode = str((values.get("indexingPolicy") or {}).get("indexingMode", "consistent")).lower()
        if values.get(self.name) is not None and mode == "none":
            raise InvalidDefinition(
                f"container {container_id!r}: a default TTL needs indexing (the service refuses TTL with indexing "
                "mode none)"
            )

    def display(self, value: Any) -> str:
        return "off" if value is None else "on, no default (-1)" if value == -1 else f"{value} s"


@register
class AnalyticalStorageTtl(Property):
    """``analytical_storage_ttl``: the analytical store's TTL (-1 keeps forever, seconds > 0, 0 off). It can be
    turned on later; once on it cannot be turned off again by leaving it out, and 0 is for good."""

    name = "analyticalStorageTtl"
    keywords = ("analytical_storage_ttl",)
    label = "analytical TTL"
    mutability = Mutability.SPECIAL
    order = 90

    def declare(self, container_id: str, value: Any, keyword: str) -> Any:
        if value is None:
            return None
        if require_int(container_id, keyword, value) < -1:
            raise InvalidDefinition(
                f"container {container_id!r}: analytical_storage_ttl must be -1, 0 or seconds > 0, not {value!r}"
            )
        return value

    def read(self, properties: Mapping[str, Any]) -> Any:
        return properties.get(self.name)

    def refusal(self, container_id: str, before: Any, after: Any) -> str | None:
        if before is None or before == after:
            return None  # turned on later: allowed
        if before == 0:
            return f"container {container_id}: its analytical TTL is 0, which cannot be changed again"
        if after is None:
            return (
                f"container {container_id}: its analytical store is on (TTL {before}) and cannot be turned off; "
                "declare analytical_storage_ttl as it is"
            )
        return None

    def display(self, value: Any) -> str:
        return "off" if value is None else "forever (-1)" if value == -1 else f"{value} s"
