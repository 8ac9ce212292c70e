"""Istio's webhook validation: per kind, a function of the resource returning a Verdict.

Each module here declares ``VALIDATORS = {"Kind": fn}`` where ``fn(resource) -> Verdict``
appends Istio's error and warning texts. ``validate`` runs the one for the resource's kind;
kinds without semantic rules (the Kubernetes built-ins) are valid once they parse.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from .. import kinds
from ..base import Resource
from ..errors import Verdict

Validator = Callable[[Resource], Verdict]


@cache
def validators() -> dict[str, Validator]:
    from . import destinationrule, extensions, gateway, networking_misc, security, serviceentry, sidecar, telemetry, virtualservice

    table: dict[str, Validator] = {}
    for module in (virtualservice, destinationrule, gateway, serviceentry, sidecar, networking_misc, security, telemetry, extensions):
        table.update(getattr(module, "VALIDATORS", {}))
    return table


def validate(resource: Resource) -> Verdict:
    """Istio's verdict on one resource; Kubernetes built-ins are valid once they parse."""
    info = kinds.lookup(resource.api_version, resource.kind)
    if info is None or not info.istio:
        return Verdict()
    fn = validators().get(resource.kind)
    if fn is None:
        return Verdict()
    return fn(resource)
