"""Data engine benchmarks: ``python -m bench.data`` (also run by ``make bench``). Figures are ratios measured
side by side in the same run, against the same local endpoint.

a. Throughput: transform_items over N documents (checkpoints on, as the runner uses it) against a plain script
   doing the same ETag-conditional read-modify-write with the same number of threads and nothing else
   (the SDK's own paging, an executor, a bound on documents in flight). Runs alternate, best of each. Goal ≥ 0.9.
b. Memory: peak RSS of transform_items, copy_container and export_containers at 100,000 vs 10,000 documents,
   each run in a fresh process of its own. Goal ≤ 1.2 (memory does not grow with the container).

Sizes: BENCH_DATA_DOCS (default 20000) for (a), BENCH_DATA_SMALL / BENCH_DATA_LARGE (10000 / 100000) for (b).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import urllib3
from azure.core import MatchConditions
from azure.cosmos import ContainerProxy, CosmosClient, PartitionKey

from bench.common import ROOT
from tests.harness.data import client_for
from tests.harness.local_endpoint import start_endpoint
from tests.harness.seed import seed

urllib3.disable_warnings()
CONCURRENCY = 8
PAGE_SIZE = 100


def plain_script(container: ContainerProxy, value: int) -> float:
    """What a careful user would write by hand: read pages, rewrite each document with its ETag, 8 threads."""
    in_flight = threading.BoundedSemaphore(2 * PAGE_SIZE)

    def rewrite(document: dict[str, Any]) -> None:
        try:
            document["v"] = value
            container.replace_item(
                document["id"], document, etag=document["_etag"], match_condition=MatchConditions.IfNotModified
            )
        finally:
            in_flight.release()

    started = time.monotonic()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        pages = container.query_items("SELECT * FROM c", enable_cross_partition_query=True, max_item_count=PAGE_SIZE)
        futures = []
        for document in pages:
            in_flight.acquire()
            futures.append(pool.submit(rewrite, document))
        for future in futures:
            future.result()
    return time.monotonic() - started


def engine(container: ContainerProxy, history: ContainerProxy, value: int) -> float:
    from cosmigrate.data import ContainerCheckpointStore, transform_items

    started = time.monotonic()
    totals = transform_items(
        container,
        lambda d: {**d, "v": value},
        concurrency=CONCURRENCY,
        page_size=PAGE_SIZE,
        checkpoints=ContainerCheckpointStore(history),
        checkpoint_key=f"bench-{value}",
    )
    assert totals.written == totals.read, totals
    return time.monotonic() - started


def measure_throughput(url: str, count: int, rounds: int = 2) -> dict[str, float]:
    with client_for(url) as client:
        database = client.create_database(f"benchtp{os.getpid()}")
        try:
            container = database.create_container("items", partition_key=PartitionKey("/pk"))
            history = database.create_container("cosmigrate_history", partition_key=PartitionKey("/scope"))
            seed(url, database.id, "items", count)
            plain_times, engine_times = [], []
            for round_number in range(rounds):
                plain_times.append(plain_script(container, 2 * round_number))
                engine_times.append(engine(container, history, 2 * round_number + 1))
        finally:
            client.delete_database(database.id)
    plain_rate, engine_rate = count / min(plain_times), count / min(engine_times)
    return {
        f"plain script, {count} documents (items/s, best of {rounds})": round(plain_rate),
        f"transform_items, {count} documents (items/s, best of {rounds})": round(engine_rate),
        "ratio transform_items / plain (goal >= 0.9)": round(engine_rate / plain_rate, 2),
    }


# ---- peak RSS, each operation in a process of its own ------------------------------------------------------


def peak_rss_kib() -> int:
    """This process's peak resident set (VmHWM). Not ``getrusage().ru_maxrss``: on Linux a child started by fork
    and exec reports at least its parent's peak there, so a big parent would hide the child's own figure."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def _child(operation: str, url: str, database_name: str, out: str) -> None:
    """Runs in a fresh interpreter: one operation, then prints its peak RSS (KiB) as JSON."""
    import structlog

    from cosmigrate.data import copy_container, export_containers, transform_items

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))
    with client_for(url) as client:
        database = client.get_database_client(database_name)
        source = database.get_container_client("items")
        if operation == "transform":
            done = transform_items(source, lambda d: {**d, "v": 1}, concurrency=CONCURRENCY).written
        elif operation == "copy":
            done = copy_container(source, database.get_container_client("copy"), concurrency=CONCURRENCY).written
        else:
            done = export_containers(database, ["items"], Path(out), gzip=True).containers["items"].count
    print(json.dumps({"peak_rss_kib": peak_rss_kib(), "documents": done}))


def peak_rss(client: CosmosClient, operation: str, url: str, count: int) -> tuple[int, float]:
    database = client.create_database(f"benchrss{operation}{count}")
    try:
        database.create_container("items", partition_key=PartitionKey("/pk"))
        database.create_container("copy", partition_key=PartitionKey("/n"))
        seed(url, database.id, "items", count)
        with tempfile.TemporaryDirectory() as out:
            started = time.monotonic()
            done = subprocess.run(
                [sys.executable, "-m", "bench.data", "--child", operation, url, database.id, out],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=3600,
            )
            seconds = time.monotonic() - started
        if done.returncode != 0:
            raise RuntimeError(f"{operation} at {count}: {done.stderr[-2000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        if result["documents"] != count:
            raise RuntimeError(f"{operation} at {count} handled {result['documents']} documents")
        return int(result["peak_rss_kib"]), seconds
    finally:
        client.delete_database(database.id)


def measure_memory(url: str, small: int, large: int) -> dict[str, float]:
    figures: dict[str, float] = {}
    with client_for(url) as client:  # one client for the whole measure (its background refresh outlives calls)
        sizes = {
            operation: (peak_rss(client, operation, url, small), peak_rss(client, operation, url, large))
            for operation in ("transform", "copy", "export")
        }
    for operation, ((rss_small, seconds_small), (rss_large, seconds_large)) in sizes.items():
        figures[f"{operation}: peak RSS at {small} documents (MiB)"] = round(rss_small / 1024, 1)
        figures[f"{operation}: peak RSS at {large} documents (MiB)"] = round(rss_large / 1024, 1)
        figures[f"{operation}: ratio (goal <= 1.2)"] = round(rss_large / rss_small, 2)
        figures[f"{operation}: seconds at {small} documents"] = round(seconds_small, 1)
        figures[f"{operation}: seconds at {large} documents"] = round(seconds_large, 1)
    return figures


def main() -> list[tuple[str, ...]]:
    """Prints the figures; returns the rows of ``make bench``'s table."""
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    count = int(os.environ.get("BENCH_DATA_DOCS", "20000"))
    small = int(os.environ.get("BENCH_DATA_SMALL", "10000"))
    large = int(os.environ.get("BENCH_DATA_LARGE", "100000"))
    endpoint = start_endpoint()
    try:
        print("== data engine throughput (same endpoint, same run)")
        throughput = measure_throughput(endpoint.url, count)
        for name, value in throughput.items():
            print(f"{name:<60} {value:g}")
        print("== data engine peak memory (a process per run)")
        memory = measure_memory(endpoint.url, small, large)
        for name, value in memory.items():
            print(f"{name:<60} {value:g}")
    finally:
        endpoint.stop()
    rows: list[tuple[str, ...]] = [
        (
            f"`transform_items` items/s vs a plain threaded script, {count:,} documents",
            f"{throughput['ratio transform_items / plain (goal >= 0.9)']:g}",
            ">= 0.9",
            "python -m bench.data",
        )
    ]
    for operation in ("transform", "copy", "export"):
        rows.append(
            (
                f"peak RSS of `{operation}`, {large:,} vs {small:,} documents",
                f"{memory[f'{operation}: ratio (goal <= 1.2)']:g}",
                "<= 1.2",
                "python -m bench.data",
            )
        )
    return rows


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(*sys.argv[2:6])
    else:
        main()
