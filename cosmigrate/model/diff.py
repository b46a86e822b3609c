"""Declared against live, property by property and path by path: the drift ``cosmigrate verify`` reports.

Pure. Both sides go through the same normal form first (:meth:`ContainerDef.comparable`): the service's
additions on read (lower-case mode, ``automatic``, the ``_etag`` exclusion, an inserted ``/*``, ascending as
the default composite order, empty arrays) and the order of path lists are not drift.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from cosmigrate.model.container import ContainerDef


@dataclass(frozen=True)
class Difference:
    """One way a live container differs from what the migrations declare."""

    container: str
    what: str  # partitionKey, uniqueKeys, indexingMode, automatic, includedPaths, excludedPaths, ...
    declared: Any
    live: Any

    def describe(self) -> str:
        if self.what in ("includedPaths", "excludedPaths", "compositeIndexes", "spatialIndexes"):
            label = {
                "includedPaths": "included path",
                "excludedPaths": "excluded path",
                "compositeIndexes": "composite index",
                "spatialIndexes": "spatial index",
            }[self.what]
            if self.live is None:
                return f"{self.container}: {label} {show(self.declared)} is declared but not live"
            return f"{self.container}: {label} {show(self.live)} is live but not declared"
        return f"{self.container}: {self.what} is {show(self.live)} live, {show(self.declared)} declared"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "message": self.describe()}


SHORT_ORDER = {"ascending": "asc", "descending": "desc"}


def show(value: Any) -> str:
    """A path, a composite index entry or a list of them, as people write them: ``[/a asc, /b desc]``."""
    if isinstance(value, list):
        return "[" + ", ".join(show(v) for v in value) + "]"
    if isinstance(value, dict) and "path" in value:
        return f"{value['path']} {SHORT_ORDER.get(str(value.get('order', '')), '')}".strip()
    return str(value)


def diff(declared: ContainerDef, live: ContainerDef) -> list[Difference]:
    """Every difference between a declared container and the live one, in a stable order."""
    mine, theirs = declared.comparable(), live.comparable()
    found: list[Difference] = []
    for what in ("partitionKey", "uniqueKeys", "defaultTtl"):
        if mine[what] != theirs[what]:
            found.append(Difference(declared.id, what, mine[what], theirs[what]))
    policy, live_policy = mine["indexingPolicy"], theirs["indexingPolicy"]
    for what in ("indexingMode", "automatic"):
        if policy[what] != live_policy[what]:
            found.append(Difference(declared.id, what, policy[what], live_policy[what]))
    for what in ("includedPaths", "excludedPaths"):
        declared_paths, live_paths = set(policy[what]), set(live_policy[what])
        found += [Difference(declared.id, what, path, None) for path in sorted(declared_paths - live_paths)]
        found += [Difference(declared.id, what, None, path) for path in sorted(live_paths - declared_paths)]
    for what in ("compositeIndexes", "spatialIndexes"):
        declared_items = [_freeze(item) for item in policy[what]]
        live_items = [_freeze(item) for item in live_policy[what]]
        found += [
            Difference(declared.id, what, item, None)
            for item, key in zip(policy[what], declared_items, strict=True)
            if key not in live_items
        ]
        found += [
            Difference(declared.id, what, None, item)
            for item, key in zip(live_policy[what], live_items, strict=True)
            if key not in declared_items
        ]
    return found


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value
