"""The container's other policies: computed properties, vector embeddings, full-text search, conflicts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cosmigrate.errors import InvalidDefinition
from cosmigrate.model.definitions import validate_partition_key
from cosmigrate.model.difference import Difference, list_differences, show
from cosmigrate.model.properties import (
    Mutability,
    Property,
    register,
    require_int,
    require_list,
    require_mapping,
)

VECTOR_TYPES = ("float32", "float16", "uint8", "int8")
DISTANCES = ("cosine", "dotproduct", "euclidean")
CONFLICT_MODES = ("LastWriterWins", "Custom")
DEFAULT_CONFLICTS = {"mode": "LastWriterWins", "conflictResolutionPath": "/_ts", "conflictResolutionProcedure": ""}


def indexes_need_paths(
    container_id: str, values: Mapping[str, Any], key: str, paths: set[str], what: str, keyword: str
) -> None:
    """Each index of kind ``key`` in the indexing policy must be on a path the policy ``keyword`` declares
    (the service refuses the container otherwise)."""
    for index in (values.get("indexingPolicy") or {}).get(key, []) or []:
        if index.get("path") not in paths:
            raise InvalidDefinition(
                f"container {container_id!r}: {what} {index.get('path')} is not a path of {keyword}: add it there"
            )


@register
class ComputedProperties(Property):
    """``computed_properties=[{"name": "cp_lower", "query": "SELECT VALUE LOWER(c.name) FROM c"}]``; in place."""

    name = "computedProperties"
    keywords = ("computed_properties",)
    label = "computed"
    mutability = Mutability.IN_PLACE
    order = 50

    def declare(self, container_id: str, value: Any, keyword: str) -> Any:
        if value is None:
            return None
        entries = []
        for entry in require_list(container_id, keyword, value):
            entry = require_mapping(container_id, f"{keyword} entry", entry, ("name", "query"))
            name, query = entry.get("name"), entry.get("query")
            if not isinstance(name, str) or not name or not isinstance(query, str):
                raise InvalidDefinition(f"container {container_id!r}: a computed property needs a name and a query")
            if not query.strip().upper().startswith("SELECT VALUE"):
                raise InvalidDefinition(
                    f"container {container_id!r}: computed property {name}'s query must be SELECT VALUE … FROM c"
                )
            entries.append({"name": name, "query": query})
        names = [e["name"] for e in entries]
        if len(set(names)) != len(names):
            raise InvalidDefinition(f"container {container_id!r}: computed property names must be unique")
        return entries or None

    def normal(self, value: Any) -> Any:
        return sorted(({"name": e["name"], "query": " ".join(e["query"].split())} for e in value or []),
                      key=lambda e: e["name"])  # fmt: skip

    def lines(self, value: Any) -> list[str]:
        entries = self.normal(value)
        if not entries:
            return [f"{self.label:<17}none"]
        return [f"{self.label if i == 0 else '':<17}{show(e)}" for i, e in enumerate(entries)]

    def differences(self, container_id: str, declared: Any, live: Any) -> list[Difference]:
        return list_differences(container_id, self.name, "computed property", self.normal(declared), self.normal(live))


@register
class VectorEmbeddingPolicy(Property):
    """``vector_embedding_policy={"vectorEmbeddings": [{"path", "dataType", "dimensions", "distanceFunction"}]}``;
    create-only (the service documents it as fixed once a container exists)."""

    name = "vectorEmbeddingPolicy"
    keywords = ("vector_embedding_policy",)
    label = "vector embedding"
    mutability = Mutability.CREATE_ONLY
    order = 60

    def declare(self, container_id: str, value: Any, keyword: str) -> Any:
        if value is None:
            return None
        policy = require_mapping(container_id, keyword, value, ("vectorEmbeddings",))
        embeddings = []
        for entry in require_list(container_id, f"{keyword} vectorEmbeddings", policy.get("vectorEmbeddings") or []):
            entry = require_mapping(container_id, "a vector embedding", entry,
                                    ("path", "dataType", "dimensions", "distanceFunction"))  # fmt: skip
            validate_partition_key(container_id, entry.get("path"))
            if entry.get("dataType") not in VECTOR_TYPES:
                raise InvalidDefinition(
                    f"container {container_id!r}: vector embedding {entry.get('path')} dataType must be one of "
                    f"{', '.join(VECTOR_TYPES)}"
                )
            if entry.get("distanceFunction") not in DISTANCES:
                raise InvalidDefinition(
                    f"container {container_id!r}: vector embedding {entry.get('path')} distanceFunction must be one "
                    f"of {', '.join(DISTANCES)}"
                )
            if require_int(container_id, "dimensions", entry.get("dimensions")) < 1:
                raise InvalidDefinition(f"container {container_id!r}: vector dimensions must be positive")
            embeddings.append(dict(entry))
        return {"vectorEmbeddings": embeddings} if embeddings else None

    def check(self, container_id: str, values: Mapping[str, Any]) -> None:
        paths = {e["path"] for e in (values.get(self.name) or {}).get("vectorEmbeddings", [])}
        indexes_need_paths(container_id, values, "vectorIndexes", paths, "vector index", "vector_embedding_policy")

    def normal(self, value: Any) -> Any:
        return sorted((dict(e) for e in (value or {}).get("vectorEmbeddings", []) or []), key=lambda e: e["path"])

    def lines(self, value: Any) -> list[str]:
        entries = self.normal(value)
        if not entries:
            return [f"{self.label:<17}none"]
        return [
            f"{self.label if i == 0 else '':<17}{e['path']} {e['dataType']}[{e['dimensions']}] {e['distanceFunction']}"
            for i, e in enumerate(entries)
        ]


@register
class FullTextPolicy(Property):
    """``full_text_policy={"defaultLanguage": "en-US", "fullTextPaths": [{"path": "/text", "language": "en-US"}]}``;
    in place."""

    name = "fullTextPolicy"
    keywords = ("full_text_policy",)
    label = "full-text"
    mutability = Mutability.IN_PLACE
    order = 70

    def declare(self, container_id: str, value: Any, keyword: str) -> Any:
        if value is None:
            return None
        policy = require_mapping(container_id, keyword, value, ("defaultLanguage", "fullTextPaths"))
        paths = []
        for entry in require_list(container_id, f"{keyword} fullTextPaths", policy.get("fullTextPaths") or []):
            entry = require_mapping(container_id, "a full-text path", entry, ("path", "language"))
            validate_partition_key(container_id, entry.get("path"))
            paths.append(dict(entry))
        language = policy.get("defaultLanguage", "en-US")
        if not isinstance(language, str) or not language:
            raise InvalidDefinition(f"container {container_id!r}: full_text_policy defaultLanguage must be a language")
        return {"defaultLanguage": language, "fullTextPaths": paths}

    def check(self, container_id: str, values: Mapping[str, Any]) -> None:
        paths = {e["path"] for e in (values.get(self.name) or {}).get("fullTextPaths", [])}
        indexes_need_paths(container_id, values, "fullTextIndexes", paths, "full-text index", "full_text_policy")

    def normal(self, value: Any) -> Any:
        if not value:
            return None
        language = value.get("defaultLanguage", "en-US")
        paths = sorted(({"path": e["path"], "language": e.get("language", language)}
                        for e in value.get("fullTextPaths", []) or []), key=lambda e: e["path"])  # fmt: skip
        return {"defaultLanguage": language, "fullTextPaths": paths} if paths or language != "en-US" else None

    def lines(self, value: Any) -> list[str]:
        policy = self.normal(value)
        if policy is None:
            return [f"{self.label:<17}none"]
        paths = ", ".join(f"{e['path']} ({e['language']})" for e in policy["fullTextPaths"]) or "no paths"
        return [f"{self.label:<17}{paths}; default language {policy['defaultLanguage']}"]

    def differences(self, container_id: str, declared: Any, live: Any) -> list[Difference]:
        mine, theirs = self.normal(declared) or {}, self.normal(live) or {}
        found = []
        if mine.get("defaultLanguage", "en-US") != theirs.get("defaultLanguage", "en-US"):
            found.append(
                Difference(container_id, "defaultLanguage", mine.get("defaultLanguage"), theirs.get("defaultLanguage"))
            )
        paths = list_differences(
            container_id,
            "fullTextPaths",
            "full-text path",
            mine.get("fullTextPaths", []),
            theirs.get("fullTextPaths", []),
        )
        return found + paths


@register
class ConflictResolutionPolicy(Property):
    """``conflict_resolution_policy={"mode": "LastWriterWins", "conflictResolutionPath": "/_ts"}`` (the default) or
    ``{"mode": "Custom", "conflictResolutionProcedure": "dbs/…/sprocs/…"}``; create-only."""

    name = "conflictResolutionPolicy"
    keywords = ("conflict_resolution_policy",)
    label = "conflicts"
    mutability = Mutability.CREATE_ONLY
    order = 80

    def declare(self, container_id: str, value: Any, keyword: str) -> Any:
        if value is None:
            return None
        policy = require_mapping(container_id, keyword, value,
                                 ("mode", "conflictResolutionPath", "conflictResolutionProcedure"))  # fmt: skip
        if policy.get("mode", "LastWriterWins") not in CONFLICT_MODES:
            raise InvalidDefinition(
                f"container {container_id!r}: conflict resolution mode must be one of {', '.join(CONFLICT_MODES)}"
            )
        return policy

    def normal(self, value: Any) -> Any:
        policy = {**DEFAULT_CONFLICTS, **dict(value or {})}
        if policy["mode"] == "Custom":
            policy["conflictResolutionPath"] = ""
        return policy

    def lines(self, value: Any) -> list[str]:
        policy = self.normal(value)
        how = (
            f"last writer wins on {policy['conflictResolutionPath']}"
            if policy["mode"] == "LastWriterWins"
            else f"custom, {policy['conflictResolutionProcedure'] or 'the conflicts feed'}"
        )
        return [f"{self.label:<17}{how}"]
