"""Who is asking: a proxy's identity and metadata from its xDS node, as Istio reads them.

The node id is ``TYPE~IP~ID~DOMAIN`` (``sidecar~10.0.0.5~reviews-v1-abc.default~default.svc.cluster.local``,
``router~…`` for gateways); the metadata carries NAMESPACE, LABELS, WORKLOAD_NAME,
SERVICE_ACCOUNT, INTERCEPTION_MODE, ISTIO_VERSION, INSTANCE_IPS, and the node its locality.
The local mesh adds APP_PORTS, ``{"9080": 41234}``: where on 127.0.0.1 the app listens for each
port its workload serves, since many local apps share 127.0.0.1 (Istio's NONE-mode VMs say the
same with a Sidecar ingress defaultEndpoint).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ..registry.model import Locality


class ProxyType(StrEnum):
    SIDECAR = "sidecar"
    ROUTER = "router"  # a gateway


class InterceptionMode(StrEnum):
    REDIRECT = "REDIRECT"  # iptables: virtualOutbound 15001 / virtualInbound 15006
    TPROXY = "TPROXY"
    NONE = "NONE"  # no interception: explicit listeners (the local mesh)


class ProxyIdError(ValueError):
    """A node id Istio would refuse."""


@dataclass(frozen=True)
class Proxy:
    type: ProxyType
    ip_addresses: tuple[str, ...]
    id: str  # pod.namespace
    dns_domain: str
    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)
    workload_name: str = ""
    service_account: str = ""
    interception_mode: InterceptionMode = InterceptionMode.REDIRECT
    istio_version: str = ""
    locality: Locality = Locality()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    node_id: str = ""
    generator: str = ""  # "grpc" for proxyless gRPC clients (their metadata GENERATOR)
    app_ports: Mapping[int, int] = field(default_factory=dict)  # workload port → the app's (APP_PORTS)

    @property
    def ip(self) -> str:
        return self.ip_addresses[0] if self.ip_addresses else ""

    @property
    def is_gateway(self) -> bool:
        return self.type is ProxyType.ROUTER


def parse_node_id(node_id: str) -> tuple[ProxyType, tuple[str, ...], str, str]:
    """(type, IPs, id, DNS domain) of an Istio node id."""
    parts = node_id.split("~")
    if len(parts) != 4:
        raise ProxyIdError(f"missing parts in the service node {node_id!r} (want TYPE~IP~ID~DOMAIN)")
    kind, ips, pid, domain = parts
    try:
        ptype = ProxyType(kind)
    except ValueError:
        raise ProxyIdError(f"invalid node type (valid types: sidecar, router) in the service node {node_id!r}") from None
    addresses = tuple(a for a in ips.split(",") if a)
    if not addresses:
        raise ProxyIdError(f"no IP address in the service node {node_id!r}")
    return ptype, addresses, pid, domain


def proxy_from_node(node_id: str, metadata: Mapping[str, Any], locality: Locality | None = None) -> Proxy:
    """A Proxy from an xDS node's id, metadata (a plain mapping: Struct as dict) and locality."""
    ptype, ips, pid, domain = parse_node_id(node_id)
    labels = metadata.get("LABELS") or {}
    namespace = str(metadata.get("NAMESPACE") or "")
    if not namespace and "." in pid:
        namespace = pid.rsplit(".", 1)[1]
    if not namespace and domain.endswith(".svc.cluster.local"):
        namespace = domain.split(".", 1)[0]
    instance_ips = metadata.get("INSTANCE_IPS")
    if instance_ips:
        ips = tuple(a for a in str(instance_ips).split(",") if a) or ips
    mode = str(metadata.get("INTERCEPTION_MODE") or "REDIRECT").upper()
    try:
        interception = InterceptionMode(mode)
    except ValueError:
        interception = InterceptionMode.REDIRECT
    if locality is None or locality == Locality():
        locality = Locality.parse(labels.get("istio-locality", "").replace(".", "/")) if labels.get(
            "istio-locality") else Locality(labels.get("topology.kubernetes.io/region", ""),
                                            labels.get("topology.kubernetes.io/zone", ""),
                                            labels.get("topology.istio.io/subzone", ""))
    return Proxy(
        type=ptype, ip_addresses=ips, id=pid, dns_domain=domain, namespace=namespace,
        labels={str(k): str(v) for k, v in labels.items()},
        workload_name=str(metadata.get("WORKLOAD_NAME") or pid.split(".", 1)[0]),
        service_account=str(metadata.get("SERVICE_ACCOUNT") or ""),
        interception_mode=interception, istio_version=str(metadata.get("ISTIO_VERSION") or ""),
        locality=locality, metadata=dict(metadata), node_id=node_id,
        generator=str(metadata.get("GENERATOR") or ""), app_ports=_app_ports(metadata.get("APP_PORTS")))


def _app_ports(raw: Any) -> dict[int, int]:
    """APP_PORTS as a mapping of port numbers; entries that are not numbers are ignored."""
    if not isinstance(raw, Mapping):
        return {}
    out = {}
    for k, v in raw.items():
        try:
            out[int(k)] = int(v)
        except (TypeError, ValueError):
            continue
    return out


def proxy_from_envoy_node(node: Any) -> Proxy:
    """A Proxy from an ``envoy.config.core.v3.Node`` message."""
    from google.protobuf import json_format

    metadata = json_format.MessageToDict(node.metadata) if node.HasField("metadata") else {}
    loc = node.locality
    return proxy_from_node(node.id, metadata, Locality(loc.region, loc.zone, loc.sub_zone))
