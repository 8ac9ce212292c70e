"""Where a sidecar's outbound TCP listener sends a connection: VirtualService ``tcp`` routes
(Istio's buildSidecarOutboundTCPListenerOpts and buildOutboundNetworkFilters).

A ``VIP_PORT`` listener carries one service port, so the routes that can apply are those of the
mesh VirtualServices whose hosts cover the service. Matching happens once, when the listener is
built: a match names what is fixed for this proxy and listener (its port, the proxy's labels and
namespace, the gateway, the listener's VIP), never anything of the connection itself.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2

from ..config.base import Resource
from ..config.host import Hostname
from ..config.models.virtualservice import L4MatchAttributes, RouteDestination, TCPRoute, TLSMatchAttributes
from ..config.selectors import labels_match
from ..registry.model import Service
from . import naming
from .proxy import Proxy
from .push_context import PushContext
from .route_action import destination_cluster
from .route_match import resolve_gateway

MESH = "mesh"


def tcp_proxy_config(push: PushContext, proxy: Proxy, service: Service, port: int,
                     address: str) -> tcp_proxy_pb2.TcpProxy:
    """The tcp_proxy for ``service`` on the listener ``address:port``: the first ``tcp`` route that
    applies picks the destination(s); without one, the service's own cluster (as Istio, which
    falls back to the default route when no VirtualService route was added)."""
    for vs in virtual_services_with(push, proxy, service, "tcp"):
        route = _applying_route(vs.spec.tcp or (), proxy, port, address, vs.namespace)
        if route is not None:
            config = routed_proxy(push, proxy, route.route or (), port, vs)
            if config is not None:
                return config
    cluster = naming.cluster_name(naming.OUTBOUND, port, "", service.hostname)
    return tcp_proxy_pb2.TcpProxy(stat_prefix=cluster, cluster=cluster)


def virtual_services_with(push: PushContext, proxy: Proxy, service: Service, kind: str) -> list[Resource]:
    """Every mesh VirtualService with ``kind`` routes (``tcp``, ``tls``) and a host covering the
    service, in push order: Istio walks all of them (getConfigsForHost), not only the one HTTP
    routing binds."""
    name = Hostname(service.hostname)
    return [vs for vs in push.virtual_services_for(proxy, {MESH})
            if getattr(vs.spec, kind) and any(h.matches(name) for h in push.vs_hosts(vs))]


def _applying_route(routes: Iterable[TCPRoute], proxy: Proxy, port: int, address: str,
                    vs_namespace: str) -> TCPRoute | None:
    """A route without matches applies always; otherwise one of its matches must hold whole."""
    for route in routes:
        if not route.match or any(match_applies(m, proxy, port, address, vs_namespace) for m in route.match):
            return route
    return None


def match_applies(match: L4MatchAttributes | TLSMatchAttributes, proxy: Proxy, port: int, address: str,
                  vs_namespace: str, defer_subnets: bool = False) -> bool:
    """Istio's matchTCP / matchTLS, plus destinationSubnets decided against the listener's VIP
    (``defer_subnets``: left to the filter chain's prefix ranges, on a listener without a VIP).
    sourceSubnet is the connection's and is not known here, so it is ignored as Istio ignores it
    for sidecars."""
    if match.gateways and not any(resolve_gateway(g, vs_namespace) == MESH for g in match.gateways):
        return False
    if match.port and match.port != port:
        return False
    if not labels_match(match.source_labels, proxy.labels):
        return False
    if match.source_namespace and match.source_namespace != proxy.namespace:
        return False
    return defer_subnets or not match.destination_subnets or in_subnets(address, match.destination_subnets)


def in_subnets(address: str, cidrs: Iterable[str]) -> bool:
    """Whether ``address`` lies in one of ``cidrs``; a malformed address or CIDR matches nothing."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for cidr in cidrs:
        try:
            if ip in ipaddress.ip_network(cidr, strict=False):
                return True
        except ValueError:
            continue
    return False


def routed_proxy(push: PushContext, proxy: Proxy, destinations: Iterable[RouteDestination], port: int,
                 vs: Resource) -> tcp_proxy_pb2.TcpProxy | None:
    """One destination: its cluster, also the stat prefix. Several: weighted clusters (weight 0
    left out) under the stat prefix ``name.namespace`` of the VirtualService, as Istio."""
    dests = [(d.destination, d.weight or 0) for d in destinations if d.destination is not None]
    if not dests:
        return None
    if len(dests) == 1:
        cluster = destination_cluster(push, proxy, dests[0][0], vs.namespace, port)
        return tcp_proxy_pb2.TcpProxy(stat_prefix=cluster, cluster=cluster)
    weighted = tcp_proxy_pb2.TcpProxy.WeightedCluster()
    for dest, weight in dests:
        if weight > 0:
            weighted.clusters.add(name=destination_cluster(push, proxy, dest, vs.namespace, port), weight=weight)
    if not weighted.clusters:
        return None
    return tcp_proxy_pb2.TcpProxy(stat_prefix=f"{vs.name}.{vs.namespace}", weighted_clusters=weighted)
