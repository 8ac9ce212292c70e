"""Listener (one filter chain with an HttpConnectionManager) → ListenerConfig."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..filters.access_log import AccessLogSink
from ..common.errors import ProxyConfigError
from .http_filters import compose
from .layered_runtime import EMPTY as EMPTY_RUNTIME, Runtime
from ..http.config import HcmConfig, ListenerConfig
from ..router.stream import Stream
from ..common.stats import StatsStore
from .subset import FILE_LOG_TYPE, STDERR_LOG_TYPE, STDOUT_LOG_TYPE, unpack_any
from .durations import seconds
from .edge import (
    NEED_RESPONSE,
    chain,
    compile_access_log,
    compile_local_reply,
    compile_path_normalizer,
    log_capture,
    response_capture_hook,
    rewriter,
)
from .overload import listener_connection_limit
from .routes import compile_route_config



def socket_address(addr: Any, path: str) -> tuple[str, int]:
    if addr.WhichOneof("address") != "socket_address":
        raise ProxyConfigError("only socket_address is supported", path)
    sa = addr.socket_address
    if sa.protocol != 0:
        raise ProxyConfigError("only TCP listeners are supported", f"{path}.socket_address.protocol")
    if sa.WhichOneof("port_specifier") != "port_value":
        raise ProxyConfigError("a port_value is required", f"{path}.socket_address")
    return sa.address, sa.port_value


class RouteWarming(Exception):
    """An RDS route configuration the listener needs has not arrived yet (the listener warms)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def compile_listener(lst: Any, path: str, stats: StatsStore, clusters: dict[str, Any],
                     sinks: dict[str, AccessLogSink],
                     routes: Mapping[str, Any] | None = None, runtime: Runtime = EMPTY_RUNTIME) -> ListenerConfig:
    address, port = socket_address(lst.address, f"{path}.address")
    if len(lst.filter_chains) != 1:
        raise ProxyConfigError("exactly one filter chain per listener is supported", f"{path}.filter_chains")
    fc = lst.filter_chains[0]
    fpath = f"{path}.filter_chains[0].filters"
    if len(fc.filters) != 1:
        raise ProxyConfigError("the filter chain must hold exactly one filter: the http_connection_manager", fpath)
    hcm_msg = unpack_any(fc.filters[0].typed_config, f"{fpath}[0].typed_config", "network_filter")
    hcm = compile_hcm(hcm_msg, f"{fpath}[0].typed_config", stats, clusters, sinks, routes, runtime, lst)
    hcm.listener_port = port
    if lst.HasField("per_connection_buffer_limit_bytes"):
        hcm.buffer_limit = lst.per_connection_buffer_limit_bytes.value
    name = lst.name or f"{address}_{port}"
    backlog = lst.tcp_backlog_size.value if lst.HasField("tcp_backlog_size") else 1024
    reuse = lst.enable_reuse_port.value if lst.HasField("enable_reuse_port") else True
    return ListenerConfig(name, address, port, hcm, stats.listener(f"{address}_{port}"), backlog, reuse,
                          connection_limit=listener_connection_limit(lst.name, runtime),  # (an unnamed
                          ignore_global_limit=lst.ignore_global_conn_limit,  # listener: Envoy's UUID)
                          bypass_overload=lst.bypass_overload_manager)


def compile_hcm(m: Any, path: str, stats: StatsStore, clusters: dict[str, Any],
                sinks: dict[str, AccessLogSink], routes: Mapping[str, Any] | None = None,
                runtime: Runtime = EMPTY_RUNTIME, listener: Any = None) -> HcmConfig:
    if m.codec_type not in (0, 1):  # AUTO, HTTP1
        raise ProxyConfigError("only HTTP/1.1 is supported yet (codec_type AUTO or HTTP1)", f"{path}.codec_type")
    if not m.stat_prefix:
        raise ProxyConfigError("stat_prefix is required", f"{path}.stat_prefix")
    if m.HasField("rds"):
        route_msg, route_path, validate_default = _rds_route(m.rds, f"{path}.rds", routes)
    elif m.HasField("route_config"):
        route_msg, route_path, validate_default = m.route_config, f"{path}.route_config", True
    else:
        raise ProxyConfigError("an inline route_config or rds is required", path)
    normalizer = compile_path_normalizer(m, path)
    filters = compose(m, path, stats, runtime, listener, [normalizer.__call__] if normalizer is not None else [])
    hooks = filters.pre_route  # before routing, in order
    table = compile_route_config(route_msg, route_path, set(clusters), validate_default, runtime)
    hcm = HcmConfig(stat_prefix=m.stat_prefix, stats=stats.http(m.stat_prefix), route_table=table,
                    filters=tuple(filters.names), suppress_envoy_headers=filters.suppress_envoy_headers,
                    clusters=clusters, max_request_bytes=filters.max_request_bytes, new_stream=Stream)
    hcm.cors = filters.cors
    hcm.fault = filters.fault
    hcm.after_route = filters.after_route
    hcm.peer_exchange = filters.peer_exchange
    hcm.istio_stats = filters.istio_stats
    if m.server_name:
        hcm.server_name = m.server_name.encode()
    hcm.server_transformation = m.server_header_transformation
    hcm.use_remote_address = m.use_remote_address.value
    hcm.xff_num_trusted_hops = m.xff_num_trusted_hops
    if m.HasField("generate_request_id"):
        hcm.generate_request_id = m.generate_request_id.value
    hcm.preserve_external_request_id = m.preserve_external_request_id
    hcm.always_set_request_id = m.always_set_request_id_in_response
    if m.HasField("request_headers_timeout"):
        hcm.request_headers_timeout = seconds(m.request_headers_timeout)
    if m.HasField("request_timeout"):
        hcm.request_timeout = seconds(m.request_timeout)
    if m.HasField("stream_idle_timeout"):
        hcm.stream_idle_timeout = seconds(m.stream_idle_timeout)
    cp = m.common_http_protocol_options
    if cp.HasField("idle_timeout"):
        hcm.idle_timeout = seconds(cp.idle_timeout)
    if cp.HasField("max_requests_per_connection"):
        hcm.max_requests_per_connection = cp.max_requests_per_connection.value
    if cp.HasField("max_headers_count"):
        hcm.max_headers = cp.max_headers_count.value
    hcm.underscores = cp.headers_with_underscores_action  # ALLOW, REJECT_REQUEST, DROP_HEADER
    if m.HasField("max_request_headers_kb"):
        hcm.max_header_bytes = m.max_request_headers_kb.value * 1024
    hcm.strip_any_host_port = m.strip_any_host_port
    for i, uc in enumerate(m.upgrade_configs):
        if uc.filters:
            raise ProxyConfigError("upgrade filter chains are not supported", f"{path}.upgrade_configs[{i}].filters")
        hcm.upgrades[uc.upgrade_type.lower().encode()] = uc.enabled.value if uc.HasField("enabled") else True
    hcm.strip_matching_host_port = m.strip_matching_host_port
    hp = m.http_protocol_options
    hcm.accept_http_10 = hp.accept_http_10
    hcm.default_host_http10 = hp.default_host_for_http_10.encode()
    if hp.HasField("allow_absolute_url") and not hp.allow_absolute_url.value:
        raise ProxyConfigError("rejecting absolute URLs is not supported", f"{path}.http_protocol_options.allow_absolute_url")
    logs = []
    log_needs = 0
    for i, al in enumerate(m.access_log):
        lp = f"{path}.access_log[{i}]"
        cfg = unpack_any(al.typed_config, f"{lp}.typed_config", "access_log")
        type_name = al.typed_config.type_url.rsplit("/", 1)[-1]
        if type_name == FILE_LOG_TYPE:
            if not cfg.path:
                raise ProxyConfigError("a file access log needs a path", f"{lp}.typed_config.path")
            target = cfg.path
        elif type_name == STDOUT_LOG_TYPE:
            target = "/dev/stdout"
        else:
            assert type_name == STDERR_LOG_TYPE
            target = "/dev/stderr"
        if target not in sinks:
            sinks[target] = AccessLogSink(target)
        log, needs = compile_access_log(al, cfg, lp, sinks[target])
        logs.append(log)
        log_needs |= needs
    hcm.access_logs = tuple(logs)
    mappers, body_format, reply_needs = compile_local_reply(m, path)
    hcm.log_capture = log_capture(log_needs | reply_needs)
    hcm.local_reply = rewriter(mappers, body_format, hcm.log_capture, log_needs)
    if log_needs & NEED_RESPONSE:
        hooks.append(response_capture_hook)
    hcm.pre_route = chain(hooks)
    hcm.derive()
    return hcm


def _rds_route(rds: Any, path: str, routes: Mapping[str, Any] | None) -> tuple[Any, str, bool]:
    """The RouteConfiguration an ``rds`` block names, from the accepted RDS resources."""
    source = rds.config_source.WhichOneof("config_source_specifier")
    if source not in ("ads", "self"):
        raise ProxyConfigError("RDS needs config_source ads {} (ADS is the only xDS transport)",
                               f"{path}.config_source")
    name = rds.route_config_name
    if not name:
        raise ProxyConfigError("route_config_name is required", f"{path}.route_config_name")
    if routes is None:
        raise ProxyConfigError("RDS needs dynamic_resources.ads_config in the bootstrap", path)
    rc = routes.get(name)
    if rc is None:
        raise RouteWarming(name)
    return rc, f"RouteConfiguration[{name}]", False
