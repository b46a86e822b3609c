"""The fault proxy for tests, in front of the local Cosmos DB endpoint that cosmigrate ships
(``cosmigrate.testing.endpoint``).

Each is a real HTTPS server in its own Node process on a free loopback port; nothing here imitates Cosmos DB
in Python.
"""

from __future__ import annotations

import json
import signal
import ssl
import urllib.request
from pathlib import Path

from cosmigrate.config import EMULATOR_KEY
from cosmigrate.testing.endpoint import NodeServer, install, start

FAULT_PROXY = Path(__file__).resolve().parent / "fault_proxy.js"


def start_endpoint(
    index_seconds: float = 1.0, key: str = EMULATOR_KEY, entra: dict[str, list[str]] | None = None
) -> NodeServer:
    """The endpoint checks request signatures against ``key``, given explicitly so that a ``COSMOS_LOCAL_KEY`` in
    the developer's environment (meant for ``make migrate``) cannot make the tests' clients fail with 401.
    ``entra``: Entra ID mode with these role assignments, tokens from the test token provider."""
    from cosmigrate.testing.entra import SECRET

    return start(index_seconds, key=key, entra=entra, entra_secret=SECRET)


def package_cli() -> Path:
    """The npm package's own CLI (no keep-alive, none of the launcher's corrections), for the benchmark."""
    return install() / "node_modules" / "@vercel" / "cosmosdb-server" / "lib" / "cli.js"


def start_fault_proxy(
    upstream: str,
    rate429: float,
    rate503: float,
    rate_reset: float,
    seed: int,
    account_delay_ms: int = 0,
    outage: str = "refuse",
) -> NodeServer:
    return NodeServer.start(
        FAULT_PROXY,
        "--port", "0",
        "--upstream", upstream,
        "--rate429", str(rate429),
        "--rate503", str(rate503),
        "--rate-reset", str(rate_reset),
        "--seed", str(seed),
        "--account-delay-ms", str(account_delay_ms),
        "--outage", outage,
        "--tls-dir", str(install() / "node_modules" / "@vercel" / "cosmosdb-server"),
    )  # fmt: skip


def take_down(proxy: NodeServer) -> None:
    """An outage: the proxy refuses connections (or, started with ``outage="hang"``, answers nothing) until
    :func:`bring_back`; returns once it is down."""
    _signal(proxy, signal.SIGUSR1, "down")


def bring_back(proxy: NodeServer) -> None:
    """The end of the outage: the proxy answers again, on the same port; returns once it does."""
    _signal(proxy, signal.SIGUSR2, "up")


def _signal(proxy: NodeServer, number: int, acknowledged: str) -> None:
    assert proxy.process.stdout is not None
    proxy.process.send_signal(number)
    line = proxy.process.stdout.readline().strip()
    assert line == acknowledged, f"the fault proxy answered {line!r} to signal {number}"


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
