"""The implementation for accounts without keys: schema operations through Azure Resource Manager, data through
the data plane with the same Entra ID token.

It starts from the keyed implementation's functions (seeding, data steps, precondition counts all run on the data
plane, where a token may read and write documents) and registers its own for every operation that changes a
database or a container or reads or changes throughput: those the data plane refuses to a token (403, substatus
5300). Container properties are read on the data plane (reading metadata is allowed); throughput through ARM. The
plan is the operation's own, the same as with a key; only how it is carried out differs.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from cosmigrate.model.state import DatabaseState
from cosmigrate.ops.apply import ApplyContext
from cosmigrate.ops.apply.keyed import KEYED, read_live, replace_body, wait_for_index
from cosmigrate.ops.change import Change, Outcome
from cosmigrate.ops.operations import AlterContainer, CreateContainer, DeleteContainer, Operation, SetDatabaseThroughput
from cosmigrate.store.arm import Management

ARM = KEYED.extend("management plane (Azure Resource Manager) and data plane, Entra ID")


def management(context: ApplyContext) -> Management:
    found = context.extra.get("management")
    if not isinstance(found, Management):
        raise RuntimeError("the ARM implementation needs context.extra['management']")
    return found


@ARM.reads
def read_state(context: ApplyContext, container_ids: Sequence[str], operation: Operation | None) -> DatabaseState:
    """The stored properties from the data plane; throughput, when the operation manages it, from ARM."""
    return read_live(
        context, container_ids, operation, lambda: partial(management(context).throughput, context.database.id)
    )


@ARM.implements(CreateContainer, AlterContainer)
def create_or_update(context: ApplyContext, operation: Operation, change: Change) -> Outcome:
    arm, database = management(context), context.database.id
    if change.effect == "create" and change.after is not None:
        arm.put_container(database, change.after.to_body(), change.after.throughput)
        return Outcome()
    if change.effect != "update" or change.after is None or change.container is None:
        return Outcome()
    updated = replace_body(context, change)
    if updated is not None:
        arm.put_container(database, updated)
        if change.reindexes:
            wait_for_index(context, change.container)  # progress is read on the data plane
    if "throughput" in change.changed and change.after.throughput:
        before = change.before.throughput if change.before is not None else None
        arm.change_throughput(database, change.container, before, change.after.throughput)
    return Outcome()


@ARM.implements(SetDatabaseThroughput)
def set_database_throughput(context: ApplyContext, operation: Operation, change: Change) -> Outcome:
    if change.throughput is not None and change.throughput.after:
        management(context).change_throughput(
            context.database.id, None, change.throughput.before, change.throughput.after
        )
    return Outcome()


@ARM.implements(DeleteContainer)
def delete(context: ApplyContext, operation: Operation, change: Change) -> Outcome:
    if change.effect != "delete" or change.container is None:
        return Outcome()
    backup = context.data.before_delete(context.database, change.container) if context.data else None
    management(context).delete_container(context.database.id, change.container)
    return Outcome(backup=backup)
