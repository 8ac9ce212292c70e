"""Which port a gateway really listens on for a Gateway server port (Istio's resolvePorts,
model/gateway.go).

A Gateway server names a port of the gateway's Service (80), while the gateway pod listens on
that Service port's targetPort (8080), so the gateway needs no privilege to bind. When the
gateway proxy is an instance of a Service with that port, the listener takes the target
port(s); otherwise (no Service, or a server naming the target port directly, as Bookinfo's
8080 does) the number is used as it is, Istio's behaviour for selector-based Gateways.
"""

from __future__ import annotations

from .proxy import Proxy
from .push_context import PushContext


def target_ports(push: PushContext, proxy: Proxy) -> dict[int, tuple[int, ...]]:
    """Service port → the gateway's target ports for it, over the services it is an instance of."""
    out: dict[int, list[int]] = {}
    for service, ep in push.proxy_endpoints(proxy):
        for port in service.ports:
            targets = out.setdefault(port.number, [])
            if ep.port_for(port) not in targets:
                targets.append(ep.port_for(port))
    return {number: tuple(targets) for number, targets in out.items()}


def listener_ports(server_port: int, targets: dict[int, tuple[int, ...]]) -> tuple[int, ...]:
    """The ports a server on ``server_port`` is served on."""
    return targets.get(server_port) or (server_port,)
