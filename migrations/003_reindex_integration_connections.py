"""Reindex integration-connections for user-scoped connections (scope, userId), keeping its data.

Definition from the integration database design: partition key /integrationId (kept), scope and userId
indexed alongside the existing fields, credentials and OAuth data excluded, everything else excluded. The
container is created if it does not exist yet (a new environment). Down: back to the default policy.
"""

revision = "003"
down_revision = "002"

# Converges when run again (create adopts, delete skips what is gone): an interrupted run is resumed.
idempotent = True

CONTAINER = "integration-connections"
PARTITION_KEY = "/integrationId"
INDEXING_POLICY = {
    "automatic": True,
    "indexingMode": "consistent",
    "includedPaths": [
        {"path": "/integrationId/*"},
        {"path": "/scope/*"},
        {"path": "/tenantId/*"},
        {"path": "/userId/*"},
        {"path": "/status/*"},
        {"path": "/authType/*"},
        {"path": "/createdAt/*"},
        {"path": "/updatedAt/*"},
    ],
    "excludedPaths": [
        {"path": "/encryptedCredentials/*"},
        {"path": "/oauth/*"},
        {"path": "/*"},
    ],
}
DEFAULT_POLICY = {
    "automatic": True,
    "indexingMode": "consistent",
    "includedPaths": [{"path": "/*"}],
    "excludedPaths": [{"path": '/"_etag"/?'}],
}


def upgrade(op):
    # create_container adopts an existing container with this partition key and replaces only its
    # indexing policy, re-sending its other properties, then waits for the reindex to finish.
    op.create_container(CONTAINER, partition_key=PARTITION_KEY, indexing_policy=INDEXING_POLICY)


def downgrade(op):
    op.replace_indexing_policy(CONTAINER, DEFAULT_POLICY)
