"""The migration lock: a lease document in the history container.

Taken with ``create_item`` (409: someone holds it), renewed in the background with an ETag-conditional
replace (412: lost), taken over once expired with an ETag-conditional replace (of two contenders exactly one
wins), released with an ETag-conditional delete. Expiry is a stored ``expires_at`` compared with the clock,
never TTL (the service may expire late; the local endpoint never does), so a crashed holder blocks others
for at most one lease length (Liquibase's locks stay forever, liquibase#6538).
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from azure.core import MatchConditions
from azure.cosmos import exceptions as cosmos_errors

from cosmigrate.errors import LockError
from cosmigrate.store.client import NOT_DONE, resilient
from cosmigrate.store.history import LOCK_ID, SCOPE, SchemaHistory, now_iso, who

log = structlog.get_logger("cosmigrate")


@dataclass(frozen=True)
class Holder:
    """Who holds (or held) the lease, as stored."""

    owner: str
    pid: int
    lease_id: str
    acquired_at: str
    expires_at: float
    command: str

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> Holder:
        return cls(
            owner=str(doc.get("owner", "?")),
            pid=int(doc.get("pid", 0)),
            lease_id=str(doc.get("lease_id", "")),
            acquired_at=str(doc.get("acquired_at", "")),
            expires_at=float(doc.get("expires_at", 0)),
            command=str(doc.get("command", "")),
        )

    def expired(self, at: float | None = None) -> bool:
        return (time.time() if at is None else at) >= self.expires_at

    def describe(self) -> str:
        left = self.expires_at - time.time()
        state = f"expires in {left:.0f}s" if left > 0 else f"expired {-left:.0f}s ago"
        return f"{self.owner} (pid {self.pid}, {self.command or 'cosmigrate'}) since {self.acquired_at}, {state}"


def read_holder(history: SchemaHistory) -> tuple[Holder, str] | None:
    """The stored lease and its ETag, or None when nobody holds it."""

    def read() -> tuple[Holder, str] | None:
        try:
            doc = history.container.read_item(LOCK_ID, partition_key=SCOPE)
        except cosmos_errors.CosmosResourceNotFoundError:
            return None
        return Holder.from_document(doc), doc["_etag"]

    return resilient("read lock", read)


class Lease:
    """One process's claim on the migration lock."""

    def __init__(self, history: SchemaHistory, ttl: float, command: str = "") -> None:
        self.history = history
        self.ttl = ttl
        self.command = command
        self.lease_id = uuid.uuid4().hex
        self._etag: str | None = None
        self._valid_until = 0.0
        self._acquired_at: str | None = None
        self._lost: str | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self._guard = threading.Lock()

    # -- taking and giving back ---------------------------------------------------------------------------

    def acquire(self, timeout: float, on_wait: Callable[[Holder], None] | None = None) -> None:
        """Take the lease, waiting up to ``timeout`` seconds for its holder to release it or let it expire."""
        deadline = time.monotonic() + timeout
        reported: str | None = None
        while True:
            if self._try_take():
                self._start_renewing()
                return
            current = read_holder(self.history)
            if current is None:
                continue  # released between our attempt and the read: try again at once
            holder, _ = current
            if holder.lease_id != reported:
                reported = holder.lease_id
                if on_wait:
                    on_wait(holder)
            if time.monotonic() >= deadline:
                raise LockError(
                    f"the migration lock of {self.history.database.id} is held by {holder.describe()}; "
                    "wait, raise --lock-timeout, or if that run is dead: cosmigrate unlock"
                )
            time.sleep(min(1.0, max(0.05, holder.expires_at - time.time())))

    def _document(self) -> dict[str, Any]:
        """The lease as stored: renewals move ``expires_at`` and keep ``acquired_at``."""
        now = time.time()
        if self._etag is None:
            self._acquired_at = now_iso(now)
        return {
            "id": LOCK_ID,
            "scope": SCOPE,
            "kind": "lock",
            "owner": who(),
            "pid": os.getpid(),
            "lease_id": self.lease_id,
            "command": self.command,
            "acquired_at": self._acquired_at,
            "expires_at": now + self.ttl,
            "expires_at_iso": now_iso(now + self.ttl),
        }

    def _held(self, stored: dict[str, Any]) -> bool:
        self._etag = stored["_etag"]
        self._valid_until = float(stored["expires_at"])
        return True

    def _mine(self) -> bool | Any:
        """Read-back after an unknown outcome: True (and the ETag remembered) if the stored lease is ours."""
        current = read_holder(self.history)
        if current is not None and current[0].lease_id == self.lease_id:
            self._etag = current[1]
            self._valid_until = current[0].expires_at
            return True
        return NOT_DONE

    def _try_take(self) -> bool:
        container = self.history.container

        def create() -> bool:
            try:
                return self._held(container.create_item(self._document()))
            except cosmos_errors.CosmosResourceExistsError:
                return self._take_over_expired()

        return bool(resilient("take lock", create, recover=self._mine))

    def _take_over_expired(self) -> bool:
        current = read_holder(self.history)
        if current is None:
            return False  # released meanwhile: the caller's next round creates it
        holder, etag = current
        if holder.lease_id == self.lease_id:
            return self._mine() is True
        if not holder.expired():
            return False
        try:
            self._held(
                self.history.container.replace_item(
                    LOCK_ID, self._document(), etag=etag, match_condition=MatchConditions.IfNotModified
                )
            )
        except cosmos_errors.CosmosAccessConditionFailedError:
            return False  # another contender took it over first
        log.warning("took over an expired lock", previous_holder=holder.describe())
        return True

    def release(self) -> None:
        """Give the lease back; only our own (a lease taken over by someone else is left alone)."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        if self._etag is None:
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
                    # taken over (leave it), or our own renewal landed unanswered (its ETag is read back)
                    if self._mine() is not True:
                        return

        resilient("release lock", delete)
        self._etag = None

    # -- keeping it ---------------------------------------------------------------------------------------

    def _start_renewing(self) -> None:
        self._stop.clear()
        self._renewer = threading.Thread(target=self._renew_loop, name="cosmigrate-lease", daemon=True)
        self._renewer.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                self.renew()
            except Exception as exc:  # keep the thread alive; check() reports the loss
                log.warning("lock renewal failed", error=type(exc).__name__)
            if self._lost:
                return

    def renew(self) -> None:
        with self._guard:
            if self._lost:
                return
            document = self._document()

            def replace() -> bool:
                try:
                    return self._held(
                        self.history.container.replace_item(
                            LOCK_ID, document, etag=self._etag, match_condition=MatchConditions.IfNotModified
                        )
                    )
                except (cosmos_errors.CosmosAccessConditionFailedError, cosmos_errors.CosmosResourceNotFoundError):
                    # our own earlier renewal may have landed with its answer lost: is it still ours?
                    return self._mine() is True

            if not resilient("renew lock", replace, recover=self._mine):
                current = read_holder(self.history)
                by = current[0].describe() if current else "nobody (it was released)"
                self._lost = f"the migration lock was lost: it is now held by {by}"

    def check(self) -> None:
        """Raise if the lease was lost: a run must not start another revision without it."""
        if not self._lost and time.time() >= self._valid_until:
            self._lost = "the migration lock expired before it could be renewed (is the database reachable?)"
        if self._lost:
            raise LockError(f"{self._lost}; stopping before the next revision. Run cosmigrate status")
