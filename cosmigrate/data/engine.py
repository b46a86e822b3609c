"""The data engine: stream a container page by page, hand each document to a function, write the result back.

Why it is built this way (see shared/NOTES.md, "Data work on Cosmos DB"):

- **Memory stays flat.** Readers (one per feed range, at most ``concurrency`` of them) fetch one page at a time
  with continuation tokens and put its documents into a bounded queue; ``concurrency`` writer threads share the
  one client (the Python SDK has no bulk API). At most a few pages are held, whatever the container's size.
- **Nothing is overwritten.** Every write is conditional on the ETag that was read. A 412 means someone else
  changed the document meanwhile: it is read again by id and partition key and ``fn`` runs on the fresh version.
- **Faults are survived, exactly once.** 429s are retried by the client; 503s and cut connections by
  :func:`~cosmigrate.store.client.resilient`, which after an unknown outcome reads the document back (is it what
  we wrote? is it still the version we read?) before deciding to write again.
- **Nothing is skipped silently.** A document ``fn`` raises on, or that the service refuses for good (400, 409,
  413…), goes to the dead-letter file and is counted; more than ``max_failures`` of them fail the run, at the end.
- **A stopped run resumes.** Per feed range, the continuation token after the last page whose documents are all
  handled is checkpointed every few pages, with running totals and the documents already handled in the pages
  after it; a re-run with the same key starts there and skips those documents. A run stopped cleanly (Ctrl-C,
  SIGTERM, a lost lock, ``should_continue``) saves that at its stop, so none of its documents is done twice; after
  a kill, the documents handled since the last checkpoint are done again.
- **A failed document is retried alone.** The checkpoint also lists the documents that failed (by id and
  partition key, up to ``RETRY_LIMIT`` of them). When a run ends with more failures than allowed, its checkpoint
  is kept: a re-run with the same key reads again only those documents, by id, once the cause is fixed, and does
  not transform every other document a second time.
- **RU are budgeted**, from the charge each response reports (a token bucket), and requests carry Cosmos DB
  priority-based execution (``priority="Low"`` by default) so that production traffic wins under throttling.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import json
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Final, Literal, Protocol, TypeVar

import structlog
from azure.core import MatchConditions
from azure.core.exceptions import ServiceRequestError, ServiceResponseError
from azure.cosmos import ContainerProxy
from azure.cosmos import exceptions as cosmos_errors

from cosmigrate.data.checkpoints import CheckpointStore, DurableCheckpointStore, sequence
from cosmigrate.data.deadletter import DeadLetterFile, one_line
from cosmigrate.data.errors import CheckpointMismatch, ItemsFailed, ProgressKeptLocally
from cosmigrate.data.items import PartitionKeyPaths, request_charge, without_system_properties
from cosmigrate.data.progress import Progress
from cosmigrate.data.ratelimit import RuBudget
from cosmigrate.errors import DatabaseError, UsageError
from cosmigrate.model.documents import Delete, documents
from cosmigrate.store.client import NOT_DONE, describe, is_transient, resilient

log = structlog.get_logger("cosmigrate")
T = TypeVar("T")
Priority = Literal["Low", "High"]
WHOLE_CONTAINER = "SELECT * FROM c"
CHECKPOINT_VERSION = 1
# A document that keeps changing under us is given up after this many 412s (and dead-lettered).
MAX_CONFLICTS = 20
# Statuses that doom every document alike (credentials, rights): the run stops instead of dead-lettering all.
FATAL_STATUS = frozenset({401, 403})
PROGRESS_EVERY = 0.5  # seconds between on_progress calls
CHECKPOINT_SECONDS = 10.0  # a checkpoint is also saved after this long when any page finished
# Documents a checkpoint lists as handled beyond the ranges' continuations (pages in flight); beyond this, a
# resumed run handles the rest of those pages again.
AHEAD_LIMIT = 20_000
# Failed documents a checkpoint lists for a re-run to retry alone; beyond this, a re-run goes over everything.
RETRY_LIMIT = 10_000
_END: Final = object()  # queue sentinel: no more documents


Document = dict[str, Any]
TransformResult = Document | Delete | None
TransformFn = Callable[[Document], TransformResult]


@dataclass(frozen=True)
class Totals:
    """What a run did. ``read`` counts documents the query returned; ``written`` replaced (transform) or upserted
    into the target (copy); ``unchanged`` documents ``fn`` returned None for (or that were deleted by someone
    else meanwhile); ``deleted`` documents ``fn`` returned :data:`DELETE` for (in a copy: left out);
    ``retried_412`` writes that lost a race and were redone on a fresh read; ``ru`` request units charged,
    ``seconds`` wall time. A resumed run includes the earlier run's totals, of the pages it finished."""

    read: int = 0
    written: int = 0
    unchanged: int = 0
    deleted: int = 0
    dead_lettered: int = 0
    retried_412: int = 0
    ru: float = 0.0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, int | float]:
        return {k: (round(v, 2) if isinstance(v, float) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Totals:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


class Outcome(enum.Enum):
    WRITTEN = "written"
    UNCHANGED = "unchanged"
    DELETED = "deleted"
    DEAD = "dead_lettered"
    CONFLICT = "conflict"  # 412: someone else changed it; read again
    GONE = "gone"  # 404: someone else deleted it


class DocumentFailed(Exception):
    """This document cannot be migrated (fn raised, or the service refused it for good): dead-letter it."""


class WriteInDoubt(DatabaseError):
    """A write was given up on (the database stopped answering) with its outcome unknown: ``entry`` says what it
    was meant to do, for the checkpoint (see :func:`landed`)."""

    def __init__(self, error: DatabaseError, entry: dict[str, Any]) -> None:
        super().__init__(str(error))
        self.entry = entry


class Handler(Protocol):
    """Does the work for one document read from the source; returns WRITTEN, UNCHANGED or DELETED."""

    def __call__(self, document: Document) -> Outcome: ...


@dataclass
class _Counts:
    read: int = 0
    written: int = 0
    unchanged: int = 0
    deleted: int = 0
    dead_lettered: int = 0

    def add(self, outcome: Outcome) -> None:
        name = outcome.value
        setattr(self, name, getattr(self, name) + 1)

    def merge(self, other: _Counts) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    @property
    def handled(self) -> int:
        return self.written + self.unchanged + self.deleted + self.dead_lettered


@dataclass
class _RangeState:
    """One feed range: where reading resumes, whether it is finished, and its pages not yet all handled."""

    feed_range: dict[str, Any]
    continuation: str | None = None
    finished: bool = False
    pages: deque[_Page] = field(default_factory=deque)
    done_ahead: set[str] = field(default_factory=set)  # restored: handled beyond the continuation, skipped

    def to_dict(self, ahead: list[str]) -> dict[str, Any]:
        return {"range": self.feed_range, "continuation": self.continuation, "finished": self.finished, "ahead": ahead}


@dataclass(eq=False)
class _Page:
    state: _RangeState
    after: str | None  # the continuation token after this page; None after the range's last page
    pending: int
    counts: _Counts = field(default_factory=_Counts)
    failed: list[dict[str, Any]] = field(default_factory=list)  # addresses of its dead-lettered documents
    handled: list[str] = field(default_factory=list)  # identities of its documents handled so far
    skipped: list[str] = field(default_factory=list)  # identities an earlier run had handled (from its checkpoint)
    done: bool = False


class Requests:
    """Every request of a run goes through here: its RU charge is taken from its own response (``response_hook``,
    not the client's shared ``last_response_headers``), the budget is respected, the priority is set."""

    def __init__(self, budget: RuBudget | None, priority: Priority | None) -> None:
        self.budget = budget
        self.options: dict[str, Any] = {"priority": priority} if priority is not None else {}
        self.ru = 0.0
        self._lock = threading.Lock()

    def call(self, action: Callable[[dict[str, Any]], T]) -> T:
        """``action(options)`` must pass ``options`` (response_hook, priority) as keywords to one SDK call."""
        reserved = self.budget.acquire() if self.budget is not None else 0.0
        charged = 0.0

        def hook(headers: Any, _body: Any) -> None:
            nonlocal charged
            charged += request_charge(headers)

        try:
            return action({"response_hook": hook, **self.options})
        finally:
            with self._lock:
                self.ru += charged
            if self.budget is not None:
                self.budget.settle(reserved, charged)


def run_step(step: str, action: Callable[[], T], recover: Callable[[], T] | None = None) -> T:
    """:func:`resilient`, then sort what is left: refused for good → :class:`DocumentFailed` (dead letter);
    transient after every retry, or refused for every document alike → :class:`DatabaseError` (stop the run)."""
    try:
        return resilient(step, action, recover)
    except cosmos_errors.CosmosHttpResponseError as exc:
        if is_transient(exc) or exc.status_code in FATAL_STATUS:
            raise DatabaseError(describe(exc, step)) from exc
        message = one_line(str(getattr(exc, "message", "") or exc))[:500]
        raise DocumentFailed(f"{step}: Cosmos DB answered {exc.status_code} ({message})") from exc
    except (ServiceRequestError, ServiceResponseError, cosmos_errors.CosmosClientTimeoutError) as exc:
        raise DatabaseError(describe(exc, step)) from exc


def read_step(step: str, action: Callable[[], T]) -> T:
    """A read every document depends on (a page, the feed ranges, a count): retried, then fatal as a
    :class:`DatabaseError` with the service's message on one line."""
    try:
        return resilient(step, action)
    except (cosmos_errors.CosmosHttpResponseError, ServiceRequestError, ServiceResponseError) as exc:
        raise DatabaseError(describe(exc, step)) from exc


def read_page(
    container: ContainerProxy,
    requests: Requests,
    query: str,
    parameters: list[dict[str, Any]] | None,
    feed_range: dict[str, Any],
    continuation: str | None,
    page_size: int,
) -> tuple[list[Document], str | None]:
    """One page of ``query`` over ``feed_range`` from ``continuation``: its documents and the token after it
    (None at the end). A fresh iterator per page, so that a retried page starts from a known token."""

    def fetch(options: dict[str, Any]) -> tuple[list[Document], str | None]:
        extra: dict[str, Any] = {"parameters": parameters} if parameters else {}
        pager: Any = container.query_items(
            query, feed_range=feed_range, max_item_count=page_size, **extra, **options
        ).by_page(continuation)
        try:
            page = list(next(pager))
        except StopIteration:
            return [], None
        return page, pager.continuation_token

    return read_step(f"read a page of {container.id}", lambda: requests.call(fetch))


def read_feed_ranges(container: ContainerProxy) -> list[dict[str, Any]]:
    return read_step(f"read the feed ranges of {container.id}", lambda: [dict(r) for r in container.read_feed_ranges()])


def count_documents(container: ContainerProxy, requests: Requests) -> int:
    """``SELECT VALUE COUNT(1)``: the estimate of a progress bar, and the check of a copy and an import."""

    def count(options: dict[str, Any]) -> int:
        result: Any = container.query_items(
            "SELECT VALUE COUNT(1) FROM c", enable_cross_partition_query=True, **options
        )
        return int(sum(int(n) for n in result))

    return read_step(f"count the documents of {container.id}", lambda: requests.call(count))


def identity(address: dict[str, Any]) -> str:
    """One document among all (an id is unique only within its partition key value), as a checkpoint keeps it."""
    key = [address["id"], address["partitionKey"], address["undefined"]]
    return json.dumps(key, separators=(",", ":"), default=str)


def query_fingerprint(query: str, parameters: list[dict[str, Any]] | None) -> str:
    text = json.dumps([query, parameters or []], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def database_id(container: ContainerProxy) -> str:
    link = str(getattr(container, "container_link", ""))
    parts = link.strip("/").split("/")
    return parts[1] if len(parts) >= 4 and parts[0] == "dbs" else ""


class Engine:
    """One run: readers → bounded queue → writers, with checkpoints, progress and the dead-letter file.

    Internal: use :func:`transform_items` or :func:`~cosmigrate.data.copy.copy_container`.
    """

    def __init__(
        self,
        *,
        operation: str,
        source: ContainerProxy,
        handler_factory: Callable[[Engine], Handler],
        query: str | None,
        parameters: list[dict[str, Any]] | None,
        concurrency: int,
        page_size: int,
        max_ru_per_second: float | None,
        priority: Priority | None,
        max_failures: int,
        checkpoints: CheckpointStore | None,
        checkpoint_key: str,
        checkpoint_every: int,
        identity: dict[str, Any],
        dead_letter: Path | None,
        on_progress: Callable[[Progress], None] | None,
        should_continue: Callable[[], None] | None,
        keep_done: bool = False,
    ) -> None:
        _validate(concurrency, page_size, max_ru_per_second, priority, max_failures, checkpoint_every)
        self.operation = operation
        self.source = source
        self.query = query or WHOLE_CONTAINER
        self.whole_container = query is None
        self.parameters = parameters
        self.concurrency = concurrency
        self.page_size = page_size
        self.max_failures = max_failures
        self.checkpoints = checkpoints
        self.checkpoint_key = checkpoint_key
        self.checkpoint_every = checkpoint_every
        self.keep_done = keep_done
        self.identity = identity
        self.on_progress = on_progress
        self.should_continue = should_continue
        self.requests = Requests(RuBudget(max_ru_per_second) if max_ru_per_second else None, priority)
        self.dead_letter = DeadLetterFile(
            (dead_letter or Path(f"cosmigrate-dead-letter-{source.id}.jsonl")).absolute(), operation, source.id
        )
        self.keys = PartitionKeyPaths.of(source)
        self.handler = handler_factory(self)
        self.extra_state: dict[str, Any] = {}
        # bookkeeping, under self._lock
        self._lock = threading.Lock()
        self._wakeup = threading.Condition(self._lock)
        self._live = _Counts()  # this run, every document read and handled so far
        self._restored = _Counts()  # the earlier runs' finished pages, from the checkpoint
        self._failures_logged = 0
        self._committed = _Counts()  # earlier runs + this run's finished pages (what a checkpoint holds)
        self._retried_412 = 0
        self._restored_ru = 0.0
        self._restored_seconds = 0.0
        self._pages_committed = 0
        self._ranges: list[_RangeState] = []
        self._failed: list[dict[str, Any]] = []  # addresses of the committed pages' dead-lettered documents
        self._failed_complete = True  # False once more than RETRY_LIMIT failed: a re-run cannot retry them alone
        self._retry: list[dict[str, Any]] = []  # documents an earlier run failed on, read again by id in this one
        self._retry_page: _Page | None = None
        self._done_before = False  # the checkpoint says an earlier run went through everything (keep_done)
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=2 * page_size)
        # a reader waits while this many pages of its range are not all handled (bounds what a resume re-reads)
        self.window = 2 + concurrency + 1
        self._continue_lock = threading.Lock()
        self._pending_ranges: deque[_RangeState] = deque()
        self._started = 0.0
        self._restored_once = False
        # Exactness through a stop nobody saved (a kill, an outage): documents are handed to fn only while fewer
        # than ``at_risk_limit`` handed out are missing from the last checkpoint saved, so a checkpoint can say how
        # many a run that stopped without saving again may have done beyond it. Under self._lock.
        self.at_risk_limit = max(2 * checkpoint_every * page_size, 2 * concurrency)
        self._seq = 0  # the number of the last checkpoint save (restored, then counted on)
        self._handed = 0  # documents handed to the handler in this run
        self._done = 0  # of those, the ones whose outcome is known (handled)
        self._saved_through = 0  # of those, the ones the last checkpoint saved records
        self._doubt: dict[str, dict[str, Any]] = {}  # writes whose outcome the stop left unknown, by identity

    # ---- the run -------------------------------------------------------------------------------------------

    @property
    def done_before(self) -> bool:
        """After :meth:`restore`: an earlier run with this key went through everything (``keep_done``)."""
        return self._done_before

    def restore(self) -> dict[str, Any]:
        """Load the checkpoint (or read the feed ranges when there is none); returns the operation's own saved
        state (``extra_state``), which a caller may change before :meth:`run` (it is saved with every checkpoint)."""
        if not self._restored_once:
            self._restore()
            self._restored_once = True
        return self.extra_state

    def run(self, total: int | None = None) -> Totals:
        self.restore()
        self._started = time.monotonic()
        if self._done_before:  # kept, marked done, by a run that went through everything (keep_done)
            log.info(f"{self.operation} was done by an earlier run: not run again", container=self.source.id)
            return self.totals()
        self._pending_ranges.extend(s for s in self._ranges if not s.finished)
        readers = [
            threading.Thread(target=self._reader, name=f"cosmigrate-read-{i}", daemon=True)
            for i in range(min(len(self._pending_ranges), self.concurrency))
        ]
        if self._retry:
            self._retry_page = _Page(_RangeState({"retry": True}), None, len(self._retry))
            readers.append(threading.Thread(target=self._retry_reader, name="cosmigrate-retry", daemon=True))
        writers = [
            threading.Thread(target=self._writer, name=f"cosmigrate-write-{i}", daemon=True)
            for i in range(self.concurrency)
        ]
        for thread in readers + writers:
            thread.start()
        try:
            self._supervise(readers, writers, total)
        except BaseException as exc:  # Ctrl-C, SIGTERM handlers, on_progress raising: stop cleanly, then re-raise
            self._fail(exc)
        finally:
            self._stop_threads(readers, writers)
            self.dead_letter.close()
        totals = self.totals()
        if self._error is not None:
            self._save_at_stop()
            log.info(f"{self.operation} stopped", container=self.source.id, **totals.to_dict())
            kept = self._kept_locally()
            if kept is not None and isinstance(self._error, DatabaseError):
                raise ProgressKeptLocally(
                    f"{self._error}; the {self.operation}'s progress is kept on this machine in {kept} (the database "
                    "could not take it): running the same command again from this machine resumes it exactly",
                    kept,
                ) from self._error
            raise self._error
        failed = totals.dead_lettered > self.max_failures
        retry_alone = failed and self._failed_complete and self.checkpoints is not None
        self._finish_checkpoint(keep=retry_alone, done=self.keep_done and not failed)
        self._report(total, finished=True)
        if failed:
            again = (
                f"running it again reads only {'this one' if totals.dead_lettered == 1 else 'these'} again, by id"
                if retry_alone
                else "running it again goes over every document, so fn must leave a document it already changed "
                "as it is"
            )
            raise ItemsFailed(
                f"{self.operation} of container {self.source.id}: {documents(totals.dead_lettered)} failed, more "
                f"than max_failures={self.max_failures}; they are listed in {self.dead_letter.path} (the fix is in "
                f"fn or in those documents; {again})",
                totals,
                self.dead_letter.path,
            )
        return totals

    def _kept_locally(self) -> Path | None:
        """The local file a :class:`DurableCheckpointStore` keeps this run's progress in, when the database could not
        take its last save."""
        store = self.checkpoints
        return store.kept_locally(self.checkpoint_key) if isinstance(store, DurableCheckpointStore) else None

    def _save_at_stop(self) -> None:
        """Every thread has stopped: the state in memory is exact (every document handed out is handled, in doubt
        or not written). Save it; if the database cannot take it, a :class:`DurableCheckpointStore` keeps it in a
        local file; otherwise say how many documents the checkpoint saved before misses."""
        if self.checkpoints is None:
            return
        try:
            self._save_checkpoint(clean=True)
        except Exception as exc:  # keep the original error; the previous checkpoint still holds
            kept = self._kept_locally()
            with self._lock:
                missing = self._handed - self._saved_through
            log.warning(
                "could not save the checkpoint"
                + (f": the progress is kept in {kept}" if kept else f"; up to {documents(missing)} may be done again"),
                key=self.checkpoint_key,
                error=one_line(str(exc)),
            )

    def _finish_checkpoint(self, keep: bool, done: bool) -> None:
        """After a full pass: clear the checkpoint; or keep it, every range finished, with the failed documents
        listed so that a re-run retries only those, or marked done so that a re-run does nothing."""
        if self.checkpoints is None:
            return
        try:
            if keep or done:
                self._save_checkpoint(done=done, clean=True)
            else:
                self.checkpoints.clear(self.checkpoint_key)
        except Exception as exc:  # harmless: a re-run then goes over every document (or finds nothing to read)
            log.warning("could not update the checkpoint", key=self.checkpoint_key, error=one_line(str(exc)))

    def estimated_total(self) -> int | None:
        """The documents a whole-container run will go through, for a progress bar's ETA; None for a query, when
        nobody watches progress, or when counting fails (a count is only an estimate, never worth failing for)."""
        if not self.whole_container or self.on_progress is None:
            return None
        with contextlib.suppress(Exception):
            return count_documents(self.source, self.requests)
        return None

    def totals(self) -> Totals:
        with self._lock:
            committed_and_live = _Counts()
            committed_and_live.merge(self._restored)
            committed_and_live.merge(self._live)
            return self._totals_of(committed_and_live)

    def _totals_of(self, counts: _Counts) -> Totals:
        """``counts`` with this run's retries, RU and time added to the earlier runs' (the caller holds the lock)."""
        return Totals(
            read=counts.read,
            written=counts.written,
            unchanged=counts.unchanged,
            deleted=counts.deleted,
            dead_lettered=counts.dead_lettered,
            retried_412=self._retried_412,
            ru=self._restored_ru + self.requests.ru,
            seconds=self._restored_seconds + (time.monotonic() - self._started),
        )

    def count_conflict(self) -> None:
        with self._lock:
            self._retried_412 += 1

    def _supervise(self, readers: list[threading.Thread], writers: list[threading.Thread], total: int | None) -> None:
        readers_done = False
        last_progress = -math.inf
        last_save, saved_pages = time.monotonic(), self._pages_committed
        while True:
            with self._wakeup:
                self._wakeup.wait(timeout=0.2)
                error = self._error
                pages = self._pages_committed
                unsaved = self._handed - self._saved_through
            if error is not None:
                return
            if self.checkpoints is not None and (
                pages - saved_pages >= self.checkpoint_every
                or (pages > saved_pages and time.monotonic() - last_save >= CHECKPOINT_SECONDS)
                or unsaved >= self.at_risk_limit // 2
            ):
                self._save_checkpoint()
                last_save, saved_pages = time.monotonic(), pages
            if time.monotonic() - last_progress >= PROGRESS_EVERY:
                last_progress = time.monotonic()
                self._report(total, finished=False)
            if not readers_done and not any(t.is_alive() for t in readers):
                readers_done = True
                for _ in writers:
                    if not self._put(_END):
                        return
            if readers_done and not any(t.is_alive() for t in writers):
                return

    def _stop_threads(self, readers: list[threading.Thread], writers: list[threading.Thread]) -> None:
        if self._error is not None:
            self._stop.set()
        for thread in readers + writers:
            while thread.is_alive():
                try:
                    thread.join(timeout=0.5)
                except BaseException as exc:  # a second Ctrl-C while stopping: stop harder, keep joining
                    self._fail(exc)
                    self._stop.set()

    def _fail(self, exc: BaseException) -> None:
        with self._wakeup:
            if self._error is None:
                self._error = exc
            self._stop.set()
            self._wakeup.notify_all()

    # ---- readers -------------------------------------------------------------------------------------------

    def _reader(self) -> None:
        try:
            while not self._stop.is_set():
                with self._lock:
                    if not self._pending_ranges:
                        return
                    state = self._pending_ranges.popleft()
                self._read_range(state)
        except BaseException as exc:
            self._fail(exc)

    def _read_range(self, state: _RangeState) -> None:
        continuation = state.continuation
        while not self._stop.is_set():
            if not self._may_continue() or not self._wait_for_window(state):
                return
            documents, after = read_page(
                self.source, self.requests, self.query, self.parameters, state.feed_range, continuation, self.page_size
            )
            skipped: list[str] = []
            if state.done_ahead:  # handled by the run that saved the checkpoint, after its continuation
                keys = [identity(self.keys.address(d)) for d in documents]
                skipped = [k for k in keys if k in state.done_ahead]
                documents = [d for d, k in zip(documents, keys, strict=True) if k not in state.done_ahead]
            page = _Page(state, after, len(documents), skipped=skipped)
            with self._lock:
                state.done_ahead.difference_update(skipped)  # until this page commits, the page lists them
                state.pages.append(page)
                self._live.read += len(documents)
                page.counts.read = len(documents)
                if not documents:
                    self._page_done(page)
            for document in documents:
                if not self._put((document, page)):
                    return
            if after is None:
                return
            continuation = after

    def _may_continue(self) -> bool:
        """Between pages: ask the caller (e.g. "is my migration lock still mine?"); its exception stops the run."""
        if self.should_continue is None:
            return True
        with self._continue_lock:
            if self._stop.is_set():
                return False
            try:
                self.should_continue()
            except BaseException as exc:
                self._fail(exc)
                return False
        return True

    def _wait_for_window(self, state: _RangeState) -> bool:
        with self._wakeup:
            while len(state.pages) >= self.window:
                if self._stop.is_set():
                    return False
                self._wakeup.wait(timeout=0.2)
        return not self._stop.is_set()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    # ---- writers -------------------------------------------------------------------------------------------

    def _writer(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    item = self._queue.get(timeout=0.2)
                except queue.Empty:
                    continue
                if item is _END:
                    return
                document, page = item
                # which document, as read: fn may change its argument in place (its id, its partition key)
                address = self.keys.address(document)
                if not self._hand_out():
                    return
                try:
                    outcome = self.handler(document)
                except DocumentFailed as failure:
                    self._dead(page, address, str(failure))
                    continue
                except WriteInDoubt as doubt:
                    self._in_doubt(page, address, doubt.entry)
                    raise
                self._handled(page, outcome, address)
        except BaseException as exc:
            self._fail(exc)

    def _hand_out(self) -> bool:
        """Wait until one more document may be handed to the handler without more than ``at_risk_limit`` missing
        from the last checkpoint saved; False when the run stops meanwhile."""
        with self._wakeup:
            while self.checkpoints is not None and self._handed - self._saved_through >= self.at_risk_limit:
                if self._stop.is_set():
                    return False
                self._wakeup.wait(timeout=0.2)
            if self._stop.is_set():
                return False
            self._handed += 1
        return True

    def _in_doubt(self, page: _Page, address: dict[str, Any], entry: dict[str, Any]) -> None:
        """A write whose outcome the stop leaves unknown: the checkpoint keeps what it was meant to do, and a resumed
        run reads the document first to tell whether it landed (then it is done) or not (then it is done now)."""
        where = self._ranges.index(page.state) if page.state in self._ranges else -1
        with self._lock:
            self._doubt[identity(address)] = {**entry, "address": address, "range": where}

    def _retry_reader(self) -> None:
        """Read again, by id, the documents an earlier run failed on, and queue them as one page (a document
        deleted since counts as unchanged). The page commits when all are handled; until then a checkpoint still
        lists them all."""
        page = self._retry_page
        assert page is not None
        try:
            for number, address in enumerate(self._retry):
                if number % self.page_size == 0 and not self._may_continue():
                    return
                try:
                    document = self._read_again(address)
                except DocumentFailed as failure:
                    self._dead(page, address, str(failure), handed=False)
                    continue
                if document is None:
                    self._handled(page, Outcome.UNCHANGED, address, handed=False)
                elif not self._put((document, page)):
                    return
        except BaseException as exc:
            self._fail(exc)

    def _read_again(self, address: dict[str, Any]) -> Document | None:
        key = PartitionKeyPaths.key_of(address)

        def read(options: dict[str, Any]) -> Document | None:
            try:
                return dict(self.source.read_item(address["id"], partition_key=key, **options))
            except cosmos_errors.CosmosResourceNotFoundError:
                return None

        return run_step(f"read {address['id']} again", lambda: self.requests.call(read))

    def _dead(self, page: _Page, address: dict[str, Any], error: str, handed: bool = True) -> None:
        """Dead-letter a document by its id and partition key value as read from the source (not as fn left it),
        and count it handled: its page lists it for a re-run to retry."""
        with self._lock:
            self._failures_logged += 1
            logged = self._failures_logged
        doc_id = address["id"]
        if logged <= 10:  # the file has them all; the log shows the first few
            log.warning(f"{self.operation}: document failed", container=self.source.id, id=doc_id, error=error)
        self.dead_letter.add(doc_id, address["partitionKey"], error)
        self._handled(page, Outcome.DEAD, address, failed=True, handed=handed)

    def _handled(
        self, page: _Page, outcome: Outcome, address: dict[str, Any], failed: bool = False, handed: bool = True
    ) -> None:
        """``handed``: the document went through :meth:`_hand_out` (False for one settled without fn)."""
        key = identity(address)  # serialised before taking the lock every writer shares
        with self._lock:
            self._done += 1
            self._handed += 0 if handed else 1
            self._live.add(outcome)
            page.counts.add(outcome)
            page.handled.append(key)
            if failed:
                page.failed.append(address)
            page.pending -= 1
            if page.pending == 0:
                self._page_done(page)

    def _page_done(self, page: _Page) -> None:
        """Under the lock: a page is all handled; move its range's checkpoint over every finished page in front."""
        page.done = True
        if page is self._retry_page:  # the retried documents leave the earlier runs' failures, with their outcomes
            self._committed.dead_lettered -= len(self._retry)
            self._commit(page)
        state = page.state
        while state.pages and state.pages[0].done:
            finished = state.pages.popleft()
            state.continuation = finished.after
            state.finished = finished.after is None
            self._commit(finished)
        self._wakeup.notify_all()

    def _commit(self, page: _Page) -> None:
        self._committed.merge(page.counts)
        self._pages_committed += 1
        if self._failed_complete and len(self._failed) + len(page.failed) <= RETRY_LIMIT:
            self._failed.extend(page.failed)
        elif page.failed:
            self._failed_complete = False
            self._failed.clear()

    # ---- checkpoints and progress --------------------------------------------------------------------------

    def _restore(self) -> None:
        state = self.checkpoints.load(self.checkpoint_key) if self.checkpoints is not None else None
        if state is None:
            self._ranges = [_RangeState(r) for r in read_feed_ranges(self.source)]
            return
        if state.get("version") != CHECKPOINT_VERSION or state.get("identity") != self.identity:
            raise CheckpointMismatch(
                f"checkpoint {self.checkpoint_key!r} was saved by another run ({state.get('identity')}); pass "
                "another checkpoint_key, or clear that checkpoint if its run is abandoned"
            )
        self._ranges = [
            _RangeState(
                dict(r["range"]), r.get("continuation"), bool(r.get("finished")), done_ahead=set(r.get("ahead") or ())
            )
            for r in state["ranges"]
        ]
        self._seq = sequence(state)
        saved_totals = dict(state.get("totals") or {})
        failed = state.get("failed")
        for entry in state.get("doubt") or []:
            self._settle(entry, saved_totals, failed)
        totals = Totals.from_dict(saved_totals)
        self._restored = _Counts(totals.read, totals.written, totals.unchanged, totals.deleted, totals.dead_lettered)
        self._committed.merge(self._restored)
        if isinstance(failed, list) and len(failed) == totals.dead_lettered:
            # retried in this run; until they are all handled, a checkpoint keeps listing (and counting) them
            self._retry = [dict(a) for a in failed]
            self._restored.dead_lettered -= len(self._retry)
        else:  # more failed than a checkpoint lists: they stay counted, and a full pass is the way to retry them
            self._failed_complete = not totals.dead_lettered
        self._retried_412 = totals.retried_412
        self._restored_ru = totals.ru
        self._restored_seconds = totals.seconds
        self.extra_state = dict(state.get("extra") or {})
        self._done_before = bool(state.get("done"))
        log.info(
            f"{self.operation} resumes from its checkpoint",
            container=self.source.id,
            key=self.checkpoint_key,
            done=self._restored.handled,
            ranges_left=sum(1 for r in self._ranges if not r.finished),
        )

    def _settle(self, entry: dict[str, Any], totals: dict[str, Any], failed: Any) -> None:
        """Before resuming: did a write the stop left in doubt land? Read the document. If it did, the document is
        done (counted, and skipped when its page is read again, or no longer a failure to retry); if it did not,
        it is simply done now, like any other document the checkpoint does not list."""
        address = dict(entry["address"])
        fresh = self._read_again(address)
        if not landed(entry, fresh):
            return
        outcome = "deleted" if entry.get("op") == "delete" else "written"
        totals[outcome] = int(totals.get(outcome) or 0) + 1
        key = identity(address)
        where = int(entry.get("range", -1))
        if 0 <= where < len(self._ranges):
            totals["read"] = int(totals.get("read") or 0) + 1
            self._ranges[where].done_ahead.add(key)
        elif isinstance(failed, list):  # one of the failed documents a retry was writing again
            failed[:] = [a for a in failed if identity(a) != key]
            totals["dead_lettered"] = int(totals.get("dead_lettered") or 0) - 1
        log.info("a write left in doubt by the stopped run had landed", container=self.source.id, id=address["id"])

    def _save_checkpoint(self, done: bool = False, clean: bool = False) -> None:
        """``clean``: saved with every thread stopped, so nothing was handled beyond it; otherwise up to
        ``at_risk`` documents may be handled beyond it before the next save (what a kill would leave unknown)."""
        if self.checkpoints is None:
            return
        with self._lock:
            ranges, counts, failed_ahead, unrecorded = self._ahead()
            failed = self._checkpoint_failures(counts)
            self._seq += 1  # a failed save still counts: the local copy it leaves must be older than the next
            through = self._done - unrecorded
            state = {
                "version": CHECKPOINT_VERSION,
                "identity": self.identity,
                "seq": self._seq,
                "ranges": ranges,
                "totals": self._totals_of(counts).to_dict(),
                "failed": None if failed is None else [*failed, *failed_ahead],
                "doubt": list(self._doubt.values()),
                "extra": dict(self.extra_state),
                "done": done,
                "clean": clean,
                "at_risk": 0 if clean else self.at_risk_limit + unrecorded,
            }
        self.checkpoints.save(self.checkpoint_key, state)
        with self._wakeup:
            self._saved_through = max(self._saved_through, through)
            self._wakeup.notify_all()

    def _ahead(self) -> tuple[list[dict[str, Any]], _Counts, list[dict[str, Any]], int]:
        """Under the lock: each range's state with the documents already handled in its pages in flight (up to
        ``AHEAD_LIMIT`` in all: a page beyond is done again by a resumed run), the counts a checkpoint holds (the
        finished pages' and those documents'), the failed documents among them, and how many handled documents
        did not fit (a resumed run does them again)."""
        counts = _Counts()
        counts.merge(self._committed)
        failed: list[dict[str, Any]] = []
        room = AHEAD_LIMIT
        ranges = []
        unrecorded = 0
        for state in self._ranges:
            ahead = sorted(state.done_ahead)  # an earlier run's, in pages not read again yet
            room -= len(ahead)
            fits = True
            for page in state.pages:
                fits = fits and len(page.handled) + len(page.skipped) <= room
                if not fits:
                    unrecorded += len(page.handled) + len(page.skipped)
                    continue
                room -= len(page.handled) + len(page.skipped)
                ahead += page.skipped + page.handled
                counts.merge(replace(page.counts, read=len(page.handled)))
                failed += page.failed
            ranges.append(state.to_dict(ahead))
        return ranges, counts, failed, unrecorded

    def _checkpoint_failures(self, counts: _Counts) -> list[dict[str, Any]] | None:
        """Under the lock: the failed documents a re-run retries alone (None when more failed than a checkpoint
        lists): the committed pages', and, while this run's retries are not all handled, those not yet handled
        or failed again (``counts`` then takes the retries' outcomes so far)."""
        if not self._failed_complete:
            return None
        page = self._retry_page
        if page is None or page.done:
            return [*(self._retry if page is None else []), *self._failed]
        handled = set(page.handled)
        counts.merge(replace(page.counts, read=0))
        counts.dead_lettered -= len(page.handled)
        return [*(a for a in self._retry if identity(a) not in handled), *page.failed, *self._failed]

    def _report(self, total: int | None, finished: bool) -> None:
        if self.on_progress is None:
            return
        totals = self.totals()
        elapsed = max(time.monotonic() - self._started, 1e-9)
        with self._lock:
            done_here = self._live.handled
        self.on_progress(
            Progress(
                operation=self.operation,
                container=self.source.id,
                done=done_here + self._restored.handled,
                total=total,
                items_per_second=done_here / elapsed,
                ru_per_second=self.requests.ru / elapsed,
                ru=totals.ru,
                elapsed=totals.seconds,
                finished=finished,
                dead_lettered=totals.dead_lettered,
            )
        )


def _validate(
    concurrency: int,
    page_size: int,
    max_ru_per_second: float | None,
    priority: Priority | None,
    max_failures: int,
    checkpoint_every: int,
) -> None:
    problems = []
    if not 1 <= concurrency <= 256:
        problems.append(f"concurrency must be 1-256, not {concurrency}")
    if not 1 <= page_size <= 10_000:
        problems.append(f"page_size must be 1-10000, not {page_size}")
    if max_ru_per_second is not None and not (max_ru_per_second > 0 and math.isfinite(max_ru_per_second)):
        problems.append(f"max_ru_per_second must be a positive number, not {max_ru_per_second}")
    if priority not in ("Low", "High", None):
        problems.append(f"priority must be 'Low', 'High' or None, not {priority!r}")
    if max_failures < 0:
        problems.append(f"max_failures must be 0 or more, not {max_failures}")
    if checkpoint_every < 1:
        problems.append(f"checkpoint_every must be 1 or more, not {checkpoint_every}")
    if problems:
        raise UsageError("; ".join(problems))


# ---- transform_items ---------------------------------------------------------------------------------------


class TransformHandler:
    """Replace in place: fn on the version read, an ETag-conditional write, a fresh read and fn again on 412."""

    def __init__(self, engine: Engine, fn: TransformFn) -> None:
        self.engine = engine
        self.container = engine.source
        self.requests = engine.requests
        self.keys = engine.keys
        self.fn = fn

    def __call__(self, document: Document) -> Outcome:
        current = document
        for _ in range(MAX_CONFLICTS + 1):
            if "id" not in current or "_etag" not in current:
                raise UsageError(
                    f"transform of {self.container.id}: the query must return whole documents (with id and _etag, "
                    "e.g. SELECT * FROM c WHERE …), not a projection"
                )
            doc_id, etag, key = current["id"], current["_etag"], self.keys.value(current)
            before = json.dumps(current)  # fn may change its argument in place: what it was, for a read-back
            result = apply(self.fn, current)
            if result is None:
                return Outcome.UNCHANGED
            if isinstance(result, Delete):
                outcome = self._delete(doc_id, key, etag)
            else:
                self._check_identity(doc_id, key, result)
                outcome = self._replace(doc_id, key, etag, result, before)
            if outcome is Outcome.GONE:
                return Outcome.UNCHANGED  # deleted by someone else meanwhile: nothing left to change
            if outcome is not Outcome.CONFLICT:
                return outcome
            self.engine.count_conflict()
            fresh = self._read(doc_id, key)
            if fresh is None:
                return Outcome.UNCHANGED
            current = fresh
        raise DocumentFailed(f"the document changed {MAX_CONFLICTS} times while being transformed; run again")

    def _check_identity(self, doc_id: Any, key: Any, result: Document) -> None:
        if result.get("id") != doc_id:
            raise DocumentFailed(f"fn changed the id to {result.get('id')!r}: ids cannot change in place")
        if self.keys.value(result) != key:
            raise DocumentFailed(
                "fn changed the partition key value: it cannot change in place; use copy_container into a new container"
            )

    def _read(self, doc_id: Any, key: Any) -> Document | None:
        return run_step(f"read document {doc_id}", lambda: self._read_once(doc_id, key))

    def _read_once(self, doc_id: Any, key: Any) -> Document | None:
        try:
            return dict(self.requests.call(lambda o: self.container.read_item(doc_id, partition_key=key, **o)))
        except cosmos_errors.CosmosResourceNotFoundError:
            return None

    def _replace(self, doc_id: Any, key: Any, etag: str, body: Document, before: str) -> Outcome:
        def replace() -> Outcome:
            try:
                self.requests.call(
                    lambda o: self.container.replace_item(
                        doc_id, body, etag=etag, match_condition=MatchConditions.IfNotModified, **o
                    )
                )
                return Outcome.WRITTEN
            except cosmos_errors.CosmosAccessConditionFailedError:
                return Outcome.CONFLICT
            except cosmos_errors.CosmosResourceNotFoundError:
                return Outcome.GONE

        def read_back() -> Outcome:  # the connection was cut: did our write happen?
            fresh = self._read_once(doc_id, key)
            if fresh is None:
                return Outcome.GONE
            if fresh.get("_etag") == etag:
                return NOT_DONE  # type: ignore[no-any-return]  # still the version we read: write again
            if changes_present(json.loads(before), body, fresh):
                return Outcome.WRITTEN  # ours landed (and maybe someone else's after it, on other properties)
            return Outcome.CONFLICT  # someone else wrote instead of us: run fn on what is there

        try:
            return run_step(f"replace document {doc_id}", replace, read_back)
        except DatabaseError as exc:
            doubt = {"op": "replace", "etag": etag, **change_set(json.loads(before), body)}
            raise WriteInDoubt(exc, doubt) from exc

    def _delete(self, doc_id: Any, key: Any, etag: str) -> Outcome:
        def delete() -> Outcome:
            try:
                self.requests.call(
                    lambda o: self.container.delete_item(
                        doc_id, partition_key=key, etag=etag, match_condition=MatchConditions.IfNotModified, **o
                    )
                )
                return Outcome.DELETED
            except cosmos_errors.CosmosAccessConditionFailedError:
                return Outcome.CONFLICT
            except cosmos_errors.CosmosResourceNotFoundError:
                return Outcome.GONE

        def read_back() -> Outcome:
            fresh = self._read_once(doc_id, key)
            if fresh is None:
                return Outcome.DELETED
            return NOT_DONE if fresh.get("_etag") == etag else Outcome.CONFLICT

        try:
            return run_step(f"delete document {doc_id}", delete, read_back)
        except DatabaseError as exc:
            raise WriteInDoubt(exc, {"op": "delete", "etag": etag}) from exc


def change_set(original: Document, body: Document) -> dict[str, Any]:
    """What a write changes in ``original``: the properties it sets (with their new values) and those it removes;
    kept for a write left in doubt, so that a resumed run can tell whether it landed (see :func:`landed`)."""
    was, want = without_system_properties(original), without_system_properties(body)
    absent = object()
    changed = [n for n in set(was) | set(want) if was.get(n, absent) != want.get(n, absent)]
    return {"set": {n: want[n] for n in changed if n in want}, "unset": sorted(n for n in changed if n not in want)}


def landed(entry: dict[str, Any], fresh: Document | None) -> bool:
    """Whether the write in doubt ``entry`` (op, the ETag read, its change set) is in the document as read now:
    a delete landed when the document is gone; a replace when the document is no longer the version read and
    carries every change the write made (another writer's changes to other properties may be there too)."""
    if entry.get("op") == "delete":
        return fresh is None
    if fresh is None or fresh.get("_etag") == entry.get("etag"):
        return False
    absent = object()
    return all(fresh.get(n, absent) == v for n, v in dict(entry.get("set") or {}).items()) and not any(
        n in fresh for n in entry.get("unset") or ()
    )


def changes_present(original: Document, body: Document, fresh: Document) -> bool:
    """Whether every change ``body`` makes to ``original`` (a property set, changed or removed) is in ``fresh``:
    after a write with an unknown outcome, the sign that it landed even when another writer changed other
    properties after it. Equal documents are the case where nobody else wrote."""
    was, want, now = (without_system_properties(d) for d in (original, body, fresh))
    absent = object()
    return all(
        now.get(name, absent) == want.get(name, absent)
        for name in set(was) | set(want)
        if was.get(name, absent) != want.get(name, absent)
    )


def apply(fn: TransformFn, document: Document) -> TransformResult:
    """Call fn; anything it raises, or a result of the wrong type, dead-letters the document."""
    try:
        result = fn(document)
    except Exception as exc:
        raise DocumentFailed(f"fn raised {type(exc).__name__}: {exc}") from exc
    if result is None or isinstance(result, Delete | dict):
        return result
    raise DocumentFailed(f"fn returned {type(result).__name__}; it must return a dict, None or DELETE")


def default_checkpoint_key(operation: str, container: ContainerProxy, query: str | None, params: Any) -> str:
    return f"{operation}:{database_id(container)}:{container.id}:{query_fingerprint(query or WHOLE_CONTAINER, params)}"


def transform_items(
    container: ContainerProxy,
    fn: TransformFn,
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
    keep_done: bool = False,
) -> Totals:
    """Apply ``fn`` to every document of ``container`` (or every result of ``query``) and write the results back.

    ``fn(document)`` returns the new document (same id and partition key value), ``None`` to leave it as it is
    (no write, no RU), or :data:`DELETE` to delete it. It may mutate and return its argument. It is called again
    on a fresh read when a write loses a race (412): it must not have side effects outside its result.

    **fn must be idempotent, or the query must exclude documents already done** (``WHERE NOT IS_DEFINED(c.v2)``):
    after a kill the documents handled since the last checkpoint are transformed again (a clean stop, through
    ``should_continue`` or an exception such as Ctrl-C, saves exactly what was done), and a finished run run
    again goes over everything again. Prefer returning ``None`` for a document that is already right. A run that ends
    with more than ``max_failures`` failed documents keeps its checkpoint (with ``checkpoints``, up to
    ``RETRY_LIMIT`` of them): run again with the same key, it reads only those documents again, by id.

    Writes are ETag-conditional on the version read, so a concurrent update is never overwritten; transient
    errors (429 after the client's retries, 503, cut connections) are retried with a read-back where the outcome
    is unknown. A document fn raises on or the service refuses for good goes to ``dead_letter`` (JSON Lines:
    id and partition key value as read, before fn ran, error, when; not the body: the run did not write that
    document; default ``./cosmigrate-dead-letter-<container>.jsonl``), and the run raises
    :class:`~cosmigrate.data.errors.ItemsFailed` at its end when more than ``max_failures`` did. Errors that doom
    every document (the endpoint unreachable after retries, 401/403) stop the run with
    :class:`~cosmigrate.errors.DatabaseError`.

    ``concurrency`` writer threads share the container's client (keep it at or below 8 with the default
    connection pool of 10); ``page_size`` documents per query page; ``max_ru_per_second`` caps the RU this run
    spends (measured from each response's charge); ``priority`` is Cosmos DB priority-based execution (``"Low"``
    lets production traffic win when the account throttles; it needs the feature on the account, else ignored).

    With ``checkpoints``, progress is saved every ``checkpoint_every`` finished pages under ``checkpoint_key``
    (default: derived from the container and the query; pass one per migration, e.g. its revision, when two
    migrations transform the same container) and a re-run with the same key resumes there; the checkpoint is
    cleared when the run went through every document with no more than ``max_failures`` failed, unless
    ``keep_done``: then it is kept, marked done, and a re-run with the same key does nothing (for a caller that
    clears it once its whole unit of work is recorded, as cosmigrate's runner does per revision).
    ``should_continue()`` is called between pages; if it raises, the run stops (threads joined, finished pages
    checkpointed) and its exception propagates.
    ``on_progress`` receives a :class:`~cosmigrate.data.progress.Progress` about twice a second.
    """
    engine = Engine(
        operation="transform",
        source=container,
        handler_factory=lambda engine: TransformHandler(engine, fn),
        query=query,
        parameters=parameters,
        concurrency=concurrency,
        page_size=page_size,
        max_ru_per_second=max_ru_per_second,
        priority=priority,
        max_failures=max_failures,
        checkpoints=checkpoints,
        checkpoint_key=checkpoint_key or default_checkpoint_key("transform", container, query, parameters),
        checkpoint_every=checkpoint_every,
        identity={
            "operation": "transform",
            "container": container.id,
            "database": database_id(container),
            "query": query_fingerprint(query or WHOLE_CONTAINER, parameters),
        },
        dead_letter=dead_letter,
        on_progress=on_progress,
        should_continue=should_continue,
        keep_done=keep_done,
    )
    return engine.run(engine.estimated_total())
