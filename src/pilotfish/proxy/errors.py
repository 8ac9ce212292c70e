"""Typed errors of the proxy. Library code raises these; only the CLI prints them."""

from __future__ import annotations


class ProxyConfigError(Exception):
    """Configuration the proxy cannot run, naming the field path (``static_resources.listeners[0]...``)."""

    def __init__(self, message: str, field_path: str = "") -> None:
        super().__init__(f"{field_path}: {message}" if field_path else message)
        self.message = message
        self.field_path = field_path


class ProtocolError(Exception):
    """Bytes that are not valid HTTP/1.1. ``status`` is the local reply a server sends back."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
