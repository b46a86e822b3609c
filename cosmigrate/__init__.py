"""cosmigrate: Alembic-style schema and data migrations for Azure Cosmos DB (NoSQL API).

The flow, one module per step: ``script`` finds and loads migration files, ``revision`` orders them into a
graph, ``runner`` applies them under the ``lock`` and records them in the ``history``, scripts act through
``operations``, which talk to Cosmos DB through ``cosmos``. ``command`` holds the verbs the CLI calls.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cosmigrate")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"

__all__ = ["__version__"]
