"""What the registry holds: services, their ports, and endpoints (Istio's model.Service and
IstioEndpoint), immutable so a push snapshot can be shared by every proxy's translation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Protocol(StrEnum):
    """A port's application protocol (Istio's protocol.Instance)."""

    HTTP = "HTTP"
    HTTP2 = "HTTP2"
    GRPC = "GRPC"
    GRPC_WEB = "GRPC-Web"
    HTTPS = "HTTPS"
    TLS = "TLS"
    TCP = "TCP"
    MONGO = "Mongo"
    REDIS = "Redis"
    MYSQL = "MySQL"
    UDP = "UDP"
    UNSUPPORTED = "UnsupportedProtocol"  # not declared: Istio sniffs it; treated as TCP + HTTP

    @property
    def is_http(self) -> bool:
        return self in (Protocol.HTTP, Protocol.HTTP2, Protocol.GRPC, Protocol.GRPC_WEB)


class Resolution(StrEnum):
    """How a client reaches a service's endpoints (Istio's model.Resolution)."""

    CLIENT_SIDE_LB = "ClientSideLB"  # EDS: the endpoints are known (Kubernetes, ServiceEntry STATIC)
    DNS = "DNS"  # STRICT_DNS cluster
    DNS_ROUND_ROBIN = "DNSRoundRobin"  # LOGICAL_DNS cluster
    PASSTHROUGH = "Passthrough"  # NONE: ORIGINAL_DST to the address the caller dialled


@dataclass(frozen=True, slots=True)
class Port:
    name: str
    number: int
    protocol: Protocol


@dataclass(frozen=True, slots=True)
class Locality:
    region: str = ""
    zone: str = ""
    subzone: str = ""

    @property
    def label(self) -> str:
        """Istio's ``region/zone/subzone`` form (trailing empty parts dropped)."""
        return "/".join(p for p in (self.region, self.zone, self.subzone)).rstrip("/")

    @staticmethod
    def parse(text: str | None) -> Locality:
        parts = (text or "").split("/")
        return Locality(*(parts + ["", "", ""])[:3])


@dataclass(frozen=True, slots=True)
class Service:
    """One service: a hostname in a namespace (two ServiceEntries may declare one host in two
    namespaces; they are two services, told apart by exportTo and the caller's namespace)."""

    hostname: str  # FQDN for Kubernetes services (reviews.default.svc.cluster.local)
    namespace: str
    ports: tuple[Port, ...]
    addresses: tuple[str, ...] = ()  # VIPs; empty when none (headless, a ServiceEntry without addresses)
    labels: Mapping[str, str] = field(default_factory=dict)
    mesh_external: bool = False
    resolution: Resolution = Resolution.CLIENT_SIDE_LB
    export_to: frozenset[str] = frozenset({"*"})  # "*", ".", "~" or namespaces
    name: str = ""  # the Kubernetes Service's or the ServiceEntry's name
    source: str = ""  # "kubernetes" or "serviceentry" (for /debug/registryz)

    def port(self, number: int) -> Port | None:
        for p in self.ports:
            if p.number == number:
                return p
        return None


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One workload instance behind a service. ``ports`` maps the service's port names to the
    instance's port (Kubernetes targetPort, WorkloadEntry ``ports``); a name missing means the
    service port number itself."""

    address: str
    ports: Mapping[str, int] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    namespace: str = ""
    service_account: str = ""
    locality: Locality = Locality()
    weight: int = 1
    healthy: bool = True
    workload_name: str = ""
    network: str = ""

    def port_for(self, port: Port) -> int:
        return self.ports.get(port.name, port.number)


@dataclass(frozen=True, slots=True)
class Workload:
    """A workload instance the registry knows of (a Pod, a WorkloadEntry, a connected proxy),
    whether or not a service selects it: what selector matching (Sidecar, policies) reads."""

    name: str
    namespace: str
    address: str
    labels: Mapping[str, str] = field(default_factory=dict)
    service_account: str = ""
    locality: Locality = Locality()


@dataclass(frozen=True)
class RegistrySnapshot:
    """Every service and its endpoints at one moment. Keys: (hostname, namespace)."""

    services: tuple[Service, ...] = ()
    endpoints: Mapping[tuple[str, str], tuple[Endpoint, ...]] = field(default_factory=dict)
    workloads: tuple[Workload, ...] = ()

    def endpoints_of(self, service: Service) -> tuple[Endpoint, ...]:
        return self.endpoints.get((service.hostname, service.namespace), ())

    def by_hostname(self, hostname: str) -> list[Service]:
        return [s for s in self.services if s.hostname == hostname]
