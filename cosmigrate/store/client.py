"""The Cosmos DB side: the client and its retry settings, idempotent container helpers, index waits.

The azure-cosmos client retries throttling (429) and some transient errors itself; those options are set here
on purpose. What it cannot do is retry a write whose connection was cut after sending (the outcome is
unknown) or a 503 it gave up on. :func:`resilient` covers that: it retries a step only together with a
``recover`` read-back that tells whether the lost attempt took effect, so every step stays exactly-once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import urllib3
from azure.core.exceptions import AzureError, ClientAuthenticationError, ServiceRequestError, ServiceResponseError
from azure.cosmos import ContainerProxy, CosmosClient, DatabaseProxy
from azure.cosmos import exceptions as cosmos_errors

from cosmigrate import logs
from cosmigrate.config import Config
from cosmigrate.errors import CredentialError, DatabaseError, DatabaseUnreachable
from cosmigrate.store import outage, sdk_fixes
from cosmigrate.store.outage import StepRetry

log = logs.LOG
T = TypeVar("T")
sdk_fixes.apply()  # every client of this process keeps its response headers per thread (see sdk_fixes)

# Throttling: the client honours x-ms-retry-after-ms up to 9 times within 30 s per request (its defaults,
# made explicit so that changing them is a decision). Connection errors: 3 tries, 10 s to connect.
CLIENT_OPTIONS: dict[str, Any] = {
    "retry_throttle_total": 9,
    "retry_throttle_backoff_max": 30,
    "retry_total": 3,
    "retry_connect": 3,
    "retry_read": 3,
    "retry_backoff_max": 10,
    "connection_timeout": 10,
    "read_timeout": 60,
}
# Our own retries of a step, on top of the client's: statuses that mean "not done, try again later" and the
# connection errors after which the outcome is unknown.
TRANSIENT_STATUS = {408, 429, 449, 500, 502, 503}
SYSTEM_PROPERTIES = ("_rid", "_ts", "_self", "_etag", "_docs", "_sprocs", "_triggers", "_udfs", "_conflicts")
PROGRESS_HEADER = "x-ms-documentdb-collection-index-transformation-progress"


def request_timeouts(outage_timeout: float) -> dict[str, Any]:
    """The client's options, with no single request waiting longer for its connection or its answer than a third
    of the outage bound: a request that hangs is found failed early enough to leave retries within the bound."""
    return {
        **CLIENT_OPTIONS,
        "connection_timeout": min(CLIENT_OPTIONS["connection_timeout"], outage_timeout / 3),
        "read_timeout": min(CLIENT_OPTIONS["read_timeout"], outage_timeout / 3),
    }


def connect(config: Config) -> CosmosClient:
    # The SDK logs through the logging module (with no handler: Python's last resort, on stderr) from background
    # threads, e.g. "Health check task failed" when a client is closed while its endpoint refresh runs. What
    # matters reaches us as exceptions, said in one line; the SDK's own log lines are kept out of our output.
    logging.getLogger("azure").addHandler(logging.NullHandler())
    logging.getLogger("azure").propagate = False
    if not config.verify_tls:
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    try:
        return CosmosClient(
            config.endpoint,
            credential=credential(config),
            connection_verify=config.verify_tls,
            raw_request_hook=outage.on_request,
            **request_timeouts(config.outage_timeout),
        )
    except (AzureError, ValueError) as exc:
        raise failure(exc, f"cannot connect to {config.endpoint}", config) from None


def credential(config: Config) -> Any:
    """The account key, or for ``auth = "entra"`` azure-identity's ``DefaultAzureCredential`` (environment,
    workload identity, managed identity, Azure CLI…; ``AZURE_TOKEN_CREDENTIALS`` narrows the chain)."""
    if config.auth != "entra":
        return config.key
    if "entra" not in _credentials:  # one per process: each sign-in may run a command (az) or a request
        from azure.identity import DefaultAzureCredential

        _credentials["entra"] = DefaultAzureCredential()
    return _credentials["entra"]


_credentials: dict[str, Any] = {}


# How long closing a client waits for the SDK's background endpoint check (a few account reads; it shortens its
# own timeouts for an endpoint it already found unavailable).
CLOSE_WAIT_SECONDS = 5.0


def close(client: CosmosClient) -> None:
    """Close ``client`` once the endpoint check the SDK started with it has ended, and stop that check's threads.

    azure-cosmos (4.17) checks the account's endpoints in a daemon thread started with each client, through a
    thread pool of its own, and closing the client stops neither. A check still running after the close fails
    on the closed transport and logs the error with its traceback from that thread at some later moment: under
    pytest, whose log capture attaches to the SDK's non-propagating logger, in whatever test then runs; and on
    Python 3.11, formatting that traceback while the main thread parses Python can raise ``SystemError: AST
    constructor recursion depth mismatch`` in the main thread (CPython gh-106905). The attributes are the SDK's
    private ones, looked up defensively: without them this is a plain close.
    """
    manager = getattr(getattr(client, "client_connection", None), "_global_endpoint_manager", None)
    check = getattr(manager, "_refresh_thread", None)
    if isinstance(check, threading.Thread) and check is not threading.current_thread():
        check.join(CLOSE_WAIT_SECONDS)
    try:
        client.__exit__()  # type: ignore[no-untyped-call]
    finally:
        pool = getattr(manager, "executor", None)
        if isinstance(pool, ThreadPoolExecutor):
            pool.shutdown(wait=False)


DATA_CONTRIBUTOR = "00000000-0000-0000-0000-000000000002"
GRANT_DATA_ROLE = (
    "assign the principal Cosmos DB Built-in Data Contributor on the account (az cosmosdb sql role assignment "
    f"create --account-name ACCOUNT --resource-group GROUP --scope / --principal-id OBJECT_ID "
    f"--role-definition-id {DATA_CONTRIBUTOR})"
)


def failure(exc: BaseException, doing: str, config: Config | None = None) -> DatabaseError | CredentialError:
    """The error to raise for an SDK failure: a refused key or token, or no credential at all, is a configuration
    mistake (exit 2)."""
    text = describe(exc, doing, config)
    if isinstance(exc, cosmos_errors.CosmosHttpResponseError) and exc.status_code == 401:
        return CredentialError(text)
    if isinstance(exc, ClientAuthenticationError) and not isinstance(exc, cosmos_errors.CosmosHttpResponseError):
        return CredentialError(text)
    return DatabaseError(text)


def explain_403(exc: cosmos_errors.CosmosHttpResponseError, message: str) -> str:
    """A 403 in words, with what to grant or where to go instead."""
    substatus = getattr(exc, "sub_status", None)
    if substatus == 5300:
        return (
            "Cosmos DB refused a database, container or throughput change on the data plane (403, substatus 5300: "
            "an Entra ID token, or an account with disableKeyBasedMetadataWriteAccess); such changes go through "
            "Azure Resource Manager: sign in with auth = entra (with subscription and resource group), and "
            "cosmigrate sends them there"
        )
    if substatus == 5301:
        return f"the signed-in principal has no data-plane role on the account (403, substatus 5301): {GRANT_DATA_ROLE}"
    return f"Cosmos DB answered 403 ({message}); the credential lacks the right for this request"


def redact_with(text: str, config: Config | None) -> str:
    return config.redact(text) if config else text


def service_message(exc: cosmos_errors.CosmosHttpResponseError) -> str:
    """The service's message, once: the error's text repeats it (``Code: … Message: …``) on further lines."""
    return (str(getattr(exc, "message", "") or exc).splitlines() or [""])[0].strip()


def describe(exc: BaseException, doing: str, config: Config | None = None) -> str:
    """One line for an SDK error: what we were doing, the status and the service's message, redacted."""
    if isinstance(exc, cosmos_errors.CosmosHttpResponseError):
        message = service_message(exc)
        if exc.status_code == 401 and "Local Authorization is disabled" in message:
            return redact_with(
                f"{doing}: the account accepts no keys (local authorization is disabled): sign in with Microsoft "
                'Entra ID instead (--auth entra, COSMIGRATE_AUTH=entra or auth = "entra")',
                config,
            )
        if exc.status_code == 401 and config is not None and config.auth == "entra":
            return redact_with(f"{doing}: Cosmos DB refused the Entra ID token (401: {message})", config)
        if exc.status_code == 401:
            return redact_with(
                f"{doing}: Cosmos DB refused the key (401): check COSMOS_KEY, --key or the connection string's "
                "AccountKey (the account's Keys page in the portal)",
                config,
            )
        if exc.status_code == 403:
            return redact_with(f"{doing}: {explain_403(exc, message)}", config)
        if exc.status_code == 429:
            hint = "the account is throttling: raise its throughput or retry later"
        else:
            hint = "check the service's message above"
        text = f"{doing}: Cosmos DB answered {exc.status_code} ({message}); {hint}"
    elif isinstance(exc, ClientAuthenticationError):
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        text = (
            f"{doing}: no Microsoft Entra ID credential could sign in ({first}); sign in with az login, or set "
            "AZURE_TENANT_ID and AZURE_CLIENT_ID with a federated token (workload identity, GitHub OIDC) or a "
            "secret, or run where a managed identity is assigned"
        )
    elif isinstance(exc, ServiceRequestError | ServiceResponseError):
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        text = f"{doing}: the endpoint could not be reached ({reason}); check the endpoint and the network"
    else:
        text = f"{doing}: {type(exc).__name__}: {exc}"
    return config.redact(text) if config else text


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, cosmos_errors.CosmosHttpResponseError):
        return exc.status_code in TRANSIENT_STATUS
    return isinstance(exc, ServiceRequestError | ServiceResponseError | cosmos_errors.CosmosClientTimeoutError)


class _NotRecovered:
    """Sentinel: the read-back found that the lost attempt did not take effect."""


NOT_DONE: Any = _NotRecovered()


def resilient(
    step: str,
    action: Callable[[], T],
    recover: Callable[[], T] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    retry: StepRetry | None = None,
) -> T:
    """Run ``action``, retrying transient failures; after one, ask ``recover`` whether it took effect.

    ``recover`` reads back (the container, the item) and returns the result as if ``action`` had succeeded,
    or :data:`NOT_DONE`. Without ``recover`` the action must be idempotent (a read, an upsert, a delete that
    accepts 404). A non-transient error propagates as it is, for the caller to describe. Retries stop at the
    outage bound (:mod:`cosmigrate.store.outage`, shared with the read-back): then :class:`DatabaseUnreachable`
    says what failed and how long it was tried.
    """
    retry = retry or StepRetry(step, sleep=sleep)
    while True:
        try:
            result = action()
        except Exception as exc:
            if not is_transient(exc):
                if isinstance(exc, cosmos_errors.CosmosHttpResponseError):
                    retry.outage.answered()  # a definite answer: the database is there
                raise
            log.debug("retrying", step=step, attempt=retry.attempt + 1, error=type(exc).__name__)
            if not retry.wait():
                raise unreachable(step, exc, retry) from exc
            if recover is not None:
                outcome = resilient(f"{step} (read back)", recover, retry=retry)
                if outcome is not NOT_DONE:
                    return outcome
            continue
        retry.outage.answered()
        return result


def unreachable(step: str, exc: BaseException, retry: StepRetry) -> DatabaseUnreachable:
    """The error of a step that gave up at the outage bound: the last failure, and how long it was tried."""
    seconds = retry.failing_for()
    return DatabaseUnreachable(
        f"{describe(exc, step)} (gave up after {seconds:.0f} s of trying; the outage timeout is "
        f"{retry.outage.timeout:g} s)",
        seconds=seconds,
        timeout=retry.outage.timeout,
    )


def read_container(database: DatabaseProxy, container_id: str) -> dict[str, Any] | None:
    """The container's stored properties, or None when it does not exist."""

    def read() -> dict[str, Any] | None:
        try:
            return dict(database.get_container_client(container_id).read())
        except cosmos_errors.CosmosResourceNotFoundError:
            return None

    return resilient(f"read container {container_id}", read)


def create_container(
    database: DatabaseProxy, body: dict[str, Any], options: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Create from a full REST body (``options``: the request's, e.g. its throughput); a 409 or an unknown outcome
    is settled by reading the container back."""
    container_id = body["id"]

    def recover() -> dict[str, Any]:
        found = read_container(database, container_id)
        return found if found is not None else NOT_DONE

    def create() -> dict[str, Any]:
        try:
            return dict(database.client_connection.CreateContainer(database.database_link, body, dict(options or {})))
        except cosmos_errors.CosmosResourceExistsError:
            found = read_container(database, container_id)
            if found is None:  # deleted again in between; let the retry create it
                raise
            return found

    return resilient(f"create container {container_id}", create, recover=recover)


def replace_container(database: DatabaseProxy, properties: dict[str, Any]) -> dict[str, Any]:
    """Replace with the full definition (REST PUT, idempotent). ``DatabaseProxy.replace_container`` does not
    send the unique key policy and resets whatever it is not given, so the stored properties are re-sent."""
    body = {k: v for k, v in properties.items() if k not in SYSTEM_PROPERTIES}
    link = f"{database.database_link}/colls/{body['id']}"
    return resilient(
        f"replace container {body['id']}",
        lambda: dict(database.client_connection.ReplaceContainer(link, body)),
    )


def delete_container(database: DatabaseProxy, container_id: str) -> bool:
    """Delete; True when this call removed it, False when it was already gone."""

    def delete() -> bool:
        try:
            database.delete_container(container_id)
            return True
        except cosmos_errors.CosmosResourceNotFoundError:
            return False

    return resilient(f"delete container {container_id}", delete)


def transformation_progress(container: ContainerProxy) -> int:
    """0-100 while the index is rebuilt; 100 when done (the header is -1 or absent when nothing runs)."""
    properties = resilient(f"read index progress of {container.id}", lambda: container.read(populate_quota_info=True))
    headers = properties.get_response_headers()
    raw = headers.get(PROGRESS_HEADER)
    try:
        value = int(str(raw))
    except ValueError:
        return 100
    return 100 if value < 0 else min(value, 100)
