"""Translation's entry point: one xDS type for one proxy from one PushContext.

The ADS server (pilotfish.xds.server) calls ``generate`` through its Generator protocol; the
per-type builders (clusters, endpoints, listeners, routes) are pure functions of (push, proxy).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..xds.type_urls import CLUSTER, ENDPOINT, LISTENER, ROUTE
from .clusters import build_clusters
from .endpoints import build_endpoints
from .listeners import build_listeners
from .proxy import Proxy
from .push_context import PushContext
from .routes import build_routes


def generate(push: PushContext, proxy: Proxy, type_url: str, names: Iterable[str] = ()) -> Mapping[str, Any]:
    """The resources of ``type_url`` for ``proxy`` by name. ``names`` (empty: every one) filters
    the wildcard types (CDS, LDS) and selects the named ones (RDS, EDS); a name asked for and
    not generated is absent (the server answers what exists)."""
    wanted = set(names)
    if type_url == CLUSTER:
        out = {c.name: c for c in build_clusters(push, proxy)}
    elif type_url == LISTENER:
        out = {l.name: l for l in build_listeners(push, proxy, wanted)}
    elif type_url == ROUTE:
        return {r.name: r for r in build_routes(push, proxy, wanted)}
    elif type_url == ENDPOINT:
        return {e.cluster_name: e for e in build_endpoints(push, proxy, wanted)}
    else:
        return {}
    if wanted:
        out = {k: v for k, v in out.items() if k in wanted}
    return out
