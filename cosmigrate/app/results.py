"""What the commands return: typed results, rendered by the CLI as tables or, through ``to_dict``, as JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from cosmigrate.app.runner import StepResult


class Result:
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload, no-any-return]


@dataclass(frozen=True)
class RevisionView:
    revision: str
    description: str
    state: str
    applied_at: str | None = None
    checksum: str | None = None
    error: str | None = None
    applied_by: str | None = None


@dataclass(frozen=True)
class StatusResult(Result):
    database: str
    current: str | None
    head: str | None
    applied: list[RevisionView]
    pending: list[RevisionView]
    failed: list[RevisionView]
    changed: list[RevisionView]
    missing: list[RevisionView]
    running: list[RevisionView]
    lock: dict[str, Any] | None

    @property
    def blocked(self) -> bool:
        return bool(self.failed or self.changed or self.missing)


@dataclass(frozen=True)
class RunResult(Result):
    database: str
    direction: str
    dry_run: bool
    steps: list[StepResult]
    current: str | None
    head: str | None
    refused: str | None = None


@dataclass(frozen=True)
class HistoryResult(Result):
    database: str
    records: list[dict[str, Any]]


@dataclass(frozen=True)
class UnlockResult(Result):
    database: str
    released: bool
    holder: str | None


@dataclass(frozen=True)
class RepairResult(Result):
    database: str
    removed_failed: list[str] = field(default_factory=list)
    realigned: list[str] = field(default_factory=list)
    removed_missing: list[str] = field(default_factory=list)


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


@dataclass(frozen=True)
class NewResult(Result):
    path: str
    revision: str
    down_revision: str | None
