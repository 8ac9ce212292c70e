"""EnvoyFilter (networking.istio.io/v1alpha3): patches applied to generated Envoy config.

A patch's ``value`` is Envoy configuration in protobuf JSON form; it stays an opaque dict
here and is interpreted where the patch is applied.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import Field, model_validator

from ..base import IstioModel
from ..kind_info import KindInfo
from .common import PolicyTargetReference
from .gateway import NETWORKING
from .virtualservice import Int32, UInt32, check_one_of
from .workload import WorkloadSelector


class ApplyTo(StrEnum):
    INVALID = "INVALID"
    LISTENER = "LISTENER"
    FILTER_CHAIN = "FILTER_CHAIN"
    NETWORK_FILTER = "NETWORK_FILTER"
    HTTP_FILTER = "HTTP_FILTER"
    ROUTE_CONFIGURATION = "ROUTE_CONFIGURATION"
    VIRTUAL_HOST = "VIRTUAL_HOST"
    HTTP_ROUTE = "HTTP_ROUTE"
    CLUSTER = "CLUSTER"
    EXTENSION_CONFIG = "EXTENSION_CONFIG"
    BOOTSTRAP = "BOOTSTRAP"
    LISTENER_FILTER = "LISTENER_FILTER"


class PatchContext(StrEnum):
    ANY = "ANY"
    SIDECAR_INBOUND = "SIDECAR_INBOUND"
    SIDECAR_OUTBOUND = "SIDECAR_OUTBOUND"
    GATEWAY = "GATEWAY"
    WAYPOINT = "WAYPOINT"


class RouteAction(StrEnum):
    ANY = "ANY"
    ROUTE = "ROUTE"
    REDIRECT = "REDIRECT"
    DIRECT_RESPONSE = "DIRECT_RESPONSE"


class Operation(StrEnum):
    INVALID = "INVALID"
    MERGE = "MERGE"
    ADD = "ADD"
    REMOVE = "REMOVE"
    INSERT_BEFORE = "INSERT_BEFORE"
    INSERT_AFTER = "INSERT_AFTER"
    INSERT_FIRST = "INSERT_FIRST"
    REPLACE = "REPLACE"
    MERGE_AND_REPLACE_LIST = "MERGE_AND_REPLACE_LIST"


class FilterClass(StrEnum):
    UNSPECIFIED = "UNSPECIFIED"
    AUTHN = "AUTHN"
    AUTHZ = "AUTHZ"
    STATS = "STATS"


class ProxyMatch(IstioModel):
    proxy_version: str | None = None
    metadata: dict[str, str] | None = None


class SubFilterMatch(IstioModel):
    name: str | None = None


class FilterMatch(IstioModel):
    name: str | None = None
    sub_filter: SubFilterMatch | None = None


class FilterChainMatch(IstioModel):
    name: str | None = None
    sni: str | None = None
    transport_protocol: str | None = None
    application_protocols: str | None = None
    filter: FilterMatch | None = None
    destination_port: UInt32 | None = None
    transport_socket: str | None = None


class ListenerMatch(IstioModel):
    port_number: UInt32 | None = None
    port_name: str | None = None
    filter_chain: FilterChainMatch | None = None
    listener_filter: str | None = None
    name: str | None = None


class RouteMatch(IstioModel):
    name: str | None = None
    action: RouteAction | None = None


class VirtualHostMatch(IstioModel):
    name: str | None = None
    route: RouteMatch | None = None
    domain_name: str | None = None


class RouteConfigurationMatch(IstioModel):
    port_number: UInt32 | None = None
    port_name: str | None = None
    gateway: str | None = None
    vhost: VirtualHostMatch | None = None
    name: str | None = None


class ClusterMatch(IstioModel):
    port_number: UInt32 | None = None
    service: str | None = None
    subset: str | None = None
    name: str | None = None


class WaypointRouteMatch(IstioModel):
    name: str | None = None


class WaypointMatch(IstioModel):
    filter: FilterMatch | None = None
    route: WaypointRouteMatch | None = None
    port_number: UInt32 | None = None


class EnvoyConfigObjectMatch(IstioModel):
    """Where a patch applies: a context, a proxy, and at most one object kind to match."""

    context: PatchContext | None = None
    proxy: ProxyMatch | None = None
    listener: ListenerMatch | None = None
    route_configuration: RouteConfigurationMatch | None = None
    cluster: ClusterMatch | None = None
    waypoint: WaypointMatch | None = None

    @model_validator(mode="after")
    def _one_object(self) -> EnvoyConfigObjectMatch:
        # The CRD's oneOf: listener, routeConfiguration, cluster and waypoint are alternatives.
        check_one_of(self, "listener", "route_configuration", "cluster", "waypoint")
        return self


class Patch(IstioModel):
    """What to do: the operation, the Envoy config value (opaque), and a filter class."""

    operation: Operation | None = None
    value: dict[str, Any] | None = None
    filter_class: FilterClass | None = None


class EnvoyConfigObjectPatch(IstioModel):
    apply_to: ApplyTo | None = None
    match: EnvoyConfigObjectMatch | None = None
    patch: Patch | None = None


class EnvoyFilter(IstioModel):
    """The EnvoyFilter spec: which proxies (selector or targetRefs), patches and priority."""

    workload_selector: WorkloadSelector | None = None
    target_refs: list[PolicyTargetReference] | None = Field(default=None, max_length=16)
    config_patches: list[EnvoyConfigObjectPatch] | None = None
    priority: Int32 | None = None


KINDS = [KindInfo(group=NETWORKING, kind="EnvoyFilter", versions=("v1alpha3",), model=EnvoyFilter, plural="envoyfilters")]
