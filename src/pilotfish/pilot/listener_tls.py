"""Filter chains of a sidecar's outbound TLS/HTTPS listener: VirtualService ``tls`` routes pass
TLS through by SNI (Istio's buildSidecarOutboundTLSFilterChainOpts).

The connection stays encrypted, so the SNI the tls_inspector reads is all the sidecar knows of
it: each applying ``tls`` match becomes a filter chain whose ``server_names`` are its sniHosts.
Everything fixed for this proxy and listener (port, labels, namespace, gateways, and the VIP
against destinationSubnets) is decided here, as for ``tcp`` matches. Only a listener without a
VIP, which sees every destination address, defers destinationSubnets to ``prefix_ranges``.
A chain without any match closes the list, so a connection whose SNI matches no route still
reaches the ``tcp`` route or the service's own cluster (Istio appends the TCP chains after the
TLS ones).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from envoy.config.core.v3 import address_pb2
from envoy.config.listener.v3 import listener_components_pb2 as lc_pb2
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from google.protobuf import wrappers_pb2

from ..config.models.virtualservice import TLSMatchAttributes
from ..registry.model import Protocol, Service
from .listener_tcp import match_applies, routed_proxy, tcp_proxy_config, virtual_services_with
from .proxy import Proxy
from .push_context import PushContext

TLS_PROTOCOLS = frozenset({Protocol.TLS, Protocol.HTTPS})
WILDCARDS = frozenset({"0.0.0.0", "::"})

TlsChain = tuple[lc_pb2.FilterChainMatch, tcp_proxy_pb2.TcpProxy]


def is_tls(protocol: Protocol) -> bool:
    """Ports whose traffic is TLS the sidecar does not terminate (Istio's Protocol.IsTLS)."""
    return protocol in TLS_PROTOCOLS


def tls_filter_chains(push: PushContext, proxy: Proxy, service: Service, port: int, address: str) -> list[TlsChain]:
    """One (match, tcp_proxy) per applying ``tls`` match, in VirtualService and route order, then
    the unmatched fallback. A match whose runtime part (SNI, prefix ranges) repeats an earlier
    one could never be reached, so it is dropped, as Istio does."""
    wildcard = address in WILDCARDS
    out: list[TlsChain] = []
    seen: set[bytes] = set()
    for vs in virtual_services_with(push, proxy, service, "tls"):
        for route in vs.spec.tls or ():
            for match in route.match:
                # The port is decided here, not by ``destination_port``: the listener carries one
                # port, and a chain with a destination port would outrank (in Envoy's match
                # order) every SNI chain without one, and the fallback.
                if not match_applies(match, proxy, port, address, vs.namespace, defer_subnets=wildcard):
                    continue
                chain_match = _chain_match(push, match, vs.namespace, wildcard)
                if chain_match is None:
                    continue
                key = chain_match.SerializeToString(deterministic=True)
                if key in seen:
                    continue
                tcp = routed_proxy(push, proxy, route.route or (), port, vs)
                if tcp is not None:
                    seen.add(key)
                    out.append((chain_match, tcp))
    if b"" not in seen:
        out.append((lc_pb2.FilterChainMatch(), tcp_proxy_config(push, proxy, service, port, address)))
    return out


def _chain_match(push: PushContext, match: TLSMatchAttributes, vs_namespace: str,
                 wildcard: bool) -> lc_pb2.FilterChainMatch | None:
    """sniHosts resolved in the VirtualService's namespace (``*`` matches any SNI, so no
    server_names); destinationSubnets as prefix ranges on a VIP-less listener. None when every
    subnet is malformed: such a chain could match nothing."""
    hosts = [str(push.resolve(h, vs_namespace)) for h in match.sni_hosts]
    out = lc_pb2.FilterChainMatch()
    if "*" not in hosts:
        out.server_names.extend(hosts)
    if wildcard and match.destination_subnets:
        ranges = _cidr_ranges(match.destination_subnets)
        if not ranges:
            return None
        out.prefix_ranges.extend(ranges)
    return out


def _cidr_ranges(cidrs: Iterable[str]) -> list[address_pb2.CidrRange]:
    out = []
    for cidr in cidrs:
        try:
            net = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            continue
        out.append(address_pb2.CidrRange(address_prefix=str(net.network_address),
                                         prefix_len=wrappers_pb2.UInt32Value(value=net.prefixlen)))
    return out
