"""Create integrations, the tenant-specific integration instances (replacing a legacy container).

Definition from the integration database design: partition key /tenantId, unique key on /tenantId +
/providerName + /name (several instances per provider per tenant), the listed paths indexed and everything
else excluded, and the two composite indexes for a tenant's integrations by status and by connection status.
An older container named integrations with another partition key or other unique keys is the legacy one:
it is dropped (only when no active integration uses it, or with -x force=true) and created anew.
"""

revision = "002"
down_revision = "001"

# Converges when run again (create adopts, delete skips what is gone): an interrupted run is resumed.
idempotent = True
arguments = {"force": "drop a legacy integrations container even if it still has active or connected integrations"}

CONTAINER = "integrations"
PARTITION_KEY = "/tenantId"
UNIQUE_KEYS = [["/tenantId", "/providerName", "/name"]]
INDEXING_POLICY = {
    "automatic": True,
    "indexingMode": "consistent",
    "includedPaths": [
        {"path": "/tenantId/*"},
        {"path": "/providerName/*"},
        {"path": "/name/*"},
        {"path": "/status/*"},
        {"path": "/connectionStatus/*"},
        {"path": "/searchEnabled/*"},
        {"path": "/userScoped/*"},
        {"path": "/enabledAt/*"},
        {"path": "/createdAt/*"},
        {"path": "/updatedAt/*"},
    ],
    "excludedPaths": [
        {"path": "/description/*"},
        {"path": "/settings/*"},
        {"path": "/syncConfig/*"},
        {"path": "/*"},
    ],
    "compositeIndexes": [
        [
            {"path": "/tenantId", "order": "ascending"},
            {"path": "/status", "order": "ascending"},
            {"path": "/searchEnabled", "order": "ascending"},
            {"path": "/name", "order": "ascending"},
        ],
        [
            {"path": "/tenantId", "order": "ascending"},
            {"path": "/connectionStatus", "order": "ascending"},
            {"path": "/updatedAt", "order": "descending"},
        ],
    ],
}
ACTIVE = "c.status IN ('active', 'connected')"


def upgrade(op):
    if op.is_legacy(CONTAINER, partition_key=PARTITION_KEY, unique_keys=UNIQUE_KEYS):
        op.assert_unused(CONTAINER, ACTIVE, what="active or connected integrations (legacy container)")
        op.delete_container(CONTAINER)
    op.create_container(
        CONTAINER,
        partition_key=PARTITION_KEY,
        unique_keys=UNIQUE_KEYS,
        indexing_policy=INDEXING_POLICY,
    )


def downgrade(op):
    op.delete_container(CONTAINER)
