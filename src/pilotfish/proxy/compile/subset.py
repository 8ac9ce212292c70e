"""The supported subset of Envoy v3, as data, and the walk that checks a parsed config against it.

Every message type the proxy reads is listed with the fields it implements (``OK``) and the
fields it may ignore because ignoring them cannot change traffic (``WARN``). A set field that is
in neither is a startup error naming its path. Message types not listed here (Duration,
UInt32Value, Node, Locality, Metadata...) are accepted whole when a listed field holds them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import any_pb2, message

from ..common.errors import ProxyConfigError
from .istio_config import (
    PEER_METADATA_TYPE,
    STATS_TYPE,
    TYPED_STRUCT_TYPES,
    effective_type_name,
    unpack_typed_struct,
)

OK = "ok"
WARN = "warn"

_B = "envoy.config.bootstrap.v3."
_CORE = "envoy.config.core.v3."
_L = "envoy.config.listener.v3."
_R = "envoy.config.route.v3."
_M = "envoy.type.matcher.v3."
_C = "envoy.config.cluster.v3."
_E = "envoy.config.endpoint.v3."
_HCM = "envoy.extensions.filters.network.http_connection_manager.v3."

HCM_TYPE = _HCM + "HttpConnectionManager"
ROUTER_TYPE = "envoy.extensions.filters.http.router.v3.Router"
BUFFER_TYPE = "envoy.extensions.filters.http.buffer.v3.Buffer"
FILE_LOG_TYPE = "envoy.extensions.access_loggers.file.v3.FileAccessLog"
STDOUT_LOG_TYPE = "envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"
STDERR_LOG_TYPE = "envoy.extensions.access_loggers.stream.v3.StderrAccessLog"
UPSTREAM_HTTP_OPTIONS_TYPE = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
FAULT_TYPE = "envoy.extensions.filters.http.fault.v3.HTTPFault"
CORS_TYPE = "envoy.extensions.filters.http.cors.v3.Cors"
CORS_POLICY_TYPE = "envoy.extensions.filters.http.cors.v3.CorsPolicy"

#: typed_config types the proxy implements, by the field that may hold them.
EXTENSIONS: dict[str, frozenset[str]] = {
    "network_filter": frozenset({HCM_TYPE}),
    "http_filter": frozenset({ROUTER_TYPE, BUFFER_TYPE, STATS_TYPE, PEER_METADATA_TYPE, FAULT_TYPE, CORS_TYPE}),
    # typed_per_filter_config values (route configuration, virtual host, route)
    "per_filter_config": frozenset({FAULT_TYPE, CORS_POLICY_TYPE}),
    "access_log": frozenset({FILE_LOG_TYPE, STDOUT_LOG_TYPE, STDERR_LOG_TYPE}),
    "protocol_options": frozenset({UPSTREAM_HTTP_OPTIONS_TYPE}),
}

_HEADER_MUTATIONS = {
    "request_headers_to_add": OK,
    "request_headers_to_remove": OK,
    "response_headers_to_add": OK,
    "response_headers_to_remove": OK,
}

FIELDS: dict[str, dict[str, str]] = {
    _B + "Bootstrap": {
        "node": OK, "static_resources": OK, "admin": OK, "dynamic_resources": OK,
        "stats_config": OK, "stats_sinks": WARN,
        "stats_flush_interval": WARN, "watchdog": WARN, "watchdogs": WARN, "enable_dispatcher_stats": WARN,
        # bootstrap.py: layered_runtime.py reads the layers; compile/overload.py checks overload_manager
        "layered_runtime": OK, "overload_manager": OK,
        "stats_server_version_override": WARN, "node_context_params": WARN,
        "application_log_config": WARN, "default_regex_engine": WARN,
        "cluster_manager": OK, "use_tcp_for_dns_lookups": WARN,
        "deferred_stat_options": WARN, "stats_flush_on_admin": WARN, "stats_eviction_interval": WARN,
        # the tracer only reports spans (HttpConnectionManager.tracing is ignored too)
        "tracing": WARN,
        "bootstrap_extensions": OK,  # bootstrap.py: each known type is ignored with a warning
    },
    _B + "Bootstrap.StaticResources": {"listeners": OK, "clusters": OK},
    # compile/stats_config.py: the tags of /stats/prometheus
    "envoy.config.metrics.v3.StatsConfig": {
        "stats_tags": OK, "use_all_default_tags": OK, "stats_matcher": WARN, "histogram_bucket_settings": WARN,
    },
    "envoy.config.metrics.v3.TagSpecifier": {"tag_name": OK, "regex": OK, "fixed_value": OK},
    # upstream_bind_config (the source address of upstream connections) is refused
    _B + "ClusterManager": {
        "enable_deferred_cluster_creation": WARN, "load_stats_config": WARN,
        "outlier_detection": WARN,  # its event log only
        "local_cluster_name": WARN,  # only zone-aware routing reads it, and that is ignored too
    },
    # xDS: ADS over gRPC only (xds/settings.py checks the combinations).
    _B + "Bootstrap.DynamicResources": {"lds_config": OK, "cds_config": OK, "ads_config": OK},
    _CORE + "ConfigSource": {
        "ads": OK, "self": OK, "initial_fetch_timeout": OK, "resource_api_version": OK,
    },
    _CORE + "ApiConfigSource": {
        "api_type": OK, "transport_api_version": OK, "grpc_services": OK,
        "set_node_on_first_message_only": OK, "refresh_delay": WARN, "request_timeout": WARN,
        "rate_limit_settings": WARN,
    },
    _CORE + "GrpcService": {"envoy_grpc": OK, "google_grpc": OK, "initial_metadata": OK, "timeout": WARN},
    _CORE + "GrpcService.EnvoyGrpc": {"cluster_name": OK, "authority": OK},
    _CORE + "GrpcService.GoogleGrpc": {"target_uri": OK, "stat_prefix": OK},
    _B + "Admin": {
        "address": OK, "access_log_path": WARN, "access_log": WARN,
        "profile_path": WARN, "socket_options": WARN, "ignore_global_conn_limit": WARN,
    },
    # pipe (a unix socket): only where a gRPC client dials it (compile/service_clusters.py)
    _CORE + "Address": {"socket_address": OK, "pipe": OK},
    _CORE + "Pipe": {"path": OK, "mode": OK},
    _CORE + "SocketAddress": {
        "address": OK, "port_value": OK, "protocol": OK, "ipv4_compat": WARN,
    },
    _CORE + "HeaderValueOption": {
        "header": OK, "append": OK, "append_action": OK, "keep_empty_value": OK,
    },
    _CORE + "HeaderValue": {"key": OK, "value": OK},
    _CORE + "DataSource": {"inline_string": OK, "inline_bytes": OK, "filename": OK},
    _CORE + "HttpProtocolOptions": {
        "idle_timeout": OK, "max_requests_per_connection": OK, "max_headers_count": OK,
        "headers_with_underscores_action": OK,
    },
    _CORE + "Http1ProtocolOptions": {
        "accept_http_10": OK, "allow_absolute_url": OK, "default_host_for_http_10": OK,
    },
    _L + "Listener": {
        "name": OK, "address": OK, "filter_chains": OK,
        "per_connection_buffer_limit_bytes": OK, "stat_prefix": OK,
        "traffic_direction": OK, "drain_type": WARN, "metadata": WARN,
        "enable_reuse_port": OK, "tcp_backlog_size": OK, "socket_options": WARN,
        "connection_balance_config": WARN, "listener_filters_timeout": WARN,
        "continue_on_listener_filters_timeout": WARN,
        # exemptions from the global connection limit and from overload actions (http/overload.py)
        "ignore_global_conn_limit": OK, "bypass_overload_manager": OK,
    },
    _L + "FilterChain": {"filters": OK, "name": OK, "metadata": WARN},
    _L + "Filter": {"name": OK, "typed_config": "network_filter"},
    _HCM + "HttpConnectionManager": {
        "stat_prefix": OK, "codec_type": OK, "route_config": OK, "http_filters": OK,
        "server_name": OK, "server_header_transformation": OK, "access_log": OK,
        "use_remote_address": OK, "xff_num_trusted_hops": OK, "generate_request_id": OK,
        "preserve_external_request_id": OK, "always_set_request_id_in_response": OK,
        "request_headers_timeout": OK, "stream_idle_timeout": OK, "request_timeout": OK,
        "common_http_protocol_options": OK, "http_protocol_options": OK,
        "max_request_headers_kb": OK, "drain_timeout": WARN, "delayed_close_timeout": WARN,
        "strip_matching_host_port": OK, "strip_any_host_port": OK, "tracing": WARN,
        "stream_error_on_invalid_http_message": WARN, "internal_address_config": WARN,
        "normalize_path": OK, "merge_slashes": OK, "http2_protocol_options": WARN,
        "access_log_options": WARN, "rds": OK, "upgrade_configs": OK,
    },
    _HCM + "HttpConnectionManager.UpgradeConfig": {"upgrade_type": OK, "enabled": OK, "filters": OK},
    _HCM + "Rds": {"config_source": OK, "route_config_name": OK},
    _HCM + "HttpFilter": {"name": OK, "typed_config": "http_filter", "is_optional": OK},
    # Istio's filters (istio_config.py); expressions (CEL dimensions, definitions) only shape telemetry.
    STATS_TYPE: {
        "disable_host_header_fallback": OK, "reporter": OK, "metrics": OK, "definitions": WARN,
        "tcp_reporting_duration": WARN, "rotation_interval": WARN, "graceful_deletion_interval": WARN,
    },
    "stats.MetricConfig": {"name": OK, "drop": OK, "tags_to_remove": OK, "dimensions": WARN, "match": WARN},
    PEER_METADATA_TYPE: {
        "downstream_discovery": OK, "upstream_discovery": OK, "downstream_propagation": OK,
        "upstream_propagation": OK, "shared_with_upstream": WARN, "additional_labels": WARN,
    },
    PEER_METADATA_TYPE + ".DiscoveryMethod": {"istio_headers": OK, "workload_discovery": WARN, "baggage": WARN},
    PEER_METADATA_TYPE + ".PropagationMethod": {"istio_headers": OK},
    PEER_METADATA_TYPE + ".IstioHeaders": {"skip_external_clusters": OK},
    BUFFER_TYPE: {"max_request_bytes": OK},
    # filters/cors_filter.py; shadow_enabled only counts origins in Envoy (no stats here)
    CORS_TYPE: {},
    CORS_POLICY_TYPE: {
        "allow_origin_string_match": OK, "allow_methods": OK, "allow_headers": OK, "expose_headers": OK,
        "max_age": OK, "allow_credentials": OK, "allow_private_network_access": OK,
        "forward_not_matching_preflights": OK, "filter_enabled": OK, "shadow_enabled": WARN,
    },
    ROUTER_TYPE: {"suppress_envoy_headers": OK, "dynamic_stats": WARN, "start_child_span": WARN},
    "envoy.config.accesslog.v3.AccessLog": {"name": OK, "typed_config": "access_log"},
    FILE_LOG_TYPE: {"path": OK},
    STDOUT_LOG_TYPE: {},
    STDERR_LOG_TYPE: {},
    _R + "RouteConfiguration": {
        "name": OK, "virtual_hosts": OK, "ignore_port_in_host_matching": OK,
        "validate_clusters": OK, "max_direct_response_body_size_bytes": OK,
        "typed_per_filter_config": "per_filter_config",
        **_HEADER_MUTATIONS,
    },
    _R + "VirtualHost": {
        "name": OK, "domains": OK, "routes": OK, "require_tls": OK, "metadata": WARN,
        # compile/resilience.py checks retry_policy's fields
        "retry_policy": OK, "include_request_attempt_count": OK, "include_attempt_count_in_response": OK,
        "per_request_buffer_limit_bytes": OK,
        "typed_per_filter_config": "per_filter_config",
        **_HEADER_MUTATIONS,
    },
    _R + "Route": {
        "name": OK, "match": OK, "route": OK, "redirect": OK, "direct_response": OK,
        # metadata: read by filters; none here reads a route's, and Istio tags every route with it
        "metadata": OK, "decorator": WARN, **_HEADER_MUTATIONS, "per_request_buffer_limit_bytes": OK,
        "typed_per_filter_config": "per_filter_config",
    },
    _R + "RouteMatch": {
        "prefix": OK, "path": OK, "safe_regex": OK, "path_separated_prefix": OK,
        "case_sensitive": OK, "headers": OK, "query_parameters": OK, "connect_matcher": OK,
        "runtime_fraction": OK,
    },
    _R + "RouteMatch.ConnectMatcher": {},
    _R + "HeaderMatcher": {
        "name": OK, "exact_match": OK, "safe_regex_match": OK, "range_match": OK,
        "present_match": OK, "prefix_match": OK, "suffix_match": OK, "contains_match": OK,
        "string_match": OK, "invert_match": OK, "treat_missing_header_as_empty": OK,
    },
    _R + "QueryParameterMatcher": {"name": OK, "string_match": OK, "present_match": OK},
    _R + "RouteAction": {
        "cluster": OK, "cluster_header": OK, "weighted_clusters": OK,
        "cluster_not_found_response_code": OK, "prefix_rewrite": OK, "regex_rewrite": OK,
        "host_rewrite_literal": OK, "auto_host_rewrite": OK, "timeout": OK,
        "hash_policy": OK, "priority": OK, "request_mirror_policies": OK,
        "retry_policy": OK, "idle_timeout": OK, "max_stream_duration": OK, "upgrade_configs": OK,
    },
    _R + "RouteAction.UpgradeConfig": {"upgrade_type": OK, "enabled": OK, "connect_config": OK},
    # CONNECT is terminated here (raw TCP upstream); allow_post/proxy_protocol are not supported
    _R + "RouteAction.UpgradeConfig.ConnectConfig": {},
    _R + "RouteAction.MaxStreamDuration": {"max_stream_duration": OK},
    # shadow.py: request_headers_mutations and host_rewrite_literal are not yet
    _R + "RouteAction.RequestMirrorPolicy": {
        "cluster": OK, "cluster_header": OK, "runtime_fraction": OK, "disable_shadow_host_suffix_append": OK,
        "trace_sampled": WARN,
    },
    _CORE + "RuntimeFractionalPercent": {"default_value": OK, "runtime_key": OK},
    _R + "RouteAction.HashPolicy": {
        "header": OK, "cookie": OK, "connection_properties": OK, "query_parameter": OK, "terminal": OK,
    },
    _R + "RouteAction.HashPolicy.Header": {"header_name": OK, "regex_rewrite": OK},
    _R + "RouteAction.HashPolicy.Cookie": {"name": OK, "ttl": OK, "path": OK, "attributes": OK},
    _R + "RouteAction.HashPolicy.CookieAttribute": {"name": OK, "value": OK},
    _R + "RouteAction.HashPolicy.ConnectionProperties": {"source_ip": OK},
    _R + "RouteAction.HashPolicy.QueryParameter": {"name": OK},
    _R + "WeightedCluster": {"clusters": OK, "total_weight": OK, "runtime_key_prefix": OK},
    _R + "WeightedCluster.ClusterWeight": {"name": OK, "weight": OK, **_HEADER_MUTATIONS},
    _R + "RedirectAction": {
        "scheme_redirect": OK, "https_redirect": OK, "host_redirect": OK, "port_redirect": OK,
        "path_redirect": OK, "prefix_rewrite": OK, "regex_rewrite": OK, "response_code": OK,
        "strip_query": OK,
    },
    _R + "DirectResponseAction": {"status": OK, "body": OK},
    _M + "StringMatcher": {
        "exact": OK, "prefix": OK, "suffix": OK, "safe_regex": OK, "contains": OK,
        "ignore_case": OK,
    },
    _M + "RegexMatcher": {"regex": OK, "google_re2": OK},
    _M + "RegexMatchAndSubstitute": {"pattern": OK, "substitution": OK},
    _C + "Cluster": {
        "name": OK, "type": OK, "connect_timeout": OK, "lb_policy": OK, "load_assignment": OK,
        "per_connection_buffer_limit_bytes": OK, "common_http_protocol_options": OK,
        "max_requests_per_connection": OK, "typed_extension_protocol_options": "protocol_options",
        "dns_lookup_family": OK, "dns_refresh_rate": OK, "respect_dns_ttl": WARN,
        "alt_stat_name": OK, "metadata": WARN, "cleanup_interval": OK,
        "upstream_connection_options": WARN, "track_cluster_stats": WARN,
        "least_request_lb_config": OK, "round_robin_lb_config": OK,
        "close_connections_on_host_health_failure": WARN, "ignore_health_on_host_removal": WARN,
        "http_protocol_options": OK, "eds_cluster_config": OK,
        "http2_protocol_options": OK,  # HTTP/2: service clusters only (compile/service_clusters.py)
        "ring_hash_lb_config": OK, "maglev_lb_config": OK, "original_dst_lb_config": OK,
        "common_lb_config": OK,
        # compile/resilience.py checks the fields inside these three
        "circuit_breakers": OK, "outlier_detection": OK, "health_checks": OK,
    },
    _C + "Cluster.RingHashLbConfig": {"minimum_ring_size": OK, "maximum_ring_size": OK, "hash_function": OK},
    _C + "Cluster.MaglevLbConfig": {"table_size": OK},
    # slow_start_config and locality_lb_config change the weights: refused
    _C + "Cluster.RoundRobinLbConfig": {},
    _C + "Cluster.OriginalDstLbConfig": {
        "use_http_header": OK, "http_header_name": OK, "upstream_port_override": OK,
    },
    _C + "Cluster.CommonLbConfig": {
        "healthy_panic_threshold": OK, "locality_weighted_lb_config": OK,
        "consistent_hashing_lb_config": OK, "zone_aware_lb_config": WARN,  # needs a local cluster
        "update_merge_window": WARN, "close_connections_on_host_set_change": WARN,
        # ignore_new_hosts_until_first_hc keeps traffic off new hosts: refused
    },
    _C + "Cluster.CommonLbConfig.ConsistentHashingLbConfig": {"use_hostname_for_hashing": OK},
    _C + "Cluster.EdsClusterConfig": {"eds_config": OK, "service_name": OK},
    _C + "Cluster.LeastRequestLbConfig": {"choice_count": OK, "active_request_bias": OK},
    UPSTREAM_HTTP_OPTIONS_TYPE: {"common_http_protocol_options": OK, "explicit_http_config": OK},
    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions.ExplicitHttpConfig": {
        "http_protocol_options": OK, "http2_protocol_options": OK,  # HTTP/2: service clusters only
    },
    _E + "ClusterLoadAssignment": {"cluster_name": OK, "endpoints": OK, "policy": OK},
    _E + "ClusterLoadAssignment.Policy": {
        # endpoint_stale_after drops the endpoints when EDS goes quiet: refused
        "overprovisioning_factor": OK, "weighted_priority_health": OK,
    },
    _E + "LocalityLbEndpoints": {
        "locality": OK, "lb_endpoints": OK, "load_balancing_weight": OK, "priority": OK,
        "metadata": WARN,
    },
    _E + "LbEndpoint": {
        "endpoint": OK, "health_status": OK, "load_balancing_weight": OK,
        "metadata": OK,  # filter_metadata["envoy.lb"]["hash_key"] is read; the rest cannot change traffic
    },
    _E + "Endpoint": {"address": OK, "hostname": OK, "health_check_config": OK},
    _E + "Endpoint.HealthCheckConfig": {"port_value": OK, "hostname": OK, "disable_active_health_check": OK},
    _CORE + "HealthCheck": {
        "timeout": OK, "interval": OK, "initial_jitter": OK, "interval_jitter": OK,
        "interval_jitter_percent": OK, "unhealthy_threshold": OK, "healthy_threshold": OK,
        "reuse_connection": OK, "http_health_check": OK, "tcp_health_check": OK, "grpc_health_check": OK,
        "custom_health_check": OK,  # compile/resilience.py: only http_health_check is accepted
        "no_traffic_interval": OK, "no_traffic_healthy_interval": OK, "unhealthy_interval": OK,
        "unhealthy_edge_interval": OK, "healthy_edge_interval": OK,
        "event_log_path": WARN, "event_logger": WARN, "event_service": WARN,
        "always_log_health_check_failures": WARN, "always_log_health_check_success": WARN,
    },
}

# Edge settings (compile/edge.py): path normalization, the health_check filter,
# local_reply_config, access-log log_format and filter.
HEALTH_CHECK_TYPE = "envoy.extensions.filters.http.health_check.v3.HealthCheck"
_AL = "envoy.config.accesslog.v3."
EXTENSIONS["http_filter"] = EXTENSIONS["http_filter"] | {HEALTH_CHECK_TYPE}
FIELDS[_HCM + "HttpConnectionManager"].update({
    "path_with_escaped_slashes_action": OK, "local_reply_config": OK,
    "path_normalization_options": OK,  # refused by compile/edge.py with a pointer to what is supported
})
FIELDS["envoy.config.accesslog.v3.AccessLog"]["filter"] = OK
for _log_type in (FILE_LOG_TYPE, STDOUT_LOG_TYPE, STDERR_LOG_TYPE):
    FIELDS[_log_type]["log_format"] = OK
FIELDS.update({
    HEALTH_CHECK_TYPE: {
        "pass_through_mode": OK, "headers": OK, "cluster_min_healthy_percentages": OK,
        "cache_time": OK,  # only pass-through answers are cached; compile/edge.py refuses that
    },
    _HCM + "LocalReplyConfig": {"mappers": OK, "body_format": OK},
    _HCM + "ResponseMapper": {
        "filter": OK, "status_code": OK, "body": OK, "body_format_override": OK, "headers_to_add": OK,
    },
    _CORE + "SubstitutionFormatString": {
        "text_format": OK, "text_format_source": OK, "json_format": OK, "omit_empty_values": OK,
        "content_type": OK,
    },
    _AL + "AccessLogFilter": {
        "status_code_filter": OK, "duration_filter": OK, "header_filter": OK, "response_flag_filter": OK,
        "not_health_check_filter": OK, "traceable_filter": OK, "and_filter": OK, "or_filter": OK,
    },
    _AL + "StatusCodeFilter": {"comparison": OK},
    _AL + "DurationFilter": {"comparison": OK},
    _AL + "ComparisonFilter": {"op": OK, "value": OK},
    _CORE + "RuntimeUInt32": {"default_value": OK, "runtime_key": OK},  # (default_value is used)
    _AL + "HeaderFilter": {"header": OK},
    _AL + "ResponseFlagFilter": {"flags": OK},
    _AL + "AndFilter": {"filters": OK},
    _AL + "OrFilter": {"filters": OK},
    _AL + "NotHealthCheckFilter": {},
    _AL + "TraceableFilter": {},
})

#: Fields whose absence of support deserves a more helpful message than the generic one.
HINTS: dict[str, str] = {
    "api_config_source": "only ADS is supported: use {ads: {}} and dynamic_resources.ads_config",
    "path_config_source": "only ADS is supported: use {ads: {}} and dynamic_resources.ads_config",
    "channel_credentials": "only insecure gRPC channels to the management server are supported yet",
    "transport_socket": "TLS (transport_socket, SDS secrets) is not supported yet",
    "filter_chain_match": "filter_chain_match is not supported yet: one filter chain per listener",
}



def connection_managers(listeners: Iterable[Any]) -> Iterator[tuple[str, Any]]:
    """(field path relative to the listener list, HttpConnectionManager message) of every
    connection manager in ``listeners`` (the walk that route references, RDS subscriptions and
    /config_dump share)."""
    from envoy.extensions.filters.network.http_connection_manager.v3 import (
        http_connection_manager_pb2 as hcm_pb2,
    )

    for li, lst in enumerate(listeners):
        for ci, fc in enumerate(lst.filter_chains):
            for fi, f in enumerate(fc.filters):
                if f.typed_config.type_url.rsplit("/", 1)[-1] != HCM_TYPE:
                    continue
                hcm = hcm_pb2.HttpConnectionManager()
                f.typed_config.Unpack(hcm)
                yield f"[{li}].filter_chains[{ci}].filters[{fi}].typed_config", hcm

#: Why an ignored field cannot change traffic, where the generic words say too little.
WARN_NOTES: dict[str, str] = {
    "stats_config.stats_matcher": "every stat is listed (no stats_matcher); this shapes only the "
                                  "selection of /stats and /stats/prometheus",
    "tracing": "no spans are reported and no trace context headers are generated",
}


@dataclass
class CheckResult:
    warnings: list[str] = field(default_factory=list)
    #: Every set field outside the subset. With ``collect`` the walk only records them (a
    #: bootstrap lists all its problems at once); otherwise check_message raises them.
    errors: list[ProxyConfigError] = field(default_factory=list)
    collect: bool = False


def check_message(msg: message.Message, path: str, result: CheckResult) -> None:
    """Check every set field against the supported subset; a ProxyConfigError lists those outside
    it (unless ``result.collect``: then they are left in ``result.errors``)."""
    before = len(result.errors)
    _walk(msg, path, result)
    if not result.collect and len(result.errors) > before:
        raise ProxyConfigError.collected(result.errors[before:])


def _walk(msg: message.Message, path: str, result: CheckResult) -> None:
    full_name = msg.DESCRIPTOR.full_name
    rules = FIELDS.get(full_name)
    if rules is None:
        return
    if full_name == _HCM + "HttpFilter" and msg.is_optional:
        type_name = effective_type_name(msg.typed_config)
        if type_name not in EXTENSIONS["http_filter"]:
            result.warnings.append(f"{path}: optional filter {type_name!r} is not supported; skipped")
            return
    for fd, value in msg.ListFields():
        name = fd.name
        fpath = f"{path}.{name}" if path else name
        rule = rules.get(name)
        if rule is None:
            hint = HINTS.get(name, f"field {name!r} of {full_name} is not supported")
            result.errors.append(ProxyConfigError(hint, fpath))
            continue
        if rule == WARN:
            note = WARN_NOTES.get(fpath, "not supported; cannot change traffic")
            result.warnings.append(f"{fpath}: ignored ({note})")
            continue
        if fd.type != fd.TYPE_MESSAGE:
            continue
        if fd.message_type.GetOptions().map_entry:
            for key, item in value.items():
                _check_value(item, f"{fpath}[{key!r}]", rule, result)
        elif fd.is_repeated:
            for i, item in enumerate(value):
                _check_value(item, f"{fpath}[{i}]", rule, result)
        else:
            _check_value(value, fpath, rule, result)


def _check_value(value: message.Message, path: str, rule: str, result: CheckResult) -> None:
    if isinstance(value, any_pb2.Any):
        try:
            inner = unpack_any(value, path, rule)
        except ProxyConfigError as exc:
            result.errors.extend(exc.errors)
            return
        _walk(inner, path, result)
    else:
        _walk(value, path, result)


def unpack_any(value: any_pb2.Any, path: str, kind: str) -> message.Message:
    """Unpack a typed_config, refusing extension types the proxy does not implement."""
    type_name = value.type_url.rsplit("/", 1)[-1]
    allowed = EXTENSIONS.get(kind, frozenset())
    if type_name in TYPED_STRUCT_TYPES and effective_type_name(value) in allowed:
        return unpack_typed_struct(value, path)[1]  # Istio's way of naming its own filters
    if type_name not in allowed:
        raise ProxyConfigError(
            f"extension type {type_name!r} is not supported here (supported: {', '.join(sorted(allowed))})",
            path,
        )
    from google.protobuf import symbol_database

    cls = symbol_database.Default().GetSymbol(type_name)
    inner = cls()
    value.Unpack(inner)
    return inner
