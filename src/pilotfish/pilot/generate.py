"""Translation's entry point: one xDS type for one proxy from one PushContext.

The ADS server (pilotfish.xds.server) calls ``generate`` through its Generator protocol; the
per-type builders (clusters, endpoints, listeners, routes) are pure functions of (push, proxy).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..xds.type_urls import CLUSTER, ENDPOINT, LISTENER, ROUTE
from .cluster_policy import mesh_defaults
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
        # Every sidecar of a namespace in one locality asks for the same assignments: made once
        # per push (its labels count only where a failoverPriority may name one).
        key = ("eds-all", frozenset(wanted), proxy.namespace, proxy.locality,
               tuple(sorted(proxy.labels.items())) if _failover_priority(push) else None)
        made = push.generated.get(key)
        if made is None:
            made = push.generated[key] = {e.cluster_name: e for e in build_endpoints(push, proxy, wanted)}
        return made
    else:
        return {}
    if wanted:
        out = {k: v for k, v in out.items() if k in wanted}
    return out


def _failover_priority(push: PushContext) -> bool:
    """Whether any locality setting (the mesh's, or a DestinationRule's at any level) uses
    failoverPriority."""
    if "failover-priority" not in push.generated:
        mesh = mesh_defaults(push.mesh).locality_lb_setting
        found = bool(mesh is not None and mesh.failover_priority)
        for dr in push.of_kind("DestinationRule"):
            policies = [dr.spec.traffic_policy] + [s.traffic_policy for s in dr.spec.subsets or ()]
            found = found or any(_policy_uses_priority(p) for p in policies)
        push.generated["failover-priority"] = found
    return bool(push.generated["failover-priority"])


def _policy_uses_priority(policy: Any) -> bool:
    if policy is None:
        return False
    for lb in [policy.load_balancer] + [p.load_balancer for p in policy.port_level_settings or ()]:
        setting = lb.locality_lb_setting if lb is not None else None
        if setting is not None and setting.failover_priority:
            return True
    return False
