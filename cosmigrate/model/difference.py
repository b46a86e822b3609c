"""One way two definitions of a container differ, and how values are written for people.

Pure. Every container property (:mod:`cosmigrate.model.properties`) reports its differences as these, path by
path where it has paths, so that ``verify``, ``plan`` and the built-in tests say the same thing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

SHORT_ORDER = {"ascending": "asc", "descending": "desc"}


@dataclass(frozen=True)
class Difference:
    """``declared`` vs ``live`` of one property (or one entry of a list property: the other side is None)."""

    container: str
    what: str  # partitionKey, uniqueKeys, indexingMode, includedPaths, vectorIndexes, defaultTtl, throughput, ...
    declared: Any
    live: Any
    label: str = ""  # how an entry of a list is named ("included path"); empty for a whole value

    def describe(self, declared_as: str = "declared") -> str:
        """One line; ``declared_as`` names where the declared side comes from ("in the backup")."""
        if self.label:
            if self.live is None:
                return f"{self.container}: {self.label} {show(self.declared)} is {declared_as} but not live"
            return f"{self.container}: {self.label} {show(self.live)} is live but not {declared_as}"
        return f"{self.container}: {self.what} is {show(self.live)} live, {show(self.declared)} {declared_as}"

    def to_dict(self) -> dict[str, Any]:
        body = asdict(self)
        body.pop("label")
        return {**body, "message": self.describe()}


def show(value: Any) -> str:
    """A value as people write it, never a Python repr: a composite index ``[/a asc, /b desc]``, a spatial index
    ``/location/* (Point, Polygon)``, a mapping ``(key=value …)``, nothing as ``none``."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(show(v) for v in value) + "]"
    if isinstance(value, dict):
        if set(value) == {"manual"}:
            return f"{value['manual']:,} RU/s (manual)"
        if set(value) == {"autoscale_max"}:
            return f"autoscale up to {value['autoscale_max']:,} RU/s"
        if set(value) == {"path", "order"}:
            return f"{value['path']} {SHORT_ORDER.get(str(value['order']), value['order'])}"
        if set(value) == {"path", "types"}:
            return f"{value['path']} ({', '.join(map(str, value['types']))})"
        if set(value) == {"name", "query"}:
            return f"{value['name']} = {value['query']}"
        if set(value) == {"path"}:
            return str(value["path"])
        if "path" in value:
            rest = {k: v for k, v in value.items() if k != "path"}
            return f"{value['path']} (" + ", ".join(f"{k} {show(v)}" for k, v in rest.items()) + ")"
        return "(" + ", ".join(f"{k}={show(v)}" for k, v in value.items()) + ")"
    return str(value)


def list_differences(container: str, what: str, label: str, declared: list[Any], live: list[Any]) -> list[Difference]:
    """Entries of a list property present on one side only, declared ones first, each in its own order."""
    frozen_declared = [freeze(item) for item in declared]
    frozen_live = [freeze(item) for item in live]
    found = [
        Difference(container, what, item, None, label)
        for item, key in zip(declared, frozen_declared, strict=True)
        if key not in frozen_live
    ]
    found += [
        Difference(container, what, None, item, label)
        for item, key in zip(live, frozen_live, strict=True)
        if key not in frozen_declared
    ]
    return found


def freeze(value: Any) -> Any:
    """A hashable, order-insensitive (for mappings) form of a JSON value."""
    if isinstance(value, dict):
        return tuple(sorted((k, freeze(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    return value
