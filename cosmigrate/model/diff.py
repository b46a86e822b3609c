"""Declared against live, property by property and path by path: the drift ``cosmigrate verify`` reports.

Pure. Both sides go through each property's normal form first (:mod:`cosmigrate.model.properties`): what the
service adds on read (lower-case mode, ``automatic``, the ``_etag`` exclusion, an inserted ``/*``, ascending as
the default composite order, the default conflict resolution policy, empty arrays) and the order of lists are
not drift. A property the declaration leaves unmanaged (throughput not declared) is not compared.
"""

from __future__ import annotations

from cosmigrate.model.container import ContainerDef
from cosmigrate.model.difference import SHORT_ORDER, Difference, show

__all__ = ["SHORT_ORDER", "Difference", "diff", "show"]


def diff(declared: ContainerDef, live: ContainerDef) -> list[Difference]:
    """Every difference between a declared container and the live one, in a stable order."""
    return declared.differences(live)
