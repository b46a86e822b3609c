"""Backups of containers as files: export before a risky migration, import to restore or to seed another database.

Layout of an export folder::

    manifest.json                    per container: document count and the sha256 of each file (written last:
                                     an export without it did not finish)
    <container>/definition.json      the container's stored properties without system properties
    <container>/documents.jsonl      one document per line, as stored (.jsonl.gz with gzip=True)

``definition.json`` holds the container's own throughput too (``"throughput": {"manual": N}`` or
``{"autoscale_max": M}``; absent: it shares its database's). Export streams page by page (memory stays flat
whatever the size). Import checks every file against the manifest before touching the database, then brings
each container to the saved definition through the same property registry the migrations use
(``model/properties``): a missing container is created from it, throughput included; an existing one must have
the same create-only properties (partition key, unique keys…), and one whose mutable properties differ (TTL,
indexing, throughput…) is refused by name unless the caller keeps the live ones (``adopt_live``) or brought it
to the saved definition first. Then it upserts the documents without system properties, concurrently: an
interrupted import is simply run again.
"""

from __future__ import annotations

import gzip as gzip_module
import hashlib
import io
import json
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import structlog
from azure.cosmos import DatabaseProxy

from cosmigrate.data.engine import (
    DocumentFailed,
    Priority,
    Requests,
    count_documents,
    read_feed_ranges,
    read_page,
    run_step,
)
from cosmigrate.data.errors import BackupError, ImportFailed
from cosmigrate.data.items import without_system_properties
from cosmigrate.errors import DefinitionConflict, DefinitionDiffers
from cosmigrate.model.container import ContainerDef
from cosmigrate.model.properties import REGISTRY, Mutability, Property
from cosmigrate.store import offers
from cosmigrate.store.client import SYSTEM_PROPERTIES, read_container, resilient
from cosmigrate.store.live import ThroughputReader, offer_throughputs

CreateContainer = Callable[[DatabaseProxy, dict[str, Any], Mapping[str, int] | None], Any]

log = structlog.get_logger("cosmigrate")
MANIFEST = "manifest.json"
DEFINITION = "definition.json"
FORMAT = 1
EXPORT_PAGE_SIZE = 500
HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class ContainerBackup:
    """One exported container: how many documents, and the sha256 of each of its files (by file name)."""

    name: str
    count: int
    files: dict[str, str]

    @property
    def documents_file(self) -> str:
        return next(name for name in self.files if name.startswith("documents."))


@dataclass(frozen=True)
class Manifest:
    """What an export folder holds; ``manifest.json`` is this, as JSON."""

    database: str
    created: str
    containers: dict[str, ContainerBackup] = field(default_factory=dict)
    format: int = FORMAT

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "database": self.database,
            "created": self.created,
            "containers": {c.name: {"count": c.count, "files": c.files} for c in self.containers.values()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        containers = {
            name: ContainerBackup(name, int(entry["count"]), {str(k): str(v) for k, v in entry["files"].items()})
            for name, entry in data["containers"].items()
        }
        return cls(str(data["database"]), str(data["created"]), containers, int(data["format"]))


@dataclass(frozen=True)
class ImportTotals:
    """What an import did: documents upserted per container, containers it created, RU and time."""

    documents: dict[str, int]
    created: tuple[str, ...]
    ru: float
    seconds: float

    @property
    def total(self) -> int:
        return sum(self.documents.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "documents": dict(self.documents),
            "total": self.total,
            "created": list(self.created),
            "ru": round(self.ru, 2),
            "seconds": round(self.seconds, 2),
        }


class _HashingWriter(io.RawIOBase):
    """A binary sink that hashes what passes through it on its way to a file (one pass over the data)."""

    def __init__(self, target: IO[bytes]) -> None:
        self.target = target
        self.sha = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self.sha.update(chunk)
        self.target.write(chunk)
        return len(chunk)


# ---- export ------------------------------------------------------------------------------------------------


def export_containers(
    database: DatabaseProxy,
    names: list[str] | None,
    out_dir: Path,
    gzip: bool = False,
    *,
    page_size: int = EXPORT_PAGE_SIZE,
    priority: Priority | None = "Low",
    throughputs: ThroughputReader = offer_throughputs,
) -> Manifest:
    """Export ``names`` (every container of the database when None) into ``out_dir``; returns the manifest.
    ``throughputs`` reads each container's own throughput (the offers, or Azure Resource Manager).

    Documents are read page by page per feed range and written as they come, so memory does not grow with the
    container. The export is not a snapshot: documents written during it may or may not be in it. Run it while
    writers are stopped when that matters.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if names is None:
        names = sorted(
            resilient(f"list the containers of {database.id}", lambda: [c["id"] for c in database.list_containers()])
        )
    requests = Requests(None, priority)
    containers: dict[str, ContainerBackup] = {}
    for name in names:
        containers[name] = _export_container(database, name, out_dir, gzip, page_size, requests, throughputs)
    manifest = Manifest(database.id, datetime.now(UTC).isoformat(timespec="seconds"), containers)
    temporary = out_dir / (MANIFEST + ".tmp")
    temporary.write_text(json.dumps(manifest.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(temporary, out_dir / MANIFEST)
    log.info("export done", database=database.id, folder=str(out_dir), containers=len(containers))
    return manifest


def _export_container(
    database: DatabaseProxy,
    name: str,
    out_dir: Path,
    gzip: bool,
    page_size: int,
    requests: Requests,
    throughputs: ThroughputReader,
) -> ContainerBackup:
    properties = read_container(database, name)
    if properties is None:
        raise BackupError(f"export: container {name} does not exist in database {database.id}; check the name")
    folder = out_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    definition = {k: v for k, v in properties.items() if k not in SYSTEM_PROPERTIES}
    found = throughputs(database, [properties])  # None: unknown to this credential, saved without it
    throughput = found[0].get(name) if found else None
    if throughput:
        definition["throughput"] = throughput
    definition_bytes = (json.dumps(definition, indent=2, sort_keys=True) + "\n").encode()
    (folder / DEFINITION).write_bytes(definition_bytes)
    container = database.get_container_client(name)
    documents_name = "documents.jsonl.gz" if gzip else "documents.jsonl"
    count = 0
    with (folder / documents_name).open("wb") as raw:
        hashing = _HashingWriter(raw)
        sink: IO[bytes] = (
            gzip_module.GzipFile(filename="", fileobj=hashing, mode="wb", mtime=0) if gzip else hashing  # type: ignore[assignment]
        )
        try:
            for feed_range in read_feed_ranges(container):
                continuation: str | None = None
                while True:
                    documents, continuation = read_page(
                        container, requests, "SELECT * FROM c", None, feed_range, continuation, page_size
                    )
                    if documents:
                        lines = "".join(json.dumps(d, ensure_ascii=False, sort_keys=True) + "\n" for d in documents)
                        sink.write(lines.encode())
                        count += len(documents)
                    if continuation is None:
                        break
        finally:
            if gzip:
                sink.close()
    log.info("exported", container=name, documents=count, file=str(folder / documents_name))
    return ContainerBackup(
        name,
        count,
        {DEFINITION: hashlib.sha256(definition_bytes).hexdigest(), documents_name: hashing.sha.hexdigest()},
    )


# ---- import ------------------------------------------------------------------------------------------------


def read_manifest(in_dir: Path) -> Manifest:
    path = Path(in_dir) / MANIFEST
    try:
        return Manifest.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise BackupError(
            f"import: {path} is missing; point at a folder written by export_containers (an export that did not "
            "finish has no manifest)"
        ) from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BackupError(f"import: {path} is not a valid manifest ({type(exc).__name__}: {exc})") from None


def verify_backup(in_dir: Path, manifest: Manifest, names: list[str]) -> None:
    """Every file of ``names`` exists and has the sha256 (and the documents file the line count) of the manifest."""
    for name in names:
        entry = manifest.containers[name]
        for file_name, expected in entry.files.items():
            path = Path(in_dir) / name / file_name
            if not path.is_file():
                raise BackupError(f"import: {path} is missing from the backup; restore it or export again")
            sha = hashlib.sha256()
            with path.open("rb") as handle:
                for chunk in iter(lambda: handle.read(HASH_CHUNK), b""):
                    sha.update(chunk)
            if sha.hexdigest() != expected:
                raise BackupError(
                    f"import: {path} does not match the manifest (sha256 {sha.hexdigest()[:12]}…, manifest says "
                    f"{expected[:12]}…): it was changed or truncated; refusing to import it, export again"
                )
        lines = sum(1 for _ in _document_lines(Path(in_dir) / name / entry.documents_file))
        if lines != entry.count:
            raise BackupError(f"import: {name} holds {lines} documents, the manifest says {entry.count}; export again")


def check_backup(in_dir: Path, names: list[str] | None = None) -> tuple[Manifest, list[str]]:
    """The manifest and the containers to import, after checking every file of those against it."""
    manifest = read_manifest(in_dir)
    selected = list(manifest.containers) if names is None else list(names)
    unknown = [n for n in selected if n not in manifest.containers]
    if unknown:
        raise BackupError(
            f"import: {', '.join(unknown)} not in the backup {in_dir} (it holds {', '.join(manifest.containers)})"
        )
    verify_backup(in_dir, manifest, selected)
    return manifest, selected


def import_containers(
    database: DatabaseProxy,
    in_dir: Path,
    names: list[str] | None = None,
    concurrency: int = 8,
    *,
    priority: Priority | None = "Low",
    checked: tuple[Manifest, list[str]] | None = None,
    adopt_live: bool = False,
    throughputs: ThroughputReader = offer_throughputs,
    create: CreateContainer | None = None,
) -> ImportTotals:
    """Import ``names`` (every container of the backup when None) from ``in_dir`` into ``database``.

    Checks every file against the manifest first (a changed or truncated file is refused before anything is
    written). A missing container is created from its saved definition (throughput included); an existing one
    must have the same create-only properties (else :class:`~cosmigrate.errors.DefinitionConflict`) and the same
    mutable ones (else :class:`~cosmigrate.errors.DefinitionDiffers`, naming them), unless ``adopt_live``: then
    the live container's are kept. ``throughputs`` and ``create`` read throughput and create a container (the
    data plane's by default; Azure Resource Manager's for an Entra ID sign-in). Documents are upserted without
    system properties with ``concurrency`` threads, so running an interrupted import again is safe; they
    overwrite documents with the same id and partition key. A document the service refuses for good stops the import
    (:class:`~cosmigrate.data.errors.ImportFailed`). ``checked``: what :func:`check_backup` returned, when the
    caller checked the files already (before creating a database for them).
    """
    started = time.monotonic()
    in_dir = Path(in_dir)
    manifest, selected = checked or check_backup(in_dir, names)
    requests = Requests(None, priority)
    created: list[str] = []
    documents: dict[str, int] = {}
    for name in selected:
        if ensure_container(database, in_dir, name, adopt_live, throughputs, create):
            created.append(name)
        entry = manifest.containers[name]
        documents[name] = _load_documents(database, name, in_dir / name / entry.documents_file, concurrency, requests)
        _check_count(database, name, entry.count, exact=name in created, requests=requests)
        log.info("imported", container=name, documents=documents[name])
    return ImportTotals(documents, tuple(created), requests.ru, time.monotonic() - started)


def _check_count(database: DatabaseProxy, name: str, expected: int, exact: bool, requests: Requests) -> None:
    """A container this import created holds exactly the backup's documents; an existing one at least as many."""
    found = count_documents(database.get_container_client(name), requests)
    if found != expected if exact else found < expected:
        raise ImportFailed(
            f"import into {name}: it holds {found} documents after the import, the backup has {expected}; "
            "run the import again, and check that nothing deletes documents meanwhile"
        )


def saved_definition(in_dir: Path, name: str) -> tuple[ContainerDef, dict[str, Any]]:
    """The saved definition of ``name`` in the registry's model, and the stored properties as saved (the keys
    the registry does not model are kept from those, as the service returned them)."""
    raw = json.loads((Path(in_dir) / name / DEFINITION).read_text(encoding="utf-8"))
    raw = {**{k: v for k, v in raw.items() if k not in SYSTEM_PROPERTIES}, "id": name}
    return ContainerDef.from_properties(raw), raw


def live_definition(
    database: DatabaseProxy, name: str, with_throughput: bool, throughputs: ThroughputReader = offer_throughputs
) -> ContainerDef | None:
    existing = read_container(database, name)
    if existing is None:
        return None
    if with_throughput:
        found = throughputs(database, [existing])
        if found is not None:
            existing = {**existing, "throughput": found[0].get(name)}
    return ContainerDef.from_properties(existing)


def differing(live: ContainerDef, saved: ContainerDef) -> list[Property]:
    """The properties of ``saved`` the live container does not have as saved (those the backup does not
    declare, such as a throughput it did not have, are not compared)."""
    return [p for p in saved.properties() if not p.same(saved.get(p.name), live.get(p.name))]


def ensure_container(
    database: DatabaseProxy,
    in_dir: Path,
    name: str,
    adopt_live: bool = False,
    throughputs: ThroughputReader = offer_throughputs,
    create: CreateContainer | None = None,
) -> bool:
    """Create the container from its saved definition; True if this call created it. An existing one must have
    the saved create-only properties, and the saved mutable ones unless ``adopt_live``."""
    saved, raw = saved_definition(in_dir, name)
    live = live_definition(database, name, saved.declares("throughput"), throughputs)
    if live is None:
        body = {**{k: v for k, v in raw.items() if k not in REGISTRY}, **saved.to_body()}
        (create or offers.create_provisioned)(database, body, saved.throughput)
        return True
    found = differing(live, saved)
    for prop in found:
        if prop.mutability is Mutability.CREATE_ONLY:
            live_value, saved_value = prop.display(live.get(prop.name)), prop.display(saved.get(prop.name))
            raise DefinitionConflict(
                f"import: container {name} exists in {database.id} with {prop.label} {live_value}, the backup has "
                f"{saved_value}; it cannot change in place: import into another database, or delete the container "
                "first"
            )
    if found and not adopt_live:
        said = "; ".join(
            d.describe("in the backup").removeprefix(f"{name}: ")
            for p in found
            for d in p.differences(name, saved.get(p.name), live.get(p.name))
        )
        raise DefinitionDiffers(
            f"import: container {name} exists in {database.id} with other settings than the backup ({said}); "
            "restored documents would live under the live ones (a shorter TTL expires them at once): run again "
            "with --adopt-live to keep the live settings, or --apply-definition to bring the container to the "
            "backup's first",
            container=name,
            properties=[p.name for p in found],
        )
    return False


def _document_lines(path: Path) -> Iterator[str]:
    if path.name.endswith(".gz"):
        with gzip_module.open(path, "rt", encoding="utf-8") as unzipped:
            yield from (line for line in unzipped if line.strip())
    else:
        with path.open(encoding="utf-8") as plain:
            yield from (line for line in plain if line.strip())


def _load_documents(database: DatabaseProxy, name: str, path: Path, concurrency: int, requests: Requests) -> int:
    """Upsert every line of ``path`` with ``concurrency`` threads; a bounded queue keeps memory flat."""
    container = database.get_container_client(name)
    work: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=concurrency * 16)
    errors: list[BaseException] = []
    stop = threading.Event()
    done = [0]
    lock = threading.Lock()

    def writer() -> None:
        while not stop.is_set():
            try:
                document = work.get(timeout=0.2)
            except queue.Empty:
                continue
            if document is None:
                return
            body = without_system_properties(document)
            try:
                run_step(
                    f"import document {body.get('id')} into {name}",
                    lambda body=body: requests.call(lambda o: container.upsert_item(body, **o)),  # type: ignore[misc]
                )
            except BaseException as exc:
                errors.append(exc)
                stop.set()
                return
            with lock:
                done[0] += 1

    threads = [threading.Thread(target=writer, daemon=True, name=f"cosmigrate-import-{i}") for i in range(concurrency)]
    for thread in threads:
        thread.start()
    try:
        for line in _document_lines(path):
            if not _put(work, json.loads(line), stop):
                break
        for _ in threads:
            if not _put(work, None, stop):
                break
    except BaseException:
        stop.set()
        raise
    finally:
        for thread in threads:
            thread.join()
    if errors:
        error = errors[0]
        if isinstance(error, DocumentFailed):
            raise ImportFailed(f"import into {name}: {error}; fix the document in {path} or the container") from error
        raise error
    return done[0]


def _put(work: queue.Queue[dict[str, Any] | None], item: dict[str, Any] | None, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            work.put(item, timeout=0.2)
            return True
        except queue.Full:
            continue
    return False
