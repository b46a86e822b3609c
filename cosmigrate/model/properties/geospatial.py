"""``geospatial_config``: how the container reads GeoJSON, as Geography (round earth, the default) or Geometry
(a flat plane). The service changes it on a replace, so it changes in place. azure-cosmos's ``create_container``
has no keyword for it; this one follows its REST name (``geospatialConfig``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cosmigrate.errors import InvalidDefinition
from cosmigrate.model.properties import Mutability, Property, register

TYPES = ("Geography", "Geometry")


@register
class GeospatialConfig(Property):
    """``geospatial_config="Geometry"`` (or ``{"type": "Geometry"}``); left out, the service's Geography."""

    name = "geospatialConfig"
    keywords = ("geospatial_config",)
    label = "geospatial"
    mutability = Mutability.IN_PLACE
    order = 75

    def declare(self, container_id: str, value: Any, keyword: str) -> Any:
        kind = value.get("type") if isinstance(value, Mapping) and set(value) <= {"type"} else value
        if value is not None and kind not in TYPES:
            raise InvalidDefinition(
                f"container {container_id!r}: {keyword} must be one of {', '.join(TYPES)}, not {value!r}"
            )
        return None if value is None else {"type": kind}

    def normal(self, value: Any) -> Any:
        return (value.get("type") if isinstance(value, Mapping) else value) or "Geography"
