"""The ``cosmigrate`` command line."""

from cosmigrate.cli.main import main

__all__ = ["main"]
