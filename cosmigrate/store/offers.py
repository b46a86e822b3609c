"""Throughput through the data plane with the account key: the offers of a database and of its containers.

An offer is a resource of its own (``/offers/{rid}``), owned by a database or a container through
``offerResourceId`` (the owner's ``_rid``); a container that shares its database's throughput has none. The
azure-cosmos client reads an offer with ``get_throughput`` but raises ``AttributeError`` when there is none
(4.17), cannot switch manual ↔ autoscale (the service does that on a ``PUT`` carrying a migrate header, which the
client never sends) and cannot express an autoscale maximum on a manual offer: so the offers are read in one query
and replaced here, with the client's own signed calls (``ReplaceOffer`` passes extra headers through).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from azure.cosmos import DatabaseProxy, ThroughputProperties
from azure.cosmos import exceptions as cosmos_errors

from cosmigrate.errors import DatabaseError, DefinitionConflict
from cosmigrate.model.properties.throughput import describe_throughput, mode_of
from cosmigrate.store.client import NOT_DONE, create_container, resilient

MIN_HEADER = "x-ms-cosmos-min-throughput"
TO_AUTOSCALE = "x-ms-cosmos-migrate-offer-to-autopilot"
TO_MANUAL = "x-ms-cosmos-migrate-offer-to-manual-throughput"
Throughput = dict[str, int]


def all_offers(database: DatabaseProxy) -> dict[str, dict[str, Any]]:
    """Every offer of the account, by the ``_rid`` of what it provisions (one read of the offers feed: a GET, since
    a query that finds no offer trips over the client's own special case for an empty answer, 4.17)."""
    connection = database.client_connection
    offers = resilient("read the offers", lambda: [dict(o) for o in connection.ReadOffers()])
    return {str(offer.get("offerResourceId")): offer for offer in offers}


def readable_offers(database: DatabaseProxy) -> dict[str, dict[str, Any]] | None:
    """:func:`all_offers`, or None when the data plane does not serve offers to this credential (an Entra ID
    token: 403, substatus 5300); the throughput is then unknown, not absent."""
    try:
        return all_offers(database)
    except cosmos_errors.CosmosHttpResponseError as exc:
        if exc.status_code == 403 and getattr(exc, "sub_status", None) == 5300:
            return None
        raise


def throughput_of(offer: Mapping[str, Any] | None) -> Throughput | None:
    """``{"manual": N}`` or ``{"autoscale_max": M}`` from an offer, None without one."""
    if not offer:
        return None
    content = offer.get("content") or {}
    autoscale = (content.get("offerAutopilotSettings") or {}).get("maxThroughput")
    if autoscale:
        return {"autoscale_max": int(autoscale)}
    return {"manual": int(content.get("offerThroughput") or 0)}


def database_rid(database: DatabaseProxy) -> str:
    return str(resilient(f"read database {database.id}", lambda: dict(database.read()))["_rid"])


def create_options(throughput: Mapping[str, int] | None) -> dict[str, Any]:
    """The request options that give a new container (or database) its throughput, as the client sends them."""
    if not throughput:
        return {}
    if "autoscale_max" in throughput:
        return {"autoUpgradePolicy": json.dumps({"maxThroughput": throughput["autoscale_max"]})}
    return {"offerThroughput": throughput["manual"]}


def create_provisioned(database: DatabaseProxy, body: dict[str, Any], throughput: Mapping[str, int] | None) -> Any:
    """Create a container from its REST body with this throughput of its own (None: the database's, or none)."""
    return create_container(database, body, create_options(throughput))


def offer_of(throughput: Mapping[str, int] | None) -> Any:
    """The ``offer_throughput`` azure-cosmos takes for it: RU/s, ``ThroughputProperties`` for autoscale, or None."""
    if not throughput:
        return None
    if "autoscale_max" in throughput:
        return ThroughputProperties(auto_scale_max_throughput=throughput["autoscale_max"])
    return throughput["manual"]


def change_throughput(database: DatabaseProxy, owner_rid: str, what: str, after: Throughput) -> Throughput:
    """Bring the offer of ``owner_rid`` (``what`` names it in errors) to ``after``: first a migration of the offer
    when the mode changes, then a replace within the mode when the value still differs. Each step is idempotent
    (a retried replace writes the same content; a retried migration finds the mode already switched); a value
    below the offer's minimum is refused before anything is sent. Returns what the offer holds at the end."""
    connection = database.client_connection
    offer = _offer(database, owner_rid, what)
    if mode_of(throughput_of(offer)) != mode_of(after):
        header = TO_AUTOSCALE if "autoscale_max" in after else TO_MANUAL

        def migrate() -> dict[str, Any]:
            return dict(connection.ReplaceOffer(offer["_self"], offer, headers={header: "true"}))

        def migrated() -> dict[str, Any]:
            now = _offer(database, owner_rid, what)
            return now if mode_of(throughput_of(now)) == mode_of(after) else NOT_DONE

        offer = resilient(f"switch the throughput of {what} to {mode_of(after)}", migrate, recover=migrated)
    current, minimum = _read_with_minimum(database, offer)
    if throughput_of(current) == after:
        return after
    value = after.get("manual") or after.get("autoscale_max") or 0
    if minimum and value < minimum:
        raise DefinitionConflict(
            f"{what}: {describe_throughput(after)} is below its minimum of {minimum:,} RU/s now (the service's, "
            "from its data and the highest throughput it ever had); declare at least that"
        )
    body = copy.deepcopy(current)
    content = dict(body.get("content") or {})
    if "autoscale_max" in after:
        content["offerAutopilotSettings"] = {**(content.get("offerAutopilotSettings") or {}), "maxThroughput": value}
        content.pop("offerThroughput", None)
    else:
        content.pop("offerAutopilotSettings", None)
        content["offerThroughput"] = value
    body["content"] = content
    replaced = resilient(f"change the throughput of {what}", lambda: dict(connection.ReplaceOffer(body["_self"], body)))
    return throughput_of(replaced) or after


def _offer(database: DatabaseProxy, owner_rid: str, what: str) -> dict[str, Any]:
    offer = all_offers(database).get(owner_rid)
    if offer is None:
        raise DatabaseError(f"{what} has no throughput of its own to change (no offer): check the account")
    return offer


def _read_with_minimum(database: DatabaseProxy, offer: Mapping[str, Any]) -> tuple[dict[str, Any], int | None]:
    """The offer read by itself (a query does not carry it), with the minimum the service allows now."""
    connection = database.client_connection
    seen: dict[str, Any] = {}

    def read() -> dict[str, Any]:
        result = connection.ReadOffer(offer["_self"], response_hook=lambda headers, _: seen.update(headers))
        return dict(result)

    current = resilient("read the offer", read)
    raw = next((v for k, v in seen.items() if k.lower() == MIN_HEADER), None)
    try:
        return current, int(str(raw)) if raw is not None else None
    except ValueError:
        return current, None
