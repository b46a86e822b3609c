"""cosmigrate: Alembic-style schema and data migrations for Azure Cosmos DB (NoSQL API).

The flow, one folder per step: ``scripts`` finds, loads and orders migration files; ``model`` holds container
definitions (pure); ``ops`` is what scripts call; ``store`` talks to Cosmos DB (client, history, lock); ``app``
holds the verbs and the run loop; ``cli`` parses flags and renders results.
"""

# The one place the version is written (pyproject.toml reads it): no importlib.metadata at start-up.
__version__ = "0.1.0"

__all__ = ["__version__"]
