"""Built-in migration tests, for any project: ``pytest --cosmigrate`` runs them all, or import the ones you want
into a test module (``from cosmigrate.testing.builtin import test_upgrade``).

They use the plugin's fixtures: a fresh database per test on ``COSMOS_ENDPOINT`` or a local endpoint, prepared
by your ``cosmigrate_baseline`` fixture (what exists before your first migration).
"""

from __future__ import annotations

import warnings
from typing import Any

from cosmigrate.config import Config
from cosmigrate.errors import PreconditionRefused
from cosmigrate.scripts import sumfile
from cosmigrate.scripts.lint import lint

GRAPH_CODES = {"duplicate", "dangling", "two-heads", "cycle", "gap", "revision-mismatch"}


def test_single_head_revision(cosmigrate_config: Config) -> None:
    """The revisions form one chain with one head (two branches that both added a migration do not)."""
    report = lint(cosmigrate_config.migrations, sum_file=False)
    problems = [str(p) for p in report.problems if p.code in GRAPH_CODES]
    assert not problems, "\n".join(problems)
    assert report.order is not None


def test_sum_file_is_current(cosmigrate_config: Config) -> None:
    """``cosmigrate.sum`` matches the migration files (rewrite it with ``cosmigrate hash``)."""
    problems = [str(p) for p in sumfile.verify(cosmigrate_config.migrations)]
    assert not problems, "\n".join(problems)


def test_check_passes(cosmigrate_config: Config) -> None:
    """Every script loads and replays (what ``cosmigrate check`` reports)."""
    from cosmigrate.app.offline import check

    problems = check(cosmigrate_config).problems
    assert not problems, "\n".join(f"{p['file']}: {p['message']}" for p in problems)


def test_upgrade(cosmigrate_runner: Any) -> None:
    """From the baseline to head in one run."""
    cosmigrate_runner.migrate_up_to("head")
    assert cosmigrate_runner.current() == cosmigrate_runner.revisions[-1]


def test_verify_after_upgrade(cosmigrate_runner: Any) -> None:
    """After head, the live containers are exactly what the migrations declare (no drift)."""
    cosmigrate_runner.migrate_up_to("head")
    result = cosmigrate_runner.verify()
    drift = [d["message"] for c in result.containers for d in c.differences]
    assert result.clean, "\n".join(drift)


def test_up_down_consistency(cosmigrate_runner: Any) -> None:
    """Each revision up, down and up again gives the same definitions as the first time up (a revision whose
    downgrade refuses, ``op.refuse("irreversible: …")``, is not gone down: a warning names it)."""
    irreversible = []
    for revision in cosmigrate_runner.revisions:
        try:
            first, _, again = cosmigrate_runner.roundtrip(revision)
        except PreconditionRefused:
            irreversible.append(revision)
            continue
        assert again == first, f"revision {revision}: up after down does not give what up gave"
    _warn_irreversible(irreversible)


def test_downgrade_leaves_no_trace(cosmigrate_runner: Any) -> None:
    """Each revision's downgrade brings the definitions back to what they were before its upgrade (one whose
    downgrade refuses is left applied, with a warning)."""
    irreversible = []
    for revision in cosmigrate_runner.revisions:
        before = cosmigrate_runner.definitions()
        cosmigrate_runner.migrate_up_to(revision)
        try:
            cosmigrate_runner.migrate_down_one()
        except PreconditionRefused:
            irreversible.append(revision)
            continue
        after = cosmigrate_runner.definitions()
        assert after == before, f"revision {revision}: up then down leaves {sorted(set(after) ^ set(before)) or after}"
        cosmigrate_runner.migrate_up_to(revision)
    _warn_irreversible(irreversible)


def _warn_irreversible(revisions: list[str]) -> None:
    if len(revisions) == 1:
        warnings.warn(f"not gone down: revision {revisions[0]} refuses its downgrade (irreversible)", stacklevel=2)
    elif revisions:
        warnings.warn(
            f"not gone down: revisions {', '.join(revisions)} refuse their downgrades (irreversible)", stacklevel=2
        )
