"""What explain found, step by step, as plain data (rendered by report.py).

Outcomes: ``routed``, ``direct_response``, ``redirect``, ``not_found`` (404 NR: no virtual host
or no route), ``no_healthy_upstream``, ``blackhole``, ``passthrough``, ``tcp_proxy``, and where
the request never reaches a route: ``no_listener`` (connection refused), ``no_filter_chain``
(closed), ``cluster_not_found`` (503 NC), ``rejected`` (the proxy refuses this config).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ROUTED = "routed"
DIRECT_RESPONSE = "direct_response"
REDIRECT = "redirect"
NOT_FOUND = "not_found"
NO_HEALTHY_UPSTREAM = "no_healthy_upstream"
BLACKHOLE = "blackhole"
PASSTHROUGH = "passthrough"
TCP_PROXY = "tcp_proxy"
NO_LISTENER = "no_listener"
NO_FILTER_CHAIN = "no_filter_chain"
CLUSTER_NOT_FOUND = "cluster_not_found"
REJECTED = "rejected"


@dataclass
class Explanation:
    request: dict[str, Any]
    source: str
    outcome: str = ""
    reason: str = ""
    status: int | None = None  # the HTTP status the proxy answers itself, when it does
    listener: dict[str, Any] | None = None
    filter_chain: dict[str, Any] | None = None
    route_config: dict[str, Any] | None = None
    virtual_host: dict[str, Any] | None = None
    route: dict[str, Any] | None = None
    cluster: dict[str, Any] | None = None
    endpoints: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def finish(self, outcome: str, reason: str, status: int | None = None) -> Explanation:
        self.outcome, self.reason, self.status = outcome, reason, status
        return self

    def as_dict(self) -> dict[str, Any]:
        return {
            "request": self.request, "source": self.source,
            "listener": self.listener, "filter_chain": self.filter_chain, "route_config": self.route_config,
            "virtual_host": self.virtual_host, "route": self.route, "cluster": self.cluster,
            "endpoints": self.endpoints, "outcome": self.outcome, "reason": self.reason, "status": self.status,
            "warnings": self.warnings,
        }
