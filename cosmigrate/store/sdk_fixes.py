"""Workarounds for azure-cosmos behaviour that breaks a client shared by threads, applied once on import.

**Response headers are shared by every thread of a client** (azure-cosmos 4.17). ``CosmosClientConnection``
keeps one ``last_response_headers`` attribute: each request assigns its response's headers to it, and the retry
utility, when a request ends, writes the throttle counters (``x-ms-throttle-retry-count``…) into whatever dict the
attribute holds at that moment, which is the previous request's headers, often another thread's. That thread may
be iterating the same dict at that moment: a query page copies its headers into the pager's
(``response_headers.update(...)``), ``get_response_headers()`` copies them. Inserting a key into a
``requests.structures.CaseInsensitiveDict`` (an ``OrderedDict`` inside) during that iteration raises
``RuntimeError: OrderedDict mutated during iteration`` in the reading thread; in a data step with writer
threads, throttling and a concurrent application, that stopped a transform half-way.

The fix keeps ``last_response_headers`` per thread: each thread sees and mutates the headers of its own last
request only, which is also what every SDK call site that reads the attribute right after its own request expects
(``response_hook(self.client_connection.last_response_headers, …)``). Nothing is shared, so nothing is locked.
Tested in ``tests/test_data_faults.py`` (another thread's request leaves a response's headers untouched; the
fault-proxy transform with a concurrent writer).
"""

from __future__ import annotations

import threading
from typing import Any

_LOCAL = "_cosmigrate_thread_headers"
_applied = False


def _headers_of_this_thread(connection: Any) -> Any:
    local = connection.__dict__.get(_LOCAL)
    if local is None:
        local = connection.__dict__.setdefault(_LOCAL, threading.local())
    headers = getattr(local, "headers", None)
    if headers is None:
        from requests.structures import CaseInsensitiveDict

        headers = local.headers = CaseInsensitiveDict()
    return headers


def _set_headers_of_this_thread(connection: Any, headers: Any) -> None:
    local = connection.__dict__.get(_LOCAL)
    if local is None:
        local = connection.__dict__.setdefault(_LOCAL, threading.local())
    local.headers = headers


def apply() -> None:
    """Make ``CosmosClientConnection.last_response_headers`` per thread (idempotent). Skipped, leaving the SDK
    as it is, if a future version no longer has the class."""
    global _applied
    if _applied:
        return
    try:
        from azure.cosmos._cosmos_client_connection import CosmosClientConnection
    except ImportError:  # pragma: no cover - a future SDK layout
        return
    CosmosClientConnection.last_response_headers = property(  # type: ignore[assignment]
        _headers_of_this_thread, _set_headers_of_this_thread, doc="The headers of this thread's last response."
    )
    _applied = True


apply()
