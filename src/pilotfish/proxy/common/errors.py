"""Typed errors of the proxy. Library code raises these; only the CLI prints them."""

from __future__ import annotations

import logging
from collections.abc import Iterable

_log = logging.getLogger("pilotfish.proxy")


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

    def __init__(self, message: str, status: int = 400, body: bytes = b"") -> None:
        super().__init__(message)
        self.status = status
        self.body = body  # the local reply's body, where Envoy sends one


def contain(exc: BaseException, where: str) -> None:
    """Log an unexpected error from a protocol callback once, in one line (the traceback at
    debug level). The caller ends the connection or stream it belonged to; the proxy goes on."""
    _log.error("internal error in %s, connection closed: %s: %s", where, type(exc).__name__, exc)
    _log.debug("internal error in %s", where, exc_info=exc)
