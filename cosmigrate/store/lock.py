"""The migration lock: a lease document in the history container, judged by the database's clock only.

Taken with ``create_item`` (409: someone holds it). Taken over only once expired, with an ETag-conditional
replace, so of two contenders exactly one wins. Released with an ETag-conditional delete.

**Expiry without trusting anyone's clock.** Machines disagree about the time (a contender five minutes ahead
would see a healthy lease as long expired). So a contender never compares a stored time with its own: it
reads the lease and compares the lease's ``_ts`` (stamped by Cosmos DB on every write) with the ``Date`` of
that same response (the service's clock). The lease is expired once it has not been written for a whole
lease length plus one second (both are whole seconds). Any skew between client machines is tolerated.

**The holder judges its own deadline on its own monotonic clock**: a lease is good until ``ttl`` after the
moment the request that last renewed it was *sent*, which is never later than the service's view. It renews
every third of the lease in the background and, before each revision, refuses to go on once a renewal
cannot be confirmed in time.

**Fencing.** Every history write of a run is one transactional batch that first replaces the lease on the
condition that its ETag is still the one this run last wrote (``commit``). A holder that lost its lease —
paused, partitioned, taken over — cannot write a record after that: the batch fails as a whole, and the run
stops saying which revision's outcome is unknown; the next run sees that revision as interrupted.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from azure.core import MatchConditions
from azure.cosmos import exceptions as cosmos_errors

from cosmigrate import logs
from cosmigrate.errors import LockError
from cosmigrate.store.client import NOT_DONE, is_transient, resilient, unreachable
from cosmigrate.store.history import HistoryStore
from cosmigrate.store.outage import StepRetry
from cosmigrate.store.records import LOCK_ID, SCOPE, LockView, now_iso, who

log = logs.LOG


class LockLost(LockError):
    """This run's lease was taken over or could not be renewed in time: it writes nothing more."""


class Lease:
    """One process's claim on the migration lock."""

    def __init__(
        self, history: HistoryStore, ttl: float, command: str = "", clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.history = history
        self.ttl = ttl
        self.command = command
        self.clock = clock
        self.lease_id = uuid.uuid4().hex
        self._etag: str | None = None
        self._seq = 0
        self._valid_until = 0.0
        self._acquired_at = ""
        self._lost: str | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self._guard = threading.RLock()

    @property
    def held(self) -> bool:
        return self._etag is not None and self._lost is None

    # -- taking and giving back ---------------------------------------------------------------------------

    def acquire(self, timeout: float, on_wait: Callable[[LockView], None] | None = None) -> None:
        """Take the lease, waiting up to ``timeout`` seconds for its holder to release it or let it expire."""
        deadline = self.clock() + timeout
        reported: str | None = None
        while True:
            holder = self._try_take()
            if holder is None:
                self._start_renewing()
                return
            if holder is NOT_DONE:
                continue  # released between our attempt and the read: try again at once
            if holder.lease_id != reported:
                reported = holder.lease_id
                if on_wait:
                    on_wait(holder)
            left = deadline - self.clock()
            if left <= 0:
                raise LockError(
                    f"the migration lock of database {self.history.database.id} is held by {holder.describe()}; "
                    "wait, raise --lock-timeout, or if that run is dead: cosmigrate unlock"
                )
            time.sleep(min(1.0, left, max(0.05, holder.seconds_left)))

    def _document(self, seq: int) -> dict[str, Any]:
        """The lease as stored. Its times are the holder's clock, for people; expiry never reads them. Sequence 1
        is an attempt to take it: its time is now, not the time of a first attempt made before waiting."""
        if seq == 1 or not self._acquired_at:
            self._acquired_at = now_iso()
        return {
            "id": LOCK_ID,
            "scope": SCOPE,
            "kind": "lock",
            "owner": who(),
            "pid": os.getpid(),
            "lease_id": self.lease_id,
            "command": self.command,
            "acquired_at": self._acquired_at,
            "renewed_at": now_iso(),
            "ttl_s": self.ttl,
            "seq": seq,
        }

    def _held(self, stored: Mapping[str, Any], sent_at: float) -> None:
        self._etag = str(stored["_etag"])
        self._seq = int(stored.get("seq", 0))
        self._valid_until = sent_at + self.ttl

    def _try_take(self) -> Any:
        """None once the lease is ours; otherwise the holder that keeps us waiting (or NOT_DONE: try again)."""
        container = self.history.container
        sent_at = self.clock()

        def mine() -> Any:
            current = self.history.read_lock()
            if current is not None and current.lease_id == self.lease_id:
                self._etag, self._seq, self._valid_until = current.etag, 1, sent_at + self.ttl
                return None
            return NOT_DONE

        def take() -> Any:
            try:
                self._held(container.create_item(self._document(1)), sent_at)
                return None
            except cosmos_errors.CosmosResourceExistsError:
                return self._take_over_expired()

        return resilient("take lock", take, recover=mine)

    def _take_over_expired(self) -> Any:
        holder = self.history.read_lock()
        if holder is None:
            return NOT_DONE
        if holder.lease_id == self.lease_id:  # our own create landed with its answer lost
            self._etag, self._seq, self._valid_until = holder.etag, 1, self.clock() + self.ttl
            return None
        if not holder.expired:
            return holder
        sent_at = self.clock()
        try:
            stored = self.history.container.replace_item(
                LOCK_ID, self._document(1), etag=holder.etag, match_condition=MatchConditions.IfNotModified
            )
        except cosmos_errors.CosmosAccessConditionFailedError:
            return holder  # another contender took it over first
        self._held(stored, sent_at)
        log.warning("took over an expired lock", previous_holder=holder.describe())
        return None

    def release(self) -> None:
        """Give the lease back; only our own (a lease taken over by someone else is left alone)."""
        self._stop.set()
        if self._renewer is not None and self._renewer is not threading.current_thread():
            self._renewer.join()
        with self._guard:
            if self._etag is None or self._lost:
                return

            def delete() -> None:
                for _ in range(3):
                    try:
                        self.history.container.delete_item(
                            LOCK_ID, partition_key=SCOPE, etag=self._etag, match_condition=MatchConditions.IfNotModified
                        )
                        return
                    except cosmos_errors.CosmosResourceNotFoundError:
                        return
                    except cosmos_errors.CosmosAccessConditionFailedError:
                        current = self.history.read_lock()  # our own renewal may have landed unanswered
                        if current is None or current.lease_id != self.lease_id:
                            return
                        self._etag = current.etag

            resilient("release lock", delete)
            self._etag = None

    # -- writing under the lease --------------------------------------------------------------------------

    def commit(self, documents: list[dict[str, Any]] | None = None) -> None:
        """Write ``documents`` (upserts into the history partition) together with a renewal of the lease, in
        one transactional batch conditional on the lease being ours: all or nothing. Raises :class:`LockLost`
        when it is not ours any more; then nothing was written."""
        with self._guard:
            self._raise_if_lost()
            seq = self._seq + 1
            operations: list[Any] = [("replace", (LOCK_ID, self._document(seq)), {"if_match_etag": self._etag})]
            operations += [("upsert", (document,)) for document in documents or []]
            retry = StepRetry("write the history and renew the lease")
            while True:
                sent_at = self.clock()
                try:
                    results = self.history.container.execute_item_batch(operations, partition_key=SCOPE)
                except cosmos_errors.CosmosBatchOperationError as exc:
                    if getattr(exc, "error_index", None) == 0:
                        self._lose()
                    raise
                except Exception as exc:
                    if not is_transient(exc):
                        raise
                    if not retry.wait():
                        raise unreachable(retry.step, exc, retry) from exc
                    # the outcome is unknown: the lease's sequence number says whether the batch landed
                    current = resilient("read lock", self.history.read_lock, retry=retry)
                    if current is None or current.lease_id != self.lease_id:
                        self._lose()
                    if current is not None and current.seq == seq:
                        self._etag, self._seq, self._valid_until = current.etag, seq, sent_at + self.ttl
                        return
                    continue
                retry.outage.answered()
                first = results[0]
                body = first.get("resourceBody") or {}
                self._etag = str(first.get("eTag") or body.get("_etag"))
                self._seq = seq
                self._valid_until = sent_at + self.ttl
                return

    def _lose(self) -> None:
        current = resilient("read lock", self.history.read_lock)
        by = current.describe() if current else "nobody (it was released)"
        self._lost = f"the migration lock was lost: it is now held by {by}"
        raise LockLost(f"{self._lost}; this run writes nothing more")

    def _raise_if_lost(self) -> None:
        if self._lost:
            raise LockLost(f"{self._lost}; this run writes nothing more")

    # -- keeping it ---------------------------------------------------------------------------------------

    def _start_renewing(self) -> None:
        self._stop.clear()
        self._renewer = threading.Thread(target=self._renew_loop, name="cosmigrate-lease", daemon=True)
        self._renewer.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                self.commit()
            except LockLost:
                return
            except Exception as exc:  # keep trying; check() stops the run once the deadline passes
                log.warning("lock renewal failed", error=type(exc).__name__)

    def check(self) -> None:
        """Before a revision: raise unless the lease is ours for a while yet, renewing it now if need be."""
        with self._guard:
            self._raise_if_lost()
            if self.clock() < self._valid_until - self.ttl / 3:
                return
            try:
                self.commit()
                return
            except LockLost:
                raise
            except Exception:
                if self.clock() < self._valid_until:
                    return
            self._lost = "the migration lock could not be renewed before it expired (is the database reachable?)"
            raise LockLost(f"{self._lost}; stopping before the next revision")


def force_release(history: HistoryStore, holder: LockView, documents: list[dict[str, Any]]) -> bool:
    """Delete the lease as it was shown to an operator and write ``documents`` (the event saying so, the
    holder's records), in one batch. False when the lease changed hands meanwhile (nothing was written)."""
    operations: list[Any] = [("delete", (LOCK_ID,), {"if_match_etag": holder.etag})]
    operations += [("upsert", (document,)) for document in documents]

    def gone() -> Any:  # after an unknown outcome: did our delete land?
        current = history.read_lock()
        return True if current is None or current.lease_id != holder.lease_id else NOT_DONE

    try:
        resilient("unlock", lambda: history.container.execute_item_batch(operations, partition_key=SCOPE), recover=gone)
    except cosmos_errors.CosmosBatchOperationError as exc:
        if getattr(exc, "error_index", None) == 0:
            return False
        raise
    return True
