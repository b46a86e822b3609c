"""How long ``cosmigrate up`` takes to give up on a database that stops answering in the middle of a data step.

A revision transforms 6,000 documents through the fault proxy; once about 1,000 went through fn the proxy goes
down, either refusing connections (a database that is gone) or accepting them and answering nothing (a network
that drops the answers). The figure is the time from the outage to the exit of ``up``, next to the bound the
README documents for it (``--outage-timeout`` plus the last requests' timeouts), with the outage timeout at its
default and at 10 s. Whole processes; ``python -m bench.outage``.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path
from tempfile import TemporaryDirectory

import urllib3
from azure.cosmos import CosmosClient

from bench import common
from cosmigrate.config import DEFAULT_OUTAGE_TIMEOUT, EMULATOR_KEY
from cosmigrate.scripts import sumfile
from cosmigrate.store.outage import end_bound
from tests.harness.data import seeded_container
from tests.harness.local_endpoint import start_fault_proxy, take_down

urllib3.disable_warnings()
WORD = {"refuse": "refused", "hang": "unanswered"}
SCRIPT = '''"""Give every order its points."""
revision = "001"
down_revision = None


def upgrade(op):
    def add(document):
        with open({calls!r}, "a") as calls:
            calls.write("x\\n")
        return {{**document, "points": document.get("points", 0) + 100}}

    op.transform_items("orders", add)


def downgrade(op):
    pass
'''


def one_outage(endpoint: str, mode: str, outage_timeout: float, folder: Path) -> float:
    """Seconds from the outage to the exit of ``up``."""
    name = f"outage{uuid.uuid4().hex[:8]}"
    calls = folder / f"{name}.calls"
    migrations = folder / name
    migrations.mkdir()
    (migrations / "001_points.py").write_text(SCRIPT.format(calls=str(calls)))
    sumfile.write(migrations)
    client = CosmosClient(endpoint, credential=EMULATOR_KEY, connection_verify=False)
    database = client.create_database(name)
    seeded_container(endpoint, database, "orders", 6000)
    proxy = start_fault_proxy(endpoint, 0, 0, 0, seed=1, outage=mode)
    env = {
        **common.quiet_env(),
        "COSMOS_ENDPOINT": proxy.url,
        "COSMOS_DATABASE": name,
        "COSMIGRATE_MIGRATIONS": str(migrations),
        "COSMIGRATE_BACKUP_DIR": str(folder / "backups"),
        "COSMIGRATE_OUTAGE_TIMEOUT": f"{outage_timeout:g}",
    }
    try:
        run = subprocess.Popen(
            [sys.executable, "-m", "cosmigrate", "up"],
            env=env,
            cwd=folder,
            stdout=subprocess.DEVNULL,
            stderr=(folder / f"{name}.log").open("w"),
        )
        while (not calls.exists() or calls.stat().st_size < 2000) and run.poll() is None:
            time.sleep(0.05)
        take_down(proxy)
        cut = time.monotonic()
        run.wait(timeout=3600)
        return time.monotonic() - cut
    finally:
        proxy.stop()
        client.delete_database(name)


def measure() -> dict[str, float]:
    figures: dict[str, float] = {}
    with common.endpoint_for_bench() as endpoint, TemporaryDirectory() as tmp:
        for timeout in (DEFAULT_OUTAGE_TIMEOUT, 10.0):
            figures[f"bound for --outage-timeout {timeout:g} (s)"] = round(end_bound(timeout), 1)
            for mode in ("refuse", "hang"):
                seconds = one_outage(endpoint, mode, timeout, Path(tmp))
                figures[f"up ends, connections {WORD[mode]}, --outage-timeout {timeout:g} (s)"] = round(seconds, 1)
    return figures


def main() -> list[tuple[str, ...]]:
    figures = measure()
    print("== an outage in the middle of a data step")
    for name, value in figures.items():
        print(f"{name:<66} {value:g}")
    rows: list[tuple[str, ...]] = []
    for timeout in (DEFAULT_OUTAGE_TIMEOUT, 10.0):
        bound = figures[f"bound for --outage-timeout {timeout:g} (s)"]
        for mode in ("refuse", "hang"):
            seconds = figures[f"up ends, connections {WORD[mode]}, --outage-timeout {timeout:g} (s)"]
            rows.append(
                (
                    f"`up` ends after an outage (connections {WORD[mode]}), --outage-timeout {timeout:g}: s / bound",
                    f"{seconds:g} / {bound:g}",
                    "<= bound",
                    "python -m bench.outage",
                )
            )
    return rows


if __name__ == "__main__":
    for row in main():
        print("| " + " | ".join(row) + " |")
