"""Data work on Cosmos DB containers: transform in place, copy into another container, export and import.

The entry points, for migration scripts (through ``op``) and for the CLI:

- :func:`transform_items` — apply a function to every document (or every result of a query) and write the
  result back, ETag-conditionally, with bounded concurrency, an RU budget, dead letters and checkpoints.
- :func:`copy_container` — the same engine writing upserts into another container: how a partition key or
  unique keys change.
- :func:`export_containers` / :func:`import_containers` — backups as JSON Lines files with a manifest of sha256s.
"""

from cosmigrate.data.backup import ContainerBackup, ImportTotals, Manifest, export_containers, import_containers
from cosmigrate.data.checkpoints import CheckpointStore, ContainerCheckpointStore, MemoryCheckpointStore
from cosmigrate.data.copy import copy_container
from cosmigrate.data.engine import Priority, Totals, TransformFn, TransformResult, transform_items
from cosmigrate.data.errors import (
    BackupError,
    CheckpointMismatch,
    CountMismatch,
    DataError,
    ImportFailed,
    IndexTimeout,
    ItemsFailed,
)
from cosmigrate.data.progress import Progress, ProgressRenderer
from cosmigrate.model.documents import DELETE, Delete

__all__ = [
    "DELETE",
    "BackupError",
    "CheckpointMismatch",
    "CheckpointStore",
    "ContainerBackup",
    "ContainerCheckpointStore",
    "CountMismatch",
    "DataError",
    "Delete",
    "ImportFailed",
    "ImportTotals",
    "IndexTimeout",
    "ItemsFailed",
    "Manifest",
    "MemoryCheckpointStore",
    "Priority",
    "Progress",
    "ProgressRenderer",
    "Totals",
    "TransformFn",
    "TransformResult",
    "copy_container",
    "export_containers",
    "import_containers",
    "transform_items",
]
