"""The indexing policy: included and excluded paths, composite, spatial, vector and full-text indexes.

It changes in place (a replace, then an asynchronous index transformation the runner waits for), except its
vector indexes: the service documents vector indexes as fixed once a container exists, so a change of them is
refused like a create-only property (see shared/NOTES.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cosmigrate.model.definitions import (
    default_indexing_policy,
    normalise_indexing_policy,
    validate_indexing_policy,
)
from cosmigrate.model.difference import SHORT_ORDER, Difference, list_differences, show
from cosmigrate.model.properties import SWAP, Mutability, Property, register

ETAG = '/"_etag"/?'


def _path_first(entry: Any) -> Any:
    if isinstance(entry, list):
        return [_path_first(e) for e in entry]
    if isinstance(entry, dict):
        return {"path": entry["path"], **{k: v for k, v in entry.items() if k != "path"}} if "path" in entry else entry
    return entry


LIST_LABELS = {
    "compositeIndexes": "composite index",
    "spatialIndexes": "spatial index",
    "vectorIndexes": "vector index",
    "fullTextIndexes": "full-text index",
}


@register
class IndexingPolicy(Property):
    name = "indexingPolicy"
    shown_when_default = True
    keywords = ("indexing_policy",)
    label = "indexing"
    mutability = Mutability.SPECIAL
    order = 30

    def declare(self, container_id: str, value: Any, keyword: str) -> Any:
        return validate_indexing_policy(container_id, default_indexing_policy() if value is None else value)

    def read(self, properties: Mapping[str, Any]) -> Any:
        return dict(properties.get(self.name) or default_indexing_policy())

    def body(self, value: Any) -> dict[str, Any]:
        return {self.name: value if value is not None else default_indexing_policy()}

    def normal(self, value: Any) -> Any:
        return normalise_indexing_policy(value)

    def refusal(self, container_id: str, before: Any, after: Any) -> str | None:
        old, new = self.normal(before)["vectorIndexes"], self.normal(after)["vectorIndexes"]
        if old != new:
            return (
                f"container {container_id}: its vector indexes cannot change once it exists ({show(old)} → "
                f"{show(new)}); {SWAP}"
            )
        return None

    def keyword(self, value: Any) -> tuple[str, Any] | None:
        """The policy as a person writes it: without what the service adds on read (the ``_etag`` exclusion,
        ``consistent``, ``automatic``, empty lists), each path entry with its path first."""
        if value is None or self.is_default(value):
            return None
        written: dict[str, Any] = {}
        if str(value.get("indexingMode", "consistent")).lower() != "consistent":
            written["indexingMode"] = str(value["indexingMode"]).lower()
        if value.get("automatic", True) is not True:
            written["automatic"] = value["automatic"]
        for key in ("includedPaths", "excludedPaths", "compositeIndexes", "spatialIndexes", "vectorIndexes",
                    "fullTextIndexes"):  # fmt: skip
            entries = [e for e in value.get(key) or [] if not (key == "excludedPaths" and e.get("path") == ETAG)]
            if entries:
                written[key] = [_path_first(e) for e in entries]
        return self.keywords[0], written

    def lines(self, value: Any) -> list[str]:
        policy = self.normal(value)
        lines = [
            f"{'indexing':<17}{policy['indexingMode']}, automatic {str(policy['automatic']).lower()}",
            f"{'included':<17}" + (", ".join(policy["includedPaths"]) or "none"),
            f"{'excluded':<17}" + (", ".join(policy["excludedPaths"]) or "none"),
        ]
        for what, label in (("compositeIndexes", "composite"), ("spatialIndexes", "spatial"),
                            ("vectorIndexes", "vector index"), ("fullTextIndexes", "full-text index")):  # fmt: skip
            for i, entry in enumerate(policy[what]):
                shown = (
                    "[" + ", ".join(f"{e['path']} {SHORT_ORDER[e['order']]}" for e in entry) + "]"
                    if what == ("compositeIndexes")
                    else show(entry)
                )
                lines.append(f"{label if i == 0 else '':<17}{shown}")
        return lines

    def differences(self, container_id: str, declared: Any, live: Any) -> list[Difference]:
        mine, theirs = self.normal(declared), self.normal(live)
        found = [
            Difference(container_id, what, mine[what], theirs[what])
            for what in ("indexingMode", "automatic")
            if mine[what] != theirs[what]
        ]
        for what, label in (("includedPaths", "included path"), ("excludedPaths", "excluded path")):
            found += list_differences(container_id, what, label, sorted(set(mine[what])), sorted(set(theirs[what])))
        for what, label in LIST_LABELS.items():
            found += list_differences(container_id, what, label, mine[what], theirs[what])
        return found
