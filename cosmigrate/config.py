"""Configuration: flags override environment variables, which override ``[tool.cosmigrate]`` in pyproject.toml.

With nothing set, cosmigrate targets the local emulator (https://localhost:8081 and its public well-known
key), so the same defaults work with the official emulator and with this project's local endpoint. There is
no default database: a command that needs one says where to name it, so that a typo never migrates a fresh
twin of the right database. Unknown keys in ``[tool.cosmigrate]`` are refused for the same reason.
Secrets are kept out of ``repr`` and every message passes through :func:`redact`.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from cosmigrate.errors import UsageError

EMULATOR_ENDPOINT = "https://localhost:8081"
# The emulator's documented, public key: not a secret, but redacted all the same.
EMULATOR_KEY = "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw=="
DEFAULT_MIGRATIONS = "migrations"
DEFAULT_HISTORY_CONTAINER = "cosmigrate_history"
DEFAULT_LOCK_TTL = 60.0
DEFAULT_LOCK_TIMEOUT = 300.0
DEFAULT_INDEX_TIMEOUT = 3600.0
DEFAULT_OUTAGE_TIMEOUT = 60.0  # seconds every step keeps retrying a database that does not answer

# name -> (environment variable, pyproject key)
SETTINGS: dict[str, tuple[str, str]] = {
    "endpoint": ("COSMOS_ENDPOINT", "endpoint"),
    "key": ("COSMOS_KEY", "key"),
    "connection_string": ("COSMOS_CONNECTION_STRING", "connection_string"),
    "database": ("COSMOS_DATABASE", "database"),
    "migrations": ("COSMIGRATE_MIGRATIONS", "migrations"),
    "history_container": ("COSMIGRATE_HISTORY_CONTAINER", "history_container"),
    "insecure": ("COSMIGRATE_INSECURE", "insecure"),
    "lock_ttl": ("COSMIGRATE_LOCK_TTL", "lock_ttl"),
    "lock_timeout": ("COSMIGRATE_LOCK_TIMEOUT", "lock_timeout"),
    "index_timeout": ("COSMIGRATE_INDEX_TIMEOUT", "index_timeout"),
    "outage_timeout": ("COSMIGRATE_OUTAGE_TIMEOUT", "outage_timeout"),
    "create_database": ("COSMIGRATE_CREATE_DATABASE", "create_database"),
    "database_throughput": ("COSMIGRATE_DATABASE_THROUGHPUT", "database_throughput"),
    "auth": ("COSMIGRATE_AUTH", "auth"),
    "subscription": ("AZURE_SUBSCRIPTION_ID", "subscription"),
    "resource_group": ("AZURE_RESOURCE_GROUP", "resource_group"),
    "account": ("COSMIGRATE_ACCOUNT", "account"),
    "arm_endpoint": ("COSMIGRATE_ARM_ENDPOINT", "arm_endpoint"),
    "backup_dir": ("COSMIGRATE_BACKUP_DIR", "backup_dir"),
}
DEFAULT_BACKUP_DIR = "backups"
DEFAULT_ARM_ENDPOINT = "https://management.azure.com"
SECRET_SETTINGS = ("key", "connection_string")
_ACCOUNT_KEY = re.compile(r"(AccountKey\s*=\s*)[^;\s'\"]+", re.IGNORECASE)
_ID_PATTERN = re.compile(r"^[^/\\?#]{1,255}$")


@dataclass(frozen=True)
class Config:
    """Everything a command needs to know; built by :func:`load_config`."""

    endpoint: str
    key: str = field(repr=False)
    database: str | None
    migrations: Path
    history_container: str
    verify_tls: bool
    lock_ttl: float
    lock_timeout: float
    index_timeout: float
    outage_timeout: float = DEFAULT_OUTAGE_TIMEOUT
    x: Mapping[str, str] = field(default_factory=dict)
    create_database: bool = False
    database_throughput: dict[str, int] | None = None  # shared throughput of a database up creates
    auth: str = "key"  # "key" (the account key) or "entra" (Microsoft Entra ID, DefaultAzureCredential)
    # where Azure Resource Manager finds the account (auth = entra: container and throughput changes go there)
    subscription: str | None = None
    resource_group: str | None = None
    account: str | None = None
    arm_endpoint: str = DEFAULT_ARM_ENDPOINT
    backup_dir: Path = Path(DEFAULT_BACKUP_DIR)
    sources: Mapping[str, str] = field(default_factory=dict)  # setting -> where its value came from

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.key,) if self.key else ()

    @property
    def database_name(self) -> str:
        """The database a command works on; a usage error when none was named."""
        if not self.database:
            raise UsageError(
                "no database named: set --database, COSMOS_DATABASE or database in [tool.cosmigrate] of "
                "pyproject.toml (cosmigrate has no default, so that a typo never migrates a fresh database)"
            )
        return self.database

    def source_of(self, setting: str) -> str:
        return self.sources.get(setting, "the default")

    def redact(self, text: str) -> str:
        return redact(text, self.secrets)


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Remove keys from ``text``: the given secrets and any ``AccountKey=`` of a connection string."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return _ACCOUNT_KEY.sub(r"\1***", text)


def parse_connection_string(value: str) -> tuple[str, str]:
    """``AccountEndpoint=…;AccountKey=…;`` → (endpoint, key), refusing anything else without quoting it."""
    parts: dict[str, str] = {}
    for piece in value.split(";"):
        if not piece.strip():
            continue
        name, sep, item = piece.partition("=")
        if not sep:
            raise UsageError(
                "the connection string is malformed (it needs AccountEndpoint and AccountKey, each as name=value, "
                "separated by semicolons): "
                "check --connection-string or COSMOS_CONNECTION_STRING"
            )
        parts[name.strip().lower()] = item.strip()
    endpoint, key = parts.get("accountendpoint"), parts.get("accountkey")
    if not endpoint or not key:
        raise UsageError(
            "the connection string lacks AccountEndpoint or AccountKey: "
            "check --connection-string or COSMOS_CONNECTION_STRING"
        )
    return endpoint, key


def parse_x_args(pairs: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``-x key=value`` arguments, as Alembic takes them; a repeated key keeps the last value."""
    result: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"-x {pair!r} is malformed: write -x key=value, e.g. -x force=true")
        result[name.strip()] = value
    return result


def is_loopback(endpoint: str) -> bool:
    host = urlparse(endpoint).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_pyproject(start: Path) -> dict[str, Any]:
    """The ``[tool.cosmigrate]`` table of the nearest pyproject.toml at or above ``start``, if any."""
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            try:
                data = tomllib.loads(candidate.read_text(encoding="utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise UsageError(f"{candidate} is not valid TOML ({exc}): fix the file") from None
            table = data.get("tool", {}).get("cosmigrate", {})
            if not isinstance(table, dict):
                raise UsageError(f"{candidate}: [tool.cosmigrate] must be a table")
            return {"__file__": str(candidate), **table}
    return {}


def _truthy(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("", "0", "false", "no", "off"):
        return False
    raise UsageError(f"{name} must be true or false, not {value!r}")


def _seconds(name: str, value: Any, allow_zero: bool = False) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"{name} must be a number of seconds, not {value!r}") from None
    if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not allow_zero):
        raise UsageError(f"{name} must be a number of seconds greater than 0, not {value!r}")
    return seconds


def load_config(
    flags: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    x: Mapping[str, str] | None = None,
) -> Config:
    """Merge flags > environment > pyproject.toml > defaults and validate the result."""
    environ = os.environ if environ is None else environ
    cwd = Path.cwd() if cwd is None else cwd
    project = read_pyproject(cwd)
    base = Path(project["__file__"]).parent if "__file__" in project else cwd

    known = {toml for _, toml in SETTINGS.values()}
    unknown = sorted(set(project) - known - {"__file__"})
    if unknown:
        raise UsageError(
            f"{project['__file__']}: unknown key {unknown[0]!r} in [tool.cosmigrate]; the known keys are "
            + ", ".join(sorted(known - set(SECRET_SETTINGS)))
        )
    for name in SECRET_SETTINGS:
        env_name, toml_name = SETTINGS[name]
        if toml_name in project:  # refused on every run, not only on those that lack the variable
            raise UsageError(
                f"{project['__file__']}: do not store '{toml_name}' in pyproject.toml; use {env_name} or a flag"
            )

    def pick_ranked(name: str) -> tuple[Any, str, int]:
        """The value, where it came from, and its layer (0 flag, 1 environment, 2 pyproject, 3 unset)."""
        env_name, toml_name = SETTINGS[name]
        if flags.get(name) not in (None, ""):
            return flags[name], "--" + name.replace("_", "-"), 0
        if environ.get(env_name, "") != "":
            return environ[env_name], env_name, 1
        if toml_name in project:
            return project[toml_name], f"[tool.cosmigrate] {toml_name}", 2
        return None, "", 3

    def pick(name: str) -> tuple[Any, str]:
        value, source, _ = pick_ranked(name)
        return value, source

    endpoint, endpoint_from, endpoint_layer = pick_ranked("endpoint")
    key, _, key_layer = pick_ranked("key")
    connection_string, _, cs_layer = pick_ranked("connection_string")
    if connection_string:
        # a connection string names its own account: it wins over an endpoint or key of a lower layer, so one
        # account's key is never sent to another account's address
        cs_endpoint, cs_key = parse_connection_string(str(connection_string))
        if cs_layer < endpoint_layer:
            endpoint, endpoint_from = cs_endpoint, "the connection string"
        if cs_layer < key_layer:
            key = cs_key
    endpoint = str(endpoint or EMULATOR_ENDPOINT)
    parsed = urlparse(endpoint)
    if parsed.scheme not in ("https", "http") or not parsed.hostname:
        where = endpoint_from or "the default"
        raise UsageError(f"endpoint {endpoint!r} (from {where}) is not a URL like https://account:443/")
    loopback = is_loopback(endpoint)
    auth_value, auth_from = pick("auth")
    auth = str(auth_value or "key").strip().lower()
    if auth not in ("key", "entra"):
        raise UsageError(f"auth {auth_value!r} (from {auth_from}) is not key or entra")
    if auth == "entra":
        if key:
            raise UsageError(
                "auth is entra but a key is given too (COSMOS_KEY, --key or a connection string's AccountKey): "
                "give one way to sign in; an Entra token needs no key"
            )
        key = ""
    elif not key:
        if not loopback:
            raise UsageError(
                f"no key for {endpoint}: set COSMOS_KEY or COSMOS_CONNECTION_STRING "
                "(the emulator key is only used for local endpoints)"
            )
        key = EMULATOR_KEY
    if auth == "key":
        _check_key(str(key))

    database_value, database_from = pick("database")
    database = str(database_value) if database_value not in (None, "") else None
    history_container = str(pick("history_container")[0] or DEFAULT_HISTORY_CONTAINER)
    for label, value in (("database", database), ("history container", history_container)):
        if value is not None and not _ID_PATTERN.match(value):
            raise UsageError(f"{label} name {value!r} is not a valid Cosmos DB id (no / \\ ? #, 1-255 chars)")

    def folder(name: str, default: str) -> tuple[Path, str]:
        value, source = pick(name)
        path = Path(str(value or default))
        if not path.is_absolute():
            # a path from pyproject.toml is relative to that file; flags and variables to the working directory
            path = (base if source.startswith("[tool") or not source else cwd) / path
        return path, source

    migrations, migrations_from = folder("migrations", DEFAULT_MIGRATIONS)
    backup_dir, _ = folder("backup_dir", DEFAULT_BACKUP_DIR)
    create_value, create_from = pick("create_database")
    create_database = _truthy(create_from, create_value) if create_value is not None else False
    shared_value, shared_from = pick("database_throughput")
    database_throughput = _throughput(shared_from, shared_value) if shared_value not in (None, "") else None

    insecure_value, insecure_from = pick("insecure")
    insecure = _truthy(insecure_from or "--insecure", insecure_value) if insecure_value is not None else False
    lock_ttl, ttl_from = pick("lock_ttl")
    lock_timeout, timeout_from = pick("lock_timeout")
    index_timeout, index_from = pick("index_timeout")
    outage_timeout, outage_from = pick("outage_timeout")
    return Config(
        endpoint=endpoint,
        key=str(key),
        database=database,
        migrations=migrations,
        history_container=history_container,
        verify_tls=not (insecure or loopback),
        lock_ttl=_seconds(ttl_from, lock_ttl) if lock_ttl is not None else DEFAULT_LOCK_TTL,
        lock_timeout=_seconds(timeout_from, lock_timeout, allow_zero=True)
        if lock_timeout is not None
        else DEFAULT_LOCK_TIMEOUT,
        index_timeout=_seconds(index_from, index_timeout) if index_timeout is not None else DEFAULT_INDEX_TIMEOUT,
        outage_timeout=_seconds(outage_from, outage_timeout) if outage_timeout is not None else DEFAULT_OUTAGE_TIMEOUT,
        x=dict(x or {}),
        create_database=create_database,
        database_throughput=database_throughput,
        auth=auth,
        subscription=_text(pick("subscription")[0]),
        resource_group=_text(pick("resource_group")[0]),
        account=_text(pick("account")[0]) or account_of(endpoint),
        arm_endpoint=str(pick("arm_endpoint")[0] or DEFAULT_ARM_ENDPOINT).rstrip("/"),
        backup_dir=backup_dir,
        sources={
            "database": database_from or "the default",
            "endpoint": endpoint_from or "the default",
            "migrations": migrations_from or "the default",
        },
    )


def _text(value: Any) -> str | None:
    return None if value in (None, "") else str(value).strip()


def account_of(endpoint: str) -> str | None:
    """The account name an Azure endpoint carries (https://ACCOUNT.documents.azure.com), None for another host."""
    host = (urlparse(endpoint).hostname or "").lower()
    return host.split(".", 1)[0] if host.endswith((".documents.azure.com", ".documents.azure.us")) else None


def _throughput(name: str, value: Any) -> dict[str, int]:
    """``400`` (manual RU/s) or ``autoscale:4000`` (an autoscale maximum), checked as a declaration is."""
    from cosmigrate.errors import InvalidDefinition
    from cosmigrate.model.properties.throughput import throughput_value

    text = str(value).strip().lower()
    autoscale = text.startswith("autoscale:")
    number = text.removeprefix("autoscale:").strip()
    try:
        parsed = throughput_value("the database", int(number), autoscale=autoscale)
    except (ValueError, InvalidDefinition) as exc:
        detail = str(exc) if isinstance(exc, InvalidDefinition) else f"{value!r} is not a number"
        raise UsageError(
            f"{name}: a database throughput is RU/s (400) or autoscale:MAX (autoscale:4000); {detail}"
        ) from None
    assert parsed is not None
    return parsed


def _check_key(key: str) -> None:
    """An account key is base64; say so plainly instead of the client's "Incorrect padding"."""
    try:
        base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        raise UsageError(
            "the account key is not valid base64: copy it again from the portal's Keys page "
            "(COSMOS_KEY, --key, or the key in the connection string)"
        ) from None
