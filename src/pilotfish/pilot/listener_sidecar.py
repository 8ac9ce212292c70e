"""A sidecar's listeners in both of Istio's interception modes (listener.go, listener_inbound.go,
listener_builder.go).

NONE (the local mesh): every listener binds a real socket. Inbound, one ``IP_PORT`` listener per
port the workload serves, on its own address; outbound, the HTTP proxy listener apps reach via
``HTTP_PROXY`` plus the Sidecar resource's explicit egress listeners. Istio makes no inferred
inbound listeners in NONE mode (the app would hold the port); in the local mesh each workload has
its own loopback address and the app a private port, so we do. Istio's catch-all egress listener
binds 127.0.0.1 on every service port in NONE mode; many local sidecars share 127.0.0.1, so only
egress listeners with an explicit port are made. Only HTTP is served: our proxy has no tcp_proxy,
so TCP ports get no NONE-mode listener.

REDIRECT (iptables, Istio's default): ``virtualOutbound`` (15001) and ``virtualInbound`` (15006)
catch redirected connections, per-port ``0.0.0.0_PORT`` outbound listeners (not bound) carry HTTP
and per-VIP ``VIP_PORT`` listeners carry TCP. These are Istio's shapes for Envoy; our proxy does
not support filter_chain_match, listener filters, tcp_proxy or original destination.
"""

from __future__ import annotations

from dataclasses import dataclass

from envoy.config.core.v3 import address_pb2, base_pb2, protocol_pb2
from envoy.config.listener.v3 import listener_components_pb2 as lc_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.listener.http_inspector.v3 import http_inspector_pb2
from envoy.extensions.filters.listener.original_dst.v3 import original_dst_pb2
from envoy.extensions.filters.listener.tls_inspector.v3 import tls_inspector_pb2
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from google.protobuf import any_pb2, wrappers_pb2

from ..config.base import Resource
from ..config.models.sidecar import CaptureMode, SidecarPort
from ..registry.model import Port, Protocol, Service
from . import naming
from .http_filters import (
    STATS_FILTER,
    ListenerClass,
    connection_manager,
    hcm_filter,
    inbound_route_config,
    stat_prefix,
    stats_config,
)
from .listener_tcp import tcp_proxy_config
from .listener_tls import is_tls, tls_filter_chains
from .proxy import InterceptionMode, Proxy
from .push_context import PushContext

WILDCARD = "0.0.0.0"
LOCALHOST = "127.0.0.1"
TCP_PROXY_FILTER = "envoy.filters.network.tcp_proxy"
RAW_BUFFER = "raw_buffer"
PLAINTEXT_HTTP_ALPNS = ("http/1.1", "h2c")
INBOUND = base_pb2.TrafficDirection.INBOUND
OUTBOUND = base_pb2.TrafficDirection.OUTBOUND


def address(ip: str, port: int) -> address_pb2.Address:
    return address_pb2.Address(socket_address=address_pb2.SocketAddress(address=ip, port_value=port))


def parse_protocol(text: str | None) -> Protocol:
    """Istio's protocol.Parse: case-insensitive; unknown or empty is sniffed (UNSUPPORTED)."""
    wanted = (text or "").lower()
    for p in Protocol:
        if p.value.lower() == wanted:
            return p
    return Protocol.UNSUPPORTED


def serves_http(protocol: Protocol) -> bool:
    """HTTP ports, and sniffed ports whose traffic our HTTP-only proxy can only take as HTTP."""
    return protocol.is_http or protocol is Protocol.UNSUPPORTED


def _packed(msg: object) -> any_pb2.Any:
    out = any_pb2.Any()
    out.Pack(msg)  # type: ignore[arg-type]
    return out


def tcp_proxy_filters(cluster: str, cls: ListenerClass) -> list[lc_pb2.Filter]:
    """istio.stats then tcp_proxy to ``cluster`` (stat_prefix the cluster name, as Istio)."""
    return tcp_filters(tcp_proxy_pb2.TcpProxy(stat_prefix=cluster, cluster=cluster), cls)


def tcp_filters(config: tcp_proxy_pb2.TcpProxy, cls: ListenerClass) -> list[lc_pb2.Filter]:
    """istio.stats then the given tcp_proxy (a VirtualService's tcp route may have chosen it)."""
    return [lc_pb2.Filter(name=STATS_FILTER, typed_config=stats_config(cls)),
            lc_pb2.Filter(name=TCP_PROXY_FILTER, typed_config=_packed(config))]


def _listener_filter(name: str, msg: object) -> lc_pb2.ListenerFilter:
    return lc_pb2.ListenerFilter(name=name, typed_config=_packed(msg))


# ---------------------------------------------------------------------------- inbound ports


@dataclass(frozen=True, slots=True)
class InboundPort:
    """One port the workload serves: ``target`` is where the sidecar listens (the instance's
    port, Istio's TargetPort) and names the inbound cluster; ``port`` the service port."""

    port: Port
    target: int
    bind: str  # "" for the mode's default
    bind_to_port: bool
    hostname: str = ""


def inbound_ports(push: PushContext, proxy: Proxy) -> list[InboundPort]:
    """The Sidecar's ingress listeners when it has any (they replace the inferred ones, as
    Istio without EnableSidecarServiceInboundListenerMerge); otherwise every port of every
    service with an endpoint on one of the proxy's addresses. One per target port (the first
    service by hostname wins), ordered by target port."""
    none_mode = proxy.interception_mode is InterceptionMode.NONE
    sidecar = push.sidecar_for(proxy)
    by_target: dict[int, InboundPort] = {}
    if sidecar is not None and sidecar.spec.ingress:
        for ingress in sidecar.spec.ingress:
            sp = ingress.port or SidecarPort()
            if not sp.number:
                continue
            port = Port(sp.name or "", int(sp.number), parse_protocol(sp.protocol))
            bind_to_port = _binds(ingress.capture_mode, none_mode)
            by_target.setdefault(port.number, InboundPort(port, port.number, ingress.bind or "", bind_to_port,
                                                          f"{sidecar.name}.{sidecar.namespace}"))
    else:
        for service, ep in push.proxy_endpoints(proxy):
            for port in service.ports:
                target = ep.port_for(port)
                by_target.setdefault(target, InboundPort(port, target, "", none_mode, service.hostname))
    return [by_target[k] for k in sorted(by_target)]


def _binds(mode: CaptureMode | None, none_mode: bool) -> bool:
    """Istio's getBindToPort: DEFAULT follows the proxy's interception mode."""
    if mode is None or mode is CaptureMode.DEFAULT:
        return none_mode
    return mode is CaptureMode.NONE


def _inbound_hcm_chain(ip: InboundPort, chain_name: str) -> lc_pb2.FilterChain:
    hcm = connection_manager(stat_prefix(naming.INBOUND, chain_name), ListenerClass.SIDECAR_INBOUND,
                             route_config=inbound_route_config(ip.target, ip.port.number))
    return lc_pb2.FilterChain(name=chain_name, filters=[hcm_filter(hcm)])


# ---------------------------------------------------------------------------- NONE


def none_mode_listeners(push: PushContext, proxy: Proxy) -> list[listener_pb2.Listener]:
    out = [_bound_inbound(proxy, ip) for ip in inbound_ports(push, proxy)
           if ip.bind_to_port and serves_http(ip.port.protocol)]
    http_proxy = http_proxy_listener(proxy)
    if http_proxy is not None:
        out.append(http_proxy)
    out += egress_listeners(push, proxy)
    return out


def _bound_inbound(proxy: Proxy, ip: InboundPort) -> listener_pb2.Listener:
    """``IP_PORT`` on the workload's own address (or the ingress listener's bind), one filter
    chain without filter_chain_match (Istio's raw_buffer match needs a TLS inspector our proxy
    does not have; a bound plaintext listener has nothing else to tell apart)."""
    bind = ip.bind or proxy.ip or WILDCARD
    name = naming.listener_name(bind, ip.target)
    return listener_pb2.Listener(name=name, address=address(bind, ip.target), traffic_direction=INBOUND,
                                 filter_chains=[_inbound_hcm_chain(ip, name)])


def http_proxy_port(proxy: Proxy) -> int:
    """Istio's per-proxy override is the node metadata HTTP_PROXY_PORT (local sidecars sharing
    127.0.0.1 each need their own); 0 turns the listener off."""
    raw = proxy.metadata.get("HTTP_PROXY_PORT")
    if raw is not None and str(raw).strip().isdigit():
        return int(str(raw).strip())
    return naming.HTTP_PROXY_PORT


def http_proxy_listener(proxy: Proxy) -> listener_pb2.Listener | None:
    """``127.0.0.1_15080``: apps' HTTP_PROXY. Requests arrive in absolute form
    (``GET http://reviews:9080/``) and are routed by RDS ``http_proxy`` on their authority."""
    port = http_proxy_port(proxy)
    if not port:
        return None
    name = naming.listener_name(LOCALHOST, port)
    hcm = connection_manager(stat_prefix(naming.OUTBOUND, name), ListenerClass.SIDECAR_OUTBOUND,
                             rds=naming.HTTP_PROXY_ROUTE,
                             http1=protocol_pb2.Http1ProtocolOptions(
                                 allow_absolute_url=wrappers_pb2.BoolValue(value=True)))
    return listener_pb2.Listener(name=name, address=address(LOCALHOST, port), traffic_direction=OUTBOUND,
                                 filter_chains=[lc_pb2.FilterChain(filters=[hcm_filter(hcm)])])


def _egress_port_protocol(push: PushContext, proxy: Proxy, sp: SidecarPort) -> Protocol:
    if sp.protocol:
        return parse_protocol(sp.protocol)
    for service in push.services_for(proxy):  # Istio: the protocol of the service port it names
        port = service.port(int(sp.number or 0))
        if port is not None:
            return port.protocol
    return Protocol.UNSUPPORTED


def egress_listeners(push: PushContext, proxy: Proxy) -> list[listener_pb2.Listener]:
    """The Sidecar's egress listeners with a port that bind a socket (captureMode NONE, or
    DEFAULT on a NONE-mode proxy); bind defaults to 127.0.0.1 as Istio. HTTP ports route by
    RDS named after the port, restricted to that listener's hosts by the route generator."""
    sidecar = push.sidecar_for(proxy)
    if sidecar is None:
        return []
    none_mode = proxy.interception_mode is InterceptionMode.NONE
    out = []
    seen: set[str] = set()
    for egress in sidecar.spec.egress or ():
        sp = egress.port
        if sp is None or not sp.number or not _binds(egress.capture_mode, none_mode):
            continue
        if not serves_http(_egress_port_protocol(push, proxy, sp)):
            continue  # TCP egress needs tcp_proxy, which our proxy lacks
        bind = egress.bind or LOCALHOST
        name = naming.listener_name(bind, int(sp.number))
        if name in seen:
            continue
        seen.add(name)
        hcm = connection_manager(stat_prefix(naming.OUTBOUND, name), ListenerClass.SIDECAR_OUTBOUND,
                                 rds=naming.outbound_route_name(int(sp.number)))
        out.append(listener_pb2.Listener(name=name, address=address(bind, int(sp.number)),
                                         traffic_direction=OUTBOUND,
                                         filter_chains=[lc_pb2.FilterChain(filters=[hcm_filter(hcm)])]))
    return out


# ---------------------------------------------------------------------------- REDIRECT


def redirect_mode_listeners(push: PushContext, proxy: Proxy) -> list[listener_pb2.Listener]:
    inbound = inbound_ports(push, proxy)
    out = [virtual_outbound(push, proxy), virtual_inbound([ip for ip in inbound if not ip.bind_to_port])]
    out += [_bound_inbound(proxy, ip) for ip in inbound if ip.bind_to_port and serves_http(ip.port.protocol)]
    out += outbound_listeners(push, proxy)
    out += egress_listeners(push, proxy)
    return out


def outbound_policy(push: PushContext, proxy: Proxy) -> str:
    """The Sidecar's outboundTrafficPolicy mode, else the mesh's (ALLOW_ANY by default)."""
    sidecar: Resource | None = push.sidecar_for(proxy)
    if sidecar is not None and sidecar.spec.outbound_traffic_policy and sidecar.spec.outbound_traffic_policy.mode:
        return str(sidecar.spec.outbound_traffic_policy.mode)
    return push.mesh.outbound_traffic_policy.mode or "ALLOW_ANY"


def catch_all_cluster(push: PushContext, proxy: Proxy) -> str:
    return naming.BLACKHOLE_CLUSTER if outbound_policy(push, proxy) == "REGISTRY_ONLY" else naming.PASSTHROUGH_CLUSTER


def virtual_outbound(push: PushContext, proxy: Proxy) -> listener_pb2.Listener:
    """0.0.0.0:15001 hands each redirected connection to the listener of its original
    destination; what matches none goes to the catch-all (direct connections to 15001 itself
    to the black hole, so traffic cannot loop)."""
    cls = ListenerClass.SIDECAR_OUTBOUND
    blackhole = lc_pb2.FilterChain(
        name="virtualOutbound-blackhole",
        filter_chain_match=lc_pb2.FilterChainMatch(
            destination_port=wrappers_pb2.UInt32Value(value=naming.VIRTUAL_OUTBOUND_PORT)),
        filters=tcp_proxy_filters(naming.BLACKHOLE_CLUSTER, cls))
    catch_all = lc_pb2.FilterChain(name="virtualOutbound-catchall-tcp",
                                   filters=tcp_proxy_filters(catch_all_cluster(push, proxy), cls))
    return listener_pb2.Listener(
        name=naming.VIRTUAL_OUTBOUND, address=address(WILDCARD, naming.VIRTUAL_OUTBOUND_PORT),
        filter_chains=[blackhole, catch_all], use_original_dst=wrappers_pb2.BoolValue(value=True),
        traffic_direction=OUTBOUND)


def virtual_inbound(ports: list[InboundPort]) -> listener_pb2.Listener:
    """0.0.0.0:15006: the black hole for direct connections, the passthrough chains for ports no
    service declares, then one chain per inbound port (plaintext: mTLS comes with security)."""
    cls = ListenerClass.SIDECAR_INBOUND
    raw = RAW_BUFFER
    chains = [
        lc_pb2.FilterChain(
            name="virtualInbound-blackhole",
            filter_chain_match=lc_pb2.FilterChainMatch(
                destination_port=wrappers_pb2.UInt32Value(value=naming.VIRTUAL_INBOUND_PORT)),
            filters=tcp_proxy_filters(naming.BLACKHOLE_CLUSTER, cls)),
        lc_pb2.FilterChain(
            name="virtualInbound-catchall-http",
            filter_chain_match=lc_pb2.FilterChainMatch(transport_protocol=raw,
                                                       application_protocols=PLAINTEXT_HTTP_ALPNS),
            filters=[hcm_filter(connection_manager(
                naming.INBOUND_PASSTHROUGH_CLUSTER, cls,
                route_config=inbound_route_config(0, 0, naming.INBOUND_PASSTHROUGH_CLUSTER,
                                                  naming.INBOUND_PASSTHROUGH_CLUSTER)))]),
        lc_pb2.FilterChain(name=naming.VIRTUAL_INBOUND,
                           filter_chain_match=lc_pb2.FilterChainMatch(transport_protocol=raw),
                           filters=tcp_proxy_filters(naming.INBOUND_PASSTHROUGH_CLUSTER, cls)),
    ]
    for ip in ports:
        name = naming.listener_name(WILDCARD, ip.target)
        port_match = wrappers_pb2.UInt32Value(value=ip.target)
        cluster = naming.cluster_name(naming.INBOUND, ip.target)
        if serves_http(ip.port.protocol):
            http = _inbound_hcm_chain(ip, name)
            http.filter_chain_match.CopyFrom(lc_pb2.FilterChainMatch(destination_port=port_match, transport_protocol=raw))
            if ip.port.protocol is Protocol.UNSUPPORTED:  # sniffed: HTTP when it looks like HTTP
                http.filter_chain_match.application_protocols.extend(PLAINTEXT_HTTP_ALPNS)
            chains.append(http)
        if not ip.port.protocol.is_http:
            chains.append(lc_pb2.FilterChain(
                name=name, filter_chain_match=lc_pb2.FilterChainMatch(destination_port=port_match, transport_protocol=raw),
                filters=tcp_proxy_filters(cluster, cls)))
    return listener_pb2.Listener(
        name=naming.VIRTUAL_INBOUND, address=address(WILDCARD, naming.VIRTUAL_INBOUND_PORT),
        filter_chains=chains, traffic_direction=INBOUND,
        listener_filters=[
            _listener_filter("envoy.filters.listener.original_dst", original_dst_pb2.OriginalDst()),
            _listener_filter("envoy.filters.listener.tls_inspector", tls_inspector_pb2.TlsInspector()),
            _listener_filter("envoy.filters.listener.http_inspector", http_inspector_pb2.HttpInspector())])


def outbound_listeners(push: PushContext, proxy: Proxy) -> list[listener_pb2.Listener]:
    """One ``0.0.0.0_PORT`` per HTTP service port (RDS ``PORT``, shared by every service on the
    port), one ``VIP_PORT`` per TCP or sniffed service port with a VIP (``0.0.0.0_PORT`` when the
    service has none and the port is free), its tcp_proxy following the mesh VirtualService's
    ``tcp`` routes; on TLS/HTTPS ports a tls_inspector and one chain per ``tls`` route SNI match
    first. None binds: virtualOutbound hands connections over."""
    cls = ListenerClass.SIDECAR_OUTBOUND
    passthrough = catch_all_cluster(push, proxy)
    by_name: dict[str, listener_pb2.Listener] = {}
    services = push.services_for(proxy)
    for service in services:
        for port in service.ports:
            if port.protocol.is_http:
                name = naming.listener_name(WILDCARD, port.number)
                if name not in by_name:
                    by_name[name] = _outbound_http(name, port.number, naming.outbound_route_name(port.number),
                                                   passthrough)
    for service in services:
        for port in service.ports:
            if port.protocol.is_http:
                continue
            for vip in service.addresses or (WILDCARD,):
                name = naming.listener_name(vip, port.number)
                if name in by_name:
                    continue
                if is_tls(port.protocol):
                    by_name[name] = _outbound_tls(push, proxy, service, name, vip, port.number)
                    continue
                chains = []
                if port.protocol is Protocol.UNSUPPORTED:  # sniffed: a route of its own, then TCP
                    hcm = connection_manager(stat_prefix(naming.OUTBOUND, name), cls,
                                             rds=f"{service.hostname}:{port.number}")
                    chains.append(lc_pb2.FilterChain(
                        filter_chain_match=lc_pb2.FilterChainMatch(application_protocols=PLAINTEXT_HTTP_ALPNS),
                        filters=[hcm_filter(hcm)]))
                tcp = tcp_proxy_config(push, proxy, service, port.number, vip)
                chains.append(lc_pb2.FilterChain(filters=tcp_filters(tcp, cls)))
                by_name[name] = listener_pb2.Listener(
                    name=name, address=address(vip, port.number), filter_chains=chains,
                    bind_to_port=wrappers_pb2.BoolValue(value=False), traffic_direction=OUTBOUND)
    return list(by_name.values())


def _outbound_tls(push: PushContext, proxy: Proxy, service: Service, name: str, vip: str,
                  port: int) -> listener_pb2.Listener:
    """TLS passed through: the tls_inspector reads the SNI the ``tls`` route chains match on.
    The fallback's empty match is left unset, as on the TCP chains."""
    chains = [lc_pb2.FilterChain(filter_chain_match=match if match.ByteSize() else None,
                                 filters=tcp_filters(tcp, ListenerClass.SIDECAR_OUTBOUND))
              for match, tcp in tls_filter_chains(push, proxy, service, port, vip)]
    return listener_pb2.Listener(
        name=name, address=address(vip, port), filter_chains=chains,
        bind_to_port=wrappers_pb2.BoolValue(value=False), traffic_direction=OUTBOUND,
        listener_filters=[_listener_filter("envoy.filters.listener.tls_inspector", tls_inspector_pb2.TlsInspector())])


def _outbound_http(name: str, port: int, route: str, passthrough: str) -> listener_pb2.Listener:
    hcm = connection_manager(stat_prefix(naming.OUTBOUND, name), ListenerClass.SIDECAR_OUTBOUND, rds=route)
    chain = lc_pb2.FilterChain(
        filter_chain_match=lc_pb2.FilterChainMatch(transport_protocol=RAW_BUFFER,
                                                   application_protocols=PLAINTEXT_HTTP_ALPNS),
        filters=[hcm_filter(hcm)])
    default = lc_pb2.FilterChain(name="PassthroughFilterChain",
                                 filters=tcp_proxy_filters(passthrough, ListenerClass.SIDECAR_OUTBOUND))
    return listener_pb2.Listener(
        name=name, address=address(WILDCARD, port), filter_chains=[chain], default_filter_chain=default,
        bind_to_port=wrappers_pb2.BoolValue(value=False), traffic_direction=OUTBOUND,
        listener_filters=[
            _listener_filter("envoy.filters.listener.tls_inspector", tls_inspector_pb2.TlsInspector()),
            _listener_filter("envoy.filters.listener.http_inspector", http_inspector_pb2.HttpInspector())])


def sidecar_listeners(push: PushContext, proxy: Proxy) -> list[listener_pb2.Listener]:
    if proxy.interception_mode is InterceptionMode.NONE:
        return none_mode_listeners(push, proxy)
    return redirect_mode_listeners(push, proxy)
