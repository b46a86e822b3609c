"""Copy a container into another: how a partition key or unique keys change, since neither can change in place.

The same engine as :func:`~cosmigrate.data.engine.transform_items` (streamed pages, bounded concurrency, RU
budget, dead letters, checkpoints), writing upserts into the target, so that a resumed or repeated copy is
idempotent. Microsoft's guidance for large moves is followed: the target is created beforehand (at its final
throughput), optionally loaded with indexing off and indexed afterwards, and the counts are compared at the end.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog
from azure.cosmos import ContainerProxy, DatabaseProxy
from azure.cosmos import exceptions as cosmos_errors

from cosmigrate.data.checkpoints import CheckpointStore
from cosmigrate.data.engine import (
    WHOLE_CONTAINER,
    Document,
    Engine,
    Outcome,
    Priority,
    Requests,
    Totals,
    TransformFn,
    apply,
    count_documents,
    database_id,
    default_checkpoint_key,
    query_fingerprint,
    run_step,
)
from cosmigrate.data.errors import CountMismatch, IndexTimeout, ItemsFailed
from cosmigrate.data.items import read_properties, without_system_properties
from cosmigrate.data.progress import Progress
from cosmigrate.errors import DatabaseError
from cosmigrate.model.documents import Delete
from cosmigrate.store.client import replace_container, transformation_progress

log = structlog.get_logger("cosmigrate")
NO_INDEXING: dict[str, Any] = {"indexingMode": "none", "automatic": False}
INDEX_POLL_SECONDS = 1.0


class CopyHandler:
    """Upsert the document (or what ``transform`` made of it) into the target, without system properties."""

    def __init__(self, engine: Engine, target: ContainerProxy, transform: TransformFn | None) -> None:
        self.requests = engine.requests
        self.target = target
        self.transform = transform

    def __call__(self, document: Document) -> Outcome:
        result = apply(self.transform, document) if self.transform is not None else document
        if isinstance(result, Delete):
            return Outcome.DELETED
        body = without_system_properties(result if result is not None else document)
        run_step(f"copy document {document.get('id')} into {self.target.id}", lambda: self._upsert(body))
        return Outcome.WRITTEN

    def _upsert(self, body: Document) -> None:
        try:
            self.requests.call(lambda o: self.target.upsert_item(body, **o))
        except cosmos_errors.CosmosResourceNotFoundError:  # every document would fail alike: stop the run
            raise DatabaseError(
                f"copy: the target container {self.target.id} is gone; create it and run again"
            ) from None


def copy_container(
    source: ContainerProxy,
    target: ContainerProxy,
    transform: TransformFn | None = None,
    *,
    query: str | None = None,
    parameters: list[dict[str, Any]] | None = None,
    concurrency: int = 8,
    page_size: int = 100,
    max_ru_per_second: float | None = None,
    priority: Priority | None = "Low",
    max_failures: int = 0,
    checkpoints: CheckpointStore | None = None,
    checkpoint_key: str | None = None,
    checkpoint_every: int = 5,
    dead_letter: Path | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    should_continue: Callable[[], None] | None = None,
    load_with_indexing_off: bool = False,
    index_timeout: float = 3600,
    indexing_policy: dict[str, Any] | None = None,
    keep_done: bool = False,
    replace: Callable[[DatabaseProxy, dict[str, Any]], Any] = replace_container,
) -> Totals:
    """Copy every document of ``source`` (or every result of ``query``) into ``target``, which must exist.

    ``transform(document)`` returns the document to write (e.g. with the new partition key property), ``None`` to
    copy it as it is, or :data:`~cosmigrate.data.engine.DELETE` to leave it out. Writes are upserts without the
    source's system properties, so a copy run again (or resumed from ``checkpoints``) converges to the same target;
    ``transform`` must therefore be deterministic. In the totals, ``written`` counts documents upserted and
    ``deleted`` those left out.

    Documents changed in the source after they were copied are not copied again: stop the writers of the source
    during the copy (or follow it with the change feed).

    With ``load_with_indexing_off`` the target's indexing mode is set to ``none`` for the load (writes cost less
    and go faster), then the declared policy is restored — ``indexing_policy`` if given, else the policy the
    target had when the copy first started (kept in the checkpoint, so a resumed copy restores that one and not
    ``none``) — and the copy waits up to ``index_timeout`` seconds for the index transformation to finish.
    Pass ``indexing_policy`` when running without checkpoints: after a kill, the target's stored policy is ``none``.
    ``keep_done`` keeps the finished copy's checkpoint, marked done, as :func:`transform_items` does.

    At the end the target's count must equal the documents read minus those left out or dead-lettered
    (:class:`~cosmigrate.data.errors.CountMismatch` otherwise: e.g. two source documents mapped to one id and
    partition key, or documents already in the target). Every other option is as in
    :func:`~cosmigrate.data.engine.transform_items`.
    """
    engine = Engine(
        operation="copy",
        source=source,
        handler_factory=lambda engine: CopyHandler(engine, target, transform),
        query=query,
        parameters=parameters,
        concurrency=concurrency,
        page_size=page_size,
        max_ru_per_second=max_ru_per_second,
        priority=priority,
        max_failures=max_failures,
        checkpoints=checkpoints,
        checkpoint_key=checkpoint_key
        or default_checkpoint_key("copy", source, query, parameters) + f":{database_id(target)}:{target.id}",
        checkpoint_every=checkpoint_every,
        identity={
            "operation": "copy",
            "container": source.id,
            "database": database_id(source),
            "target": target.id,
            "target_database": database_id(target),
            "query": query_fingerprint(query or WHOLE_CONTAINER, parameters),
        },
        dead_letter=dead_letter,
        on_progress=on_progress,
        should_continue=should_continue,
        keep_done=keep_done,
    )
    read_properties(target)  # a missing target stops here, not as one dead letter per document
    saved = engine.restore()
    if engine.done_before:  # an earlier run went through everything and indexed the target (keep_done)
        return engine.run()
    target_database = DatabaseProxy(target.client_connection, database_id(target))
    if load_with_indexing_off:
        declared = indexing_policy or saved.get("indexingPolicy")
        saved["indexingPolicy"] = _indexing_off(target_database, target, declared, replace)
    try:
        totals = engine.run(engine.estimated_total())
    except ItemsFailed:
        if load_with_indexing_off:  # every document was gone through: the load is over, index what arrived
            _restore_indexing(target_database, target, saved["indexingPolicy"], index_timeout, replace)
        raise
    except BaseException:
        if load_with_indexing_off:
            log.warning(
                "copy stopped: the target's indexing stays off until the copy is run again and finishes",
                target=target.id,
            )
        raise
    if load_with_indexing_off:
        _restore_indexing(target_database, target, saved["indexingPolicy"], index_timeout, replace)
    _compare_counts(target, engine.requests, totals)
    return totals


Replace = Callable[[DatabaseProxy, dict[str, Any]], Any]


def _indexing_off(
    database: DatabaseProxy, target: ContainerProxy, declared: dict[str, Any] | None, replace: Replace
) -> dict[str, Any]:
    """Set the target's indexing mode to none (taking effect at once); returns the policy to restore afterwards."""
    properties = read_properties(target)
    stored = dict(properties.get("indexingPolicy") or {})
    if declared is None:
        if str(stored.get("indexingMode", "")).lower() == "none":
            log.warning(
                "the target's indexing is already off and no declared policy is known: it will stay off; pass "
                "indexing_policy",
                target=target.id,
            )
        declared = stored
    if str(stored.get("indexingMode", "")).lower() != "none":
        replace(database, {**properties, "indexingPolicy": NO_INDEXING})
        log.info("indexing turned off for the load", target=target.id)
    return declared


def _restore_indexing(
    database: DatabaseProxy, target: ContainerProxy, declared: dict[str, Any], index_timeout: float, replace: Replace
) -> None:
    """Re-send the whole definition with the declared policy, then wait for the index transformation."""
    properties = read_properties(target)
    if properties.get("indexingPolicy") != declared:
        replace(database, {**properties, "indexingPolicy": declared})
    started = last_log = time.monotonic()
    while True:
        progress = transformation_progress(target)
        if progress >= 100:
            log.info("target indexed", target=target.id, seconds=round(time.monotonic() - started, 1))
            return
        if time.monotonic() - started > index_timeout:
            raise IndexTimeout(
                f"copy into {target.id}: the index transformation is at {progress}% after {index_timeout:g}s; "
                "the documents are all there: wait for it (it continues in the service) or raise index_timeout"
            )
        if time.monotonic() - last_log >= 5:
            last_log = time.monotonic()
            log.info("indexing the target", target=target.id, progress=progress)
        time.sleep(INDEX_POLL_SECONDS)


def _compare_counts(target: ContainerProxy, requests: Requests, totals: Totals) -> None:
    expected = totals.read - totals.deleted - totals.dead_lettered
    found = count_documents(target, requests)
    if found != expected:
        raise CountMismatch(
            f"copy into {target.id}: the target holds {found} documents, {expected} expected (read {totals.read}, "
            f"left out {totals.deleted}, failed {totals.dead_lettered}); check that transform maps each document "
            "to its own id and partition key and that the target was empty",
            totals,
            expected,
            found,
        )
