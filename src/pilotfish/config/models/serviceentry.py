"""ServiceEntry (networking.istio.io): services added to the mesh's registry by hand."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, StringConstraints

from ..base import IstioModel
from ..kind_info import KindInfo
from .gateway import NETWORKING, NETWORKING_VERSIONS, UInt32
from .workload import WorkloadEntry, WorkloadSelector


class Location(StrEnum):
    MESH_EXTERNAL = "MESH_EXTERNAL"
    MESH_INTERNAL = "MESH_INTERNAL"


class Resolution(StrEnum):
    NONE = "NONE"
    STATIC = "STATIC"
    DNS = "DNS"
    DNS_ROUND_ROBIN = "DNS_ROUND_ROBIN"
    DYNAMIC_DNS = "DYNAMIC_DNS"


class ServicePort(IstioModel):
    """A port of the service; ``name`` keys the endpoints' ``ports`` maps."""

    number: UInt32 | None = None  # required by the CRD (checked in validation)
    protocol: Annotated[str, StringConstraints(max_length=256)] | None = None
    name: Annotated[str, StringConstraints(max_length=256)] | None = None  # required by the CRD
    target_port: UInt32 | None = None


class ServiceEntry(IstioModel):
    """Hosts, addresses, ports, how endpoints are found (resolution) and who sees it (exportTo).

    Fields the CRD requires are optional here and checked in validation, so analysis can still
    read an incomplete ServiceEntry.
    """

    hosts: list[str] | None = Field(default=None, max_length=256)
    addresses: list[Annotated[str, StringConstraints(max_length=64)]] | None = Field(default=None, max_length=256)
    ports: list[ServicePort] | None = Field(default=None, max_length=256)
    location: Location | None = None
    resolution: Resolution | None = None
    endpoints: list[WorkloadEntry] | None = Field(default=None, max_length=4096)
    workload_selector: WorkloadSelector | None = None
    export_to: list[str] | None = None
    subject_alt_names: list[str] | None = None


KINDS = [KindInfo(group=NETWORKING, kind="ServiceEntry", versions=NETWORKING_VERSIONS, model=ServiceEntry, plural="serviceentries")]
