"""The schema history's documents: the state of each revision, an append-only log of events, the scripts that ran.

Everything lives in one metadata container of the migrated database, partition key ``/scope``:

* partition ``history``: the lock lease (``lock.py``), one *record* per revision (its current state), one
  *event* per thing that happened (applied, reverted, failed, interrupted, resumed, refused, repaired,
  accepted, forgotten, stamped, forced, unlocked), and the *source* of every script version that ran (with
  the text of the helpers it imported).
  Records and the lock come back together in one query, so ``status`` costs the same with 4 or 400
  revisions; events and sources are read only when asked for. Being one logical partition, a run's writes
  go in one transactional batch together with a conditional renewal of its lease: a run that lost its lock
  writes nothing (``Lease.commit``).
* partition ``checkpoints``: progress of long data steps, so that an interrupted one resumes.

Nothing is ever deleted here but the lock: a reverted revision's record says so, and the log keeps every
event, so ``down --to base`` leaves the whole story behind (Flyway keeps undo rows; Liquibase records each
execution with its type).
"""

from __future__ import annotations

import getpass
import hashlib
import socket
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal

from cosmigrate import __version__

SCOPE = "history"
CHECKPOINT_SCOPE = "checkpoints"
PARTITION_KEY_PATH = "/scope"
LOCK_ID = "lock"
State = Literal["pending", "running", "applied", "failed", "interrupted", "reverted", "forgotten"]
Direction = Literal["up", "down"]


def now_iso(epoch: float | None = None) -> str:
    moment = datetime.fromtimestamp(time.time() if epoch is None else epoch, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def who() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def server_time(headers: Mapping[str, Any] | None) -> float | None:
    """The service's clock from a response's ``Date`` header (seconds since the epoch), if it has one."""
    raw = (headers or {}).get("date") or (headers or {}).get("Date")
    if not raw:
        return None
    try:
        return parsedate_to_datetime(str(raw)).timestamp()
    except (TypeError, ValueError):
        return None


def source_id(revision: str, checksum: str) -> str:
    return f"src-{revision}-{checksum.removeprefix('sha256:')[:16]}"


@dataclass
class Record:
    """The current state of one revision in this database."""

    revision: str
    description: str
    checksum: str  # the script and its helpers (the loader's combined checksum)
    state: State
    direction: Direction = "up"
    started_at: str = ""
    finished_at: str | None = None
    applied_at: str | None = None
    duration_s: float | None = None
    applied_by: str = ""
    tool_version: str = __version__
    lease_id: str | None = None
    error: str | None = None
    idempotent: bool = False
    args: dict[str, str] = field(default_factory=dict)
    stamped: bool = False
    source: str | None = None  # id of the source document of the script that last ran
    result: dict[str, Any] = field(default_factory=dict)  # backups, data totals, forced preconditions
    # when forgotten by repair: the state it was in ("applied", "failed going down", ...), so that a script that
    # comes back under this number is not taken for a new one and run again over what it already did
    forgotten_was: str | None = None
    # The parts of ``checksum``: the script's file alone, and each helper it imports (name -> checksum), so that
    # a change can be said to be the script's or a helper's. Both None in a record written before helpers were
    # covered, whose ``checksum`` is the script's alone (see ``app.state.compare``).
    script_checksum: str | None = None
    helpers: dict[str, str] | None = None

    @property
    def knows_helpers(self) -> bool:
        """Whether this record says which helpers ran (written by a cosmigrate that covers them)."""
        return self.helpers is not None

    def to_document(self) -> dict[str, Any]:
        return {"id": f"rev-{self.revision}", "scope": SCOPE, "kind": "revision", **asdict(self)}

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> Record:
        known = set(cls.__dataclass_fields__)
        values = {k: v for k, v in doc.items() if k in known}
        if "state" in values and values["state"] not in State.__args__:  # type: ignore[attr-defined]
            values["state"] = "failed"
        return cls(**values)


@dataclass(frozen=True)
class Event:
    """One thing that happened, appended to the log and never changed."""

    event: str
    revision: str | None
    at: str
    by: str
    direction: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    args: dict[str, str] = field(default_factory=dict)
    tool_version: str = __version__
    lease_id: str | None = None
    server_ts: int | None = None  # the service's clock (seconds), filled in when read back

    @classmethod
    def new(
        cls,
        event: str,
        revision: str | None,
        *,
        direction: str | None = None,
        detail: Mapping[str, Any] | None = None,
        args: Mapping[str, str] | None = None,
        lease_id: str | None = None,
    ) -> Event:
        return cls(
            event, revision, now_iso(), who(), direction, dict(detail or {}), dict(args or {}), __version__, lease_id
        )

    def to_document(self) -> dict[str, Any]:
        body = asdict(self)
        body.pop("server_ts")
        stamp = self.at.replace("-", "").replace(":", "").replace(".", "")
        return {"id": f"evt-{stamp}-{uuid.uuid4().hex[:8]}", "scope": SCOPE, "kind": "event", **body}

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> Event:
        known = set(cls.__dataclass_fields__) - {"server_ts"}
        return cls(**{k: v for k, v in doc.items() if k in known}, server_ts=doc.get("_ts"))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def source_document(
    revision: str, checksum: str, text: str, helpers: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The script as it ran, and the text of each helper it imported (name -> text), so that a changed or
    missing script, or an edited helper, can be shown as a diff against what ran. Its id follows ``checksum``,
    which covers the helpers: each version of them that ran is kept."""
    return {
        "id": source_id(revision, checksum),
        "scope": SCOPE,
        "kind": "source",
        "revision": revision,
        "checksum": checksum,
        "text": text,
        "sha256": hashlib.sha256(text.encode()).hexdigest(),
        "helpers": dict(helpers or {}),
    }


@dataclass(frozen=True)
class Source:
    """A source document read back: the script's text, and its helpers' (None when not kept, as by a cosmigrate
    that did not cover helpers)."""

    text: str
    helpers: dict[str, str] | None

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> Source:
        helpers = doc.get("helpers")
        kept = {str(k): str(v) for k, v in helpers.items()} if isinstance(helpers, Mapping) else None
        return cls(str(doc.get("text", "")), kept)


@dataclass(frozen=True)
class LockView:
    """The lease as stored, judged by the service's clock.

    The holder's own times (``acquired_at``, ``renewed_at``) are what its clock said and are shown as such;
    whether the lease is still live is decided from ``_ts`` (set by Cosmos DB on every write) against the
    ``Date`` of the response that read it: both are the service's clock, so no two machines' clocks are
    ever compared.
    """

    owner: str
    pid: int
    lease_id: str
    command: str
    acquired_at: str
    renewed_at: str
    ttl_s: float
    etag: str
    age_s: float | None  # seconds since the last write, by the service's clock; None when unknown
    seq: int = 0  # how many writes the holder made through it: tells whether a batch with a lost answer landed

    # Date and _ts are both whole seconds: an age read as A is really within (A - 1, A + 1).
    MARGIN = 1.0

    @classmethod
    def from_document(cls, doc: Mapping[str, Any], now: float | None) -> LockView:
        ts = doc.get("_ts")
        age = max(0.0, now - float(ts)) if now is not None and ts is not None else None
        return cls(
            owner=str(doc.get("owner", "?")),
            pid=int(doc.get("pid", 0)),
            lease_id=str(doc.get("lease_id", "")),
            command=str(doc.get("command", "")),
            acquired_at=str(doc.get("acquired_at", "")),
            renewed_at=str(doc.get("renewed_at", doc.get("acquired_at", ""))),
            ttl_s=float(doc.get("ttl_s", 60)),
            etag=str(doc.get("_etag", "")),
            age_s=age,
            seq=int(doc.get("seq", 0)),
        )

    @property
    def expired(self) -> bool:
        """True only when the lease has certainly not been renewed for a whole lease length."""
        return self.age_s is not None and self.age_s >= self.ttl_s + self.MARGIN

    @property
    def seconds_left(self) -> float:
        """How long before a contender may take the lease over (service clock), at most."""
        if self.age_s is None:
            return self.ttl_s + self.MARGIN
        return max(0.0, self.ttl_s + self.MARGIN - self.age_s)

    def describe(self) -> str:
        who_ = f"{self.owner} (pid {self.pid}, {self.command or 'cosmigrate'})"
        since = f"taken at {self.acquired_at} by its clock"
        if self.age_s is None:
            return f"{who_}, {since}"
        state = "expired" if self.expired else f"live for up to {self.seconds_left:.0f}s more unless renewed"
        return (
            f"{who_}, {since}; last renewed {self.age_s:.0f}s ago by the database's clock "
            f"(lease {self.ttl_s:.0f}s): {state}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "expired": self.expired, "description": self.describe()}


@dataclass(frozen=True)
class Snapshot:
    """Records and lock as read together, with the service's time of the read."""

    exists: bool
    records: dict[str, Record]
    lock: LockView | None


def snapshot_of(documents: Iterable[Mapping[str, Any]], now: float | None, exists: bool = True) -> Snapshot:
    records: dict[str, Record] = {}
    lock = None
    for doc in documents:
        if doc.get("kind") == "revision":
            record = Record.from_document(doc)
            records[record.revision] = record
        elif doc.get("kind") == "lock" or doc.get("id") == LOCK_ID:
            lock = LockView.from_document(doc, now)
    return Snapshot(exists, records, lock)
