"""Typed errors of pilotfish.xds; callers (the proxy) map them to their own where needed."""

from __future__ import annotations

from collections.abc import Mapping


class XdsError(Exception):
    """Base of every error raised inside pilotfish.xds."""


class XdsConfigError(XdsError):
    """An xDS config source the client cannot use, naming the field (``dynamic_resources...``)."""

    def __init__(self, message: str, field_path: str = "") -> None:
        super().__init__(f"{field_path}: {message}" if field_path else message)
        self.message = message
        self.field_path = field_path


class ResourceRejected(XdsError):
    """One resource (or a whole response) cannot be applied: the response is NACKed with this.

    A config target raises it from ``update`` to reject the response whole; a resource checker
    raises it to reject one resource. ``str(exc)`` becomes the NACK's ``error_detail``.
    """


class RejectedResources(ResourceRejected):
    """Some resources of a response were rejected (the others were applied): NACK with this."""

    def __init__(self, kind: str, rejected: Mapping[str, str]) -> None:
        self.rejected = dict(rejected)
        lines = "; ".join(f"{kind} {name!r} rejected: {err}" for name, err in sorted(self.rejected.items()))
        super().__init__(f"{len(self.rejected)} of the response's resources rejected: {lines}")
