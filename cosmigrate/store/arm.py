"""Azure Resource Manager for accounts without keys: databases, containers and throughput through
``azure-mgmt-cosmosdb``'s ``sql_resources``, signed with the same Entra ID credential as the data plane.

An Entra ID token reads and writes documents on the data plane, but creating, replacing or deleting databases and
containers and reading or changing throughput there is refused (403, substatus 5300). Here those go through ARM,
addressed by subscription, resource group and account. Each write is a long-running operation, awaited with a
bound (the index timeout) and reported in the log. A container is written as a whole (a PUT of its definition,
as on the data plane's replace). Errors become one line naming what to grant.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.core.polling import LROPoller

from cosmigrate import logs
from cosmigrate.config import Config
from cosmigrate.errors import CredentialError, DatabaseError, UsageError
from cosmigrate.model.properties.throughput import mode_of
from cosmigrate.store.client import SYSTEM_PROPERTIES

log = logs.LOG
T = TypeVar("T")
OPERATOR_ROLE = "Cosmos DB Operator"


class Management:
    """The SQL resources of one account, through ARM."""

    def __init__(self, config: Config, credential: Any) -> None:
        missing = [
            what
            for what, value in (
                ("the subscription (--subscription, AZURE_SUBSCRIPTION_ID or subscription)", config.subscription),
                (
                    "the resource group (--resource-group, AZURE_RESOURCE_GROUP or resource_group)",
                    config.resource_group,
                ),
                ("the account name (--account, COSMIGRATE_ACCOUNT or account)", config.account),
            )
            if not value
        ]
        if missing:
            raise UsageError(
                "auth is entra: container and throughput changes go through Azure Resource Manager, which needs "
                + ", ".join(missing)
            )
        from azure.mgmt.cosmosdb import CosmosDBManagementClient

        self.client = CosmosDBManagementClient(
            credential,
            str(config.subscription),
            base_url=config.arm_endpoint,
            connection_verify=config.verify_tls,
            polling_interval=poll_interval(),
        )
        self.group, self.account = str(config.resource_group), str(config.account)
        self.scope = (
            f"/subscriptions/{config.subscription}/resourceGroups/{self.group}/providers/Microsoft.DocumentDB/"
            f"databaseAccounts/{self.account}"
        )
        self.timeout = config.index_timeout
        self.sql = self.client.sql_resources

    # -- calls ----------------------------------------------------------------------------------------------

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except HttpResponseError as exc:
            raise self.failure(exc, what) from None

    def _wait(self, what: str, start: Callable[[], LROPoller[Any]]) -> Any:
        """Start a long-running operation and wait for it, within the bound."""
        poller = self._call(what, start)
        log.info("waiting for Azure Resource Manager", operation=what)
        result = self._call(what, lambda: poller.result(timeout=self.timeout))
        if not poller.done():
            raise DatabaseError(
                f"{what}: Azure Resource Manager has not finished after {self.timeout:.0f} s; it goes on in Azure: "
                "raise --index-timeout, then cosmigrate repair and up"
            )
        return result

    def failure(self, exc: HttpResponseError, what: str) -> CredentialError | DatabaseError:
        code = getattr(getattr(exc, "error", None), "code", None) or ""
        message = " ".join(str(getattr(getattr(exc, "error", None), "message", "") or exc.message or exc).split())
        if exc.status_code == 403 or code == "AuthorizationFailed":
            action = message.split("perform action '", 1)[1].split("'", 1)[0] if "perform action '" in message else ""
            needed = f" ({action})" if action else ""
            return CredentialError(
                f"{what}: Azure Resource Manager refused the principal (403 {code or 'Forbidden'}): it lacks the "
                f"right{needed} on the account; assign it {OPERATOR_ROLE} (or a role with "
                "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/* actions): az role assignment create "
                f'--assignee OBJECT_ID --role "{OPERATOR_ROLE}" --scope {self.scope}'
            )
        if exc.status_code == 401:
            return CredentialError(f"{what}: Azure Resource Manager refused the Entra ID token (401: {message})")
        return DatabaseError(f"{what}: Azure Resource Manager answered {exc.status_code} ({message})")

    # -- databases and containers ---------------------------------------------------------------------------

    def create_database(self, name: str, throughput: Mapping[str, int] | None = None) -> None:
        body: Any = {"properties": {"resource": {"id": name}, "options": options(throughput)}}
        self._wait(
            f"create database {name}",
            lambda: self.sql.begin_create_update_sql_database(self.group, self.account, name, body),
        )

    def put_container(
        self, database: str, body: Mapping[str, Any], throughput: Mapping[str, int] | None = None
    ) -> None:
        """Create the container, or replace it with this whole definition (what it leaves out is reset)."""
        resource = {k: v for k, v in body.items() if k not in SYSTEM_PROPERTIES}
        name = str(resource["id"])
        parameters: Any = {"properties": {"resource": resource, "options": options(throughput)}}
        self._wait(
            f"write container {name}",
            lambda: self.sql.begin_create_update_sql_container(self.group, self.account, database, name, parameters),
        )

    def delete_container(self, database: str, name: str) -> None:
        try:
            self._wait(
                f"delete container {name}",
                lambda: self.sql.begin_delete_sql_container(self.group, self.account, database, name),
            )
        except DatabaseError as exc:
            if "answered 404" not in str(exc):
                raise

    # -- throughput -----------------------------------------------------------------------------------------

    def throughput(self, database: str, container: str | None = None) -> dict[str, int] | None:
        """``{"manual": N}`` or ``{"autoscale_max": M}``; None when it has none of its own."""
        try:
            if container is None:
                found = self.sql.get_sql_database_throughput(self.group, self.account, database)
            else:
                found = self.sql.get_sql_container_throughput(self.group, self.account, database, container)
        except ResourceNotFoundError:
            return None
        except HttpResponseError as exc:
            raise self.failure(exc, f"read the throughput of {container or database}") from None
        resource = found.resource
        auto = getattr(getattr(resource, "autoscale_settings", None), "max_throughput", None)
        return {"autoscale_max": int(auto)} if auto else {"manual": int(resource.throughput or 0)}

    def change_throughput(
        self, database: str, container: str | None, before: Mapping[str, int] | None, after: Mapping[str, int]
    ) -> None:
        """Switch modes first when they differ (a migrate call of its own), then set the value."""
        what = f"throughput of {container or database}"
        scope = (self.group, self.account, database) + ((container,) if container else ())
        level = "container" if container else "database"
        if mode_of(before) != mode_of(after):
            target = "autoscale" if mode_of(after) == "autoscale" else "manual_throughput"
            migrate = getattr(self.sql, f"begin_migrate_sql_{level}_to_{target}")
            self._wait(f"migrate the {what} to {mode_of(after)}", lambda: migrate(*scope))
        resource = (
            {"autoscaleSettings": {"maxThroughput": after["autoscale_max"]}}
            if "autoscale_max" in after
            else {"throughput": after["manual"]}
        )
        update = getattr(self.sql, f"begin_update_sql_{level}_throughput")
        parameters: Any = {"properties": {"resource": resource}}
        self._wait(f"set the {what}", lambda: update(*scope, parameters))


def poll_interval() -> float:
    """Seconds between polls of a long-running operation when ARM does not say (Retry-After):
    ``COSMIGRATE_ARM_POLL_INTERVAL``, default 2."""
    try:
        return max(0.0, float(os.environ.get("COSMIGRATE_ARM_POLL_INTERVAL", "2")))
    except ValueError:
        raise UsageError("COSMIGRATE_ARM_POLL_INTERVAL must be a number of seconds") from None


def options(throughput: Mapping[str, int] | None) -> dict[str, Any]:
    if not throughput:
        return {}
    if "autoscale_max" in throughput:
        return {"autoscaleSettings": {"maxThroughput": throughput["autoscale_max"]}}
    return {"throughput": throughput["manual"]}
