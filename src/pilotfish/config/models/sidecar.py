"""Sidecar (networking.istio.io): what a workload's proxy listens on and which services it sees."""

from __future__ import annotations

from enum import StrEnum

from ..base import IstioModel
from ..kind_info import KindInfo
from .destinationrule import ConnectionPoolSettings
from .gateway import NETWORKING, NETWORKING_VERSIONS, ServerTLSSettings
from .virtualservice import Destination, UInt32
from .workload import WorkloadSelector


class CaptureMode(StrEnum):
    DEFAULT = "DEFAULT"
    IPTABLES = "IPTABLES"
    NONE = "NONE"


class OutboundTrafficPolicyMode(StrEnum):
    """OutboundTrafficPolicy.Mode."""

    REGISTRY_ONLY = "REGISTRY_ONLY"
    ALLOW_ANY = "ALLOW_ANY"


class SidecarPort(IstioModel):
    """A listener port; every field optional (number 0 means a Unix domain socket on egress)."""

    number: UInt32 | None = None
    protocol: str | None = None
    name: str | None = None
    target_port: UInt32 | None = None


class IstioIngressListener(IstioModel):
    """An inbound listener: port, bind address, where to forward, TLS and a connection pool."""

    port: SidecarPort | None = None  # required by the CRD (checked in validation)
    bind: str | None = None
    capture_mode: CaptureMode | None = None
    default_endpoint: str | None = None
    tls: ServerTLSSettings | None = None
    connection_pool: ConnectionPoolSettings | None = None


class IstioEgressListener(IstioModel):
    """An outbound listener and the ``namespace/host`` services reachable through it."""

    port: SidecarPort | None = None
    bind: str | None = None
    capture_mode: CaptureMode | None = None
    hosts: list[str] | None = None  # required by the CRD (checked in validation)


class OutboundTrafficPolicy(IstioModel):
    """REGISTRY_ONLY or ALLOW_ANY for unknown destinations, optionally via an egress proxy."""

    mode: OutboundTrafficPolicyMode | None = None
    egress_proxy: Destination | None = None


class Sidecar(IstioModel):
    """The Sidecar spec: selector, ingress and egress listeners, inbound pool, outbound policy."""

    workload_selector: WorkloadSelector | None = None
    ingress: list[IstioIngressListener] | None = None
    egress: list[IstioEgressListener] | None = None
    inbound_connection_pool: ConnectionPoolSettings | None = None
    outbound_traffic_policy: OutboundTrafficPolicy | None = None


KINDS = [KindInfo(group=NETWORKING, kind="Sidecar", versions=NETWORKING_VERSIONS, model=Sidecar, plural="sidecars")]
