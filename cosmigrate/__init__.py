"""cosmigrate: Alembic-style schema and data migrations for Azure Cosmos DB (NoSQL API).

The flow, one folder per step: ``scripts`` finds, loads and orders migration files; ``model`` holds container
definitions (pure); ``ops`` is what scripts call; ``store`` talks to Cosmos DB (client, history, lock); ``app``
holds the verbs and the run loop; ``cli`` parses flags and renders results.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cosmigrate")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"

__all__ = ["__version__"]
