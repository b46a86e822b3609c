"""Throttling and network faults, injected by a TLS proxy in front of the real local endpoint.

The local endpoint never answers 429 or 503 and never cuts a connection; the real service does all three, and
the azure-cosmos client does not retry a write whose connection was cut after sending. The proxy
(tests/harness/fault_proxy.js) answers a share of requests 429 (with x-ms-retry-after-ms) or 503 without
forwarding them, and cuts the connection of another share after the upstream has executed them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.cosmos import CosmosClient

from cosmigrate.app import commands as command
from cosmigrate.config import Config, load_config
from tests.conftest import MIGRATIONS, ROOT, concurrent_deploys
from tests.harness.local_endpoint import NodeServer, database_requests, fault_counts, start_fault_proxy
from tests.test_failures import end_state


@pytest.fixture
def faulty(endpoint: str) -> Iterator[NodeServer]:
    seed = int(os.environ.get("COSMIGRATE_FAULT_SEED", "7"))  # another seed, another sequence of faults
    proxy = start_fault_proxy(endpoint, rate429=0.10, rate503=0.05, rate_reset=0.02, seed=seed)
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture
def counting(endpoint: str) -> Iterator[NodeServer]:
    proxy = start_fault_proxy(endpoint, rate429=0, rate503=0, rate_reset=0, seed=1)
    try:
        yield proxy
    finally:
        proxy.stop()


def config_for(url: str, database: str, migrations: Path = MIGRATIONS) -> Config:
    flags = {"endpoint": url, "database": database, "migrations": str(migrations), "create_database": True}
    return load_config(flags, environ={}, cwd=ROOT)


def test_eight_up_down_cycles_through_faults_end_exactly_as_without(
    faulty: NodeServer, endpoint: str, database_name: str, cosmos: CosmosClient
) -> None:
    through_faults = config_for(faulty.url, database_name)
    reference = config_for(endpoint, database_name + "ref")
    try:
        command.up(reference)
        expected_up = end_state(cosmos, reference)
        command.down(reference, target="base", confirm=lambda _question: True)
        expected_base = end_state(cosmos, reference)
        for cycle in range(8):
            command.up(through_faults)
            assert end_state(cosmos, through_faults) == expected_up, f"cycle {cycle} up"
            command.down(through_faults, target="base", confirm=lambda _question: True)
            assert end_state(cosmos, through_faults) == expected_base, f"cycle {cycle}"
    finally:
        cosmos.delete_database(reference.database)
    injected = fault_counts(faulty.url)
    # the run really went through faults of every kind
    assert injected["429"] > 40 and injected["503"] > 15 and injected["reset"] > 8, injected


def test_status_requests_do_not_grow_with_the_number_of_revisions(
    counting: NodeServer, tmp_path: Path, cosmos: CosmosClient
) -> None:
    requests = {}
    for count in (3, 30):
        folder = tmp_path / f"m{count}"
        folder.mkdir()
        for n in range(1, count + 1):
            down = repr(f"{n - 1:03d}") if n > 1 else "None"
            (folder / f"{n:03d}_c{n}.py").write_text(
                f'"""c{n}."""\nrevision = "{n:03d}"\ndown_revision = {down}\n\n\n'
                f'def upgrade(op):\n    op.create_container("c{n}", "/pk")\n\n\n'
                f'def downgrade(op):\n    op.delete_container("c{n}")\n'
            )
        config = config_for(counting.url, f"req{uuid.uuid4().hex[:8]}", folder)
        try:
            command.up(config)
            before = database_requests(counting.url)
            status = command.status(config)
            requests[count] = database_requests(counting.url) - before
            assert len(status.applied) == count
        finally:
            cosmos.delete_database(config.database)
    assert requests[3] == requests[30] == 2, requests  # read the history container, query the history


def test_concurrent_deploys_through_faults_apply_each_revision_once(
    faulty: NodeServer, cli_env: dict[str, str], cosmos: CosmosClient, database_name: str
) -> None:
    """Four `up` processes at once, through throttling, 503s and cut connections: the lock still holds."""
    concurrent_deploys({**cli_env, "COSMOS_ENDPOINT": faulty.url}, cosmos, database_name, processes=4, rounds=2)


def test_revisions_that_change_nothing_cost_almost_no_requests(
    counting: NodeServer, tmp_path: Path, cosmos: CosmosClient
) -> None:
    """`running` is written ahead of a revision's first change, so revisions that change nothing are recorded
    together, about 30 to a transactional batch: 40 of them cost at most 2 requests more than 10."""
    requests = {}
    for count in (10, 40):
        folder = tmp_path / f"noop{count}"
        folder.mkdir()
        for n in range(1, count + 1):
            down = repr(f"{n - 1:03d}") if n > 1 else "None"
            (folder / f"{n:03d}_noop.py").write_text(
                f'"""No-op {n}."""\nrevision = "{n:03d}"\ndown_revision = {down}\n\n\n'
                "def upgrade(op):\n    pass\n\n\ndef downgrade(op):\n    pass\n"
            )
        config = config_for(counting.url, f"noop{uuid.uuid4().hex[:8]}", folder)
        try:
            before = database_requests(counting.url)
            assert len(command.up(config).steps) == count
            requests[count] = database_requests(counting.url) - before
            assert len(command.status(config).applied) == count
        finally:
            cosmos.delete_database(config.database)
    assert requests[40] - requests[10] <= 2, requests
