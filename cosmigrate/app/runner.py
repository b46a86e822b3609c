"""The run loop: for each planned revision, check the lease, record ``running``, run the script, record the end.

Kept short on purpose. A precondition refusal (``op.refuse``) is not a failure: the running record is taken
back and nothing else is written, so the revision stays pending. Any other exception marks the revision
``failed`` with its error, and ``up`` will not pass it until ``cosmigrate repair``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from cosmigrate.errors import InvalidDefinition, MigrationFailed, PreconditionRefused
from cosmigrate.ops.facade import Operations, ValidatingOperations
from cosmigrate.scripts.loader import Script
from cosmigrate.store.history import Record, SchemaHistory, now_iso, who
from cosmigrate.store.lock import Lease

Direction = Literal["up", "down"]


@dataclass(frozen=True)
class StepResult:
    revision: str
    description: str
    direction: Direction
    duration_s: float
    actions: list[str] = field(default_factory=list)


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or "(no message)"
    return f"{type(exc).__name__}: {text}"[:500]


def validate(scripts: list[Script], direction: Direction, x: Mapping[str, str], history_container: str) -> None:
    """Check the scripts' container definitions before the database is touched.

    Each ``upgrade`` (or ``downgrade``) is called with :class:`ValidatingOperations`, which makes no request;
    only invalid definitions count here, anything else is left to the real run.
    """
    for script in scripts:
        try:
            (script.upgrade if direction == "up" else script.downgrade)(ValidatingOperations(x, history_container))
        except InvalidDefinition as exc:
            raise InvalidDefinition(f"{script.path.name}: {exc}; nothing was changed") from None
        except Exception:
            continue  # anything else depends on the real database: the real run reports it


class Runner:
    def __init__(
        self,
        history: SchemaHistory,
        lease: Lease,
        make_operations: Callable[[], Operations],
        redact: Callable[[str], str],
    ) -> None:
        self.history = history
        self.lease = lease
        self.make_operations = make_operations
        self.redact = redact

    def run(self, plan: list[Script], direction: Direction, records: dict[str, Record]) -> list[StepResult]:
        results = []
        for script in plan:
            self.lease.check()
            results.append(self._step(script, direction, records.get(script.revision)))
        return results

    def _step(self, script: Script, direction: Direction, previous: Record | None) -> StepResult:
        started = time.monotonic()
        record = Record(
            revision=script.revision,
            description=script.description,
            checksum=script.checksum,
            state="running",
            direction=direction,
            started_at=now_iso(),
            applied_by=who(),
            lease_id=self.lease.lease_id,
        )
        self.history.save(record)
        op = self.make_operations()
        try:
            (script.upgrade if direction == "up" else script.downgrade)(op)
        except PreconditionRefused:
            if direction == "up" or previous is None:
                self.history.remove(script.revision)
            else:
                self.history.save(previous)
            raise
        except BaseException as exc:
            record.state = "failed"
            record.error = self.redact(one_line(exc))
            record.duration_s = round(time.monotonic() - started, 3)
            self.history.save(record)
            if isinstance(exc, Exception):
                what, way_out = f"failed {direction}", "fix the cause, then cosmigrate repair and cosmigrate up"
            elif isinstance(exc, KeyboardInterrupt):  # Ctrl-C or SIGTERM: stop, but say where
                what, way_out = f"was interrupted {direction}", "cosmigrate repair, then run again"
            else:
                raise
            raise MigrationFailed(
                f"revision {script.revision} ({script.path.name}) {what}: {record.error}; it is recorded as "
                f"failed: {way_out}"
            ) from exc
        duration = round(time.monotonic() - started, 3)
        if direction == "up":
            record.state = "applied"
            record.applied_at = now_iso()
            record.duration_s = duration
            self.history.save(record)
        else:
            self.history.remove(script.revision)
        return StepResult(script.revision, script.description, direction, duration, list(op.actions))
