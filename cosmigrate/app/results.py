"""What the commands return: typed results, rendered by the CLI as tables or, through ``to_dict``, as JSON.

Pure data: importing this pulls in no Cosmos DB client.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from cosmigrate.app.state import RevisionView
from cosmigrate.errors import CosmigrateError, DefinitionConflict, PreconditionRefused


class Result:
    @property
    def ok(self) -> bool:
        """True exactly when the command exits 0 (``"ok"`` in ``--json``, as an error's ``"ok": false``)."""
        return True

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": self.ok, **_plain(asdict(self))}  # type: ignore[call-overload]
        return body


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class StatusResult(Result):
    database: str
    current: str | None
    head: str | None
    revisions: list[RevisionView]
    lock: dict[str, Any] | None
    refusal: str | None  # why up would refuse now (status exits 1 exactly then)
    history_exists: bool = True

    def _of(self, state: str) -> list[RevisionView]:
        return [view for view in self.revisions if view.state == state]

    @property
    def applied(self) -> list[RevisionView]:
        return self._of("applied")

    @property
    def pending(self) -> list[RevisionView]:
        return self._of("pending")

    @property
    def failed(self) -> list[RevisionView]:
        return self._of("failed")

    @property
    def interrupted(self) -> list[RevisionView]:
        return self._of("interrupted")

    @property
    def running(self) -> list[RevisionView]:
        return self._of("running")

    @property
    def missing(self) -> list[RevisionView]:
        return self._of("missing")

    changed: list[RevisionView] = field(default_factory=list)

    @property
    def blocked(self) -> bool:
        return self.refusal is not None

    @property
    def ok(self) -> bool:
        return not self.blocked

    def to_dict(self) -> dict[str, Any]:
        body = super().to_dict()
        for state in ("applied", "pending", "failed", "interrupted", "running", "missing", "forgotten"):
            body[state] = [view.to_dict() for view in self._of(state)]
        body["blocked"] = self.blocked
        return body


@dataclass(frozen=True)
class RunResult(Result):
    database: str
    direction: str
    steps: list[Any]  # StepResult
    current: str | None
    head: str | None
    dry_run: bool = False


@dataclass(frozen=True)
class PlanResult(Result):
    """What ``up``/``down`` would do: per revision, each operation with the full definitions (``plan --json``)."""

    database: str
    direction: str
    current: str | None
    target: str | None
    head: str | None
    exact: bool
    revisions: list[dict[str, Any]]
    refused: str | None = None
    database_exists: bool = True
    deletes_documents: dict[str, int] = field(default_factory=dict)  # containers deleted that hold documents now
    resumes: dict[str, list[str]] = field(default_factory=dict)  # revision -> where its saved data steps resume
    # the live throughput before the plan: "" the database's shared one, else by container (None: shares it)
    throughput: dict[str, dict[str, int] | None] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.refused is None

    def error(self) -> CosmigrateError | None:
        """What ``up`` would raise for this plan: its first blocked revision's refusal or conflict, with that
        revision and its file; None when the plan can run."""
        if self.refused is None:
            return None
        blocked = next(r for r in self.revisions if r.get("refused") or r.get("conflict"))
        kind = PreconditionRefused if blocked.get("refused") else DefinitionConflict
        return kind(self.refused, revision=blocked["revision"], file=blocked["file"])


@dataclass(frozen=True)
class HistoryResult(Result):
    database: str
    events: list[dict[str, Any]]
    records: list[dict[str, Any]]


@dataclass(frozen=True)
class ContainerDrift:
    container: str
    state: str  # drift, missing (declared, not live), unmanaged (live, declared by no migration), unverified
    differences: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class VerifyResult(Result):
    database: str
    current: str | None
    clean: bool
    containers: list[ContainerDrift]
    notes: list[str] = field(default_factory=list)
    locked_by: str | None = None

    @property
    def ok(self) -> bool:
        return self.clean


@dataclass(frozen=True)
class UnlockResult(Result):
    database: str
    released: bool
    holder: str | None


@dataclass(frozen=True)
class RepairResult(Result):
    database: str
    to_pending: list[str] = field(default_factory=list)
    to_applied: list[str] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)
    diffs: dict[str, str] = field(default_factory=dict)
    restored: list[str] = field(default_factory=list)  # forgotten, script back: applied again without running
    sum_hint: str | None = None  # the sum file no longer matches a repaired script: rewrite it
    resumes: dict[str, list[str]] = field(default_factory=dict)  # revision -> where its data steps resume, in words
    restarted: list[str] = field(default_factory=list)  # revisions whose data steps start over (--restart-data)
    recorded: list[str] = field(default_factory=list)  # applied by an older cosmigrate: helpers recorded as now

    @property
    def nothing(self) -> bool:
        changes = self.to_pending or self.to_applied or self.accepted or self.forgotten or self.restored
        return not (changes or self.restarted or self.recorded)


@dataclass(frozen=True)
class StampResult(Result):
    database: str
    target: str
    stamped: list[str]
    removed: list[str]


@dataclass(frozen=True)
class CheckResult(Result):
    migrations: str
    head: str | None
    revisions: list[str]
    problems: list[dict[str, Any]] = field(default_factory=list)
    online: bool = False
    findings: list[dict[str, Any]] = field(default_factory=list)  # migration lint (warnings unless strict)
    strict: bool = False
    queries: list[dict[str, Any]] = field(default_factory=list)  # query lint: error, warning, note

    @property
    def ok(self) -> bool:
        broken = any(q["level"] == "error" for q in self.queries)
        return not self.problems and not broken and not (self.strict and self.findings)


@dataclass(frozen=True)
class NewResult(Result):
    path: str
    revision: str
    down_revision: str | None


@dataclass(frozen=True)
class HashResult(Result):
    path: str
    files: int


@dataclass(frozen=True)
class InitResult(Result):
    folder: str
    created: list[str]
    kept: list[str]


@dataclass(frozen=True)
class ExportResult(Result):
    database: str
    folder: str
    documents: dict[str, int]


@dataclass(frozen=True)
class ImportResult(Result):
    database: str
    folder: str
    documents: dict[str, int]
    created: list[str]
    hint: str | None = None  # what to do before the next up (a database without migration history)
    applied: list[str] = field(default_factory=list)  # changes made to bring containers to the backup's definition


@dataclass(frozen=True)
class RevisionsResult(Result):
    """``current`` and ``heads``: where the database is, and the head of the migrations folder."""

    database: str | None
    current: str | None
    heads: list[str]


@dataclass(frozen=True)
class ShowResult(Result):
    """``show REV``: one revision's file, what it declares, its state in the database and its events."""

    revision: str
    file: str
    description: str
    down_revision: str | None
    idempotent: bool
    arguments: dict[str, str]
    checksum: str
    helpers: list[str]
    database: str | None
    state: str | None  # None: the database was not asked (it does not exist)
    applied_at: str | None
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class AdoptResult(Result):
    """``adopt``: the baseline written from a live database and recorded as applied there."""

    database: str
    file: str
    revision: str
    containers: list[str]
    excluded: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class GenerateResult(Result):
    """``new --autogenerate`` (a file written) and ``plan --schema`` (``file`` None): the differences found."""

    source: str  # the desired state: schema.toml or the live database
    file: str | None
    revision: str | None
    steps: list[dict[str, Any]] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)  # what check's lint says about the new file
