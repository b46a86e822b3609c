"""The verbs, for programs and tests: plain functions taking a :class:`~cosmigrate.config.Config` and returning
typed results (``app/results.py``). The CLI imports each verb's module only when that verb runs, so that
``check``, ``new`` and ``--help`` never load the Cosmos DB client; importing this module loads everything.
"""

from cosmigrate.app.deploy import down, plan, up
from cosmigrate.app.inspect import history, status, verify
from cosmigrate.app.maintain import repair, stamp, unlock
from cosmigrate.app.offline import check, new
from cosmigrate.scripts.graph import BASE, HEAD

__all__ = [
    "BASE",
    "HEAD",
    "check",
    "down",
    "history",
    "new",
    "plan",
    "repair",
    "stamp",
    "status",
    "unlock",
    "up",
    "verify",
]
