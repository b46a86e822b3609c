"""Start the project's local Cosmos DB endpoint (``emulator/server.js``) and the fault proxy for tests.

Each is a real HTTPS server in its own Node process on a free loopback port; nothing here imitates Cosmos DB
in Python. ``npm ci`` runs first when ``emulator/node_modules`` is missing, so a fresh clone needs nothing else.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from cosmigrate.config import EMULATOR_KEY

ROOT = Path(__file__).resolve().parents[2]
EMULATOR = ROOT / "emulator"
FAULT_PROXY = Path(__file__).resolve().parent / "fault_proxy.js"


def ensure_node_modules() -> None:
    if (EMULATOR / "node_modules" / "@vercel" / "cosmosdb-server").is_dir():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is needed to install the local Cosmos DB endpoint (emulator/package.json)")
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=EMULATOR, check=True, stdout=subprocess.DEVNULL)


@dataclass
class NodeServer:
    """A Node process that printed ``listening HOST:PORT``."""

    process: subprocess.Popen[str]
    url: str
    log: Path

    @classmethod
    def start(cls, script: Path, *args: str, env: dict[str, str] | None = None) -> NodeServer:
        # stderr goes to a file: a pipe nobody drains would block the server once full
        log = tempfile.NamedTemporaryFile("w+", prefix=f"{script.stem}-", suffix=".log", delete=False)  # noqa: SIM115
        process = subprocess.Popen(
            ["node", str(script), "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env={**os.environ, **(env or {})},
        )
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line.startswith("listening "):
            process.kill()
            log.seek(0)
            raise RuntimeError(f"{script.name} did not start: {line!r} {log.read()[-2000:]}")
        return cls(process, "https://" + line.split(" ", 1)[1], Path(log.name))

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()
        self.log.unlink(missing_ok=True)


def start_endpoint(index_seconds: float = 1.0, key: str = EMULATOR_KEY) -> NodeServer:
    """The endpoint checks request signatures against ``key``, given explicitly so that a ``COSMOS_LOCAL_KEY`` in
    the developer's environment (meant for ``make migrate``) cannot make the tests' clients fail with 401."""
    ensure_node_modules()
    env = {"COSMOS_LOCAL_INDEX_SECONDS": str(index_seconds), "COSMOS_LOCAL_KEY": key}
    return NodeServer.start(EMULATOR / "server.js", env=env)


def start_fault_proxy(upstream: str, rate429: float, rate503: float, rate_reset: float, seed: int) -> NodeServer:
    return NodeServer.start(
        FAULT_PROXY,
        "--upstream", upstream,
        "--rate429", str(rate429),
        "--rate503", str(rate503),
        "--rate-reset", str(rate_reset),
        "--seed", str(seed),
    )  # fmt: skip


def fault_counts(proxy_url: str) -> dict[str, int]:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with urllib.request.urlopen(proxy_url + "/__faults", context=context, timeout=10) as response:
        return dict(json.load(response))


def database_requests(proxy_url: str) -> int:
    """Requests the proxy forwarded to /dbs/…: those the tool makes, without the client's own account reads
    (endpoint discovery, which the client repeats on a timer of its own)."""
    counts = fault_counts(proxy_url)
    return counts["forwarded"] - counts["account"]
