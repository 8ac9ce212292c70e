"""Istio's names for generated resources, in one place: generators that refer to each other's
resources (a listener naming its route configuration, a route naming a cluster, a cluster naming
its EDS set) use these, and so does `pilotfish proxy-config`."""

from __future__ import annotations

OUTBOUND, INBOUND = "outbound", "inbound"
VIRTUAL_OUTBOUND = "virtualOutbound"  # 15001, REDIRECT mode
VIRTUAL_INBOUND = "virtualInbound"  # 15006, REDIRECT mode
PASSTHROUGH_CLUSTER = "PassthroughCluster"
BLACKHOLE_CLUSTER = "BlackHoleCluster"
INBOUND_PASSTHROUGH_CLUSTER = "InboundPassthroughCluster"
BLACKHOLE_ROUTE = "block_all"
ALLOW_ANY_ROUTE = "allow_any"
HTTP_PROXY_ROUTE = "http_proxy"  # the NONE-mode HTTP proxy listener's route configuration
VIRTUAL_OUTBOUND_PORT = 15001
VIRTUAL_INBOUND_PORT = 15006
HTTP_PROXY_PORT = 15080  # the sidecar's outbound HTTP proxy listener in NONE mode (apps' HTTP_PROXY)


def cluster_name(direction: str, port: int, subset: str = "", host: str = "") -> str:
    """``outbound|9080|v1|reviews.default.svc.cluster.local``, ``inbound|9080||``."""
    return f"{direction}|{port}|{subset}|{host}"


def parse_cluster_name(name: str) -> tuple[str, int, str, str] | None:
    """(direction, port, subset, host) of a cluster name made by ``cluster_name``, else None."""
    parts = name.split("|")
    if len(parts) != 4 or parts[0] not in (OUTBOUND, INBOUND) or not parts[1].isdigit():
        return None
    return parts[0], int(parts[1]), parts[2], parts[3]


def listener_name(address: str, port: int) -> str:
    """``0.0.0.0_9080``, ``10.0.0.5_9080``."""
    return f"{address}_{port}"


def outbound_route_name(port: int) -> str:
    """A sidecar's outbound HTTP route configuration for a port: ``9080``."""
    return str(port)


def gateway_route_name(port: int) -> str:
    """A gateway's plaintext HTTP route configuration for a server port: ``http.8080``."""
    return f"http.{port}"


def inbound_route_name(port: int) -> str:
    """An inbound listener's (inline) route configuration: ``inbound|9080||``."""
    return cluster_name(INBOUND, port)
