"""Seed a container quickly for tests and benchmarks, through the REST API, with ``tests/harness/seed.js``.

The azure-cosmos client spends about 1.4 ms of CPU per request, so a Python process tops out near 700
writes/s; the Node seeder keeps 32 signed upserts in flight over keep-alive connections and does 20,000
documents in about 2 s against the local endpoint. Ordinary single-document writes, no transactional batch.
Documents: :func:`document`.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from cosmigrate.config import EMULATOR_KEY

SEED_JS = Path(__file__).resolve().parent / "seed.js"
PAD = "x" * 100


def document(i: int, partitions: int = 97) -> dict[str, Any]:
    """The document the seeder writes for ``i`` (without system properties)."""
    return {"id": f"d{i:06d}", "pk": f"p{i % partitions}", "n": i, "pad": PAD}


def seed(url: str, database: str, container: str, count: int, partitions: int = 97, start: int = 0) -> None:
    """Upsert ``document(start..start+count-1)`` into an existing container."""
    done = subprocess.run(
        ["node", str(SEED_JS), url, EMULATOR_KEY, database, container, str(start), str(start + count), str(partitions)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"seeding {container} failed: {done.stderr.strip()[-500:]}")
