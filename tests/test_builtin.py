"""cosmigrate's built-in migration tests (``cosmigrate.testing.builtin``) on this project's migrations, through
the pytest plugin's fixtures, from the baseline in conftest.py: what any project gets with ``pytest --cosmigrate``."""

from cosmigrate.testing.builtin import (
    test_check_passes,
    test_downgrade_leaves_no_trace,
    test_single_head_revision,
    test_sum_file_is_current,
    test_up_down_consistency,
    test_upgrade,
    test_verify_after_upgrade,
)

__all__ = [
    "test_check_passes",
    "test_downgrade_leaves_no_trace",
    "test_single_head_revision",
    "test_sum_file_is_current",
    "test_up_down_consistency",
    "test_upgrade",
    "test_verify_after_upgrade",
]
