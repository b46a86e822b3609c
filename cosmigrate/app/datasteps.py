"""Data work during a run: backups before a container holding documents is dropped, and the streaming engine
(``cosmigrate.data``) behind ``op.transform_items`` and ``op.copy_container``, wired to the run's lock,
history and progress.

One per revision and direction: the backup folder and the checkpoint keys carry the revision (the keys also the
direction), so an interrupted transform resumes from its checkpoint when the same revision runs again (after
``repair``, or by itself when the revision is idempotent), and two revisions transforming one container never
share progress. A data step that finished keeps its checkpoint, marked done, until its revision is recorded
applied (or reverted): when a later step of the revision fails, running the revision again does not run the
finished step a second time. The runner clears a revision's checkpoints once its outcome is recorded, and when
it starts the revision afresh (never applied, or reverted since).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from azure.cosmos import DatabaseProxy

from cosmigrate import logs
from cosmigrate.app.planes import plane_for
from cosmigrate.config import Config
from cosmigrate.data import (
    ProgressRenderer,
    checkpoints,
    copy_container,
    export_containers,
    transform_items,
)
from cosmigrate.data.engine import query_fingerprint
from cosmigrate.ops.operations import CopyContainer, TransformItems
from cosmigrate.store.history import HistoryStore
from cosmigrate.store.live import counter

log = logs.LOG


def saved_steps(config: Config, history: HistoryStore) -> checkpoints.SavedSteps:
    """The saved data steps of the history's database: in the database, and kept on this machine (under the backup
    folder) for a step whose checkpoint the database could not take when it stopped."""
    local = checkpoints.local_files(config.backup_dir, history.database.id)
    return checkpoints.SavedSteps(history.container, local)


class RunData:
    """The :class:`~cosmigrate.ops.cosmos_impl.DataSteps` of one revision in a run."""

    def __init__(
        self,
        config: Config,
        revision: str,
        history: HistoryStore,
        *,
        direction: str = "up",
        description: str = "",
        should_continue: Callable[[], None] | None = None,
        backup: bool = True,
        progress: bool = True,
    ) -> None:
        self.config = config
        self.revision = revision
        self.direction = direction
        self.prefix = checkpoints.prefix(revision, description)
        self._steps = 0  # data steps of this revision so far, in the order the script asks for them
        self.history = history
        self.should_continue = should_continue
        self.backup = backup
        self.progress = progress

    def _folder(self, database: DatabaseProxy, kind: str) -> Path:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        return self.config.backup_dir / database.id / f"{stamp}-{self.revision}{kind}"

    def before_delete(self, database: DatabaseProxy, container_id: str) -> dict[str, Any] | None:
        """Export a container that holds documents before it is dropped; the path goes into the history."""
        documents = counter(database)(container_id, "true", [])
        if not documents:
            return None
        if not self.backup:
            log.warning("dropping without a backup (--no-backup)", container=container_id, documents=documents)
            return {"container": container_id, "documents": documents, "path": None, "skipped": True}
        folder = self._folder(database, "")
        manifest = export_containers(database, [container_id], folder, throughputs=plane_for(self.config).throughputs)
        kept = manifest.containers[container_id].count
        log.info("backed up before dropping", container=container_id, documents=kept, folder=str(folder))
        return {"container": container_id, "documents": kept, "path": str(folder)}

    def _dead_letter_file(self, database: DatabaseProxy, name: str) -> Path:
        """A file of this step's own: a second step over the same container in the same second (the folder's
        resolution) gets ``<name>-2.jsonl`` instead of appending to the first one's."""
        folder = self._folder(database, "-dead-letters")
        path, number = folder / f"{name}.jsonl", 2
        while path.exists():
            path, number = folder / f"{name}-{number}.jsonl", number + 1
        return path

    def _renderer(self) -> ProgressRenderer | None:
        return ProgressRenderer(logs.STDERR, interval=5.0) if self.progress else None  # type: ignore[arg-type]

    def _key(self, kind: str, container: str, query: str | None, parameters: Any) -> str:
        """The checkpoint key of the revision's next data step: its place among them too, since two steps over
        the same container and query must not share one (a finished step's stays until the revision ends)."""
        self._steps += 1
        fingerprint = query_fingerprint(query or "", parameters)
        return f"{self.prefix}{self.direction}:{self._steps}:{kind}:{container}:{fingerprint}"

    def transform(self, database: DatabaseProxy, operation: TransformItems) -> dict[str, Any]:
        container = database.get_container_client(operation.container_id)
        parameters = [dict(p) for p in operation.parameters] or None
        dead_letter = self._dead_letter_file(database, operation.container_id)
        renderer = self._renderer()
        try:
            totals = transform_items(
                container,
                operation.fn,
                query=operation.query,
                parameters=parameters,
                checkpoints=saved_steps(self.config, self.history).store(),
                checkpoint_key=self._key("transform", operation.container_id, operation.query, parameters),
                dead_letter=dead_letter,
                on_progress=renderer,
                should_continue=self.should_continue,
                keep_done=True,
                **operation.options,
            )
        finally:
            if renderer is not None:
                renderer.close()
        return {"totals": totals.to_dict(), "dead_letter": str(dead_letter) if totals.dead_lettered else None}

    def copy(self, database: DatabaseProxy, operation: CopyContainer) -> dict[str, Any]:
        options = dict(operation.options)
        query, parameters = options.pop("query", None), options.pop("parameters", None)
        source = database.get_container_client(operation.source_id)
        target = database.get_container_client(operation.target_id)
        dead_letter = self._dead_letter_file(database, f"{operation.source_id}-to-{operation.target_id}")
        renderer = self._renderer()
        try:
            totals = copy_container(
                source,
                target,
                operation.transform,
                query=query,
                parameters=parameters,
                checkpoints=saved_steps(self.config, self.history).store(),
                checkpoint_key=self._key(f"copy-to-{operation.target_id}", operation.source_id, query, parameters),
                dead_letter=dead_letter,
                on_progress=renderer,
                should_continue=self.should_continue,
                index_timeout=options.pop("index_timeout", self.config.index_timeout),
                keep_done=True,
                replace=plane_for(self.config).replace_container,
                **options,
            )
        finally:
            if renderer is not None:
                renderer.close()
        return {"totals": totals.to_dict(), "dead_letter": str(dead_letter) if totals.dead_lettered else None}
