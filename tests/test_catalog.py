"""Revision 005: the provider catalog the design seeds, queried as the design queries it, and removed exactly."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from azure.cosmos import CosmosClient, DatabaseProxy

from cosmigrate.app import commands as command
from cosmigrate.config import Config
from tests.conftest import CliResult

LIST_BY_CATEGORY = (
    "SELECT * FROM c WHERE c.category = @category AND c.status = 'active' AND c.audience = 'tenant' "
    "ORDER BY c.displayName"
)
INDEXED = ["status", "audience", "provider", "name", "displayName", "category", "supportsSearch",
           "supportsNotifications", "requiresUserScoping", "createdAt", "updatedAt"]  # fmt: skip


@pytest.fixture
def catalog(make_config: Callable[..., Config], cosmos: CosmosClient) -> Any:
    config = make_config()
    command.up(config)
    return cosmos.get_database_client(config.database).get_container_client("integration_providers")


def by_category(container: Any, category: str) -> list[str]:
    rows = container.query_items(
        LIST_BY_CATEGORY, parameters=[{"name": "@category", "value": category}], partition_key=category
    )
    return [row["displayName"] for row in rows]


def test_the_catalog_holds_the_designs_salesforce_example_and_more(catalog: Any) -> None:
    salesforce = catalog.read_item("salesforce-provider", partition_key="crm")
    assert {k: salesforce[k] for k in ("category", "provider", "displayName", "status", "audience")} == {
        "category": "crm", "provider": "salesforce", "displayName": "Salesforce CRM", "status": "active",
        "audience": "tenant",
    }  # fmt: skip
    providers = list(catalog.query_items("SELECT * FROM c", enable_cross_partition_query=True))
    assert len(providers) == 8 and len({p["category"] for p in providers}) >= 3
    for item in providers:
        assert all(field in item for field in INDEXED), item["id"]
        assert set(item["oauthConfig"]) == {"authorizationUrl", "tokenUrl", "scopes"}  # no client id or secret
        assert "secret" not in json.dumps(item).lower()


def test_list_providers_by_category_returns_them_in_display_name_order(catalog: Any) -> None:
    assert by_category(catalog, "crm") == ["HubSpot CRM", "Microsoft Dynamics 365", "Salesforce CRM"]
    assert by_category(catalog, "communication") == ["Microsoft Teams", "Slack"]
    assert by_category(catalog, "support") == ["Intercom", "Zendesk Support"]


def test_down_removes_exactly_the_seeded_providers_and_keeps_what_users_changed(
    make_config: Callable[..., Config], cosmos: CosmosClient
) -> None:
    config = make_config()
    command.up(config)
    database: DatabaseProxy = cosmos.get_database_client(config.database)
    container = database.get_container_client("integration_providers")
    container.create_item({"id": "pipedrive-provider", "category": "crm", "provider": "pipedrive", "status": "active"})
    slack = container.read_item("slack-provider", partition_key="communication")
    container.replace_item("slack-provider", {**slack, "status": "deprecated"})

    result = command.down(config, target="004", confirm=lambda _question: True)
    detail = result.steps[0].operations[0]["detail"]
    assert detail["removed"] == 7 and detail["kept"] == ["slack-provider"]
    left = sorted(p["id"] for p in container.query_items("SELECT * FROM c", enable_cross_partition_query=True))
    assert left == ["pipedrive-provider", "slack-provider"]
    assert [s.revision for s in command.up(config).steps] == ["005"]  # seeding again is an upsert
    assert container.read_item("slack-provider", partition_key="communication")["status"] == "active"


def test_the_plan_shows_the_seed_as_a_data_step(run_cli: Callable[..., CliResult]) -> None:
    body = json.loads(run_cli("plan", "--json").stdout)
    seed = body["revisions"][4]["operations"]
    assert [(o["kind"], o["effect"], o["container"]) for o in seed] == [("seed_items", "data", "integration_providers")]
    assert len(seed[0]["detail"]["ids"]) == 8 and "salesforce-provider" in seed[0]["detail"]["ids"]
