"""Python source for migration scripts written by cosmigrate (``adopt``, ``new --autogenerate``): operations in
the keywords a person writes (the registry's ``keyword``), formatted with ``pprint`` so the file reads as code."""

from __future__ import annotations

import pprint
from collections.abc import Sequence
from typing import Any

from cosmigrate.model.container import ContainerDef
from cosmigrate.model.properties import REGISTRY

INDENT = "    "


def value(text: Any, indent: int) -> str:
    """A value as Python source, continued lines aligned under the first."""
    return pprint.pformat(text, width=max(40, 116 - indent), sort_dicts=False).replace("\n", "\n" + " " * indent)


def call(name: str, first: Sequence[Any], keywords: Sequence[tuple[str, Any]] = ()) -> str:
    """``op.name(first…, keyword=value, …)``, one argument per line when it does not fit on one."""
    arguments = [value(a, 8) for a in first] + [f"{k}={value(v, 9 + len(k))}" for k, v in keywords]
    one_line = f"{INDENT}op.{name}({', '.join(arguments)})"
    if len(one_line) <= 116 and "\n" not in one_line:
        return one_line
    return "\n".join([f"{INDENT}op.{name}(", *(f"{INDENT * 2}{a}," for a in arguments), f"{INDENT})"])


def create(definition: ContainerDef, container_id: str | None = None) -> str:
    return call("create_container", [container_id or definition.id], definition.keywords())


def alter(container_id: str, after: ContainerDef, names: Sequence[str]) -> str:
    """``op.alter_container`` of the properties ``names``, to their values in ``after`` (None turns one off)."""
    pairs = []
    for name in names:
        prop = REGISTRY[name]
        written = prop.keyword(after.get(name))
        pairs.append(written if written is not None else (prop.keywords[0], None))
    return call("alter_container", [container_id], pairs)
