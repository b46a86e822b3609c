"""Container definitions: validation before anything is sent, and normalisation for comparing.

Pure: no Cosmos DB import. The service adds things on read (``/"_etag"/?`` excluded, ``/*`` included when
neither list has it, lower-case modes, ascending as the default order, empty ``indexes``), so a declared
policy and a stored one are compared only after both are normalised here.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from cosmigrate.errors import InvalidDefinition

ROOT = "/*"
ETAG_PATH = '/"_etag"/?'
ORDERS = ("ascending", "descending")
MODES = ("consistent", "none", "lazy")

Policy = dict[str, Any]


def default_indexing_policy() -> Policy:
    """The service's default: index everything. Written out so that it is stored as declared."""
    return {
        "indexingMode": "consistent",
        "automatic": True,
        "includedPaths": [{"path": ROOT}],
        "excludedPaths": [{"path": ETAG_PATH}],
    }


def validate_container_id(container_id: str) -> None:
    if (
        not isinstance(container_id, str)
        or not 1 <= len(container_id) <= 255
        or any(c in container_id for c in "/\\?#")
        or container_id != container_id.strip()
    ):
        raise InvalidDefinition(
            f"container id {container_id!r} is invalid: 1-255 characters, no / \\ ? # or edge spaces"
        )


def _validate_path(container_id: str, what: str, path: Any) -> str:
    if not isinstance(path, str) or not path.startswith("/") or path.endswith("/") or "//" in path:
        raise InvalidDefinition(
            f"container {container_id!r}: {what} {path!r} must be a path like '/tenantId' (leading /)"
        )
    return path


def validate_partition_key(container_id: str, partition_key: Any) -> str:
    return _validate_path(container_id, "partition key", partition_key)


def validate_unique_keys(container_id: str, unique_keys: Any) -> list[list[str]]:
    if unique_keys is None:
        return []
    if isinstance(unique_keys, str) or not isinstance(unique_keys, Sequence):
        raise InvalidDefinition(
            f"container {container_id!r}: unique_keys must be a list of path lists, e.g. [['/a', '/b']]"
        )
    result = []
    for key in unique_keys:
        if isinstance(key, str) or not isinstance(key, Sequence) or not key:
            raise InvalidDefinition(
                f"container {container_id!r}: each unique key is a non-empty list of paths, not {key!r}"
            )
        result.append([_validate_path(container_id, "unique key path", path) for path in key])
    return result


POLICY_KEYS = (
    "indexingMode",
    "automatic",
    "includedPaths",
    "excludedPaths",
    "compositeIndexes",
    "spatialIndexes",
    "vectorIndexes",
    "fullTextIndexes",
)
SPATIAL_TYPES = ("Point", "Polygon", "MultiPolygon", "LineString")
VECTOR_INDEX_TYPES = ("flat", "quantizedFlat", "diskANN")
VECTOR_INDEX_KEYS = ("path", "type", "quantizationByteSize", "indexingSearchListSize", "vectorIndexShardKey")


def _entries(where: str, policy: Mapping[str, Any], kind: str) -> list[Any]:
    entries = policy.get(kind, []) or []
    if not isinstance(entries, Sequence) or isinstance(entries, str):
        raise InvalidDefinition(f"{where}: {kind} must be a list")
    return list(entries)


def _known_keys(where: str, entry: Mapping[str, Any], known: Sequence[str], what: str) -> None:
    unknown = sorted(set(entry) - set(known))
    if unknown:
        raise InvalidDefinition(
            f"{where}: unknown key {unknown[0]!r} in {what} (known: {', '.join(known)}); check the spelling"
        )


def validate_indexing_policy(container_id: str, policy: Any) -> Policy:
    """Refuse policies the service would reject or silently change, and require the root path.

    ``/*`` must be declared in ``includedPaths`` or ``excludedPaths``: left out, the service adds it to
    ``includedPaths`` and indexes everything, which is rarely what a policy listing paths meant. An unknown key
    anywhere (``compositeIndex``, ``vectorIndex``) is refused by name: a misspelt key would otherwise be dropped
    and the index never built.
    """
    where = f"container {container_id!r}: indexing policy"
    if not isinstance(policy, Mapping):
        raise InvalidDefinition(f"{where} must be a dict, not {type(policy).__name__}")
    _known_keys(where, policy, POLICY_KEYS, "the indexing policy")
    mode = str(policy.get("indexingMode", "consistent")).lower()
    if mode not in MODES:
        raise InvalidDefinition(f"{where}: indexingMode {policy.get('indexingMode')!r} is not one of {MODES}")
    if not isinstance(policy.get("automatic", True), bool):
        raise InvalidDefinition(f"{where}: automatic must be true or false, not {policy.get('automatic')!r}")
    paths: dict[str, list[str]] = {}
    for kind in ("includedPaths", "excludedPaths"):
        paths[kind] = []
        for entry in _entries(where, policy, kind):
            path = entry.get("path") if isinstance(entry, Mapping) else None
            if (
                not isinstance(path, str)
                or not path.startswith("/")
                or not (path.endswith("/*") or path.endswith("/?"))
            ):
                raise InvalidDefinition(f"{where}: {kind} entry {entry!r} needs a path ending in /* or /?")
            _known_keys(where, entry, ("path", "indexes"), f"{kind} entry {path}")
            paths[kind].append(path)
    if mode != "none" and ROOT not in paths["includedPaths"] + paths["excludedPaths"]:
        raise InvalidDefinition(
            f"{where} does not declare the root path '/*': add {{'path': '/*'}} to excludedPaths "
            "(index only the listed paths) or to includedPaths (index everything else)"
        )
    both = set(paths["includedPaths"]) & set(paths["excludedPaths"])
    if both:
        raise InvalidDefinition(f"{where}: {sorted(both)} is both included and excluded")
    for composite in _entries(where, policy, "compositeIndexes"):
        if not isinstance(composite, Sequence) or isinstance(composite, str) or len(composite) < 2:
            raise InvalidDefinition(f"{where}: a composite index needs two or more paths, not {composite!r}")
        for entry in composite:
            if not isinstance(entry, Mapping):
                raise InvalidDefinition(f"{where}: composite index entry {entry!r} must be a dict")
            _validate_path(container_id, "composite index path", entry.get("path"))
            if str(entry.get("path")).endswith(("/*", "/?")):
                raise InvalidDefinition(
                    f"{where}: composite index path {entry.get('path')} is a property path without a wildcard "
                    f"(/a, not /a/* or /a/?): the service refuses wildcards there"
                )
            _known_keys(where, entry, ("path", "order"), f"composite index entry {entry.get('path')}")
            order = str(entry.get("order", "ascending")).lower()
            if order not in ORDERS:
                raise InvalidDefinition(
                    f"{where}: composite index order {entry.get('order')!r} for {entry.get('path')} "
                    "must be 'ascending' or 'descending'"
                )
    for entry in _entries(where, policy, "spatialIndexes"):
        if not isinstance(entry, Mapping):
            raise InvalidDefinition(f"{where}: spatial index {entry!r} must be a dict with path and types")
        _known_keys(where, entry, ("path", "types"), f"spatial index {entry.get('path')}")
        if not isinstance(entry.get("path"), str) or not entry["path"].startswith("/"):
            raise InvalidDefinition(f"{where}: spatial index {entry!r} needs a path like '/location/*'")
        types = entry.get("types") or []
        bad = [t for t in types if t not in SPATIAL_TYPES]
        if not types or bad:
            raise InvalidDefinition(
                f"{where}: spatial index {entry['path']} needs types among {', '.join(SPATIAL_TYPES)}"
                + (f", not {bad[0]!r}" if bad else "")
            )
    for entry in _entries(where, policy, "vectorIndexes"):
        if not isinstance(entry, Mapping):
            raise InvalidDefinition(f"{where}: vector index {entry!r} must be a dict with path and type")
        _known_keys(where, entry, VECTOR_INDEX_KEYS, f"vector index {entry.get('path')}")
        _validate_path(container_id, "vector index path", entry.get("path"))
        if entry.get("type") not in VECTOR_INDEX_TYPES:
            raise InvalidDefinition(
                f"{where}: vector index {entry.get('path')} has type {entry.get('type')!r}, not one of "
                f"{', '.join(VECTOR_INDEX_TYPES)}"
            )
    for entry in _entries(where, policy, "fullTextIndexes"):
        if not isinstance(entry, Mapping):
            raise InvalidDefinition(f"{where}: full-text index {entry!r} must be a dict with a path")
        _known_keys(where, entry, ("path",), f"full-text index {entry.get('path')}")
        _validate_path(container_id, "full-text index path", entry.get("path"))
    return copy.deepcopy(dict(policy))


def normalise_indexing_policy(policy: Mapping[str, Any] | None) -> Policy:
    """The comparable form of a policy, declared or read back: what the service adds is added here too."""
    policy = dict(policy or default_indexing_policy())
    included = sorted({entry["path"] for entry in policy.get("includedPaths", []) or []})
    excluded = {entry["path"] for entry in policy.get("excludedPaths", []) or []}
    excluded.discard(ETAG_PATH)
    mode = str(policy.get("indexingMode", "consistent")).lower()
    if mode != "none" and ROOT not in included and ROOT not in excluded:
        included.append(ROOT)
    return {
        "indexingMode": mode,
        "automatic": bool(policy.get("automatic", True)),
        "includedPaths": sorted(included),
        "excludedPaths": sorted(excluded),
        "compositeIndexes": [
            [{"path": entry["path"], "order": str(entry.get("order", "ascending")).lower()} for entry in composite]
            for composite in policy.get("compositeIndexes", []) or []
        ],
        "spatialIndexes": sorted(
            (
                {"path": entry.get("path", ""), "types": sorted(entry.get("types", []))}
                for entry in policy.get("spatialIndexes", []) or []
            ),
            key=lambda entry: str(entry["path"]),
        ),
        "vectorIndexes": sorted(
            (dict(entry) for entry in policy.get("vectorIndexes", []) or []), key=lambda entry: str(entry.get("path"))
        ),
        "fullTextIndexes": sorted(
            ({"path": entry.get("path")} for entry in policy.get("fullTextIndexes", []) or []),
            key=lambda entry: str(entry["path"]),
        ),
    }


def normalise_unique_keys(unique_key_policy: Mapping[str, Any] | None) -> list[list[str]]:
    keys = (unique_key_policy or {}).get("uniqueKeys", []) or []
    return sorted(list(key.get("paths", [])) for key in keys)


def partition_key_paths(partition_key: Mapping[str, Any] | None) -> list[str]:
    return list((partition_key or {}).get("paths", []))
