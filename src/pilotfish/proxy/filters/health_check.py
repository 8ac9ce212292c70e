"""Envoy's ``envoy.filters.http.health_check`` filter: the proxy answers load balancers' probes.

A request whose headers match every ``headers`` matcher (pseudo-headers ``:path``, ``:method``,
``:authority`` included) is a health check. As Envoy's ``HealthCheckFilter``, the proxy answers it
itself unless ``pass_through_mode`` is set, and always while it drains (Envoy's "health check
failed" state): 503 with flag LH while draining, else 503 (flag LH) when a
``cluster_min_healthy_percentages`` cluster is missing, empty (unless its minimum is 0) or has
fewer healthy + degraded hosts than its percentage, else 200; each answer carries
``x-envoy-upstream-healthchecked-cluster`` (the node's cluster) and Envoy's response code details
(``health_check_ok``, ...). In pass-through mode the request otherwise goes on to its route.
``cache_time`` caches only pass-through answers in Envoy: without pass-through it cannot change an
answer and is ignored, with it the config is refused (compile/edge.py).
"""

from __future__ import annotations

from typing import Any

from ..common.response_flags import LH
from ..upstream.host_set import IS_UNHEALTHY
from ..router.route_table import HeaderMatcher


class HealthCheckFilter:
    """One configured filter; called by the stream before routing (``HcmConfig.pre_route``)."""

    __slots__ = ("matchers", "pass_through", "min_healthy", "pseudo", "cluster_header")

    def __init__(self, matchers: tuple[HeaderMatcher, ...], pass_through: bool,
                 min_healthy: tuple[tuple[str, float], ...], local_cluster: str = "") -> None:
        self.matchers = matchers
        self.pass_through = pass_through
        self.min_healthy = min_healthy
        self.pseudo = any(m.name.startswith(b":") for m in matchers)
        self.cluster_header = ((b"x-envoy-upstream-healthchecked-cluster", local_cluster.encode()),)

    def matches(self, stream: Any) -> bool:
        head = stream.head
        headers = head.headers
        if self.pseudo:
            headers = [(b":path", head.path), (b":method", head.method),
                       (b":authority", stream.authority), (b":scheme", b"http"), *headers]
        return all(m.matches(headers) for m in self.matchers)

    def __call__(self, stream: Any) -> bool:
        """True when the stream was answered here."""
        if not self.matches(stream):
            return False
        stream.health_check = True
        if stream.conn.shared.draining:
            stream.flags |= LH
            stream.local_reply(503, b"", extra=self.cluster_header, details="health_check_failed")
            return True
        if self.pass_through:
            return False
        status, details = 200, "health_check_ok"
        clusters = stream.hcm.clusters
        for name, minimum in self.min_healthy:
            details = "health_check_ok_cluster_healthy"
            cluster = clusters.get(name)
            if cluster is None:
                status, details = 503, "health_check_failed_no_cluster_found"
                break
            hosts = cluster.hosts
            if not hosts:
                if minimum == 0.0:
                    continue
                status, details = 503, "health_check_failed_cluster_empty"
                break
            available = sum(1 for h in hosts if h.health != IS_UNHEALTHY)
            if 100 * available < len(hosts) * minimum:
                status, details = 503, "health_check_failed_cluster_unhealthy"
                break
        if status != 200:
            stream.flags |= LH
        stream.local_reply(status, b"", extra=self.cluster_header, details=details)
        return True
