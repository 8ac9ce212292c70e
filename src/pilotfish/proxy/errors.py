"""Typed errors of the proxy. Library code raises these; only the CLI prints them."""

from __future__ import annotations

import logging

_log = logging.getLogger("pilotfish.proxy")


class ProxyConfigError(Exception):
    """Configuration the proxy cannot run, naming the field path (``static_resources.listeners[0]...``)."""

    def __init__(self, message: str, field_path: str = "") -> None:
        super().__init__(f"{field_path}: {message}" if field_path else message)
        self.message = message
        self.field_path = field_path


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
