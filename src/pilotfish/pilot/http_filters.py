"""The HTTP connection manager of generated listeners and its HTTP filter chain, as Istio builds
them (``buildHTTPConnectionManager`` in listener_builder.go), limited to what our proxy runs.

Istio's sidecar chain is ``istio.metadata_exchange, grpc_stats, istio.alpn, cors, fault,
istio.stats, router``. Our proxy implements metadata exchange, cors, fault, istio.stats and the
router (proxy/compile/subset.py); grpc_stats and istio.alpn are left out: they only shape
telemetry and upstream TLS ALPN. The router is always last, which grpcio's proxyless client also
requires.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any

from envoy.config.core.v3 import config_source_pb2, protocol_pb2
from envoy.config.listener.v3 import listener_components_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2
from envoy.extensions.filters.http.cors.v3 import cors_pb2
from envoy.extensions.filters.http.fault.v3 import fault_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2
from google.protobuf import any_pb2, duration_pb2, struct_pb2, wrappers_pb2
from udpa.type.v1 import typed_struct_pb2

from . import naming

HCM_FILTER = "envoy.filters.network.http_connection_manager"
MX_FILTER = "istio.metadata_exchange"
STATS_FILTER = "istio.stats"
FAULT_FILTER = "envoy.filters.http.fault"
CORS_FILTER = "envoy.filters.http.cors"
ROUTER_FILTER = "envoy.filters.http.router"
PEER_METADATA_TYPE_URL = "type.googleapis.com/io.istio.http.peer_metadata.Config"
STATS_TYPE_URL = "type.googleapis.com/stats.PluginConfig"
SERVER_NAME = "istio-envoy"  # Istio's ProxyHeaders default


class ListenerClass(Enum):
    """Which side of the proxy a connection manager serves (Istio's ListenerClass): it picks the
    metadata-exchange direction, the stats filter's host fallback and use_remote_address."""

    SIDECAR_INBOUND = "inbound"
    SIDECAR_OUTBOUND = "outbound"
    GATEWAY = "gateway"


def typed_struct(type_url: str, fields: Mapping[str, Any]) -> any_pb2.Any:
    """Istio's filters that Envoy's API does not define travel as a ``udpa.type.v1.TypedStruct``
    (protoconv.TypedStructWithFields); our proxy and istio-proxy both unwrap it."""
    value = struct_pb2.Struct()
    value.update(dict(fields))
    out = any_pb2.Any()
    out.Pack(typed_struct_pb2.TypedStruct(type_url=type_url, value=value))
    return out


def _packed(msg: Any) -> any_pb2.Any:
    out = any_pb2.Any()
    out.Pack(msg)
    return out


def metadata_exchange_filter(cls: ListenerClass) -> hcm_pb2.HttpFilter:
    """Inbound learns the caller from its headers and answers with its own; outbound (and
    gateways) the other way round. Istio also lists ``workload_discovery``, which needs the
    workload metadata service we do not run: headers only."""
    if cls is ListenerClass.SIDECAR_INBOUND:
        fields = {"downstream_discovery": [{"istio_headers": {}}],
                  "downstream_propagation": [{"istio_headers": {}}]}
    else:
        fields = {"upstream_discovery": [{"istio_headers": {}}],
                  "upstream_propagation": [{"istio_headers": {}}]}
    return hcm_pb2.HttpFilter(name=MX_FILTER, typed_config=typed_struct(PEER_METADATA_TYPE_URL, fields))


def stats_config(cls: ListenerClass) -> any_pb2.Any:
    """``stats.PluginConfig`` as Istio's default Telemetry makes it: the Host header is not used
    as the destination service on inbound and gateway listeners."""
    fields: dict[str, Any] = {}
    if cls in (ListenerClass.SIDECAR_INBOUND, ListenerClass.GATEWAY):
        fields["disable_host_header_fallback"] = True
    return typed_struct(STATS_TYPE_URL, fields)


def stats_filter(cls: ListenerClass) -> hcm_pb2.HttpFilter:
    return hcm_pb2.HttpFilter(name=STATS_FILTER, typed_config=stats_config(cls))


def fault_filter() -> hcm_pb2.HttpFilter:
    """Empty: VirtualService fault injection arrives per route (typed_per_filter_config)."""
    return hcm_pb2.HttpFilter(name=FAULT_FILTER, typed_config=_packed(fault_pb2.HTTPFault()))


def cors_filter() -> hcm_pb2.HttpFilter:
    """Empty: VirtualService CORS policies arrive per route (typed_per_filter_config)."""
    return hcm_pb2.HttpFilter(name=CORS_FILTER, typed_config=_packed(cors_pb2.Cors()))


def router_filter() -> hcm_pb2.HttpFilter:
    return hcm_pb2.HttpFilter(name=ROUTER_FILTER, typed_config=_packed(router_pb2.Router()))


def http_filters(cls: ListenerClass) -> list[hcm_pb2.HttpFilter]:
    """Istio's order, restricted to our proxy's filters (see the module docstring)."""
    return [metadata_exchange_filter(cls), cors_filter(), fault_filter(), stats_filter(cls), router_filter()]


def grpc_http_filters() -> list[hcm_pb2.HttpFilter]:
    """What Istio gives proxyless gRPC clients (grpcgen ``supportedFilters``): grpcio NACKs
    filters it does not know, so only fault and the router."""
    return [fault_filter(), router_filter()]


def ads_rds(route_config_name: str) -> hcm_pb2.Rds:
    """RDS over the ADS stream, as Istio (initial_fetch_timeout 0s: never give up waiting)."""
    source = config_source_pb2.ConfigSource(
        ads=config_source_pb2.AggregatedConfigSource(),
        initial_fetch_timeout=duration_pb2.Duration(),
        resource_api_version=config_source_pb2.ApiVersion.V3)
    return hcm_pb2.Rds(config_source=source, route_config_name=route_config_name)


def stat_prefix(direction: str, listener_name: str) -> str:
    """``outbound_0.0.0.0_9080``, ``inbound_10.0.0.5_9080``."""
    return f"{direction}_{listener_name}"


def connection_manager(prefix: str, cls: ListenerClass, *, rds: str | None = None,
                       route_config: route_pb2.RouteConfiguration | None = None,
                       http1: protocol_pb2.Http1ProtocolOptions | None = None) -> hcm_pb2.HttpConnectionManager:
    """An HCM with either RDS ``rds`` or the inline ``route_config``.

    Istio's settings kept: codec AUTO, server_name ``istio-envoy``, use_remote_address only on
    gateways (a sidecar's caller is local and its headers are trusted), websocket upgrades,
    stream_idle_timeout 0s, normalize_path. Left out, outside our proxy's subset or not yet
    meaningful: tracing, request_id_extension, forward_client_cert_details (no mTLS yet),
    path_with_escaped_slashes_action KEEP_UNCHANGED (the default), access logs (Telemetry)."""
    hcm = hcm_pb2.HttpConnectionManager(
        stat_prefix=prefix,
        codec_type=hcm_pb2.HttpConnectionManager.AUTO,
        http_filters=http_filters(cls),
        server_name=SERVER_NAME,
        use_remote_address=wrappers_pb2.BoolValue(value=cls is ListenerClass.GATEWAY),
        generate_request_id=wrappers_pb2.BoolValue(value=True),
        normalize_path=wrappers_pb2.BoolValue(value=True),
        stream_idle_timeout=duration_pb2.Duration(),
        upgrade_configs=[hcm_pb2.HttpConnectionManager.UpgradeConfig(upgrade_type="websocket")],
    )
    if http1 is not None:
        hcm.http_protocol_options.CopyFrom(http1)
    if rds is not None:
        hcm.rds.CopyFrom(ads_rds(rds))
    elif route_config is not None:
        hcm.route_config.CopyFrom(route_config)
    return hcm


def hcm_filter(hcm: hcm_pb2.HttpConnectionManager) -> listener_components_pb2.Filter:
    return listener_components_pb2.Filter(name=HCM_FILTER, typed_config=_packed(hcm))


def inbound_route_config(target_port: int, service_port: int, cluster: str | None = None,
                         name: str | None = None) -> route_pb2.RouteConfiguration:
    """The inline inbound route Istio builds (buildSidecarInboundHTTPRouteConfig): config
    ``inbound|<target>||``, one virtual host ``inbound|http|<service port>`` for every domain,
    one route ``default`` forwarding everything to the inbound cluster with no timeout. (The
    route decorator Istio adds only names spans: left out, tracing is not supported.)"""
    cluster = cluster or naming.cluster_name(naming.INBOUND, target_port)
    action = route_components_pb2.RouteAction(
        cluster=cluster, timeout=duration_pb2.Duration(),
        max_stream_duration=route_components_pb2.RouteAction.MaxStreamDuration(
            max_stream_duration=duration_pb2.Duration()))
    route = route_components_pb2.Route(
        name="default", match=route_components_pb2.RouteMatch(prefix="/"), route=action)
    vhost = route_components_pb2.VirtualHost(
        name=f"inbound|http|{service_port}", domains=["*"], routes=[route])
    return route_pb2.RouteConfiguration(
        name=name or naming.inbound_route_name(target_port), virtual_hosts=[vhost],
        validate_clusters=wrappers_pb2.BoolValue(value=False))
