"""cosmigrate's pytest plugin (entry point ``pytest11``): a database per test and built-in migration tests.

Fixtures:

* ``cosmigrate_endpoint`` (session): ``COSMOS_ENDPOINT`` when it is set, else a local endpoint the plugin
  starts (``cosmigrate.testing.endpoint``, needs Node.js and npm).
* ``cosmigrate_config``: a :class:`~cosmigrate.config.Config` for a fresh database on it (your
  ``[tool.cosmigrate]`` settings otherwise), dropped after the test.
* ``cosmigrate_baseline``: override it to create what exists before your first migration (a function taking
  the ``DatabaseProxy``); the built-in tests start from it.
* ``cosmigrate_runner``: a :class:`MigrationRunner` on that database (``migrate_up_to``, ``migrate_down_one``,
  ``roundtrip``, ``definitions``, ``verify``, ``plan``).

Built-in tests (``cosmigrate.testing.builtin``): run them all with ``pytest --cosmigrate``, or import the ones
you want into a test module (``from cosmigrate.testing.builtin import test_upgrade``).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cosmigrate.config import Config, load_config

Baseline = Callable[[Any], None]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cosmigrate")
    group.addoption(
        "--cosmigrate", action="store_true", default=False, help="run cosmigrate's built-in migration tests"
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--cosmigrate", default=False):
        config.pluginmanager.register(_BuiltinCollector(), "cosmigrate-builtin-tests")


# The local endpoint's certificate is self-signed, and cosmigrate does not verify TLS on loopback (as its CLI,
# which silences this warning too). Ignored only in the tests that use the plugin's endpoint, only for
# requests to a loopback host: elsewhere, and for any other host, the warning still shows. (No ":" may appear
# in a filter but its separators: \x3a is the colon of ::1.)
LOOPBACK_TLS_WARNING = (
    r"ignore:Unverified HTTPS request is being made to host '(localhost|127\.[0-9.]+|\[?\x3a\x3a1\]?)'"
    ":urllib3.exceptions.InsecureRequestWarning"
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "cosmigrate_endpoint" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.filterwarnings(LOOPBACK_TLS_WARNING))


class _BuiltinCollector:
    """Adds the built-in tests once, beside the first test file collected (as pytest-alembic does)."""

    def __init__(self) -> None:
        self.added = False

    def pytest_collect_file(self, file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
        if self.added or file_path.suffix != ".py":
            return None
        self.added = True
        from cosmigrate.testing import builtin

        return pytest.Module.from_parent(parent, path=Path(builtin.__file__))


@pytest.fixture(scope="session")
def cosmigrate_endpoint() -> Iterator[str]:
    """The endpoint the tests migrate: ``COSMOS_ENDPOINT``, else a local one started for the session."""
    if os.environ.get("COSMOS_ENDPOINT"):
        yield os.environ["COSMOS_ENDPOINT"]
        return
    from cosmigrate.testing.endpoint import start

    server = start(index_seconds=float(os.environ.get("COSMIGRATE_TEST_INDEX_SECONDS", "1")))
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def cosmigrate_database_name() -> str:
    return f"cmt{uuid.uuid4().hex[:12]}"


@pytest.fixture
def cosmigrate_config(
    cosmigrate_endpoint: str, cosmigrate_database_name: str, pytestconfig: pytest.Config
) -> Iterator[Config]:
    flags = {"endpoint": cosmigrate_endpoint, "database": cosmigrate_database_name, "create_database": True}
    config = load_config(flags, cwd=Path(pytestconfig.rootpath))
    yield config
    from cosmigrate.app.context import connected

    with connected(config) as client, contextlib.suppress(Exception):
        client.delete_database(cosmigrate_database_name)


@pytest.fixture
def cosmigrate_baseline() -> Baseline:
    """What exists before the first migration; override in your conftest.py."""
    return lambda database: None


@pytest.fixture
def cosmigrate_runner(cosmigrate_config: Config, cosmigrate_baseline: Baseline) -> Iterator[Any]:
    from cosmigrate.testing.runner import MigrationRunner

    with MigrationRunner.open(cosmigrate_config, cosmigrate_baseline) as runner:
        yield runner
