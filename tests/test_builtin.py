"""cosmigrate's built-in migration tests (``cosmigrate.testing.builtin``) on this project's migrations, through
the pytest plugin's fixtures, from the baseline in conftest.py: what any project gets with ``pytest --cosmigrate``."""

import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
from azure.cosmos import CosmosClient

from cosmigrate.config import Config
from cosmigrate.testing.builtin import (
    test_check_passes,
    test_downgrade_leaves_no_trace,
    test_single_head_revision,
    test_sum_file_is_current,
    test_up_down_consistency,
    test_upgrade,
    test_verify_after_upgrade,
)
from cosmigrate.testing.runner import MigrationRunner

__all__ = [
    "test_check_passes",
    "test_downgrade_leaves_no_trace",
    "test_single_head_revision",
    "test_sum_file_is_current",
    "test_up_down_consistency",
    "test_upgrade",
    "test_verify_after_upgrade",
]


# The built-in tests on migrations of their own: they fail where a migration is wrong, and let an irreversible
# downgrade (op.refuse) stand with a warning.


def write_chain(folder: Path, downgrades: list[str]) -> None:
    """Revisions 001.. each creating container cN, with the given downgrades."""
    for n, downgrade in enumerate(downgrades, start=1):
        down = repr(f"{n - 1:03d}") if n > 1 else "None"
        (folder / f"{n:03d}_c{n}.py").write_text(
            f'"""c{n}."""\nrevision = "{n:03d}"\ndown_revision = {down}\n\n\n'
            f"def upgrade(op):\n    op.create_container('c{n}', partition_key='/id')\n\n\n"
            f"def downgrade(op):\n    {downgrade}\n"
        )


# leaves its own container and changes c1's index: up again does not give what up gave, nor down what was before
WRONG_DOWNGRADE = (
    "op.replace_indexing_policy('c1', {'includedPaths': [{'path': '/a/*'}], 'excludedPaths': [{'path': '/*'}]})"
)


@pytest.mark.parametrize("builtin", [test_up_down_consistency, test_downgrade_leaves_no_trace])
def test_a_wrong_downgrade_fails_the_round_trip_tests(
    builtin: Callable[..., None], tmp_path: Path, make_config: Callable[..., Config]
) -> None:
    write_chain(tmp_path, ["op.delete_container('c1')", WRONG_DOWNGRADE])
    with MigrationRunner.open(make_config(migrations=tmp_path)) as runner, pytest.raises(AssertionError, match="002"):
        builtin(runner)


@pytest.mark.parametrize("builtin", [test_up_down_consistency, test_downgrade_leaves_no_trace])
def test_an_irreversible_downgrade_is_named_in_a_warning_and_the_others_are_checked(
    builtin: Callable[..., None], tmp_path: Path, make_config: Callable[..., Config], cosmos: CosmosClient
) -> None:
    write_chain(tmp_path, ["op.delete_container('c1')", "op.refuse('irreversible: c2 holds history')", WRONG_DOWNGRADE])
    with MigrationRunner.open(make_config(migrations=tmp_path)) as runner, pytest.raises(AssertionError, match="003"):
        builtin(runner)  # 003 is still checked, past the irreversible 002
    write_chain(tmp_path, ["op.delete_container('c1')", "op.refuse('irreversible: c2 holds history')"])
    (tmp_path / "003_c3.py").unlink()
    cosmos.delete_database(make_config().database)  # start again from nothing, without 003
    config = make_config(migrations=tmp_path)
    with MigrationRunner.open(config) as runner, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        builtin(runner)
    said = "not gone down: revision 002 refuses its downgrade (irreversible)"
    assert [str(w.message) for w in caught if w.category is UserWarning] == [said]
