"""Which way a run reaches the management plane: chosen once from the configuration, never branched on elsewhere.

With the account key, everything goes through the data plane (the keyed implementation). With Microsoft Entra ID
(``auth = "entra"``) documents still do, but databases, containers and throughput go through Azure Resource
Manager: the ARM implementation of the operations, and the two writes the verbs make themselves — the database
``up --create-database`` creates and cosmigrate's history container.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from azure.cosmos import DatabaseProxy

from cosmigrate.config import Config
from cosmigrate.ops.apply import Implementation
from cosmigrate.store import client, offers
from cosmigrate.store.arm import Management
from cosmigrate.store.live import Throughputs, offer_throughputs


@dataclass(frozen=True)
class Plane:
    implementation: Implementation
    management: Management | None = None

    @property
    def extra(self) -> dict[str, Any]:
        return {"management": self.management} if self.management else {}

    def throughputs(self, database: DatabaseProxy, properties: Sequence[Mapping[str, Any]]) -> Throughputs | None:
        """Each container's throughput and the database's: from the offers, or from ARM (one read each)."""
        if self.management is None:
            return offer_throughputs(database, properties)
        arm = self.management
        return {str(p["id"]): arm.throughput(database.id, str(p["id"])) for p in properties}, arm.throughput(
            database.id
        )

    def create_database(self, account: Any, name: str, throughput: Mapping[str, int] | None) -> None:
        if self.management is not None:
            self.management.create_database(name, throughput)
        else:
            account.create_database(name, offer_throughput=offers.offer_of(throughput))

    def replace_container(self, database: DatabaseProxy, properties: dict[str, Any]) -> Any:
        """Replace with the whole definition (the stored properties, some changed)."""
        if self.management is not None:
            self.management.put_container(database.id, properties)
            return client.read_container(database, str(properties["id"]))
        return client.replace_container(database, properties)

    def create_container(
        self, database: DatabaseProxy, body: dict[str, Any], throughput: Mapping[str, int] | None = None
    ) -> Any:
        if self.management is not None:
            self.management.put_container(database.id, body, throughput)
            return client.read_container(database, str(body["id"]))
        return offers.create_provisioned(database, body, throughput)


_planes: dict[tuple[Any, ...], Plane] = {}


def plane_for(config: Config) -> Plane:
    """The plane of this configuration: one per sign-in and account in a process (one ARM client, one
    credential), keyed by the settings that choose it."""
    key = (config.auth, config.subscription, config.resource_group, config.account, config.arm_endpoint,
           config.verify_tls, config.index_timeout)  # fmt: skip
    if key not in _planes:
        if config.auth == "entra":
            from cosmigrate.ops.apply.arm import ARM

            _planes[key] = Plane(ARM, Management(config, client.credential(config)))
        else:
            from cosmigrate.ops.apply.keyed import KEYED

            _planes[key] = Plane(KEYED)
    return _planes[key]
