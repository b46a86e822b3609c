"""The applying executor for a run with the account key: :class:`~cosmigrate.ops.apply.Executor` with the keyed
implementation (:mod:`cosmigrate.ops.apply.keyed`), the run's data steps and its index waits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from azure.cosmos import DatabaseProxy

from cosmigrate.ops.apply import ApplyContext, DataSteps, Executor, Implementation, ProgressCallback
from cosmigrate.ops.apply.keyed import KEYED
from cosmigrate.store.live import counter

__all__ = ["CosmosExecutor", "DataSteps", "ProgressCallback"]


class CosmosExecutor(Executor):
    def __init__(
        self,
        database: DatabaseProxy,
        *,
        index_timeout: float = 3600.0,
        on_progress: ProgressCallback | None = None,
        poll_interval: float = 0.5,
        data: DataSteps | None = None,
        before_effect: Callable[[], None] | None = None,
        implementation: Implementation = KEYED,
        extra: dict[str, Any] | None = None,
    ) -> None:
        context = ApplyContext(database, data, index_timeout, poll_interval, on_progress, extra=dict(extra or {}))
        super().__init__(
            implementation,
            context,
            before_effect=before_effect,
            counter=counter(database),
            raw=lambda cid: database.get_container_client(cid) if cid is not None else database,
        )
        self.database = database
