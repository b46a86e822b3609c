"""Container definitions: validation before sending, and normalisation of what the service gives back."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from cosmigrate.errors import InvalidDefinition, UsageError
from cosmigrate.model.definitions import (
    ETAG_PATH,
    default_indexing_policy,
    normalise_indexing_policy,
    normalise_unique_keys,
    validate_indexing_policy,
    validate_partition_key,
    validate_unique_keys,
)

Policy = dict[str, Any]

DECLARED: Policy = {
    "indexingMode": "consistent",
    "automatic": True,
    "includedPaths": [{"path": "/status/*"}, {"path": "/name/?"}],
    "excludedPaths": [{"path": "/secret/*"}, {"path": "/*"}],
    "compositeIndexes": [[{"path": "/a"}, {"path": "/b", "order": "descending"}]],
}
# The same policy as the service returns it: its additions and spellings.
AS_STORED: Policy = {
    "indexingMode": "Consistent",
    "automatic": True,
    "includedPaths": [{"path": "/name/?", "indexes": []}, {"path": "/status/*", "indexes": []}],
    "excludedPaths": [{"path": "/*"}, {"path": "/secret/*"}, {"path": ETAG_PATH}],
    "compositeIndexes": [[{"path": "/a", "order": "ascending"}, {"path": "/b", "order": "descending"}]],
    "spatialIndexes": [],
}


def changed(policy: Policy, change: Callable[[Policy], Any]) -> Policy:
    other = copy.deepcopy(policy)
    change(other)
    return other


def with_root(**policy: Any) -> Policy:
    """A policy that declares the root path, so that only what is under test is wrong."""
    return {"includedPaths": [{"path": "/*"}], **policy}


# validate_indexing_policy


@pytest.mark.parametrize(
    "policy",
    [DECLARED, AS_STORED, default_indexing_policy(), {"indexingMode": "none"}, with_root(indexingMode="Lazy")],
    ids=["declared", "as stored", "default", "mode none without paths", "mode in another case"],
)
def test_valid_policies_are_accepted_and_copied(policy: Policy) -> None:
    accepted = validate_indexing_policy("things", policy)
    assert accepted == policy and accepted is not policy
    if "includedPaths" in policy:
        assert accepted["includedPaths"] is not policy["includedPaths"]  # a deep copy: the caller's dict is theirs


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        pytest.param({"includedPaths": [{"path": "/a/*"}]}, r"does not declare the root path '/\*'", id="no root"),
        pytest.param({"excludedPaths": [{"path": "/a/*"}]}, r"does not declare the root path", id="no root, excl"),
        pytest.param({}, r"does not declare the root path", id="empty policy"),
        pytest.param(
            with_root(excludedPaths=[{"path": "a/*"}]),
            r"excludedPaths entry .*'a/\*'.* needs a path ending in /\* or /\?",
            id="no slash",
        ),
        pytest.param({"includedPaths": [{"path": "*"}]}, r"includedPaths entry .* needs a path", id="bare star"),
        pytest.param(
            with_root(includedPaths=[{"path": "/*"}, {"path": "/a"}]),
            r"'/a'.* needs a path ending in",
            id="no wildcard",
        ),
        pytest.param(
            with_root(includedPaths=[{"path": "/*"}, {"path": "/a/"}]), r"needs a path ending in", id="slash end"
        ),
        pytest.param(
            with_root(includedPaths=[{"path": "/*"}, {"route": "/a/*"}]), r"needs a path ending in", id="no path key"
        ),
        pytest.param(with_root(includedPaths=["/*"]), r"needs a path ending in", id="string entry"),
        pytest.param(with_root(includedPaths="/*"), r"includedPaths must be a list", id="string list"),
        pytest.param(with_root(indexingMode="eager"), r"indexingMode 'eager' is not one of", id="unknown mode"),
        pytest.param(
            with_root(compositeIndexes=[[{"path": "/a"}]]),
            r"a composite index needs two or more paths",
            id="composite of one",
        ),
        pytest.param(
            with_root(compositeIndexes=[[]]), r"a composite index needs two or more paths", id="empty composite"
        ),
        pytest.param(
            with_root(compositeIndexes=[[{"path": "/a", "order": "asc"}, {"path": "/b"}]]),
            r"composite index order 'asc' for /a must be 'ascending' or 'descending'",
            id="order asc",
        ),
        pytest.param(
            with_root(compositeIndexes=[[{"path": "/a"}, {"path": "/b", "order": "desc"}]]),
            r"order 'desc' for /b",
            id="order desc",
        ),
        pytest.param(
            with_root(compositeIndexes=[[{"path": "/a"}, {"path": "b"}]]),
            r"composite index path 'b' must be a path like",
            id="composite path",
        ),
        pytest.param(
            with_root(compositeIndexes=[["/a", "/b"]]),
            r"composite index entry '/a' must be a dict",
            id="composite strings",
        ),
        pytest.param(
            {"includedPaths": [{"path": "/*"}, {"path": "/a/*"}], "excludedPaths": [{"path": "/a/*"}]},
            r"\['/a/\*'\] is both included and excluded",
            id="included and excluded",
        ),
        pytest.param(
            {"includedPaths": [{"path": "/*"}], "excludedPaths": [{"path": "/*"}]},
            r"\['/\*'\] is both included and excluded",
            id="root both",
        ),
        pytest.param("not a dict", r"must be a dict, not str", id="not a dict"),
        pytest.param(None, r"must be a dict, not NoneType", id="None"),
    ],
)
def test_invalid_policies_are_refused_naming_the_container(policy: Any, message: str) -> None:
    with pytest.raises(InvalidDefinition, match=message) as refused:
        validate_indexing_policy("things", policy)
    assert str(refused.value).startswith("container 'things'")
    assert isinstance(refused.value, UsageError) and refused.value.exit_code == 2


def test_a_refusal_names_whichever_container_it_is() -> None:
    with pytest.raises(InvalidDefinition, match=r"^container 'integration-connections': indexing policy"):
        validate_indexing_policy("integration-connections", {"includedPaths": [{"path": "/a/*"}]})


# partition and unique keys


@pytest.mark.parametrize("path", ["/tenantId", "/a/b", "/_partitionKey"])
def test_a_partition_key_path_is_accepted(path: str) -> None:
    assert validate_partition_key("things", path) == path


@pytest.mark.parametrize("bad", ["tenantId", "/tenantId/", "/", "//tenantId", "", None, ["/tenantId"]])
def test_a_bad_partition_key_is_refused(bad: Any) -> None:
    with pytest.raises(InvalidDefinition, match=r"^container 'things': partition key .* must be a path like"):
        validate_partition_key("things", bad)


def test_unique_keys_are_accepted_as_lists_of_paths() -> None:
    assert validate_unique_keys("things", [["/a", "/b"], ["/c"]]) == [["/a", "/b"], ["/c"]]
    assert validate_unique_keys("things", [("/a", "/b")]) == [["/a", "/b"]]
    assert validate_unique_keys("things", None) == []
    assert validate_unique_keys("things", []) == []


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("/a", "unique_keys must be a list of path lists"),
        (42, "unique_keys must be a list of path lists"),
        (["/a", "/b"], "each unique key is a non-empty list of paths, not '/a'"),
        ([[]], "each unique key is a non-empty list of paths, not \\[\\]"),
        ([None], "each unique key is a non-empty list of paths, not None"),
        ([["a"]], "unique key path 'a' must be a path like"),
        ([["/a", "/b/"]], "unique key path '/b/' must be a path like"),
    ],
)
def test_bad_unique_keys_are_refused_naming_the_container(bad: Any, message: str) -> None:
    with pytest.raises(InvalidDefinition, match=f"^container 'things': {message}"):
        validate_unique_keys("things", bad)


# normalise_indexing_policy


def test_a_declared_policy_equals_its_stored_form() -> None:
    declared, stored = normalise_indexing_policy(DECLARED), normalise_indexing_policy(AS_STORED)
    assert declared == stored
    assert declared["indexingMode"] == "consistent"
    assert declared["includedPaths"] == ["/name/?", "/status/*"]
    assert declared["excludedPaths"] == ["/*", "/secret/*"]  # the service's _etag exclusion is not a difference
    assert declared["compositeIndexes"] == [
        [{"path": "/a", "order": "ascending"}, {"path": "/b", "order": "descending"}]
    ]


@pytest.mark.parametrize(
    "change",
    [
        lambda p: p.update(indexingMode="CONSISTENT"),
        lambda p: p.update(automatic=True),
        lambda p: p["excludedPaths"].append({"path": ETAG_PATH}),
        lambda p: p["includedPaths"].reverse(),
        lambda p: p["includedPaths"][0].update(indexes=[{"kind": "Range", "dataType": "String"}]),
        lambda p: p.update(spatialIndexes=[]),
    ],
    ids=["upper-case mode", "automatic spelled out", "etag declared too", "path order", "extra path keys", "spatial"],
)
def test_spellings_that_mean_the_same_policy_compare_equal(change: Callable[[Policy], Any]) -> None:
    assert normalise_indexing_policy(changed(DECLARED, change)) == normalise_indexing_policy(AS_STORED)


@pytest.mark.parametrize(
    "change",
    [
        lambda p: p["includedPaths"].append({"path": "/userId/*"}),
        lambda p: p["includedPaths"].__setitem__(0, {"path": "/state/*"}),
        lambda p: p["excludedPaths"].append({"path": "/userId/*"}),
        lambda p: p["compositeIndexes"][0][1].update(order="ascending"),
        lambda p: p["compositeIndexes"][0][0].update(order="descending"),
        lambda p: p["compositeIndexes"][0].reverse(),
        lambda p: p.update(compositeIndexes=[]),
        lambda p: p.update(indexingMode="none"),
        lambda p: p.update(indexingMode="lazy"),
        lambda p: p.update(automatic=False),
        lambda p: p["excludedPaths"].remove({"path": "/*"}),
        lambda p: p.update(spatialIndexes=[{"path": "/loc/*", "types": ["Point"]}]),
    ],
    ids=["one more included path", "another included path", "one more excluded path", "another order",
         "descending first", "composite path order", "no composites", "mode none", "mode lazy", "not automatic",
         "root no longer excluded", "a spatial index"],
)  # fmt: skip
def test_a_different_policy_does_not_compare_equal(change: Callable[[Policy], Any]) -> None:
    assert normalise_indexing_policy(changed(DECLARED, change)) != normalise_indexing_policy(AS_STORED)


def test_a_policy_without_the_root_path_normalises_with_it_included() -> None:
    """What the service does when neither list has /*: it indexes everything."""
    normalised = normalise_indexing_policy({"includedPaths": [{"path": "/a/*"}]})
    assert normalised["includedPaths"] == ["/*", "/a/*"]
    assert normalised["excludedPaths"] == []
    stored = {
        "indexingMode": "consistent",
        "includedPaths": [{"path": "/a/*"}, {"path": "/*"}],
        "excludedPaths": [{"path": ETAG_PATH}],
    }
    assert normalise_indexing_policy({"includedPaths": [{"path": "/a/*"}]}) == normalise_indexing_policy(stored)


def test_mode_none_gets_no_root_path() -> None:
    assert normalise_indexing_policy({"indexingMode": "None"})["includedPaths"] == []


def test_no_policy_normalises_as_the_default() -> None:
    default = normalise_indexing_policy(default_indexing_policy())
    assert normalise_indexing_policy(None) == normalise_indexing_policy({}) == default
    assert default["includedPaths"] == ["/*"] and default["excludedPaths"] == []
    assert default["indexingMode"] == "consistent" and default["automatic"] is True


def test_normalising_does_not_change_the_policy_given() -> None:
    before = copy.deepcopy(AS_STORED)
    normalise_indexing_policy(AS_STORED)
    assert before == AS_STORED


def test_spatial_index_types_are_compared_as_sets() -> None:
    one = {"spatialIndexes": [{"path": "/loc/*", "types": ["Point", "Polygon"]}]}
    two = {"spatialIndexes": [{"path": "/loc/*", "types": ["Polygon", "Point"]}]}
    assert normalise_indexing_policy(one) == normalise_indexing_policy(two)


# normalise_unique_keys


def test_unique_keys_normalise_in_a_stable_order() -> None:
    stored = {"uniqueKeys": [{"paths": ["/c"]}, {"paths": ["/a", "/b"]}]}
    declared = {"uniqueKeys": [{"paths": ["/a", "/b"]}, {"paths": ["/c"]}]}
    assert normalise_unique_keys(stored) == normalise_unique_keys(declared) == [["/a", "/b"], ["/c"]]


@pytest.mark.parametrize("empty", [None, {}, {"uniqueKeys": []}, {"uniqueKeys": None}])
def test_no_unique_keys_normalise_to_an_empty_list(empty: Any) -> None:
    assert normalise_unique_keys(empty) == []


def test_different_unique_keys_do_not_compare_equal() -> None:
    stored = {"uniqueKeys": [{"paths": ["/a", "/b"]}]}
    assert normalise_unique_keys(stored) != normalise_unique_keys({"uniqueKeys": [{"paths": ["/a"]}]})
    assert normalise_unique_keys(stored) != normalise_unique_keys(
        {"uniqueKeys": [{"paths": ["/a"]}, {"paths": ["/b"]}]}
    )
