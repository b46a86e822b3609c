"""Create integration_providers, the system-level catalog of available integrations.

Definition from the integration database design: partition key /category, one provider per category
(unique key on /category + /provider), the listed paths indexed and everything else excluded, and the two
composite indexes for listing providers by category and by search capability.
"""

revision = "001"
down_revision = None

# Converges when run again (create adopts, delete skips what is gone): an interrupted run is resumed.
idempotent = True

CONTAINER = "integration_providers"
INDEXING_POLICY = {
    "automatic": True,
    "indexingMode": "consistent",
    "includedPaths": [
        {"path": "/status/*"},
        {"path": "/audience/*"},
        {"path": "/provider/*"},
        {"path": "/name/*"},
        {"path": "/displayName/*"},
        {"path": "/category/*"},
        {"path": "/supportsSearch/*"},
        {"path": "/supportsNotifications/*"},
        {"path": "/requiresUserScoping/*"},
        {"path": "/createdAt/*"},
        {"path": "/updatedAt/*"},
    ],
    "excludedPaths": [
        {"path": "/description/*"},
        {"path": "/oauthConfig/*"},
        {"path": "/availableEntities/*"},
        {"path": "/*"},
    ],
    "compositeIndexes": [
        [
            {"path": "/category", "order": "ascending"},
            {"path": "/status", "order": "ascending"},
            {"path": "/audience", "order": "ascending"},
            {"path": "/displayName", "order": "ascending"},
        ],
        [
            {"path": "/supportsSearch", "order": "ascending"},
            {"path": "/status", "order": "ascending"},
            {"path": "/displayName", "order": "ascending"},
        ],
    ],
}


def upgrade(op):
    op.create_container(
        CONTAINER,
        partition_key="/category",
        unique_keys=[["/category", "/provider"]],
        indexing_policy=INDEXING_POLICY,
    )


def downgrade(op):
    op.delete_container(CONTAINER)
