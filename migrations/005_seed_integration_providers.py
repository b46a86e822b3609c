"""Seed the integration provider catalog: Salesforce CRM and seven more providers in four categories.

From the design's "Seed Data" section: the system-level catalog in integration_providers, with every field the
design indexes (status, audience, provider, name, displayName, category, supportsSearch,
supportsNotifications, requiresUserScoping, createdAt, updatedAt) and the excluded ones (description,
oauthConfig, availableEntities). oauthConfig holds only public endpoints and scopes: client ids and secrets
belong to each deployment's secret store, never to a migration. Seeding upserts, so running it again changes
nothing; down removes exactly these documents, and keeps (and reports) one changed since it was seeded.
"""

revision = "005"
down_revision = "004"

# Upserts of fixed documents converge: an interrupted run is resumed.
idempotent = True

CONTAINER = "integration_providers"
SEEDED_AT = "2025-01-15T00:00:00Z"


def provider(
    provider_id: str,
    category: str,
    display_name: str,
    description: str,
    *,
    search: bool,
    notifications: bool,
    user_scoped: bool,
    authorization_url: str,
    token_url: str,
    scopes: list[str],
    entities: list[str],
    audience: str = "tenant",
) -> dict[str, object]:
    return {
        "id": f"{provider_id}-provider",
        "category": category,
        "provider": provider_id,
        "name": provider_id,
        "displayName": display_name,
        "description": description,
        "status": "active",
        "audience": audience,
        "supportsSearch": search,
        "supportsNotifications": notifications,
        "requiresUserScoping": user_scoped,
        "oauthConfig": {"authorizationUrl": authorization_url, "tokenUrl": token_url, "scopes": scopes},
        "availableEntities": entities,
        "createdAt": SEEDED_AT,
        "updatedAt": SEEDED_AT,
    }


PROVIDERS = [
    provider(
        "salesforce", "crm", "Salesforce CRM", "Accounts, contacts, opportunities and cases from Salesforce.",
        search=True, notifications=True, user_scoped=False,
        authorization_url="https://login.salesforce.com/services/oauth2/authorize",
        token_url="https://login.salesforce.com/services/oauth2/token",
        scopes=["api", "refresh_token"], entities=["account", "contact", "opportunity", "case"],
    ),
    provider(
        "hubspot", "crm", "HubSpot CRM", "Companies, contacts and deals from HubSpot.",
        search=True, notifications=False, user_scoped=False,
        authorization_url="https://app.hubspot.com/oauth/authorize", token_url="https://api.hubapi.com/oauth/v1/token",
        scopes=["crm.objects.contacts.read", "crm.objects.deals.read"], entities=["company", "contact", "deal"],
    ),
    provider(
        "dynamics365", "crm", "Microsoft Dynamics 365", "Accounts, contacts and leads from Dynamics 365 Sales.",
        search=False, notifications=False, user_scoped=False,
        authorization_url="https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
        token_url="https://login.microsoftonline.com/common/oauth2/v2.0/token",
        scopes=["https://admin.services.crm.dynamics.com/user_impersonation"], entities=["account", "contact", "lead"],
    ),
    provider(
        "zendesk", "support", "Zendesk Support", "Tickets and users from Zendesk.",
        search=True, notifications=True, user_scoped=False,
        authorization_url="https://{subdomain}.zendesk.com/oauth/authorizations/new",
        token_url="https://{subdomain}.zendesk.com/oauth/tokens",
        scopes=["read", "tickets:read"], entities=["ticket", "user"],
    ),
    provider(
        "intercom", "support", "Intercom", "Conversations and contacts from Intercom.",
        search=True, notifications=True, user_scoped=False,
        authorization_url="https://app.intercom.com/oauth", token_url="https://api.intercom.io/auth/eagle/token",
        scopes=[], entities=["conversation", "contact"],
    ),
    provider(
        "slack", "communication", "Slack", "Channel messages and notifications in Slack.",
        search=True, notifications=True, user_scoped=True,
        authorization_url="https://slack.com/oauth/v2/authorize", token_url="https://slack.com/api/oauth.v2.access",
        scopes=["channels:read", "chat:write"], entities=["channel", "message"],
    ),
    provider(
        "teams", "communication", "Microsoft Teams", "Channel messages and notifications in Microsoft Teams.",
        search=False, notifications=True, user_scoped=True,
        authorization_url="https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
        token_url="https://login.microsoftonline.com/common/oauth2/v2.0/token",
        scopes=["ChannelMessage.Read.All", "ChannelMessage.Send"], entities=["team", "channel", "message"],
    ),
    provider(
        "google-drive", "storage", "Google Drive", "Files and folders from Google Drive, searched per user.",
        search=True, notifications=False, user_scoped=True,
        authorization_url="https://accounts.google.com/o/oauth2/v2/auth", token_url="https://oauth2.googleapis.com/token",
        scopes=["https://www.googleapis.com/auth/drive.readonly"], entities=["file", "folder"],
    ),
]  # fmt: skip


def upgrade(op):
    op.seed_items(CONTAINER, PROVIDERS)


def downgrade(op):
    op.unseed_items(CONTAINER, PROVIDERS)
