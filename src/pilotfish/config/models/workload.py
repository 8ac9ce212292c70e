"""WorkloadEntry and WorkloadGroup (networking.istio.io): non-Kubernetes workloads such as VMs.

Also holds networking's ``WorkloadSelector`` (``labels``, unlike the security/telemetry
selector in ``common`` which uses ``matchLabels``): Sidecar, ServiceEntry and EnvoyFilter use it.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints, model_validator

from ..base import IstioModel
from ..kind_info import KindInfo
from .gateway import NETWORKING, NETWORKING_VERSIONS
from .virtualservice import UInt32, check_one_of

NonNegInt32 = Annotated[int, Field(ge=0, le=2**31 - 1)]


class WorkloadSelector(IstioModel):
    """networking's WorkloadSelector: pods/VMs whose labels include all of ``labels``."""

    labels: dict[str, Annotated[str, StringConstraints(max_length=63)]] | None = Field(default=None, max_length=256)


class WorkloadEntry(IstioModel):
    """A workload's address, ports by service-port name, labels, network and identity."""

    address: Annotated[str, StringConstraints(max_length=256)] | None = None
    ports: dict[str, UInt32] | None = Field(default=None, max_length=128)
    labels: dict[str, str] | None = Field(default=None, max_length=256)
    network: Annotated[str, StringConstraints(max_length=2048)] | None = None
    locality: Annotated[str, StringConstraints(max_length=2048)] | None = None
    weight: UInt32 | None = None
    service_account: Annotated[str, StringConstraints(max_length=253)] | None = None


class ObjectMetadata(IstioModel):
    """Labels and annotations copied onto every WorkloadEntry a WorkloadGroup creates."""

    labels: dict[str, str] | None = Field(default=None, max_length=256)
    annotations: dict[str, str] | None = Field(default=None, max_length=256)


class HTTPHeader(IstioModel):
    name: Annotated[str, StringConstraints(pattern=r"^[-_A-Za-z0-9]+$")] | None = None
    value: str | None = None


class HTTPHealthCheckConfig(IstioModel):
    path: str | None = None
    port: UInt32 | None = None  # required by the CRD (checked in validation)
    host: str | None = None
    scheme: str | None = None
    http_headers: list[HTTPHeader] | None = None


class TCPHealthCheckConfig(IstioModel):
    host: str | None = None
    port: UInt32 | None = None  # required by the CRD (checked in validation)


class ExecHealthCheckConfig(IstioModel):
    command: list[Annotated[str, StringConstraints(min_length=1)]] | None = None  # required by the CRD


class GrpcHealthCheckConfig(IstioModel):
    port: UInt32 | None = None
    service: str | None = None


class ReadinessProbe(IstioModel):
    """How the agent on a VM decides the workload is ready; one check method at most."""

    initial_delay_seconds: NonNegInt32 | None = None
    timeout_seconds: NonNegInt32 | None = None
    period_seconds: NonNegInt32 | None = None
    success_threshold: NonNegInt32 | None = None
    failure_threshold: NonNegInt32 | None = None
    http_get: HTTPHealthCheckConfig | None = None
    tcp_socket: TCPHealthCheckConfig | None = None
    exec: ExecHealthCheckConfig | None = None
    grpc: GrpcHealthCheckConfig | None = None

    @model_validator(mode="after")
    def _one_method(self) -> ReadinessProbe:
        # The CRD's oneOf: httpGet, tcpSocket, exec and grpc are alternatives.
        check_one_of(self, "http_get", "tcp_socket", "exec", "grpc")
        return self

    def methods(self) -> list[str]:
        return [n for n in ("http_get", "tcp_socket", "exec", "grpc") if getattr(self, n) is not None]


class WorkloadGroup(IstioModel):
    """A template for the WorkloadEntries of auto-registered workloads, plus their probe."""

    metadata: ObjectMetadata | None = None
    template: WorkloadEntry | None = None  # required by the CRD (checked in validation)
    probe: ReadinessProbe | None = None


KINDS = [
    KindInfo(group=NETWORKING, kind="WorkloadEntry", versions=NETWORKING_VERSIONS, model=WorkloadEntry, plural="workloadentries"),
    KindInfo(group=NETWORKING, kind="WorkloadGroup", versions=NETWORKING_VERSIONS, model=WorkloadGroup, plural="workloadgroups"),
]
