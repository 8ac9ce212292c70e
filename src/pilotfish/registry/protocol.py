"""A port's protocol as Istio detects it (pkg/config/protocol, pkg/config/kube/conversion.go).

A Kubernetes port declares its protocol with ``appProtocol`` or with its name (``http``,
``http-web``, ``grpc-web-api``, ``tcp-db``...): the part before the first ``-`` is the
protocol, compared case-insensitively. A port that declares nothing is UNSUPPORTED, which
makes the proxy sniff it, except on the well-known server-first ports (SMTP, DNS, MySQL,
MongoDB) where sniffing would hang the client, so they are TCP.
"""

from __future__ import annotations

from .model import Protocol

_BY_NAME: dict[str, Protocol] = {
    "tcp": Protocol.TCP,
    "udp": Protocol.UDP,
    "grpc": Protocol.GRPC,
    "grpc-web": Protocol.GRPC_WEB,
    "http": Protocol.HTTP,
    # Istio's HTTP_PROXY (a Sidecar egress port acting as an HTTP proxy) carries plain HTTP;
    # the registry has no separate value for it.
    "http_proxy": Protocol.HTTP,
    "http2": Protocol.HTTP2,
    "https": Protocol.HTTPS,
    "tls": Protocol.TLS,
    "mongo": Protocol.MONGO,
    "redis": Protocol.REDIS,
    "mysql": Protocol.MYSQL,
}

# Kubernetes' own appProtocol names (core/v1 ServicePort.appProtocol).
_KUBE_APP_PROTOCOLS: dict[str, Protocol] = {
    "kubernetes.io/h2c": Protocol.HTTP2,
    "kubernetes.io/ws": Protocol.HTTP,
    "kubernetes.io/wss": Protocol.HTTPS,
}

# Server-first protocols: sniffing waits for the client to speak first, so never sniff these.
WELL_KNOWN_TCP_PORTS = frozenset({25, 53, 3306, 27017})

_GRPC_WEB = "grpc-web"


def parse(text: str | None) -> Protocol:
    """A protocol name as written in a ServiceEntry port (any case); UNSUPPORTED when unknown."""
    return _BY_NAME.get((text or "").lower(), Protocol.UNSUPPORTED)


def from_kube_port(number: int, name: str | None, protocol: str | None = None, app_protocol: str | None = None) -> Protocol:
    """A Kubernetes Service (or container) port's protocol: UDP, then appProtocol, then the name."""
    if protocol == "UDP":
        return Protocol.UDP
    text = name or ""
    if app_protocol is not None:
        text = app_protocol
        known = _KUBE_APP_PROTOCOLS.get(text)
        if known is not None:
            return known
    # "grpc-web" holds a dash, so it is matched before the name is cut at the first dash.
    if text[: len(_GRPC_WEB)].lower() == _GRPC_WEB:
        return Protocol.GRPC_WEB
    found = parse(text.split("-", 1)[0])
    if found is Protocol.UNSUPPORTED and number in WELL_KNOWN_TCP_PORTS:
        return Protocol.TCP
    return found
