"""The four migrations of the integration design, applied to a real local endpoint and read back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from azure.cosmos import CosmosClient, DatabaseProxy, PartitionKey
from azure.cosmos import exceptions as cosmos_errors

from cosmigrate.app import commands as command
from cosmigrate.config import Config
from cosmigrate.errors import DefinitionConflict, PreconditionRefused
from cosmigrate.model.definitions import normalise_indexing_policy, normalise_unique_keys

# The definitions as the design document writes them (../shared/seeds/000_841d1c287f0cdfcd.txt), typed out
# here independently of the migration files so that a wrong migration cannot agree with itself.
SEED = {
    "integration_providers": {
        "partitionKey": "/category",
        "uniqueKeys": [["/category", "/provider"]],
        "included": ["/status/*", "/audience/*", "/provider/*", "/name/*", "/displayName/*", "/category/*",
                     "/supportsSearch/*", "/supportsNotifications/*", "/requiresUserScoping/*", "/createdAt/*",
                     "/updatedAt/*"],
        "excluded": ["/description/*", "/oauthConfig/*", "/availableEntities/*"],
        "composite": [
            [("/category", "ascending"), ("/status", "ascending"), ("/audience", "ascending"),
             ("/displayName", "ascending")],
            [("/supportsSearch", "ascending"), ("/status", "ascending"), ("/displayName", "ascending")],
        ],
    },
    "integrations": {
        "partitionKey": "/tenantId",
        "uniqueKeys": [["/tenantId", "/providerName", "/name"]],
        "included": ["/tenantId/*", "/providerName/*", "/name/*", "/status/*", "/connectionStatus/*",
                     "/searchEnabled/*", "/userScoped/*", "/enabledAt/*", "/createdAt/*", "/updatedAt/*"],
        "excluded": ["/description/*", "/settings/*", "/syncConfig/*"],
        "composite": [
            [("/tenantId", "ascending"), ("/status", "ascending"), ("/searchEnabled", "ascending"),
             ("/name", "ascending")],
            [("/tenantId", "ascending"), ("/connectionStatus", "ascending"), ("/updatedAt", "descending")],
        ],
    },
    "integration-connections": {
        "partitionKey": "/integrationId",
        "uniqueKeys": [],
        "included": ["/integrationId/*", "/scope/*", "/tenantId/*", "/userId/*", "/status/*", "/authType/*",
                     "/createdAt/*", "/updatedAt/*"],
        "excluded": ["/encryptedCredentials/*", "/oauth/*"],
        "composite": [],
    },
}  # fmt: skip


def assert_seed_definition(database: DatabaseProxy, container_id: str) -> None:
    expected = SEED[container_id]
    stored = database.get_container_client(container_id).read()
    assert stored["partitionKey"]["paths"] == [expected["partitionKey"]]
    assert normalise_unique_keys(stored.get("uniqueKeyPolicy")) == sorted(expected["uniqueKeys"])
    policy = normalise_indexing_policy(stored["indexingPolicy"])
    assert policy["indexingMode"] == "consistent" and policy["automatic"] is True
    assert policy["includedPaths"] == sorted(expected["included"])
    # only the listed paths are indexed: the root is excluded
    assert policy["excludedPaths"] == sorted([*expected["excluded"], "/*"])
    assert policy["compositeIndexes"] == [
        [{"path": path, "order": order} for path, order in composite] for composite in expected["composite"]
    ]


def container_ids(database: DatabaseProxy) -> set[str]:
    return {c["id"] for c in database.list_containers()} - {"cosmigrate_history"}


def test_up_creates_exactly_the_seed_definitions(make_config: Callable[..., Config], cosmos: CosmosClient) -> None:
    config = make_config()
    result = command.up(config)
    assert [s.revision for s in result.steps] == ["001", "002", "003", "004", "005"]
    database = cosmos.get_database_client(config.database)
    assert container_ids(database) == set(SEED)
    for container_id in SEED:
        assert_seed_definition(database, container_id)
    status = command.status(config)
    assert status.current == "005" and not status.pending
    assert [v.revision for v in status.applied] == ["001", "002", "003", "004", "005"]


def test_up_again_does_nothing_then_down_to_base_and_up_restores_the_same(
    make_config: Callable[..., Config], cosmos: CosmosClient
) -> None:
    config = make_config()
    command.up(config)
    database = cosmos.get_database_client(config.database)
    first = {cid: database.get_container_client(cid).read()["_rid"] for cid in SEED}
    assert command.up(config).steps == []
    assert {cid: database.get_container_client(cid).read()["_rid"] for cid in SEED} == first  # untouched

    down = command.down(config, target="base", confirm=lambda _question: True)
    assert [s.revision for s in down.steps] == ["005", "004", "003", "002", "001"]
    # 003 down keeps integration-connections with the default policy; 004 down recreates tenant-integrations
    assert container_ids(database) == {"integration-connections", "tenant-integrations"}
    reverted = database.get_container_client("integration-connections").read()["indexingPolicy"]
    assert normalise_indexing_policy(reverted)["includedPaths"] == ["/*"]
    assert command.status(config).applied == []

    command.up(config)
    assert container_ids(database) == set(SEED)
    for container_id in SEED:
        assert_seed_definition(database, container_id)


@pytest.fixture
def migrated(make_config: Callable[..., Config], cosmos: CosmosClient) -> DatabaseProxy:
    """The schema revisions only (001-004): these tests bring data of their own."""
    config = make_config()
    command.up(config, target="004")
    return cosmos.get_database_client(config.database)


def providers(database: DatabaseProxy) -> Any:
    container = database.get_container_client("integration_providers")
    rows = [
        ("salesforce", "crm", "Salesforce CRM", "active", "tenant", True),
        ("hubspot", "crm", "HubSpot", "active", "tenant", False),
        ("pipedrive", "crm", "Pipedrive", "inactive", "tenant", True),
        ("zendesk", "support", "Zendesk", "active", "tenant", True),
        ("intercom", "support", "Intercom", "active", "system", False),
    ]
    for provider, category, display, status, audience, search in rows:
        container.create_item(
            {
                "id": f"{provider}-provider", "category": category, "provider": provider, "name": provider.title(),
                "displayName": display, "status": status, "audience": audience, "supportsSearch": search,
            }
        )  # fmt: skip
    return container


def test_provider_unique_key_is_per_category_and_provider(migrated: DatabaseProxy) -> None:
    container = providers(migrated)  # two providers share category crm: accepted
    with pytest.raises(cosmos_errors.CosmosResourceExistsError):
        container.create_item({"id": "sf-2", "category": "crm", "provider": "salesforce"})
    # the same provider in another category is another (category, provider) pair
    container.create_item({"id": "sf-support", "category": "support", "provider": "salesforce"})


def test_seed_provider_queries(migrated: DatabaseProxy) -> None:
    container = providers(migrated)
    by_category = container.query_items(
        "SELECT * FROM c WHERE c.category = @category AND c.status = 'active' AND c.audience = 'tenant' "
        "ORDER BY c.displayName",
        parameters=[{"name": "@category", "value": "crm"}],
        partition_key="crm",
    )
    assert [p["provider"] for p in by_category] == ["hubspot", "salesforce"]
    # the composite index (category, status, audience, displayName) serves a multi-field ORDER BY
    ordered = container.query_items(
        "SELECT * FROM c ORDER BY c.category, c.status, c.audience, c.displayName",
        enable_cross_partition_query=True,
    )
    assert [p["provider"] for p in ordered] == ["hubspot", "salesforce", "pipedrive", "intercom", "zendesk"]
    searchable = container.query_items(
        "SELECT * FROM c ORDER BY c.supportsSearch, c.status, c.displayName", enable_cross_partition_query=True
    )
    assert [p["provider"] for p in searchable] == ["hubspot", "intercom", "salesforce", "zendesk", "pipedrive"]
    # an ORDER BY without a matching composite index is refused, so the orderings above prove the indexes exist
    with pytest.raises(cosmos_errors.CosmosHttpResponseError):
        list(container.query_items("SELECT * FROM c ORDER BY c.provider, c.name", enable_cross_partition_query=True))


def test_seed_integration_queries_and_unique_key(migrated: DatabaseProxy) -> None:
    container = migrated.get_container_client("integrations")
    rows = [
        ("t1", "salesforce", "sales-eu", "connected", "ok", True, "2025-01-03"),
        ("t1", "salesforce", "sales-us", "connected", "error", False, "2025-01-05"),
        ("t1", "zendesk", "support", "active", "error", True, "2025-01-04"),
        ("t2", "salesforce", "sales-eu", "connected", "ok", True, "2025-01-01"),
    ]
    for i, (tenant, provider, name, status, connection, search, updated) in enumerate(rows):
        container.create_item(
            {
                "id": f"i{i}", "tenantId": tenant, "providerName": provider, "name": name, "status": status,
                "connectionStatus": connection, "searchEnabled": search, "updatedAt": updated,
            }
        )  # fmt: skip
    # several instances of one provider per tenant are allowed; a repeated (tenant, provider, name) is not
    with pytest.raises(cosmos_errors.CosmosResourceExistsError):
        container.create_item({"id": "dup", "tenantId": "t1", "providerName": "salesforce", "name": "sales-eu"})

    by_name = container.query_items(
        "SELECT * FROM c WHERE c.tenantId = @t ORDER BY c.name", parameters=[{"name": "@t", "value": "t1"}],
        partition_key="t1",
    )  # fmt: skip
    assert [i["name"] for i in by_name] == ["sales-eu", "sales-us", "support"]
    found = list(
        container.query_items(
            "SELECT * FROM c WHERE c.tenantId = @t AND c.providerName = @p AND c.name = @n",
            parameters=[{"name": "@t", "value": "t1"}, {"name": "@p", "value": "salesforce"},
                        {"name": "@n", "value": "sales-us"}],
            partition_key="t1",
        )
    )  # fmt: skip
    assert [i["id"] for i in found] == ["i1"]
    errors_first = container.query_items(
        "SELECT * FROM c WHERE c.tenantId = 't1' ORDER BY c.tenantId, c.connectionStatus, c.updatedAt DESC",
        partition_key="t1",
    )
    assert [i["id"] for i in errors_first] == ["i1", "i2", "i0"]
    search = container.query_items(
        "SELECT * FROM c WHERE c.tenantId = 't1' ORDER BY c.tenantId, c.status, c.searchEnabled, c.name",
        partition_key="t1",
    )
    assert [i["id"] for i in search] == ["i2", "i1", "i0"]


def test_seed_connection_queries(migrated: DatabaseProxy) -> None:
    container = migrated.get_container_client("integration-connections")
    docs = [
        {"id": "c1", "integrationId": "i1", "scope": "tenant", "tenantId": "t1", "status": "active"},
        {"id": "c2", "integrationId": "i1", "scope": "user", "tenantId": "t1", "userId": "u1", "status": "active"},
        {"id": "c3", "integrationId": "i1", "scope": "user", "tenantId": "t1", "userId": "u2", "status": "expired"},
        {"id": "c4", "integrationId": "i2", "scope": "user", "tenantId": "t1", "userId": "u1", "status": "active"},
    ]
    for doc in docs:
        container.create_item(doc)
    user_scoped = container.query_items(
        "SELECT * FROM c WHERE c.integrationId = @i AND c.scope = 'user' AND c.tenantId = @t",
        parameters=[{"name": "@i", "value": "i1"}, {"name": "@t", "value": "t1"}],
        partition_key="i1",
    )
    assert sorted(c["id"] for c in user_scoped) == ["c2", "c3"]
    for_user = container.query_items(
        "SELECT * FROM c WHERE c.integrationId = @i AND c.scope = @s AND (@s != 'user' OR c.userId = @u)",
        parameters=[{"name": "@i", "value": "i1"}, {"name": "@s", "value": "user"}, {"name": "@u", "value": "u1"}],
        partition_key="i1",
    )
    assert [c["id"] for c in for_user] == ["c2"]


def test_reindex_of_existing_connections_keeps_data_and_other_properties(
    make_config: Callable[..., Config], database: DatabaseProxy
) -> None:
    legacy = database.create_container(
        "integration-connections", partition_key=PartitionKey("/integrationId"), default_ttl=3600
    )
    for i in range(25):
        legacy.create_item({"id": f"c{i}", "integrationId": f"i{i % 3}", "scope": "tenant", "status": "active"})
    progress: list[int] = []
    command.up(make_config(), on_progress=lambda _container, percent: progress.append(percent))

    assert_seed_definition(database, "integration-connections")
    stored = legacy.read()
    assert stored["defaultTtl"] == 3600  # re-sent, not reset by the replace
    assert len(list(legacy.read_all_items())) == 25
    # the runner waited for the (simulated) transformation: it saw it below 100 and ended at 100
    assert progress[-1] == 100 and min(progress) < 100


def test_adopting_a_container_with_another_partition_key_is_refused(
    make_config: Callable[..., Config], database: DatabaseProxy
) -> None:
    """The plan shows 003 cannot run, so the run stops before its first write: nothing half-done."""
    database.create_container("integration-connections", partition_key=PartitionKey("/tenantId"))
    with pytest.raises(
        DefinitionConflict, match=r"revision 003 .*partition key /tenantId, not /integrationId.*nothing was changed"
    ):
        command.up(make_config())
    status = command.status(make_config())
    assert status.applied == [] and status.failed == [] and len(status.pending) == 5
    assert container_ids(database) == {"integration-connections"}


def seed_tenant_integrations(database: DatabaseProxy, statuses: list[str]) -> Any:
    container = database.create_container("tenant-integrations", partition_key=PartitionKey("/tenantId"))
    for i, status in enumerate(statuses):
        container.create_item({"id": f"ti{i}", "tenantId": "t1", "status": status})
    return container


def test_legacy_guard_stops_at_004_and_force_drops(make_config: Callable[..., Config], database: DatabaseProxy) -> None:
    legacy = seed_tenant_integrations(database, ["active", "disabled"])
    with pytest.raises(PreconditionRefused, match="revision 004 .*tenant-integrations still has 1 active or connected"):
        command.up(make_config())
    assert len(list(legacy.read_all_items())) == 2  # untouched
    status = command.status(make_config())  # the plan refused before the first write: nothing ran
    assert status.applied == [] and len(status.pending) == 5 and status.failed == []
    assert command.up(make_config(), target="003").steps  # the revisions before it run on their own

    result = command.up(make_config(x={"force": "true"}), target="004")
    assert [s.revision for s in result.steps] == ["004"]
    assert result.steps[0].forced == [
        {
            "container": "tenant-integrations",
            "documents": 1,
            "what": "active or connected integrations",
            "flag": "force",
        }
    ]
    assert "tenant-integrations" not in container_ids(database)


def test_legacy_guard_checks_all_before_dropping_any(
    make_config: Callable[..., Config], database: DatabaseProxy
) -> None:
    seed_tenant_integrations(database, ["disabled"])
    old = database.create_container("old-integrations", partition_key=PartitionKey("/id"))
    old.create_item({"id": "x", "status": "connected"})
    with pytest.raises(PreconditionRefused, match="old-integrations still has 1"):
        command.up(make_config(x={"legacy": "old-integrations"}))
    # tenant-integrations (inactive) was not dropped either: the refusal came before any change
    assert {"tenant-integrations", "old-integrations"} <= container_ids(database)
    command.up(make_config(x={"legacy": "old-integrations", "force": "1"}))
    assert not {"tenant-integrations", "old-integrations"} & container_ids(database)


def test_legacy_integrations_container_is_guarded_then_replaced(
    make_config: Callable[..., Config], database: DatabaseProxy
) -> None:
    old = database.create_container("integrations", partition_key=PartitionKey("/id"))
    old.create_item({"id": "a", "status": "active"})
    with pytest.raises(PreconditionRefused, match="integrations still has 1 active or connected integrations"):
        command.up(make_config())
    assert command.status(make_config()).applied == []  # refused by the plan, before the first write
    assert old.read()["partitionKey"]["paths"] == ["/id"]

    old.upsert_item({"id": "a", "status": "disabled"})  # nothing active any more: replaced without force
    command.up(make_config())
    assert_seed_definition(database, "integrations")
    assert list(database.get_container_client("integrations").read_all_items()) == []


def test_legacy_names_cannot_include_the_containers_the_migrations_manage(
    make_config: Callable[..., Config], cosmos: CosmosClient
) -> None:
    command.up(make_config(), target="003")
    config = make_config(x={"legacy": "old-stuff,integrations"})
    with pytest.raises(PreconditionRefused, match="-x legacy names integrations, which the migrations before"):
        command.up(config)
    database = cosmos.get_database_client(config.database)
    assert_seed_definition(database, "integrations")  # untouched
    assert [v.revision for v in command.status(config).pending] == ["004", "005"]
