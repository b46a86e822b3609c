"""Provisioned throughput: manual RU/s or an autoscale maximum, of a container or of a database (shared).

Not part of the container's REST body: it is an offer of its own, read and changed through the offers (or the
management plane), so it is ``in_body = False`` and the operations apply it separately. Left out of a
declaration it is not managed (portals, autoscale and operators change it; a migration that does not declare it
leaves it as it is); declared, ``plan`` shows it before and after and ``verify`` reports drift. Within a mode it
changes in place; manual ↔ autoscale is a migration of the offer (a call of its own); a container that shares its
database's throughput cannot get its own, nor lose it, in place.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cosmigrate.errors import InvalidDefinition
from cosmigrate.model.properties import SWAP, Code, Mutability, Property, register, require_int

MANUAL_MIN, MANUAL_STEP, MANUAL_MAX = 400, 100, 1_000_000
AUTOSCALE_MIN, AUTOSCALE_STEP = 1000, 1000


def throughput_value(where: str, value: Any, autoscale: bool = False) -> dict[str, int] | None:
    """``400`` (manual RU/s), azure-cosmos's ``ThroughputProperties(auto_scale_max_throughput=4000)`` or
    ``ThroughputProperties(offer_throughput=400)``, or with ``autoscale`` an autoscale maximum: the value as
    ``{"manual": N}`` or ``{"autoscale_max": M}``, checked against the service's minimums and steps."""
    if value is None:
        return None
    if not isinstance(value, int | bool):
        auto = getattr(value, "auto_scale_max_throughput", None)
        manual = getattr(value, "offer_throughput", None)
        if auto is None and manual is None:
            raise InvalidDefinition(
                f"{where}: throughput must be RU/s (400) or ThroughputProperties(auto_scale_max_throughput=4000), "
                f"not {value!r}"
            )
        value, autoscale = (auto, True) if auto is not None else (manual, False)
    number = require_int(where.removeprefix("container ").strip("'"), "throughput", value)
    if autoscale:
        if number < AUTOSCALE_MIN or number % AUTOSCALE_STEP:
            raise InvalidDefinition(
                f"{where}: an autoscale maximum is at least {AUTOSCALE_MIN} RU/s in steps of {AUTOSCALE_STEP}, not "
                f"{number}"
            )
        return {"autoscale_max": number}
    if not MANUAL_MIN <= number <= MANUAL_MAX or number % MANUAL_STEP:
        raise InvalidDefinition(
            f"{where}: manual throughput is {MANUAL_MIN} to {MANUAL_MAX:,} RU/s in steps of {MANUAL_STEP}, not {number}"
        )
    return {"manual": number}


def describe_throughput(value: Mapping[str, int] | None) -> str:
    if not value:
        return "none of its own"
    if "autoscale_max" in value:
        return f"autoscale up to {value['autoscale_max']:,} RU/s"
    return f"{value['manual']:,} RU/s (manual)"


def mode_of(value: Mapping[str, int] | None) -> str | None:
    return None if not value else "autoscale" if "autoscale_max" in value else "manual"


@register
class Throughput(Property):
    """``offer_throughput=400`` or ``offer_throughput=ThroughputProperties(auto_scale_max_throughput=4000)`` as
    azure-cosmos names it, or the shorthand ``autoscale_max_throughput=4000``."""

    name = "throughput"
    keywords = ("offer_throughput", "autoscale_max_throughput")
    label = "throughput"
    mutability = Mutability.SPECIAL
    order = 95
    in_body = False
    managed_when_omitted = False

    def declare(self, container_id: str, value: Any, keyword: str) -> Any:
        return throughput_value(f"container {container_id!r}", value, autoscale=keyword == "autoscale_max_throughput")

    def read(self, properties: Mapping[str, Any]) -> Any:
        return properties.get(self.name)  # filled in from the container's offer by whoever read it

    def body(self, value: Any) -> dict[str, Any]:
        return {}

    def refusal(self, container_id: str, before: Any, after: Any) -> str | None:
        if after is not None and before is None:
            return (
                f"container {container_id}: it has no throughput of its own (it shares its database's, or it is "
                f"serverless), and dedicated throughput is set only when a container is created; {SWAP}"
            )
        if after is None and before is not None:
            return (
                f"container {container_id}: it has throughput of its own ({describe_throughput(before)}), which "
                f"cannot become its database's shared throughput; leave offer_throughput out to keep it, or {SWAP}"
            )
        return None

    def lines(self, value: Any) -> list[str]:
        return [f"{self.label:<17}{describe_throughput(value)}"]

    def keyword(self, value: Any) -> tuple[str, Any] | None:
        if not value:
            return None
        if "autoscale_max" in value:
            return "offer_throughput", Code(f"op.autoscale({value['autoscale_max']})")
        return "offer_throughput", value["manual"]
