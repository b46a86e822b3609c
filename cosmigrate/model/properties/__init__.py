"""Every container property cosmigrate manages, as one registered object each: the registry.

Pure: no Cosmos DB import. A property knows its keyword in ``op.create_container`` (the name azure-cosmos's
``create_container`` gives it, so what users know of the SDK carries over), how to validate what a script
declares, where it lives in the container's REST properties, its normal form (as the service returns it, so
that a declared value and a stored one compare equal), whether and how it may change on an existing container
(in place, create-only, or a rule of its own), how to show it in a plan in Cosmos DB terms, and how two values
differ, path by path. :class:`~cosmigrate.model.container.ContainerDef`, the planner's comparisons, ``verify``,
the built-in tests, backups and the text plan all go through the registry, so that a new property is one module
in this package (found by itself: every module here is imported below), its test and a line of the README.
"""

from __future__ import annotations

import enum
import importlib
import pkgutil
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from cosmigrate.errors import InvalidDefinition, UnknownKeyword
from cosmigrate.model.difference import Difference, show


class Mutability(enum.Enum):
    """How a property may change on an existing container."""

    IN_PLACE = "in place"  # a replace of the container (or of its offer) changes it
    CREATE_ONLY = "create-only"  # fixed at creation: a new container and a copy (the swap pattern)
    SPECIAL = "special"  # a rule of its own (see the property's refusal)


SWAP = (
    "create a new container with the new definition, op.copy_container into it, switch the application over, "
    "then drop the old one in a later revision (the swap pattern in the README)"
)


class Property:
    """One container property. Values are kept in their REST form (``None``: absent, the service's default)."""

    name: ClassVar[str]  # the key in a container's REST properties: "defaultTtl"
    json_name: ClassVar[str] = ""  # its key in a plan's JSON when not ``name`` (kept from older plans)
    keywords: ClassVar[tuple[str, ...]]  # op.create_container keywords, the azure-cosmos name first
    label: ClassVar[str]  # how a plan names it: "default TTL"
    mutability: ClassVar[Mutability]
    order: ClassVar[int] = 100  # where it is shown among the others
    in_body: ClassVar[bool] = True  # part of the container's REST body (False: throughput, an offer of its own)
    managed_when_omitted: ClassVar[bool] = True  # omitted declares the default; False: omitted leaves it as it is
    shown_when_default: ClassVar[bool] = False  # a plan shows it even at the service's default (the core ones)

    # -- what a script declares -------------------------------------------------------------------------

    def declare(self, container_id: str, value: Any, keyword: str) -> Any:
        """The validated REST form of what ``keyword=value`` declares; raises :class:`InvalidDefinition`."""
        return value

    def check(self, container_id: str, values: Mapping[str, Any]) -> None:
        """Rules across properties (TTL with indexing mode none…), once every value is declared."""

    # -- what the service stores ------------------------------------------------------------------------

    def read(self, properties: Mapping[str, Any]) -> Any:
        value = properties.get(self.name)
        return None if value in (None, {}, []) else value

    def body(self, value: Any) -> dict[str, Any]:
        """The fragment of a create or replace body (nothing for an absent value: the service's default)."""
        return {} if value is None else {self.name: value}

    def normal(self, value: Any) -> Any:
        """The comparable form: what the service adds on read added, lists in a stable order."""
        return value

    def to_json(self, value: Any) -> Any:
        """The value in a plan's or a backup's JSON."""
        return value

    def from_json(self, value: Any) -> Any:
        return value

    # -- changing it --------------------------------------------------------------------------------------

    def refusal(self, container_id: str, before: Any, after: Any) -> str | None:
        """Why ``before`` cannot become ``after`` on the existing container, or None when it can."""
        if self.mutability is Mutability.CREATE_ONLY and not self.same(after, before):
            return (
                f"container {container_id} exists with {self.label} {self.display(before)}, not "
                f"{self.display(after)}; its {self.label} cannot change once it exists: {SWAP}"
            )
        return None

    def display(self, value: Any) -> str:
        """The value in a sentence, in Cosmos DB terms."""
        return show(self.normal(value))

    # -- writing it back as a keyword -----------------------------------------------------------------------

    def keyword(self, value: Any) -> tuple[str, Any] | None:
        """``(keyword, value)`` that declares ``value`` in ``op.create_container`` (the value as Python data, or a
        :class:`Code` for an expression), or None when it is the service's default and needs no keyword."""
        if self.is_default(value):
            return None
        return self.keywords[0], self.to_json(value)

    # -- showing it -------------------------------------------------------------------------------------

    def lines(self, value: Any) -> list[str]:
        """How a plan shows the value, in Cosmos DB terms: ``[label, text]`` pairs folded into lines."""
        return [f"{self.label:<17}{self.display(value)}"]

    def is_default(self, value: Any) -> bool:
        """Whether the value is what the service gives a container that does not declare it."""
        return bool(self.normal(value) == self.normal(None))

    def same(self, declared: Any, live: Any) -> bool:
        """Whether the live value is what is declared (normal forms equal)."""
        return bool(self.normal(declared) == self.normal(live))

    def differences(self, container_id: str, declared: Any, live: Any) -> list[Difference]:
        if self.same(declared, live):
            return []
        return [Difference(container_id, self.name, self.normal(declared), self.normal(live))]


class Code(str):
    """Python source to write as it is (``op.autoscale(4000)``), not as a literal."""

    def __repr__(self) -> str:
        return str(self)


def json_name(prop: Property) -> str:
    return prop.json_name or prop.name


REGISTRY: dict[str, Property] = {}  # by REST name, in the order plans show them
KEYWORDS: dict[str, Property] = {}  # by keyword


def register(cls: type[Property]) -> type[Property]:
    """Class decorator: one instance of the property joins the registry (keywords must be unique)."""
    prop = cls()
    for keyword in cls.keywords:
        if keyword in KEYWORDS:
            raise RuntimeError(f"keyword {keyword} of {cls.__name__} is already {KEYWORDS[keyword].name}'s")
        KEYWORDS[keyword] = prop
    REGISTRY[cls.name] = prop
    ordered = sorted(REGISTRY.values(), key=lambda p: p.order)
    REGISTRY.clear()
    REGISTRY.update((p.name, p) for p in ordered)
    return cls


def keyword_list() -> str:
    return ", ".join(sorted(KEYWORDS))


def by_keyword(container_id: str, keyword: str) -> Property:
    """The property a container keyword names; an unknown keyword is a usage error that lists the known ones."""
    prop = KEYWORDS.get(keyword)
    if prop is None:
        raise UnknownKeyword(
            f"container {container_id!r}: unknown keyword {keyword!r}; the container keywords are {keyword_list()}"
        )
    return prop


def require_int(container_id: str, keyword: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidDefinition(f"container {container_id!r}: {keyword} must be a whole number, not {value!r}")
    return value


def require_list(container_id: str, keyword: str, value: Any) -> list[Any]:
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Sequence):
        raise InvalidDefinition(f"container {container_id!r}: {keyword} must be a list, not {value!r}")
    return list(value)


def require_mapping(container_id: str, keyword: str, value: Any, known: Sequence[str]) -> dict[str, Any]:
    """A mapping whose keys are all known (an unknown one is refused by name, never dropped)."""
    if not isinstance(value, Mapping):
        raise InvalidDefinition(f"container {container_id!r}: {keyword} must be a dict, not {value!r}")
    unknown = sorted(set(value) - set(known))
    if unknown:
        raise InvalidDefinition(
            f"container {container_id!r}: unknown key {unknown[0]!r} in {keyword} (known: {', '.join(known)})"
        )
    return dict(value)


for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
