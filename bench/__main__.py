"""Benchmarks: ``make bench`` (or ``python -m bench``). Figures are counts and ratios within one run.

1. Requests per command to /dbs/..., counted by the fault proxy (all fault rates 0) in front of the local
   endpoint, leaving out the client's account reads (endpoint discovery, one per client and a timer of its own):
   ``status`` with 4 and with 40 revisions (it must not grow), and what ``up`` adds per revision.
2. Faults: up/down cycles of the project's migrations through the proxy (10% 429, 5% 503, 2% cut connections)
   against the same cycles straight to the endpoint: the time ratio and the faults injected.
3. Keep-alive: point reads per second through the project's launcher vs the package's own CLI (which closes
   every connection), as a ratio measured in the same run.
4. The data engine (bench/data.py, also ``python -m bench.data`` alone): transform_items against a plain script,
   and peak memory at 100,000 vs 10,000 documents.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import structlog
import urllib3
from azure.cosmos import CosmosClient, PartitionKey

from bench import data
from cosmigrate import logs
from cosmigrate.app import commands as command
from cosmigrate.config import EMULATOR_KEY, load_config
from tests.harness.local_endpoint import (
    EMULATOR,
    ROOT,
    NodeServer,
    database_requests,
    fault_counts,
    start_endpoint,
    start_fault_proxy,
)

urllib3.disable_warnings()
SCRIPT = '''"""Create container c{n}."""

revision = "{rev}"
down_revision = {down}


def upgrade(op):
    op.create_container("c{n}", partition_key="/pk", indexing_policy={{"includedPaths": [{{"path": "/*"}}]}})


def downgrade(op):
    op.delete_container("c{n}")
'''


def write_revisions(folder: Path, count: int) -> None:
    for n in range(1, count + 1):
        rev, down = f"{n:03d}", repr(f"{n - 1:03d}") if n > 1 else "None"
        (folder / f"{rev}_create_c{n}.py").write_text(SCRIPT.format(n=n, rev=rev, down=down))


def measure_requests(proxy: str) -> dict[str, float]:
    figures: dict[str, float] = {}
    per_revision = []
    for count in (4, 40):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            write_revisions(folder, count)
            config = load_config(
                {"endpoint": proxy, "database": f"bench{uuid.uuid4().hex[:8]}", "migrations": str(folder)}, environ={}
            )
            before = database_requests(proxy)
            command.status(config)
            figures[f"status requests, {count} revisions pending (no database yet)"] = database_requests(proxy) - before
            before = database_requests(proxy)
            command.up(config)
            up_requests = database_requests(proxy) - before
            figures[f"up requests, {count} revisions"] = up_requests
            per_revision.append((count, up_requests))
            before = database_requests(proxy)
            command.status(config)
            figures[f"status requests, {count} revisions applied"] = database_requests(proxy) - before
            before = database_requests(proxy)
            command.up(config)
            figures[f"up requests, nothing to do, {count} revisions applied"] = database_requests(proxy) - before
    (few, few_requests), (many, many_requests) = per_revision
    figures["up requests added per revision (from 4 to 40)"] = (many_requests - few_requests) / (many - few)
    return figures


def cycle_seconds(url: str, cycles: int) -> float:
    config = load_config({"endpoint": url, "database": f"bench{uuid.uuid4().hex[:8]}"}, environ={}, cwd=ROOT)
    started = time.monotonic()
    for _ in range(cycles):
        command.up(config)
        command.down(config, target="base")
    return time.monotonic() - started


def measure_faults(endpoint: str, cycles: int = 5) -> dict[str, float]:
    faulty = start_fault_proxy(endpoint, 0.10, 0.05, 0.02, seed=7)
    try:
        direct = cycle_seconds(endpoint, cycles)
        through = cycle_seconds(faulty.url, cycles)
        injected = fault_counts(faulty.url)
    finally:
        faulty.stop()
    return {
        f"{cycles} up/down cycles, straight (s)": round(direct, 1),
        f"{cycles} up/down cycles, through faults (s)": round(through, 1),
        "ratio": round(through / direct, 2),
        "requests forwarded": injected["forwarded"],
        "injected 429": injected["429"],
        "injected 503": injected["503"],
        "connections cut after the upstream executed": injected["reset"],
    }


def reads_per_second(url: str, seconds: float = 3.0) -> float:
    with CosmosClient(url, credential=EMULATOR_KEY, connection_verify=False) as client:
        database = client.create_database_if_not_exists("bench")
        container = database.create_container_if_not_exists("reads", partition_key=PartitionKey("/pk"))
        container.upsert_item({"id": "a", "pk": "a"})
        done, started = 0, time.monotonic()
        while time.monotonic() - started < seconds:
            container.read_item("a", partition_key="a")
            done += 1
        return done / (time.monotonic() - started)


def start_package_cli() -> tuple[subprocess.Popen[bytes], str]:
    port = 18000 + uuid.uuid4().int % 2000
    process = subprocess.Popen(
        ["node", str(EMULATOR / "node_modules" / "@vercel" / "cosmosdb-server" / "lib" / "cli.js"), "--port",
         str(port), "--host", "127.0.0.1"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    assert process.stdout is not None
    process.stdout.readline()
    return process, f"https://127.0.0.1:{port}"


def main() -> None:
    logs.configure(debug=False)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    endpoint = start_endpoint()
    proxy = start_fault_proxy(endpoint.url, 0, 0, 0, seed=1)
    servers: list[NodeServer] = [proxy, endpoint]
    try:
        print("== requests per command (counted at the proxy)")
        for name, value in measure_requests(proxy.url).items():
            print(f"{name:<60} {value:g}")
        print("== faults (same run, same endpoint)")
        for name, value in measure_faults(endpoint.url).items():
            print(f"{name:<60} {value:g}")
        print("== keep-alive (point reads per second, same run)")
        launcher = reads_per_second(endpoint.url)
        package, url = start_package_cli()
        try:
            plain = reads_per_second(url)
        finally:
            package.terminate()
            package.wait()
        print(f"{'launcher (keep-alive)':<60} {launcher:.0f}/s")
        print(f"{'package CLI (connection: close)':<60} {plain:.0f}/s")
        print(f"{'ratio':<60} {launcher / plain:.1f}x")
    finally:
        for server in servers:
            server.stop()
    data.main()


if __name__ == "__main__":
    sys.exit(main())
