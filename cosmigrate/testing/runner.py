"""A migration runner for tests: cosmigrate's verbs on one database, and its definitions as comparable data."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from azure.cosmos import CosmosClient, DatabaseProxy

from cosmigrate.app import deploy, inspect
from cosmigrate.app.results import PlanResult, RunResult, VerifyResult
from cosmigrate.config import Config
from cosmigrate.model.container import ContainerDef
from cosmigrate.scripts.loader import ScriptSet, load_all
from cosmigrate.store import client as cosmos
from cosmigrate.store.live import container_properties


def _yes(_question: str) -> bool:
    return True


@dataclass
class MigrationRunner:
    """Migrations on one test's database (``database``, created by :meth:`open` and prepared by a baseline):
    up and down by revision, the definitions of its containers, drift and plans, each as the CLI computes them."""

    config: Config
    client: CosmosClient
    database: DatabaseProxy
    scripts: ScriptSet

    @classmethod
    @contextmanager
    def open(cls, config: Config, baseline: Callable[[DatabaseProxy], None] | None = None) -> Iterator[MigrationRunner]:
        """A runner on ``config``'s database, created and prepared by ``baseline``."""
        # Scripts are compiled before the client exists: its background threads import modules lazily, and
        # CPython 3.11 can fail compiling in two threads at once ("AST constructor recursion depth mismatch").
        scripts = load_all(config.migrations)
        client = cosmos.connect(config)
        try:
            database = client.create_database_if_not_exists(config.database_name)
            if baseline is not None:
                baseline(database)
            yield cls(config, client, database, scripts)
        finally:
            cosmos.close(client)

    @property
    def revisions(self) -> list[str]:
        return [script.revision for script in self.scripts.ordered]

    def migrate_up_to(self, revision: str = "head") -> RunResult:
        result = deploy.up(self.config, revision)
        assert isinstance(result, RunResult)
        return result

    def migrate_down_one(self) -> RunResult:
        result = deploy.down(self.config, confirm=_yes)
        assert isinstance(result, RunResult)
        return result

    def migrate_down_to(self, revision: str = "base") -> RunResult:
        result = deploy.down(self.config, revision, confirm=_yes)
        assert isinstance(result, RunResult)
        return result

    def current(self) -> str | None:
        return inspect.status(self.config).current

    def definitions(self) -> dict[str, dict[str, Any]]:
        """Every container but the history, in the normal form both sides are compared in."""
        return {
            properties["id"]: ContainerDef.from_properties(properties).comparable()
            for properties in container_properties(self.database, self.config.history_container)
        }

    def roundtrip(self, revision: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """Up to ``revision``, down one, up again: the definitions after each (the first and last should agree)."""
        self.migrate_up_to(revision)
        first = self.definitions()
        self.migrate_down_one()
        between = self.definitions()
        self.migrate_up_to(revision)
        return first, between, self.definitions()

    def verify(self) -> VerifyResult:
        return inspect.verify(self.config)

    def plan(self, target: str = "head") -> PlanResult:
        return deploy.plan(self.config, target)
