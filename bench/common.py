"""What the benchmarks share: the local endpoint (and a counting proxy in front of it), generated revisions,
and an environment without the developer's connection settings."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cosmigrate.testing.endpoint import start
from tests.harness.local_endpoint import start_fault_proxy

ROOT = Path(__file__).resolve().parents[1]

CREATE_SCRIPT = '''"""Create container c{n}."""

revision = "{rev}"
down_revision = {down}


def upgrade(op):
    op.create_container("c{n}", partition_key="/pk", indexing_policy={{"includedPaths": [{{"path": "/*"}}]}})


def downgrade(op):
    op.delete_container("c{n}")
'''
NOOP_SCRIPT = '''"""No-op {n}."""

revision = "{rev}"
down_revision = {down}


def upgrade(op):
    pass


def downgrade(op):
    pass
'''


def write_revisions(folder: Path, count: int, template: str = CREATE_SCRIPT) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(1, count + 1):
        rev, down = f"{n:03d}", repr(f"{n - 1:03d}") if n > 1 else "None"
        (folder / f"{rev}_c{n}.py").write_text(template.format(n=n, rev=rev, down=down))


def quiet_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COSMOS_", "COSMIGRATE_"))}
    env["PYTHONWARNINGS"] = "ignore"
    return env


@contextmanager
def endpoint_for_bench(index_seconds: float = 0.2) -> Iterator[str]:
    server = start(index_seconds)
    try:
        yield server.url
    finally:
        server.stop()


@contextmanager
def counting_proxy(upstream: str) -> Iterator[str]:
    proxy = start_fault_proxy(upstream, 0, 0, 0, seed=1)
    try:
        yield proxy.url
    finally:
        proxy.stop()
