"""Typed errors of the proxy. Library code raises these; only the CLI prints them."""

from __future__ import annotations

from collections.abc import Iterable


class ProxyConfigError(Exception):
    """Configuration the proxy cannot run, naming the field path (``static_resources.listeners[0]...``).

    One error may carry several (``errors``): a bootstrap is checked whole, so that one run lists
    every problem. ``message`` and ``field_path`` are then the first one's.
    """

    def __init__(self, message: str, field_path: str = "") -> None:
        super().__init__(f"{field_path}: {message}" if field_path else message)
        self.message = message
        self.field_path = field_path
        self.errors: list[ProxyConfigError] = [self]

    @classmethod
    def collected(cls, errors: Iterable[ProxyConfigError]) -> ProxyConfigError:
        """One error listing ``errors`` (flattened, in order); a single one is returned as is."""
        flat = [e for err in errors for e in err.errors]
        if len(flat) == 1:
            return flat[0]
        if not flat:
            raise ValueError("no errors to collect")
        first = flat[0]
        err = cls(first.message, first.field_path)
        err.args = (f"{len(flat)} problems:\n" + "\n".join(f"  {e}" for e in flat),)
        err.errors = flat
        return err


class ProtocolError(Exception):
    """Bytes that are not valid HTTP/1.1. ``status`` is the local reply a server sends back."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
