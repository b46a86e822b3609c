"""copy_container against the real local endpoint: a partition key change of 4,000 documents, indexing off for
the load and restored after, a stopped copy resumed, and the final count check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from azure.cosmos import DatabaseProxy, PartitionKey

from cosmigrate.data import DELETE, CountMismatch, MemoryCheckpointStore, Progress, copy_container
from cosmigrate.data.deadletter import read_dead_letters
from cosmigrate.errors import DatabaseError
from tests.harness.data import all_documents, seeded_container
from tests.harness.seed import document

DECLARED = {
    "indexingMode": "consistent",
    "automatic": True,
    "includedPaths": [{"path": "/tenantId/?"}, {"path": "/n/?"}],
    "excludedPaths": [{"path": "/*"}],
    "compositeIndexes": [[{"path": "/tenantId", "order": "ascending"}, {"path": "/n", "order": "descending"}]],
}


def retenant(doc: dict[str, Any]) -> dict[str, Any] | Any:
    if doc["n"] % 1000 == 999:
        return DELETE  # left out of the target
    return {**doc, "tenantId": f"t{doc['n'] % 13}"}


def _policy(properties: dict[str, Any]) -> dict[str, Any]:
    policy = dict(properties["indexingPolicy"])
    return {k: policy.get(k) for k in ("indexingMode", "includedPaths", "excludedPaths", "compositeIndexes")}


def test_four_thousand_documents_copied_to_a_new_partition_key_all_arrive(
    endpoint: str, database: DatabaseProxy
) -> None:
    count = 4_000
    source = seeded_container(endpoint, database, "integrations", count)
    target = database.create_container(
        "integrations_v2", partition_key=PartitionKey("/tenantId"), indexing_policy=DECLARED
    )
    declared = _policy(target.read())
    modes_during_load: list[str] = []

    def watch(progress: Progress) -> None:
        if not modes_during_load and progress.done > 1000:
            modes_during_load.append(target.read()["indexingPolicy"]["indexingMode"])

    totals = copy_container(source, target, retenant, load_with_indexing_off=True, index_timeout=60, on_progress=watch)

    assert modes_during_load == ["none"]  # the load ran with indexing off
    assert _policy(target.read()) == declared  # and the declared policy is back, transformation finished
    dropped = count // 1000
    assert (totals.read, totals.written, totals.deleted, totals.dead_lettered) == (count, count - dropped, dropped, 0)
    copied = all_documents(target)
    expected = {
        d["id"]: {**d, "tenantId": f"t{d['n'] % 13}"} for d in map(document, range(count)) if d["n"] % 1000 != 999
    }
    assert copied == expected  # every one arrived, transformed, under its new partition key, nothing else
    assert len(all_documents(source)) == count  # the source is untouched


def test_a_stopped_copy_resumes_and_restores_the_declared_policy_not_none(
    endpoint: str, database: DatabaseProxy
) -> None:
    source = seeded_container(endpoint, database, "src", 1500)
    target = database.create_container("dst", partition_key=PartitionKey("/tenantId"), indexing_policy=DECLARED)
    declared = _policy(target.read())
    store = MemoryCheckpointStore()
    pages = [0]

    class Stop(Exception):
        pass

    def stop_after_five_pages() -> None:
        pages[0] += 1
        if pages[0] > 5:
            raise Stop

    with pytest.raises(Stop):
        copy_container(
            source,
            target,
            retenant,
            load_with_indexing_off=True,
            checkpoints=store,
            checkpoint_key="copy",
            should_continue=stop_after_five_pages,
        )
    assert target.read()["indexingPolicy"]["indexingMode"] == "none"  # left off for the resume
    totals = copy_container(
        source, target, retenant, load_with_indexing_off=True, checkpoints=store, checkpoint_key="copy"
    )
    assert _policy(target.read()) == declared  # from the checkpoint, not the "none" the target had at resume
    assert totals.written == 1499 and len(all_documents(target)) == 1499
    assert store.load("copy") is None


def test_a_copy_that_maps_two_documents_to_one_is_caught_by_the_count(database: DatabaseProxy) -> None:
    source = database.create_container("many", partition_key=PartitionKey("/pk"))
    for n in range(100):
        source.create_item({"id": f"d{n}", "pk": "p", "n": n})
    target = database.create_container("few", partition_key=PartitionKey("/pk"))
    with pytest.raises(CountMismatch) as mismatch:
        copy_container(source, target, lambda d: {**d, "id": f"d{d['n'] % 10}"})
    assert (mismatch.value.expected, mismatch.value.found) == (100, 10)
    assert "target holds 10 documents, 100 expected" in str(mismatch.value)


def test_a_missing_target_stops_the_copy_at_once_instead_of_dead_lettering_every_document(
    database: DatabaseProxy, tmp_path: Path
) -> None:
    source = database.create_container("here", partition_key=PartitionKey("/pk"))
    source.create_item({"id": "1", "pk": "p"})
    with pytest.raises(DatabaseError, match="container nowhere does not exist"):
        copy_container(source, database.get_container_client("nowhere"), dead_letter=tmp_path / "dead.jsonl")
    assert not (tmp_path / "dead.jsonl").exists()


def test_a_copy_dead_letters_the_source_document_as_read_when_transform_changed_it_before_failing(
    database: DatabaseProxy, tmp_path: Path
) -> None:
    source = database.create_container("orders", partition_key=PartitionKey("/tenantId"))
    target = database.create_container("orders_v2", partition_key=PartitionKey("/region"))
    for n in range(10):
        source.create_item({"id": f"o{n}", "tenantId": f"t{n % 2}", "n": n})

    def move(doc: dict[str, Any]) -> dict[str, Any]:
        doc["id"], doc["tenantId"], doc["region"] = f"{doc['id']}-v2", "moved", "eu"
        if doc["n"] == 3:
            raise ValueError("no region for 3")
        return doc

    dead = tmp_path / "dead.jsonl"
    totals = copy_container(source, target, move, max_failures=1, dead_letter=dead)
    assert (totals.written, totals.dead_lettered) == (9, 1)
    [line] = read_dead_letters(dead)
    assert (line["id"], line["partitionKey"], line["container"]) == ("o3", "t1", "orders")
    assert "ValueError: no region for 3" in line["error"]
