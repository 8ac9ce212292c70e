"""The bootstrap's ``dynamic_resources``, checked and resolved: where ADS is and what to ask.

Only ADS over gRPC is supported: ``ads_config`` (api_type GRPC, transport_api_version V3, one
grpc_service: ``envoy_grpc`` naming a static cluster, or ``google_grpc.target_uri``) and
``lds_config`` / ``cds_config`` of ``{ads: {}}``. Anything else is a startup error naming it.

The ``envoy_grpc`` cluster is dialled by grpcio, not by the data path: its first endpoint becomes
the channel target, ``host:port`` or, for a ``pipe`` (Istio's ``./etc/istio/proxy/XDS``),
``unix:PATH`` (relative to the working directory, as Envoy) or ``unix-abstract:NAME`` for ``@NAME``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import XdsConfigError

_GRPC, _V3 = 2, 2
_ADS_SOURCES = ("ads", "self")
DEFAULT_INITIAL_FETCH_TIMEOUT = 15.0  # Envoy's ConfigSource.initial_fetch_timeout default


@dataclass(frozen=True, slots=True)
class AdsSettings:
    target: str  # a gRPC channel target: "host:port", "unix:path" or "unix-abstract:name"
    authority: str
    metadata: tuple[tuple[str, str], ...]
    lds: bool
    cds: bool
    initial_fetch_timeout: float  # 0: wait forever
    node_on_first_message_only: bool


def _seconds(d: Any) -> float:
    return d.seconds + d.nanos / 1e9  # type: ignore[no-any-return]


def ads_settings(bootstrap: object) -> AdsSettings | None:
    """None when the bootstrap has no dynamic_resources; XdsConfigError for unsupported forms."""
    if not bootstrap.HasField("dynamic_resources"):  # type: ignore[attr-defined]
        return None
    dr = bootstrap.dynamic_resources  # type: ignore[attr-defined]
    path = "dynamic_resources"
    if not dr.HasField("ads_config"):
        raise XdsConfigError("ads_config is required (ADS is the only xDS transport)", f"{path}.ads_config")
    ads = dr.ads_config
    if ads.api_type != _GRPC:
        raise XdsConfigError("api_type must be GRPC (state of the world over gRPC)", f"{path}.ads_config.api_type")
    if ads.transport_api_version != _V3:
        raise XdsConfigError("transport_api_version must be V3", f"{path}.ads_config.transport_api_version")
    if len(ads.grpc_services) != 1:
        raise XdsConfigError("exactly one grpc_services entry is required", f"{path}.ads_config.grpc_services")
    gs = ads.grpc_services[0]
    gpath = f"{path}.ads_config.grpc_services[0]"
    which = gs.WhichOneof("target_specifier")
    if which == "envoy_grpc":
        target = _cluster_target(bootstrap, gs.envoy_grpc.cluster_name, f"{gpath}.envoy_grpc.cluster_name")
        authority = gs.envoy_grpc.authority or gs.envoy_grpc.cluster_name
    elif which == "google_grpc":
        target = gs.google_grpc.target_uri
        if not target:
            raise XdsConfigError("target_uri is required", f"{gpath}.google_grpc.target_uri")
        authority = ""
    else:
        raise XdsConfigError("envoy_grpc or google_grpc is required", gpath)
    timeout = DEFAULT_INITIAL_FETCH_TIMEOUT
    for name in ("lds_config", "cds_config"):
        if not dr.HasField(name):
            continue
        src = getattr(dr, name)
        if src.WhichOneof("config_source_specifier") not in _ADS_SOURCES:
            raise XdsConfigError("only {ads: {}} is supported (ADS is the only xDS transport)", f"{path}.{name}")
        if src.HasField("initial_fetch_timeout"):
            timeout = _seconds(src.initial_fetch_timeout)
    metadata = tuple((h.key.lower(), h.value) for h in gs.initial_metadata)
    return AdsSettings(target, authority, metadata, dr.HasField("lds_config"), dr.HasField("cds_config"),
                       timeout, ads.set_node_on_first_message_only)


def _cluster_target(bootstrap: object, name: str, path: str) -> str:
    """``envoy_grpc`` names a static cluster; its first endpoint is the management server.
    HTTP/2 options, keepalive, circuit breakers and max_requests_per_connection on it are
    grpcio's business: it speaks HTTP/2 itself, on one connection (the proxy checks them)."""
    for c in bootstrap.static_resources.clusters:  # type: ignore[attr-defined]
        if c.name != name:
            continue
        if c.type not in (0, 1):  # STATIC, STRICT_DNS
            raise XdsConfigError("the xDS cluster must be STATIC or STRICT_DNS", path)
        for loc in c.load_assignment.endpoints:
            for lbe in loc.lb_endpoints:
                address = lbe.endpoint.address
                if address.WhichOneof("address") == "pipe" and address.pipe.path:
                    pipe = address.pipe.path
                    return f"unix-abstract:{pipe[1:]}" if pipe.startswith("@") else f"unix:{pipe}"
                sa = address.socket_address
                if sa.address and sa.port_value:
                    host = f"[{sa.address}]" if ":" in sa.address else sa.address
                    return f"{host}:{sa.port_value}"
        raise XdsConfigError(f"cluster {name!r} has no endpoint to reach the management server", path)
    raise XdsConfigError(f"no static cluster named {name!r}", path)
