"""Drop deprecated integration containers (tenant-integrations, and any given as -x legacy=a,b).

The design allows their data to be lost, but only once nothing active uses them: a container still holding
documents with status active or connected stops the run here, before anything is dropped, unless
-x force=true. Down: recreates tenant-integrations empty (partition key /tenantId); its data is not restored.
"""

revision = "004"
down_revision = "003"

# Converges when run again (create adopts, delete skips what is gone): an interrupted run is resumed.
idempotent = True
arguments = {
    "force": "drop even if a container still has active or connected integrations",
    "legacy": "more deprecated containers to drop, comma-separated",
}

DEPRECATED = ["tenant-integrations"]
MANAGED = {"integration_providers", "integrations", "integration-connections"}
ACTIVE = "c.status IN ('active', 'connected')"


def deprecated(op):
    extra = [name.strip() for name in op.x.get("legacy", "").split(",") if name.strip()]
    kept = sorted(MANAGED.intersection(extra))
    if kept:
        op.refuse(f"-x legacy names {', '.join(kept)}, which the migrations before this one manage; remove it")
    return list(dict.fromkeys(DEPRECATED + extra))


def upgrade(op):
    names = deprecated(op)
    # Check every container before dropping any, so a refusal leaves all of them untouched.
    for name in names:
        op.assert_unused(name, ACTIVE, what="active or connected integrations")
    for name in names:
        op.delete_container(name)


def downgrade(op):
    op.create_container("tenant-integrations", partition_key="/tenantId")
