"""LDS for one proxy: a gateway's server ports, a sidecar's listeners (by interception mode), or
the API listeners proxyless gRPC clients ask for by ``host:port`` (grpcgen/lds.go).

A gRPC client asks LDS for its channel target itself (``xds:///reviews:9080`` → ``reviews:9080``)
and expects an *API listener*: no socket, just the HttpConnectionManager whose RDS names the
route to apply. A gRPC xDS server asks for ``xds.istio.io/grpc/lds/inbound/IP:PORT`` and gets a
real listener whose routes only admit the request (non_forwarding_action).
"""

from __future__ import annotations

from envoy.config.listener.v3 import api_listener_pb2, listener_pb2
from envoy.config.listener.v3 import listener_components_pb2 as lc_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2
from google.protobuf import any_pb2

from ..registry.model import Service
from .http_filters import ads_rds, grpc_http_filters, router_filter
from .listener_gateway import gateway_listeners
from .listener_sidecar import WILDCARD, address, sidecar_listeners
from .proxy import Proxy
from .push_context import PushContext

GRPC_GENERATOR = "grpc"
GRPC_INBOUND_PREFIX = "xds.istio.io/grpc/lds/inbound/"


def build_listeners(push: PushContext, proxy: Proxy, names: set[str]) -> list[listener_pb2.Listener]:
    """Every listener of ``proxy`` (``names`` empty) or those asked for. A proxyless gRPC
    client gets only API listeners; any other proxy also gets one for each ``host:port`` name
    it asks for."""
    grpc_names = {n for n in names if is_grpc_name(n)}
    if proxy.generator == GRPC_GENERATOR:
        return grpc_listeners(push, proxy, grpc_names)
    out = gateway_listeners(push, proxy) if proxy.is_gateway else sidecar_listeners(push, proxy)
    if grpc_names:
        out += grpc_listeners(push, proxy, grpc_names)
    if names:
        out = [lst for lst in out if lst.name in names]
    return out


def is_grpc_name(name: str) -> bool:
    """``host:port`` (what a gRPC channel target becomes) or a gRPC server's inbound name;
    Istio's listener names use ``_`` between address and port."""
    if name.startswith(GRPC_INBOUND_PREFIX):
        return True
    host, sep, port = name.rpartition(":")
    return bool(sep and host and port.isdigit())


def fqdn(name: str, proxy: Proxy) -> str:
    """Istio's tryFindFQDN: ``reviews`` and ``reviews.default(.svc)`` in the proxy's namespace
    become ``reviews.default.svc.cluster.local``; anything else is taken as written."""
    if "." not in name:
        return f"{name}.{proxy.dns_domain}" if proxy.dns_domain else name
    for suffix in (proxy.namespace, f"{proxy.namespace}.svc"):
        short = name.removesuffix(f".{suffix}")
        if short != name and proxy.dns_domain.startswith(suffix):
            return f"{short}.{proxy.dns_domain}"
    return name


def grpc_listeners(push: PushContext, proxy: Proxy, names: set[str]) -> list[listener_pb2.Listener]:
    """API listeners for the ``host:port`` names (every visible service port when ``names`` is
    empty), then inbound server listeners for the ``xds.istio.io/grpc/lds/inbound/`` names."""
    out: list[listener_pb2.Listener] = []
    services = push.services_for(proxy)
    if not names:
        for service in services:
            out += [api_listener(f"{service.hostname}:{p.number}", service, p.number) for p in service.ports]
        return out
    for name in sorted(names):
        if name.startswith(GRPC_INBOUND_PREFIX):
            server = grpc_server_listener(proxy, name)
            if server is not None:
                out.append(server)
            continue
        host, _, port_text = name.rpartition(":")
        port = int(port_text)
        wanted = {host, fqdn(host, proxy)}
        for service in services:
            if service.hostname in wanted and service.port(port) is not None:
                out.append(api_listener(name, service, port))
                break
    return out


def api_listener(name: str, service: Service, port: int) -> listener_pb2.Listener:
    """The listener is named as asked (a client may watch both ``foo:80`` and ``foo.ns:80``);
    its RDS route configuration has the same name. (Istio names that route after the outbound
    cluster; here the route generator serves ``host:port`` names, whose virtual host domains
    carry the client's authority.)"""
    hcm = hcm_pb2.HttpConnectionManager(http_filters=grpc_http_filters(), rds=ads_rds(name))
    hcm.rds.config_source.ClearField("initial_fetch_timeout")  # grpcgen sets only ads {}
    packed = any_pb2.Any()
    packed.Pack(hcm)
    vip = service.addresses[0] if service.addresses else WILDCARD
    return listener_pb2.Listener(name=name, address=address(vip, port),
                                 api_listener=api_listener_pb2.ApiListener(api_listener=packed))


def grpc_server_listener(proxy: Proxy, name: str) -> listener_pb2.Listener | None:
    """A gRPC xDS server's listener on ``IP:PORT``: plaintext (mTLS comes with security), one
    route admitting every request, the router last."""
    host, _, port_text = name.removeprefix(GRPC_INBOUND_PREFIX).rpartition(":")
    if not port_text.isdigit() or not host:
        return None
    host = host.strip("[]")
    route = route_components_pb2.Route(match=route_components_pb2.RouteMatch(prefix="/"),
                                       non_forwarding_action=route_components_pb2.NonForwardingAction())
    config = route_pb2.RouteConfiguration(
        name="inbound", virtual_hosts=[route_components_pb2.VirtualHost(domains=["*"], routes=[route])])
    hcm = hcm_pb2.HttpConnectionManager(route_config=config, http_filters=[router_filter()])
    packed = any_pb2.Any()
    packed.Pack(hcm)
    chain = lc_pb2.FilterChain(name="inbound-plaintext",
                               filters=[lc_pb2.Filter(name="inbound-hcmplaintext", typed_config=packed)])
    return listener_pb2.Listener(name=name, address=address(host, int(port_text)), filter_chains=[chain])
