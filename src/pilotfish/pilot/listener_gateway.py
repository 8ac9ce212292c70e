"""A gateway's listeners (Istio's buildGatewayListeners, gateway.go): one real listener per
distinct server port of the Gateways selecting the proxy.

Plaintext HTTP servers (HTTP, HTTP2, GRPC) share one connection manager per port with RDS
``http.PORT``, where the route generator merges every server's hosts. HTTPS and TLS servers
need SDS certificates and SNI filter chains (security comes later) and TCP servers a tcp_proxy
our proxy lacks: those ports get no listener yet.
"""

from __future__ import annotations

from envoy.config.core.v3 import protocol_pb2
from envoy.config.listener.v3 import listener_components_pb2 as lc_pb2
from envoy.config.listener.v3 import listener_pb2

from . import naming
from .gateway_ports import listener_ports, target_ports
from .http_filters import ListenerClass, connection_manager, hcm_filter, stat_prefix
from .listener_sidecar import OUTBOUND, WILDCARD, address, parse_protocol
from .proxy import InterceptionMode, Proxy
from .push_context import PushContext


def gateway_server_ports(push: PushContext, proxy: Proxy) -> dict[tuple[str, int], str]:
    """(bind, listener port) → the protocol of the first server declared on it (Istio refuses a
    second protocol on a port when merging gateways: the first one wins). A server's port is
    translated to the gateway Service's target port (gateway_ports). A NONE-mode gateway (the
    local mesh, where many proxies share the host) binds its own address, not the wildcard."""
    ports: dict[tuple[str, int], str] = {}
    targets = target_ports(push, proxy)
    default_bind = proxy.ip if proxy.interception_mode is InterceptionMode.NONE and proxy.ip else WILDCARD
    for gw in push.gateways_for(proxy):
        for server in gw.spec.servers or ():
            if server.port is None or not server.port.number:
                continue
            for number in listener_ports(int(server.port.number), targets):
                ports.setdefault((server.bind or default_bind, number), (server.port.protocol or "").upper())
    return ports


def gateway_listeners(push: PushContext, proxy: Proxy) -> list[listener_pb2.Listener]:
    out = []
    for (bind, port), proto in sorted(gateway_server_ports(push, proxy).items(), key=lambda kv: (kv[0][1], kv[0][0])):
        if not parse_protocol(proto).is_http:
            continue  # HTTPS/TLS (certificates, SNI) and TCP servers: not yet, see the module docstring
        name = naming.listener_name(bind, port)
        # Istio's gateway HCM: use_remote_address (the gateway is the edge), plain HTTP/1.1 options.
        hcm = connection_manager(stat_prefix(naming.OUTBOUND, name), ListenerClass.GATEWAY,
                                 rds=naming.gateway_route_name(port), http1=protocol_pb2.Http1ProtocolOptions())
        out.append(listener_pb2.Listener(name=name, address=address(bind, port), traffic_direction=OUTBOUND,
                                         filter_chains=[lc_pb2.FilterChain(filters=[hcm_filter(hcm)])]))
    return out
