"""Static clusters that carry no proxied traffic: the ADS cluster and gRPC service clusters.

Envoy reaches its management server through a cluster (``ads_config`` names it with
``envoy_grpc.cluster_name``; Istio's is ``xds-grpc``, on a unix socket). Here the xDS client is
grpcio, which dials that cluster's endpoint itself and speaks HTTP/2 on its own, so the cluster's
HTTP/2 protocol options, ``pipe`` address, keepalive, circuit breakers and
``max_requests_per_connection`` are the client's business, not the data path's. Istio's
bootstrap also holds HTTP/2 clusters for gRPC services this proxy does not run: ``sds-grpc``
(SDS: any listener or cluster using its secrets is a ``transport_socket``, an error until TLS
exists), and the tracer, metrics-service and access-log-service clusters. Neither kind is
compiled into the data path; a static route naming one is an error, because HTTP/2 upstreams are
not implemented.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..common.errors import ProxyConfigError
from .subset import UPSTREAM_HTTP_OPTIONS_TYPE, connection_managers
from .resilience import compile_circuit_breakers

ADS = "ads"
GRPC_SERVICE = "grpc-service"


def ads_cluster_name(bootstrap: Any) -> str:
    """The static cluster ``dynamic_resources.ads_config`` dials with envoy_grpc ('' if none)."""
    if not bootstrap.HasField("dynamic_resources"):
        return ""
    services = bootstrap.dynamic_resources.ads_config.grpc_services
    if len(services) == 1 and services[0].WhichOneof("target_specifier") == "envoy_grpc":
        return str(services[0].envoy_grpc.cluster_name)
    return ""


def is_http2(c: Any) -> bool:
    """Does the cluster ask for HTTP/2 upstream connections (explicit or the legacy field)?"""
    if c.HasField("http2_protocol_options"):
        return True
    from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2

    for value in c.typed_extension_protocol_options.values():
        if value.type_url.rsplit("/", 1)[-1] != UPSTREAM_HTTP_OPTIONS_TYPE:
            continue
        opts = http_protocol_options_pb2.HttpProtocolOptions()
        value.Unpack(opts)
        if (opts.WhichOneof("upstream_protocol_options") == "explicit_http_config"
                and opts.explicit_http_config.WhichOneof("protocol_config") == "http2_protocol_options"):
            return True
    return False


def service_clusters(bootstrap: Any) -> dict[str, str]:
    """Static cluster name → ADS or GRPC_SERVICE, for the clusters kept out of the data path."""
    ads = ads_cluster_name(bootstrap)
    roles: dict[str, str] = {}
    for c in bootstrap.static_resources.clusters:
        if ads and c.name == ads:
            roles[c.name] = ADS
        elif is_http2(c):
            roles[c.name] = GRPC_SERVICE
    return roles


def data_path_clusters(bootstrap: Any) -> list[tuple[int, Any]]:
    """(index, Cluster) of the static clusters the data path compiles: all but service clusters."""
    roles = service_clusters(bootstrap)
    return [(i, c) for i, c in enumerate(bootstrap.static_resources.clusters) if c.name not in roles]


def check_service_clusters(bootstrap: Any) -> list[str]:
    """Refuse static routes to service clusters; the warnings to print for the gRPC services
    that are not run."""
    roles = service_clusters(bootstrap)
    if not roles:
        return []
    for path, name in _static_route_clusters(bootstrap):
        role = roles.get(name)
        if role == ADS:
            raise ProxyConfigError(f"cluster {name!r} is the ADS cluster (dynamic_resources.ads_config), used by "
                                   "the xDS client only; it cannot carry proxied traffic", path)
        if role == GRPC_SERVICE:
            raise ProxyConfigError(f"cluster {name!r} uses HTTP/2 (http2_protocol_options): HTTP/2 upstreams "
                                   "are not supported yet for proxied traffic", path)
    warnings = []
    for i, c in enumerate(bootstrap.static_resources.clusters):
        role = roles.get(c.name)
        if role is None:
            continue
        path = f"static_resources.clusters[{i}]"
        if c.HasField("circuit_breakers"):  # still checked: a bad threshold is a bad config
            compile_circuit_breakers(c.circuit_breakers, f"{path}.circuit_breakers")
        if role == GRPC_SERVICE:
            warnings.append(f"{path} ({c.name}): HTTP/2 cluster of a gRPC service the proxy does not run "
                            "(SDS, tracer, metrics or access-log service); not loaded")
        if c.health_checks:
            warnings.append(f"{path}.health_checks: ignored ({c.name} is not a data-path cluster)")
        if c.HasField("outlier_detection"):
            warnings.append(f"{path}.outlier_detection: ignored ({c.name} is not a data-path cluster)")
    return warnings


def _static_route_clusters(bootstrap: Any) -> Iterator[tuple[str, str]]:
    """(field path, cluster name) of every cluster the static listeners' inline routes name."""
    for path, hcm in connection_managers(bootstrap.static_resources.listeners):
        base = f"static_resources.listeners{path}.route_config"
        for vi, vh in enumerate(hcm.route_config.virtual_hosts):
            for ri, r in enumerate(vh.routes):
                rpath = f"{base}.virtual_hosts[{vi}].routes[{ri}].route"
                if r.route.cluster:
                    yield f"{rpath}.cluster", r.route.cluster
                for wi, wc in enumerate(r.route.weighted_clusters.clusters):
                    yield f"{rpath}.weighted_clusters.clusters[{wi}].name", wc.name
                for mi, m in enumerate(r.route.request_mirror_policies):
                    if m.cluster:
                        yield f"{rpath}.request_mirror_policies[{mi}].cluster", m.cluster
