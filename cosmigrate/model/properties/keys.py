"""The partition key and the unique keys: fixed when a container is created (a new container and a copy)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cosmigrate.errors import InvalidDefinition
from cosmigrate.model.definitions import validate_partition_key, validate_unique_keys
from cosmigrate.model.properties import Mutability, Property, register

MAX_HIERARCHICAL_PATHS = 3
KINDS = ("Hash", "MultiHash")


@register
class PartitionKey(Property):
    """``partition_key="/tenantId"``, a list of up to 3 paths (hierarchical, ``MultiHash``), or azure-cosmos's
    ``PartitionKey(path, kind, version)``. Created with version 2 (large keys) unless a version is given; a live
    container without one has version 1."""

    name = "partitionKey"
    shown_when_default = True
    keywords = ("partition_key",)
    label = "partition key"
    mutability = Mutability.CREATE_ONLY
    order = 10

    def declare(self, container_id: str, value: Any, keyword: str) -> Any:
        version: Any = None  # not said: a new container gets 2, an existing one of either version is adopted
        kind = None
        if isinstance(value, Mapping):  # azure-cosmos's PartitionKey is a dict of paths, kind and version
            paths = value.get("paths") or ([value["path"]] if value.get("path") else None)
            kind, version = value.get("kind"), value.get("version")
        else:
            paths = [value] if isinstance(value, str) else value
        if isinstance(paths, str) or not isinstance(paths, Sequence) or not 1 <= len(paths) <= MAX_HIERARCHICAL_PATHS:
            raise InvalidDefinition(
                f"container {container_id!r}: partition_key must be a path like '/tenantId' or a list of 1 to "
                f"{MAX_HIERARCHICAL_PATHS} paths (hierarchical), not {value!r}"
            )
        checked = [validate_partition_key(container_id, path) for path in paths]
        kind = kind or ("MultiHash" if len(checked) > 1 else "Hash")
        if kind not in KINDS or (kind == "Hash" and len(checked) > 1):
            raise InvalidDefinition(f"container {container_id!r}: partition key kind {kind!r} does not fit {checked}")
        if version not in (None, 1, 2):
            raise InvalidDefinition(
                f"container {container_id!r}: partition key version must be 1 or 2, not {version!r}"
            )
        return {"paths": checked, "kind": kind, **({"version": version} if version else {})}

    def body(self, value: Any) -> dict[str, Any]:
        return {self.name: {"version": 2, **dict(value or {})}}

    def keyword(self, value: Any) -> tuple[str, Any] | None:
        paths = list((value or {}).get("paths") or [])
        if (value or {}).get("version", 2) == 1:  # kept as it is, so that a baseline verifies
            return self.keywords[0], {"paths": paths, "kind": value.get("kind", "Hash"), "version": 1}
        return self.keywords[0], paths[0] if len(paths) == 1 else paths

    def same(self, declared: Any, live: Any) -> bool:
        mine, theirs = self.normal(declared), self.normal(live)
        if "version" not in (declared or {}):  # the version was not declared: paths and kind decide
            mine["version"] = theirs["version"]
        return bool(mine == theirs)

    def read(self, properties: Mapping[str, Any]) -> Any:
        key = dict(properties.get("partitionKey") or {})
        return {"paths": list(key.get("paths") or []), "kind": key.get("kind") or "Hash", "version": key.get("version")}

    def normal(self, value: Any) -> Any:
        key = dict(value or {})
        return {
            "paths": list(key.get("paths") or []),
            "kind": key.get("kind") or "Hash",
            "version": key.get("version") or 1,
        }

    def to_json(self, value: Any) -> Any:
        return list((value or {}).get("paths") or [])  # a plan's JSON names the paths (kind and version follow)

    def from_json(self, value: Any) -> Any:
        paths = list(value or [])
        return {"paths": paths, "kind": "MultiHash" if len(paths) > 1 else "Hash", "version": 2}

    def display(self, value: Any) -> str:
        key = self.normal(value)
        said = [key["kind"]] if key["kind"] != "Hash" else []
        said += [f"version {value['version']}"] if (value or {}).get("version") == 1 else []
        return ", ".join(key["paths"]) + (f" ({', '.join(said)})" if said else "")


@register
class UniqueKeys(Property):
    """``unique_key_policy={"uniqueKeys": [{"paths": [...]}]}`` as azure-cosmos names it, or the shorthand
    ``unique_keys=[["/tenantId", "/name"]]``. The paths of one key are unique together."""

    name = "uniqueKeyPolicy"
    shown_when_default = True
    json_name = "uniqueKeys"
    keywords = ("unique_key_policy", "unique_keys")
    label = "unique keys"
    mutability = Mutability.CREATE_ONLY
    order = 20

    def declare(self, container_id: str, value: Any, keyword: str) -> Any:
        if value is None:
            return None
        if keyword == "unique_key_policy":
            if not isinstance(value, Mapping) or set(value) - {"uniqueKeys"}:
                raise InvalidDefinition(
                    f"container {container_id!r}: unique_key_policy must be {{'uniqueKeys': [{{'paths': [...]}}]}}"
                )
            keys = []
            for key in value.get("uniqueKeys") or []:
                if not isinstance(key, Mapping) or set(key) - {"paths"}:
                    raise InvalidDefinition(
                        f"container {container_id!r}: a unique key is {{'paths': [...]}}, not {key!r}"
                    )
                keys.append(key.get("paths"))
            value = keys
        checked = validate_unique_keys(container_id, value)
        return {"uniqueKeys": [{"paths": key} for key in checked]} if checked else None

    def normal(self, value: Any) -> Any:
        return sorted(list(key.get("paths", [])) for key in (value or {}).get("uniqueKeys", []) or [])

    def read(self, properties: Mapping[str, Any]) -> Any:
        value = properties.get(self.name) or {}
        return value if value.get("uniqueKeys") else None

    def to_json(self, value: Any) -> Any:
        return [list(key.get("paths", [])) for key in (value or {}).get("uniqueKeys", []) or []]

    def from_json(self, value: Any) -> Any:
        return {"uniqueKeys": [{"paths": list(key)} for key in value]} if value else None

    def keyword(self, value: Any) -> tuple[str, Any] | None:
        return ("unique_keys", self.to_json(value)) if self.normal(value) else None

    def display(self, value: Any) -> str:
        return "; ".join("[" + ", ".join(key) + "]" for key in self.normal(value)) or "none"
