"""The one error explain raises: the configuration could not be had or read."""

from __future__ import annotations


class ExplainError(Exception):
    """A source, proxy or request that cannot be explained (the CLI prints the message)."""
