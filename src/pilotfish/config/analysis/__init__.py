"""Cross-resource analysis, as ``istioctl analyze``: IST messages about config that is valid
resource by resource but wrong as a whole (a route to a host that does not exist, two
Sidecars selecting one pod, a Gateway port no Service exposes...).

``analyze(resources)`` runs every analyzer (or the named ones) over a snapshot of the
resources plus the defaults istioctl assumes, and returns the messages sorted and deduplicated.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from functools import cache

from ..base import Resource
from ..models.kube import MeshConfig, MeshNetworks
from .framework import Analyzer, Message, ResourceRef, finish, run_analyzers, select
from .messages import BY_CODE, CATALOG, Level, MessageType
from .schema import load_error_messages


@cache
def all_analyzers() -> tuple[Analyzer, ...]:
    """Every analyzer, in Istio's order (by package, then name)."""
    from . import (
        conditions,
        deprecation,
        destinationrule,
        envoyfilter,
        gateway,
        k8sgateway,
        schema,
        security,
        serviceentry,
        sidecar,
        telemetry,
        virtualservice,
        workloads,
    )

    modules = (security, conditions, deprecation, destinationrule, envoyfilter, gateway, k8sgateway,
               serviceentry, sidecar, telemetry, virtualservice, workloads, schema)
    return tuple(a for m in modules for a in m.ANALYZERS)


def analyzer_names() -> list[str]:
    return [a.name for a in all_analyzers()]


def analyze(
    resources: Iterable[Resource],
    *,
    mesh_config: MeshConfig | None = None,
    analyzers: Iterable[str | Analyzer] | None = None,
    mesh_networks: MeshNetworks | None = None,
    now: datetime | None = None,
) -> list[Message]:
    """Run the analyzers over ``resources`` and return their messages, istioctl-sorted.

    ``mesh_config`` defaults to Istio's default MeshConfig. ``analyzers`` names the analyzers
    to run (Istio's names, e.g. ``"virtualservice.DestinationHostAnalyzer"``); all by default.
    Each returned Message has ``code`` (IST0101), ``name``, ``level`` (Level.ERROR/WARNING/INFO),
    ``text`` (also ``message``), ``resource`` (a ResourceRef: kind, name, namespace as the input
    gave it), ``position`` (file and line of the resource's document) and ``analyzer``.
    Messages on a resource annotated ``galley.istio.io/analyze-suppress: <codes|*>`` are dropped.
    Raises KeyError for an unknown analyzer name.
    """
    chosen = select(all_analyzers(), analyzers)
    return finish(run_analyzers(resources, chosen, mesh_config=mesh_config, mesh_networks=mesh_networks, now=now))


__all__ = [
    "BY_CODE",
    "CATALOG",
    "Analyzer",
    "Level",
    "Message",
    "MessageType",
    "ResourceRef",
    "all_analyzers",
    "analyze",
    "analyzer_names",
    "load_error_messages",
]
