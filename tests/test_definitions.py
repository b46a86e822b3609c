"""Container definitions: validation before sending, and normalisation of what the service gives back."""

from __future__ import annotations

from typing import Any

import pytest

from cosmigrate.definitions import (
    ETAG_PATH,
    normalise_indexing_policy,
    normalise_unique_keys,
    validate_indexing_policy,
    validate_partition_key,
    validate_unique_keys,
)
from cosmigrate.errors import InvalidDefinition

DECLARED: dict[str, Any] = {
    "indexingMode": "consistent",
    "automatic": True,
    "includedPaths": [{"path": "/status/*"}, {"path": "/name/*"}],
    "excludedPaths": [{"path": "/secret/*"}, {"path": "/*"}],
    "compositeIndexes": [[{"path": "/a"}, {"path": "/b", "order": "descending"}]],
}
# The same policy as the service returns it: its additions and spellings.
AS_STORED: dict[str, Any] = {
    "indexingMode": "Consistent",
    "automatic": True,
    "includedPaths": [{"path": "/name/*", "indexes": []}, {"path": "/status/*", "indexes": []}],
    "excludedPaths": [{"path": "/*"}, {"path": "/secret/*"}, {"path": ETAG_PATH}],
    "compositeIndexes": [[{"path": "/a", "order": "ascending"}, {"path": "/b", "order": "descending"}]],
    "spatialIndexes": [],
}


def test_a_declared_policy_equals_its_stored_form() -> None:
    assert normalise_indexing_policy(DECLARED) == normalise_indexing_policy(AS_STORED)


@pytest.mark.parametrize(
    "change",
    [
        lambda p: p["includedPaths"].append({"path": "/userId/*"}),
        lambda p: p["compositeIndexes"][0][1].update(order="ascending"),
        lambda p: p.update(indexingMode="none"),
        lambda p: p["excludedPaths"].remove({"path": "/*"}),
    ],
    ids=["one more path", "another order", "another mode", "root no longer excluded"],
)
def test_a_different_policy_does_not_compare_equal(change: Any) -> None:
    import copy

    other = copy.deepcopy(DECLARED)
    change(other)
    assert normalise_indexing_policy(other) != normalise_indexing_policy(AS_STORED)


def test_a_policy_without_root_path_is_read_as_the_service_stores_it() -> None:
    assert normalise_indexing_policy({"includedPaths": [{"path": "/a/*"}]})["includedPaths"] == ["/*", "/a/*"]
    assert normalise_indexing_policy(None)["includedPaths"] == ["/*"]  # the default: everything


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ({"includedPaths": [{"path": "/a/*"}]}, "does not declare the root path '/\\*'"),
        ({"includedPaths": [{"path": "a/*"}, {"path": "/*"}]}, "needs a path ending in"),
        ({"includedPaths": [{"path": "/a"}, {"path": "/*"}]}, "needs a path ending in"),
        ({"indexingMode": "eager", "includedPaths": [{"path": "/*"}]}, "indexingMode 'eager'"),
        ({"includedPaths": [{"path": "/*"}], "compositeIndexes": [[{"path": "/a"}]]}, "two or more paths"),
        (
            {"includedPaths": [{"path": "/*"}], "compositeIndexes": [[{"path": "/a", "order": "asc"}, {"path": "/b"}]]},
            "order 'asc' for /a",
        ),
        ({"includedPaths": [{"path": "/a/*"}, {"path": "/*"}], "excludedPaths": [{"path": "/a/*"}]}, "both included"),
        ("not a dict", "must be a dict"),
    ],
    ids=["no root", "no slash", "no wildcard", "mode", "short composite", "order", "both", "type"],
)
def test_invalid_policies_are_refused_naming_the_container(policy: Any, message: str) -> None:
    with pytest.raises(InvalidDefinition, match=f"container 'things'.*{message}"):
        validate_indexing_policy("things", policy)


def test_partition_key_and_unique_key_paths() -> None:
    assert validate_partition_key("things", "/tenantId") == "/tenantId"
    for bad in ("tenantId", "/tenantId/", "", None):
        with pytest.raises(InvalidDefinition, match="container 'things': partition key"):
            validate_partition_key("things", bad)
    assert validate_unique_keys("things", [["/a", "/b"]]) == [["/a", "/b"]]
    assert validate_unique_keys("things", None) == []
    for bad_keys in ("/a", [["a"]], [[]], [None]):
        with pytest.raises(InvalidDefinition, match="container 'things'"):
            validate_unique_keys("things", bad_keys)
    stored = {"uniqueKeys": [{"paths": ["/c"]}, {"paths": ["/a", "/b"]}]}
    assert normalise_unique_keys(stored) == [["/a", "/b"], ["/c"]]
    assert normalise_unique_keys(None) == []
