"""The ``op`` a migration script receives: builds operations and hands them to an executor.

There is one ``op`` and two executors. In a planning pass (validation, dry run, ``plan``, ``verify``,
``check``) the executor simulates: nothing is sent, ``op.planning`` is True, and raw data access
(``op.container``, ``op.database``) ends the simulation of that script with a step that says so. In a real
run the executor applies each operation to Cosmos DB. The script cannot tell the difference except through
``op.planning``, which it uses to guard side effects of its own (files, HTTP calls, sleeps).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from cosmigrate import logs
from cosmigrate.errors import InvalidDefinition, PreconditionRefused, UsageError
from cosmigrate.model.container import OMITTED, ContainerDef
from cosmigrate.model.definitions import Policy, validate_container_id
from cosmigrate.model.documents import DELETE
from cosmigrate.model.properties import REGISTRY, SWAP, by_keyword
from cosmigrate.model.properties.throughput import throughput_value
from cosmigrate.ops.operations import (
    AlterContainer,
    Change,
    CopyContainer,
    CreateContainer,
    DataAccess,
    DeleteContainer,
    Operation,
    Precondition,
    ReplaceIndexingPolicy,
    SeedItems,
    SetDatabaseThroughput,
    TransformItems,
    UnseedItems,
)

log = logs.LOG
TRUE_WORDS = ("1", "true", "yes", "on")


class PlanningStop(Exception):
    """Raised in a planning pass at raw data access: the rest of that script cannot be simulated."""


class UndeclaredArgument(UsageError):
    """A script reads an ``-x`` key it does not declare in ``arguments``."""


class Executor(Protocol):
    """Where operations go: a simulated state, or Cosmos DB."""

    planning: bool

    def execute(self, operation: Operation) -> Change: ...

    def definition(self, container_id: str) -> ContainerDef | None: ...

    def count(self, container_id: str, where: str, parameters: Sequence[Mapping[str, Any]]) -> int: ...

    def raw_container(self, container_id: str) -> Any: ...

    def raw_database(self) -> Any: ...


class Arguments(Mapping[str, str]):
    """``op.x``: the ``-x key=value`` arguments, readable only under the keys the script declares."""

    def __init__(self, given: Mapping[str, str], declared: Mapping[str, str] | None, script: str) -> None:
        self._given = dict(given)
        self._declared = declared
        self._script = script

    def _allowed(self, key: str) -> None:
        if self._declared is None or key not in self._declared:
            known = ", ".join(sorted(self._declared or {})) or "none"
            raise UndeclaredArgument(
                f"{self._script} reads -x {key} but does not declare it: add it to arguments = {{{key!r}: 'what it "
                f"does'}} at module level (declared: {known})"
            )

    def __getitem__(self, key: str) -> str:
        self._allowed(key)
        return self._given[key]

    def get(self, key: str, default: Any = None) -> Any:
        self._allowed(key)
        return self._given.get(key, default)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key in self._given

    def __iter__(self) -> Iterator[str]:
        return iter(self._given)

    def __len__(self) -> int:
        return len(self._given)


class Operations:
    """What ``upgrade(op)`` and ``downgrade(op)`` call."""

    DELETE = DELETE

    def __init__(
        self,
        executor: Executor,
        *,
        x: Mapping[str, str] | None = None,
        arguments: Mapping[str, str] | None = None,
        script: str = "the script",
        revision: str | None = None,
        history_container: str | None = None,
    ) -> None:
        self._executor = executor
        self._history_container = history_container
        self.x = Arguments(x or {}, arguments, script)
        self.revision = revision
        self.changes: list[Change] = []
        self.forced: list[dict[str, Any]] = []
        # The script has been told something of the database (exists, is_legacy, count, whether delete_container
        # deleted): what it does next may depend on that. ``check`` uses it (see ``app/offline.replay_problems``).
        self.asked = False
        self.log = log

    @property
    def planning(self) -> bool:
        """True in the passes that only simulate (validation, dry run, plan, verify, check): guard your own side
        effects with ``if not op.planning``."""
        return self._executor.planning

    def flag(self, name: str) -> bool:
        """An ``-x name=true`` switch."""
        return str(self.x.get(name, "")).strip().lower() in TRUE_WORDS

    def _run(self, operation: Operation) -> Change:
        change = self._executor.execute(operation)
        self.changes.append(change)
        return change

    def _target(self, container_id: str) -> str:
        """A container a schema operation may change: a valid id, and not cosmigrate's own history."""
        validate_container_id(container_id)
        if container_id == self._history_container:
            raise InvalidDefinition(
                f"container {container_id!r} holds cosmigrate's history: a migration must not create, change "
                "or delete it"
            )
        return container_id

    # -- schema -------------------------------------------------------------------------------------------

    def create_container(
        self,
        container_id: str,
        partition_key: str | Sequence[str] | Mapping[str, Any],
        unique_keys: Sequence[Sequence[str]] | None = None,
        indexing_policy: Policy | None = None,
        default_ttl: int | None = OMITTED,
        **properties: Any,
    ) -> Change:
        """Create the container with this whole definition, or adopt an existing one whose create-only properties
        are the declared ones, bringing its mutable ones to what is declared (keeping its data).

        The keywords are azure-cosmos ``create_container``'s: ``partition_key`` (a path, up to 3 paths for a
        hierarchical key, or ``PartitionKey``), ``unique_key_policy`` (or the shorthand ``unique_keys``),
        ``indexing_policy``, ``default_ttl``, ``computed_properties``, ``vector_embedding_policy``,
        ``full_text_policy``, ``conflict_resolution_policy``, ``analytical_storage_ttl``, ``offer_throughput``
        (RU/s, or ``ThroughputProperties(auto_scale_max_throughput=…)``, or the shorthand
        ``autoscale_max_throughput``). What is left out is the service's default (throughput: left as it is). A
        create-only property that differs is refused, naming the swap pattern; an unknown keyword is a usage error.
        """
        self._target(container_id)
        definition = ContainerDef.declare(
            container_id, partition_key, unique_keys, indexing_policy, default_ttl, **properties
        )
        return self._run(CreateContainer(definition))

    def alter_container(self, container_id: str, **properties: Any) -> Change:
        """Change the given properties of an existing container, keeping every other one as stored: e.g.
        ``op.alter_container("orders", default_ttl=None)`` turns TTL off, ``offer_throughput=800`` changes its
        throughput (manual ↔ autoscale is a migration of the offer, done for you). Same keywords as
        :meth:`create_container`; ``None`` turns a property off (back to the service's default)."""
        self._target(container_id)
        if not properties:
            raise InvalidDefinition(f"alter_container({container_id!r}): name at least one property to change")
        values = {}
        for keyword, value in properties.items():
            prop = by_keyword(container_id, keyword)
            if prop.name == "partitionKey":
                raise InvalidDefinition(f"container {container_id!r}: a partition key cannot change in place; {SWAP}")
            values[prop.name] = prop.declare(container_id, value, keyword)
        return self._run(AlterContainer(container_id, values))

    def set_database_throughput(self, throughput: Any) -> Change:
        """Change the database's shared throughput: RU/s, or ``op.autoscale(max)`` (a shared throughput is given
        when the database is created: ``up --create-database --database-throughput``)."""
        value = throughput_value("the database", throughput)
        assert value is not None
        return self._run(SetDatabaseThroughput(value))

    @staticmethod
    def autoscale(max_throughput: int) -> Any:
        """``ThroughputProperties(auto_scale_max_throughput=max_throughput)``: autoscale up to that many RU/s."""
        from azure.cosmos import ThroughputProperties

        return ThroughputProperties(auto_scale_max_throughput=max_throughput)

    def replace_indexing_policy(self, container_id: str, policy: Policy) -> Change:
        """Bring the container to ``policy``, keeping every other property, and wait for the reindex."""
        self._target(container_id)
        return self._run(ReplaceIndexingPolicy.declare(container_id, policy))

    def delete_container(self, container_id: str, if_exists: bool = True) -> bool:
        """Delete the container (exported first when it holds documents); True if it existed."""
        self._target(container_id)
        deleted = self._run(DeleteContainer(container_id, if_exists)).effect == "delete"
        self.asked = True
        return deleted

    # -- questions ----------------------------------------------------------------------------------------

    def exists(self, container_id: str) -> bool:
        validate_container_id(container_id)
        self.asked = True
        return self._executor.definition(container_id) is not None

    def is_legacy(
        self, container_id: str, partition_key: str | Sequence[str], unique_keys: Sequence[Sequence[str]] | None = None
    ) -> bool:
        """True when ``container_id`` exists with another partition key or other unique keys than these:
        an older container of the same name that cannot be adopted, only replaced."""
        wanted = ContainerDef.declare(container_id, partition_key, unique_keys)
        self.asked = True
        existing = self._executor.definition(container_id)
        if existing is None:
            return False
        keys = ("partitionKey", "uniqueKeyPolicy")
        return any(REGISTRY[n].normal(existing.get(n)) != REGISTRY[n].normal(wanted.get(n)) for n in keys)

    def count(self, container_id: str, where: str = "true", parameters: Sequence[Mapping[str, Any]] = ()) -> int:
        """Documents matching ``where`` (0 if the container does not exist). Read-only, also when planning."""
        validate_container_id(container_id)
        self.asked = True
        return self._executor.count(container_id, where, list(parameters))

    # -- preconditions ------------------------------------------------------------------------------------

    def refuse(self, message: str) -> None:
        """Stop this revision before it changes anything: it stays pending and is not recorded as failed.
        Also the way to make a downgrade irreversible: ``op.refuse("irreversible: …")``."""
        raise PreconditionRefused(message)

    def assert_unused(
        self,
        container_id: str,
        where: str,
        parameters: Sequence[Mapping[str, Any]] = (),
        what: str = "matching documents",
        force_flag: str = "force",
    ) -> None:
        """Refuse (see :meth:`refuse`) while documents matching ``where`` exist, unless ``-x force=true``.

        The script must declare ``force_flag`` in its ``arguments``. A forced pass is logged and recorded in
        the history with the count it overrode.
        """
        forced = self.flag(force_flag)
        found = self.count(container_id, where, parameters)
        check = Precondition(container_id, where, tuple(parameters), what, force_flag)
        change = self._run(check).with_outcome(found=found, forced=bool(found and forced))
        self.changes[-1] = change
        if found and not forced:
            self.refuse(
                f"container {container_id} still has {found} {what}; move them or run again "
                f"with -x {force_flag}=true to drop it anyway"
            )
        if found:
            log.warning("forced past a precondition", container=container_id, documents=found, flag=force_flag)
            self.forced.append({"container": container_id, "documents": found, "what": what, "flag": force_flag})

    # -- data ---------------------------------------------------------------------------------------------

    def seed_items(self, container_id: str, items: Iterable[Mapping[str, Any]]) -> Change:
        """Upsert these documents (idempotent). Undo with :meth:`unseed_items` and the same items."""
        name, checked = validated_items(container_id, items)
        return self._run(SeedItems(name, checked))

    def unseed_items(self, container_id: str, items: Iterable[Mapping[str, Any]]) -> Change:
        """Delete exactly these seeded documents; one changed since it was seeded is left and reported."""
        name, checked = validated_items(container_id, items)
        return self._run(UnseedItems(name, checked))

    def transform_items(
        self,
        container_id: str,
        fn: Callable[[dict[str, Any]], Any],
        *,
        query: str | None = None,
        parameters: Sequence[Mapping[str, Any]] = (),
        **options: Any,
    ) -> Change:
        """Stream the container (or the query's results) through ``fn`` and write the results back.

        ``fn(doc)`` returns the new document, ``None`` to leave it, or ``op.DELETE``. Each write is conditional
        on the version read (a concurrent update makes ``fn`` run again on the fresh document, never lost).
        ``fn`` must be idempotent, or the query must exclude documents already done: a run resumed after a kill
        does again the documents done since its last checkpoint (a clean stop does none twice). Options:
        ``concurrency``, ``page_size``, ``max_ru_per_second``, ``priority``, ``max_failures``.
        """
        validate_container_id(container_id)
        if not callable(fn):
            raise InvalidDefinition(f"transform_items({container_id!r}, fn): fn must be a function, not {fn!r}")
        _check_options("transform_items", options, TRANSFORM_OPTIONS)
        return self._run(TransformItems(container_id, fn, query, tuple(parameters), dict(options)))

    def copy_container(
        self,
        source_id: str,
        target_id: str,
        transform: Callable[[dict[str, Any]], Any] | None = None,
        **options: Any,
    ) -> Change:
        """Copy every document of ``source_id`` into ``target_id`` (created beforehand with its new partition
        key or unique keys), through ``transform`` when given; upserts, so a resumed copy is idempotent. Ends
        by comparing counts. ``load_with_indexing_off=True`` loads with the target's indexing off, then applies
        its declared policy and waits."""
        validate_container_id(source_id)
        self._target(target_id)
        if transform is not None and not callable(transform):
            raise InvalidDefinition(f"copy_container: transform must be a function or None, not {transform!r}")
        _check_options("copy_container", options, COPY_OPTIONS)
        return self._run(CopyContainer(source_id, target_id, transform, dict(options)))

    def container(self, container_id: str) -> Any:
        """The azure-cosmos ``ContainerProxy``, for data work the operations above do not cover.

        In a planning pass this ends the simulation of the script here (shown as a step)."""
        validate_container_id(container_id)
        self._run(DataAccess(container_id))
        return self._executor.raw_container(container_id)

    @property
    def database(self) -> Any:
        """The azure-cosmos ``DatabaseProxy`` (ends a planning pass like :meth:`container`)."""
        self._run(DataAccess(None))
        return self._executor.raw_database()


TRANSFORM_OPTIONS = frozenset(
    {"concurrency", "page_size", "max_ru_per_second", "priority", "max_failures", "checkpoint_every"}
)
COPY_OPTIONS = TRANSFORM_OPTIONS | {"query", "parameters", "load_with_indexing_off", "index_timeout", "indexing_policy"}


def _check_options(call: str, options: Mapping[str, Any], known: frozenset[str]) -> None:
    unknown = sorted(set(options) - known)
    if unknown:
        raise InvalidDefinition(f"{call}: unknown option {unknown[0]!r}; the options are {', '.join(sorted(known))}")
    if options.get("priority") not in (None, "Low", "High"):
        raise InvalidDefinition(f"{call}: priority must be 'Low', 'High' or None, not {options['priority']!r}")


def validated_items(container_id: str, items: Iterable[Mapping[str, Any]]) -> tuple[str, tuple[Mapping[str, Any], ...]]:
    validate_container_id(container_id)
    checked = tuple(dict(item) for item in items)
    ids = [item.get("id") for item in checked]
    bad = [i for i, value in enumerate(ids) if not isinstance(value, str) or not value]
    if bad:
        raise InvalidDefinition(f"seed items for {container_id!r}: item {bad[0]} has no string 'id'")
    duplicates = sorted({str(value) for value in ids if ids.count(value) > 1})
    if duplicates:
        raise InvalidDefinition(f"seed items for {container_id!r}: id {duplicates[0]!r} appears twice")
    return container_id, checked
