"""Each property's mutability rule, as the plan enforces it on the simulated state (pure: no endpoint).

In place: the change is planned as an update of just that property. Create-only: refused, naming the swap
pattern. Special: analytical TTL may be turned on later but not off, and 0 is for good; throughput changes in
place within a mode, manual ↔ autoscale is planned as a migration of the offer, and a container without its own
throughput cannot get one. Unknown keywords and unknown keys inside a policy are usage errors naming the key.
"""

from __future__ import annotations

from typing import Any

import pytest

from cosmigrate.errors import DefinitionConflict, InvalidDefinition, UnknownKeyword
from cosmigrate.model.container import ContainerDef
from cosmigrate.model.properties import KEYWORDS, REGISTRY, SWAP, Mutability
from cosmigrate.model.state import DatabaseState
from cosmigrate.ops.operations import AlterContainer, CreateContainer, SetDatabaseThroughput

EMBEDDING = {"vectorEmbeddings": [{"path": "/v", "dataType": "float32", "dimensions": 4, "distanceFunction": "cosine"}]}
OTHER_EMBEDDING = {
    "vectorEmbeddings": [{"path": "/v", "dataType": "float32", "dimensions": 8, "distanceFunction": "cosine"}]
}
FULL_TEXT = {"defaultLanguage": "en-US", "fullTextPaths": [{"path": "/body", "language": "en-US"}]}
POLICY = {"includedPaths": [{"path": "/*"}], "vectorIndexes": [{"path": "/v", "type": "flat"}]}
BASE: dict[str, Any] = {
    "unique_keys": [["/pk", "/slug"]],
    "indexing_policy": POLICY,
    "default_ttl": 60,
    "computed_properties": [{"name": "lower", "query": "SELECT VALUE LOWER(c.name) FROM c"}],
    "vector_embedding_policy": EMBEDDING,
    "full_text_policy": FULL_TEXT,
    "conflict_resolution_policy": {"mode": "LastWriterWins", "conflictResolutionPath": "/_ts"},
    "analytical_storage_ttl": -1,
    "offer_throughput": 400,
}


DROP = object()  # a keyword of BASE left out


def docs(**changes: Any) -> ContainerDef:
    given = {k: v for k, v in {**BASE, **changes}.items() if v is not DROP}
    return ContainerDef.declare("docs", given.pop("partition_key", "/pk"), **given)


def live(**changes: Any) -> DatabaseState:
    return DatabaseState.from_live([docs(**changes).created()])


IN_PLACE = [
    ("default_ttl", 3600, "defaultTtl"),
    ("default_ttl", None, "defaultTtl"),  # off
    ("computed_properties", [{"name": "lower", "query": "SELECT VALUE UPPER(c.name) FROM c"}], "computedProperties"),
    ("computed_properties", None, "computedProperties"),
    ("full_text_policy", {**FULL_TEXT, "defaultLanguage": "de-DE"}, "fullTextPolicy"),
    ("indexing_policy", {**POLICY, "excludedPaths": [{"path": "/big/*"}]}, "indexingPolicy"),
    (
        "indexing_policy",
        {**POLICY, "compositeIndexes": [[{"path": "/a", "order": "ascending"}, {"path": "/b", "order": "descending"}]]},
        "indexingPolicy",
    ),
    ("indexing_policy", {**POLICY, "spatialIndexes": [{"path": "/loc/*", "types": ["Point"]}]}, "indexingPolicy"),
    ("analytical_storage_ttl", 86400, "analyticalStorageTtl"),
    ("offer_throughput", 1000, "throughput"),
]


@pytest.mark.parametrize(("keyword", "value", "name"), IN_PLACE, ids=lambda v: str(v)[:40])
def test_an_in_place_property_is_planned_as_an_update_of_that_property_alone(
    keyword: str, value: Any, name: str
) -> None:
    for operation in (
        CreateContainer(docs(**{keyword: value})),
        AlterContainer("docs", {name: docs(**{keyword: value}).get(name)}),
    ):
        change = operation.plan(live())
        assert (change.effect, change.changed) == ("update", (name,)), change.note
        assert change.after is not None and change.after.get(name) == docs(**{keyword: value}).get(name)
        reverse = operation.reverse(change)
        assert reverse is not None and reverse.plan(live(**{keyword: value})).after.get(name) == docs().get(name)


CREATE_ONLY = [
    ("partition_key", "/tenantId", "partition key"),
    ("partition_key", ["/pk", "/sub"], "partition key"),
    ("unique_keys", [["/pk", "/name"]], "unique keys"),
    ("unique_keys", None, "unique keys"),
    ("conflict_resolution_policy", {"mode": "LastWriterWins", "conflictResolutionPath": "/updatedAt"}, "conflicts"),
    ("vector_embedding_policy", OTHER_EMBEDDING, "vector embedding"),
    (
        "indexing_policy",
        {"includedPaths": [{"path": "/*"}], "vectorIndexes": [{"path": "/v", "type": "diskANN"}]},
        "vector indexes",
    ),
]


@pytest.mark.parametrize(("keyword", "value", "what"), CREATE_ONLY, ids=lambda v: str(v)[:40])
def test_a_create_only_change_is_refused_in_the_plan_naming_the_swap_pattern(
    keyword: str, value: Any, what: str
) -> None:
    with pytest.raises(DefinitionConflict) as refused:
        CreateContainer(docs(**{keyword: value})).plan(live())
    assert what in str(refused.value) and SWAP in str(refused.value)


def test_the_registry_says_which_properties_are_create_only() -> None:
    assert {n for n, p in REGISTRY.items() if p.mutability is Mutability.CREATE_ONLY} == {
        "partitionKey", "uniqueKeyPolicy", "vectorEmbeddingPolicy", "conflictResolutionPolicy",
    }  # fmt: skip
    assert {"defaultTtl", "computedProperties", "fullTextPolicy"} <= {
        n for n, p in REGISTRY.items() if p.mutability is Mutability.IN_PLACE
    }


def test_alter_refuses_a_create_only_property_too() -> None:
    with pytest.raises(DefinitionConflict, match="unique keys cannot change"):
        AlterContainer("docs", {"uniqueKeyPolicy": docs(unique_keys=[["/pk", "/x"]]).get("uniqueKeyPolicy")}).plan(
            live()
        )


def test_analytical_ttl_turns_on_later_never_off_and_zero_is_for_good() -> None:
    off = live(analytical_storage_ttl=None)
    assert CreateContainer(docs(analytical_storage_ttl=-1)).plan(off).effect == "update"  # turned on later
    with pytest.raises(DefinitionConflict, match="cannot be turned off"):
        AlterContainer("docs", {"analyticalStorageTtl": None}).plan(live())
    assert AlterContainer("docs", {"analyticalStorageTtl": 0}).plan(live()).effect == "update"  # off, for good
    with pytest.raises(DefinitionConflict, match="TTL is 0, which cannot be changed"):
        AlterContainer("docs", {"analyticalStorageTtl": -1}).plan(live(analytical_storage_ttl=0))


def test_throughput_within_a_mode_across_modes_and_from_shared() -> None:
    manual_to_auto = AlterContainer("docs", {"throughput": {"autoscale_max": 4000}}).plan(live())
    assert manual_to_auto.effect == "update" and manual_to_auto.throughput is not None
    assert manual_to_auto.throughput.migrate  # a migrate call of the offer, not a replace
    within = AlterContainer("docs", {"throughput": {"manual": 800}}).plan(live())
    assert within.throughput is not None and not within.throughput.migrate
    with pytest.raises(DefinitionConflict, match="no throughput of its own"):
        AlterContainer("docs", {"throughput": {"manual": 800}}).plan(live(offer_throughput=None))
    left_out = CreateContainer(docs(offer_throughput=DROP)).plan(live(offer_throughput=1000))
    assert left_out.effect == "none"  # throughput not declared: not managed, left as it is
    with pytest.raises(DefinitionConflict, match="cannot become its database's shared throughput"):
        CreateContainer(docs(offer_throughput=None)).plan(live())


def test_database_throughput_changes_and_cannot_be_added_to_a_database_without_it() -> None:
    shared = DatabaseState.from_live([], {"manual": 400})
    change = SetDatabaseThroughput({"autoscale_max": 1000}).plan(shared)
    assert change.effect == "update" and change.throughput is not None and change.throughput.migrate
    assert SetDatabaseThroughput({"manual": 400}).plan(shared).effect == "none"
    with pytest.raises(DefinitionConflict, match="--database-throughput"):
        SetDatabaseThroughput({"manual": 400}).plan(DatabaseState.from_live([], None))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"offer_throughput": 450}, "steps of 100"),
        ({"autoscale_max_throughput": 4000}, "give one of them"),
        ({"offer_throughput": 300}, "400 to 1,000,000"),
        ({"offer_throughput": DROP, "autoscale_max_throughput": 1500}, "steps of 1000"),
        ({"default_ttl": 0}, "default_ttl"),
        ({"analytical_storage_ttl": -2}, "analytical_storage_ttl"),
        ({"indexing_policy": {"includedPaths": [{"path": "/*"}], "vectorIndex": []}}, "'vectorIndex'"),
        ({"full_text_policy": {"language": "en-US"}}, "'language'"),
        (
            {
                "vector_embedding_policy": {
                    "vectorEmbeddings": [
                        {"path": "/v", "dataType": "float64", "dimensions": 4, "distanceFunction": "cosine"}
                    ]
                }
            },
            "dataType",
        ),
        ({"computed_properties": [{"name": "x", "query": "LOWER(c.name)"}]}, "SELECT VALUE"),
        (
            {"indexing_policy": {"includedPaths": [{"path": "/*"}], "fullTextIndexes": [{"path": "/title"}]}},
            "full_text_policy",
        ),
        ({"conflict_resolution_policy": {"mode": "Newest"}}, "mode"),
        (
            {
                "indexing_policy": {
                    "includedPaths": [{"path": "/*"}],
                    "compositeIndexes": [[{"path": "/a/*"}, {"path": "/b"}]],
                }
            },
            "without a wildcard",
        ),
    ],
    ids=lambda v: str(v)[:30],
)
def test_invalid_values_are_refused_naming_the_key(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidDefinition, match=message.replace("(", r"\(")):
        docs(**changes)


def test_an_unknown_keyword_is_a_usage_error_listing_the_known_ones() -> None:
    with pytest.raises(UnknownKeyword) as refused:
        docs(offer_throughput_max=400)
    assert "'offer_throughput_max'" in str(refused.value)
    assert all(keyword in str(refused.value) for keyword in KEYWORDS)


def test_the_readme_lists_every_container_keyword_with_its_rule() -> None:
    """The README's keyword table is the user's reference: a property added to the registry must be in it."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("| keyword | property | on an existing container |") :].split("\n\n")[0]
    rows = {line.split("|")[1]: line for line in table.splitlines()[2:]}
    for keyword, prop in KEYWORDS.items():
        row = next((line for first, line in rows.items() if f"`{keyword}`" in first), None)
        assert row is not None, f"README's keyword table lacks {keyword}"
        rule = row.rsplit("|", 2)[-2]
        assert prop.mutability is not Mutability.CREATE_ONLY or "create-only" in rule, (keyword, rule)
        assert prop.mutability is not Mutability.IN_PLACE or "in place" in rule, (keyword, rule)


def test_every_implementation_carries_out_every_operation() -> None:
    """A conformance rule, as golang-migrate's for drivers: the keyed and the ARM implementations cover the same
    operation types, so a new operation cannot work with a key and fail without one."""
    from cosmigrate.ops.apply.arm import ARM
    from cosmigrate.ops.apply.keyed import KEYED
    from cosmigrate.ops.operations import AlterContainer, CreateContainer, DeleteContainer, SetDatabaseThroughput

    assert ARM.covers() == KEYED.covers()
    schema = {CreateContainer, AlterContainer, DeleteContainer, SetDatabaseThroughput}
    assert all(ARM._apply[kind] is not KEYED._apply[kind] for kind in schema)  # its own, not the data plane's
