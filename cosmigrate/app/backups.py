"""``export`` and ``import``: backups of containers as files (definition, documents as JSON Lines, a manifest of
counts and sha256s), streamed with flat memory; an import is idempotent and runs again after an interruption.

Import writes under the migration lock, so that it never interleaves with a deploy; it creates missing
containers from their saved definitions and refuses one that exists with another partition key or unique keys.
An existing container whose mutable properties differ from the backup's is named and refused, unless the user
keeps the live settings (``keep="live"``, ``--adopt-live``) or has the container brought to the saved
definition first (``keep="backup"``, ``--apply-definition``) — through the same operation and apply function a
migration's ``op.create_container`` uses.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cosmigrate.app.context import WaitCallback, connected, locked, require_database
from cosmigrate.app.planes import plane_for
from cosmigrate.app.results import ExportResult, ImportResult
from cosmigrate.config import Config
from cosmigrate.data import export_containers, import_containers
from cosmigrate.data.backup import check_backup, differing, live_definition, saved_definition
from cosmigrate.ops.apply import ApplyContext, Executor
from cosmigrate.ops.operations import CreateContainer


def export(
    config: Config, containers: list[str] | None = None, out: Path | None = None, gzip: bool = False
) -> ExportResult:
    """Export ``containers`` (every one but the history when None) of the database to ``out``."""
    with connected(config) as client:
        database = require_database(
            client, config, hint="there is nothing to export: check the name (--database, COSMOS_DATABASE or "
            "database in [tool.cosmigrate])",
        )  # fmt: skip
        if not containers:
            containers = sorted(c["id"] for c in database.list_containers() if c["id"] != config.history_container)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        folder = out or config.backup_dir / database.id / f"{stamp}-export"
        manifest = export_containers(database, containers, folder, gzip, throughputs=plane_for(config).throughputs)
    return ExportResult(
        config.database_name, str(folder), {name: entry.count for name, entry in manifest.containers.items()}
    )


def import_(
    config: Config,
    folder: Path,
    containers: list[str] | None = None,
    on_wait: WaitCallback | None = None,
    keep: str | None = None,
    on_progress: Any = None,
) -> ImportResult:
    """Import a backup into the database (created only with ``create_database``), under the migration lock.

    ``keep``: for an existing container whose mutable properties differ from the backup's, ``"live"`` keeps its
    own, ``"backup"`` brings it to the saved definition before the documents go in; None refuses, naming them."""
    # create_database=True: the database may be created, when the configuration asks for it (--create-database);
    # else a missing one is refused with that advice for this command, not up's
    checked = check_backup(folder, containers or None)  # a bad backup is refused before a database is created
    under_lock = locked(config, "import", on_wait, create_history=True, create_database=True)
    with under_lock as (database, history, _lease):
        applied = []
        plane = plane_for(config)
        if keep == "backup":
            context = ApplyContext(
                database, index_timeout=config.index_timeout, on_progress=on_progress, extra=plane.extra
            )
            for name in checked[1]:
                saved, _raw = saved_definition(folder, name)
                live = live_definition(database, name, saved.declares("throughput"), plane.throughputs)
                if live is not None and differing(live, saved):
                    applied.append(Executor(plane.implementation, context).execute(CreateContainer(saved)).note)
        totals = import_containers(
            database,
            folder,
            containers or None,
            checked=checked,
            adopt_live=keep == "live",
            throughputs=plane.throughputs,
            create=plane.create_container,
        )
        migrated = any(record.state == "applied" for record in history.snapshot().records.values())
    hint = None
    if not migrated:  # e.g. restored into a new database: up would run every migration again over the data
        hint = (
            f"database {config.database_name} has no applied migrations: if the restored containers are as a "
            "migrated database left them, record that with cosmigrate stamp REV before the next cosmigrate up, "
            "which would otherwise run every migration (and its data steps) again over them"
        )
    return ImportResult(config.database_name, str(folder), dict(totals.documents), list(totals.created), hint, applied)
