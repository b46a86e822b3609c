"""Keep-alive: point reads per second through the project's launcher vs the npm package's own CLI (which closes
every connection), measured in the same run (``python -m bench.keepalive``)."""

from __future__ import annotations

import subprocess
import time
import uuid

from azure.cosmos import CosmosClient, PartitionKey

from bench.common import endpoint_for_bench
from cosmigrate.config import EMULATOR_KEY
from tests.harness.local_endpoint import package_cli


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


def measure(url: str) -> dict[str, float]:
    launcher = reads_per_second(url)
    port = 18000 + uuid.uuid4().int % 2000
    process = subprocess.Popen(
        ["node", str(package_cli()), "--port", str(port), "--host", "127.0.0.1"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        process.stdout.readline()
        plain = reads_per_second(f"https://127.0.0.1:{port}")
    finally:
        process.terminate()
        process.wait()
    return {
        "launcher (keep-alive), reads/s": round(launcher),
        "package CLI, reads/s": round(plain),
        "ratio": round(launcher / plain, 1),
    }


if __name__ == "__main__":
    with endpoint_for_bench() as endpoint:
        for name, value in measure(endpoint).items():
            print(f"{name:<66} {value:g}")
