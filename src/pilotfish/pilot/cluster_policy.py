"""A DestinationRule's trafficPolicy as Envoy Cluster fields (Istio's cluster_traffic_policy.go):
which policy applies to a port and subset, and how connection pools, outlier detection and load
balancing become circuit breakers, protocol options, outlier_detection and lb_policy.

Only what our proxy implements is emitted (proxy/compile/subset.py refuses the rest). Left out,
where Istio would emit them: TLS origination and auto mTLS (transport_socket), HTTP/2 upstreams
(h2UpgradePolicy, useClientProtocol, maxConcurrentStreams, http2KeepAlive, HTTP2/gRPC ports),
maxConnectionDuration, slow start (warmup), outlierDetectionHttpErrorCodes, retry budget
intervals, tunnel and proxy protocol, and cluster metadata.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from envoy.config.cluster.v3 import circuit_breaker_pb2, cluster_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2
from google.protobuf import duration_pb2
from pydantic import ValidationError

from ..config.base import Resource
from ..config.duration import Duration, DurationError
from ..config.models.destinationrule import (
    ConnectionPoolSettings,
    ConsistentHashLB,
    LoadBalancerSettings,
    LocalityLoadBalancerSetting,
    OutlierDetection,
    SimpleLB,
    TcpKeepalive,
    TrafficPolicy,
)
from ..config.models.kube import MeshConfig
from ..registry.model import Port, Service
from . import locality
from .push_context import PushContext

MAX_UINT32 = 4_294_967_295
HTTP_OPTIONS_KEY = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
DEFAULT_RING_SIZE = 1024


@dataclass(frozen=True)
class MeshDefaults:
    """The MeshConfig fields cluster translation reads, with Istio's defaults."""

    connect_timeout: Duration = Duration.of(10)
    dns_refresh_rate: Duration = Duration.of(60)
    locality_lb_setting: LocalityLoadBalancerSetting | None = LocalityLoadBalancerSetting.model_construct(enabled=True)
    tcp_keepalive: TcpKeepalive | None = None
    connection_pool: ConnectionPoolSettings | None = None  # defaultTrafficPolicy
    outlier_detection: OutlierDetection | None = None  # defaultTrafficPolicy


def _model(cls: Any, raw: Any) -> Any:
    if not isinstance(raw, Mapping):
        return None
    try:
        return cls.model_validate(raw, by_alias=True, by_name=False)
    except ValidationError:
        return None


def _duration(raw: Any, default: Duration) -> Duration:
    try:
        return Duration.parse(raw) if isinstance(raw, str) else default
    except DurationError:
        return default


def mesh_defaults(mesh: MeshConfig) -> MeshDefaults:
    """Read the MeshConfig fields its model keeps as extras (connectTimeout, dnsRefreshRate,
    localityLbSetting, tcpKeepalive, defaultTrafficPolicy); a malformed one falls back to Istio's
    default rather than failing every push."""
    extra = mesh.model_extra or {}
    base = MeshDefaults()
    default_policy = extra.get("defaultTrafficPolicy")
    default_policy = default_policy if isinstance(default_policy, Mapping) else {}
    setting = base.locality_lb_setting
    if "localityLbSetting" in extra:
        setting = _model(LocalityLoadBalancerSetting, extra["localityLbSetting"])
    return MeshDefaults(
        connect_timeout=_duration(extra.get("connectTimeout"), base.connect_timeout),
        dns_refresh_rate=_duration(extra.get("dnsRefreshRate"), base.dns_refresh_rate),
        locality_lb_setting=setting,
        tcp_keepalive=_model(TcpKeepalive, extra.get("tcpKeepalive")),
        connection_pool=_model(ConnectionPoolSettings, default_policy.get("connectionPool")),
        outlier_detection=_model(OutlierDetection, default_policy.get("outlierDetection")),
    )


def proto_duration(d: Duration) -> duration_pb2.Duration:
    out = duration_pb2.Duration()
    out.FromNanoseconds(d.nanos)
    return out


# ---------------------------------------------------------------- which policy applies


def _copy(policy: TrafficPolicy, **changes: Any) -> TrafficPolicy:
    fields = {name: getattr(policy, name) for name in TrafficPolicy.model_fields}
    fields["port_level_settings"] = None  # (given: pydantic copies a field's default when left out)
    fields.update(changes)
    return TrafficPolicy.model_construct(**fields)


def port_policy(policy: TrafficPolicy | None, port: int) -> tuple[TrafficPolicy | None, bool]:
    """The port's portLevelSettings entry when there is one (it replaces the top level whole:
    fields it omits take defaults, not the top level's), else ``policy``. The flag says which."""
    if policy is None:
        return None, False
    for p in policy.port_level_settings or ():
        if p.port is not None and p.port.number == port:
            return TrafficPolicy.model_construct(
                load_balancer=p.load_balancer, connection_pool=p.connection_pool,
                outlier_detection=p.outlier_detection, tls=p.tls), True
    return policy, False


def merge_subset(policy: TrafficPolicy | None, subset_policy: TrafficPolicy | None, port: int) -> TrafficPolicy | None:
    """Istio's MergeSubsetTrafficPolicy: the subset's settings override the rule's field by field;
    a subset port-level entry overrides the four port-level fields even where it leaves them unset."""
    policy, _ = port_policy(policy, port)
    if subset_policy is None:
        return policy
    subset_policy, port_level = port_policy(subset_policy, port)
    if policy is None or subset_policy is None:
        return subset_policy
    changes: dict[str, Any] = {}
    for name in ("connection_pool", "outlier_detection", "load_balancer", "tls"):
        if getattr(subset_policy, name) is not None or port_level:
            changes[name] = getattr(subset_policy, name)
    for name in ("tunnel", "proxy_protocol", "retry_budget"):
        if getattr(subset_policy, name) is not None:
            changes[name] = getattr(subset_policy, name)
    return _copy(policy, **changes)


def with_mesh_defaults(policy: TrafficPolicy | None, defaults: MeshDefaults) -> TrafficPolicy | None:
    """meshConfig.defaultTrafficPolicy fills a connectionPool or outlierDetection the rule leaves unset."""
    need_pool = defaults.connection_pool is not None and (policy is None or policy.connection_pool is None)
    need_outlier = defaults.outlier_detection is not None and (policy is None or policy.outlier_detection is None)
    if not need_pool and not need_outlier:
        return policy
    base = policy if policy is not None else TrafficPolicy.model_construct()
    changes: dict[str, Any] = {}
    if need_pool:
        changes["connection_pool"] = defaults.connection_pool
    if need_outlier:
        changes["outlier_detection"] = defaults.outlier_detection
    return _copy(base, **changes)


def find_subset(rule: Resource | None, name: str) -> Any:
    """The DestinationRule subset called ``name``, or None."""
    if rule is None:
        return None
    for s in rule.spec.subsets or ():
        if s.name == name:
            return s
    return None


def cluster_policy(rule: Resource | None, port: int, subset: str, defaults: MeshDefaults) -> TrafficPolicy | None:
    """The policy of cluster ``outbound|port|subset|host`` under ``rule`` (CDS and EDS agree on it)."""
    top = rule.spec.traffic_policy if rule is not None else None
    policy = with_mesh_defaults(port_policy(top, port)[0], defaults)
    if not subset:
        return policy
    found = find_subset(rule, subset)
    return merge_subset(policy, found.traffic_policy if found is not None else None, port)


def consistent_hash_of(push: PushContext, proxy_namespace: str, service: Service, subset: str,
                       port: int | Port) -> ConsistentHashLB | None:
    """The consistentHash load balancer of a destination, for the route's hash policy."""
    number = port.number if isinstance(port, Port) else port
    rule = push.destination_rule(proxy_namespace, service)
    if rule is None:
        return None
    # Every route to a destination asks again: the merged policy is made once per rule, port and
    # subset in a push (merging builds models, ~70 µs each).
    key = ("consistent-hash", id(rule), number, subset)
    if key not in push.generated:
        policy = cluster_policy(rule, number, subset, MeshDefaults())
        lb = policy.load_balancer if policy is not None else None
        push.generated[key] = lb.consistent_hash if lb is not None else None
    return push.generated[key]  # type: ignore[no-any-return]


# ---------------------------------------------------------------- policy → cluster fields


def default_thresholds() -> circuit_breaker_pb2.CircuitBreakers.Thresholds:
    """Istio's defaults: Envoy's limits (1024, 3 retries) are too small for pod churn."""
    t = circuit_breaker_pb2.CircuitBreakers.Thresholds(track_remaining=True)
    for name in ("max_connections", "max_pending_requests", "max_requests", "max_retries"):
        getattr(t, name).value = MAX_UINT32
    return t


def apply_connection_pool(c: cluster_pb2.Cluster, pool: ConnectionPoolSettings | None,
                          policy: TrafficPolicy | None, defaults: MeshDefaults) -> None:
    """connectionPool → connect_timeout, circuit_breakers, keepalive and HTTP protocol options."""
    pool = pool or ConnectionPoolSettings.model_construct()
    t = default_thresholds()
    budget = policy.retry_budget if policy is not None else None
    if budget is not None:  # budget_interval is not supported by our proxy: left out
        t.retry_budget.budget_percent.value = budget.percent if budget.percent is not None else 20.0
        t.retry_budget.min_retry_concurrency.value = budget.min_retry_concurrency or 3
    idle: Duration | None = None
    max_per_connection = 0
    http, tcp = pool.http, pool.tcp
    if http is not None:
        if http.http2_max_requests and http.http2_max_requests > 0:
            t.max_requests.value = http.http2_max_requests
        if http.http1_max_pending_requests and http.http1_max_pending_requests > 0:
            t.max_pending_requests.value = http.http1_max_pending_requests
        if http.max_retries and http.max_retries > 0:
            t.max_retries.value = http.max_retries
        idle = http.idle_timeout
        max_per_connection = max(0, http.max_requests_per_connection or 0)
    c.connect_timeout.CopyFrom(proto_duration(defaults.connect_timeout))
    if tcp is not None:
        if tcp.connect_timeout is not None:
            c.connect_timeout.CopyFrom(proto_duration(tcp.connect_timeout))
        if tcp.max_connections and tcp.max_connections > 0:
            t.max_connections.value = tcp.max_connections
        if idle is None:
            idle = tcp.idle_timeout
    for keepalive in (defaults.tcp_keepalive, tcp.tcp_keepalive if tcp is not None else None):
        _apply_keepalive(c, keepalive)
    del c.circuit_breakers.thresholds[:]
    c.circuit_breakers.thresholds.append(t)
    if idle is not None or max_per_connection:
        options = http_protocol_options(c)
        if idle is not None:
            options.common_http_protocol_options.idle_timeout.CopyFrom(proto_duration(idle))
        if max_per_connection:
            options.common_http_protocol_options.max_requests_per_connection.value = max_per_connection
        c.typed_extension_protocol_options[HTTP_OPTIONS_KEY].Pack(options)


def http_protocol_options(c: cluster_pb2.Cluster) -> http_protocol_options_pb2.HttpProtocolOptions:
    """The cluster's HttpProtocolOptions (explicit HTTP/1.1 when new, as Envoy requires a choice)."""
    options = http_protocol_options_pb2.HttpProtocolOptions()
    if HTTP_OPTIONS_KEY in c.typed_extension_protocol_options:
        c.typed_extension_protocol_options[HTTP_OPTIONS_KEY].Unpack(options)
    else:
        options.explicit_http_config.http_protocol_options.SetInParent()
    return options


def _apply_keepalive(c: cluster_pb2.Cluster, keepalive: TcpKeepalive | None) -> None:
    """tcpKeepalive → upstream_connection_options (our proxy accepts and ignores it)."""
    if keepalive is None:
        return
    ka = c.upstream_connection_options.tcp_keepalive
    ka.SetInParent()
    if keepalive.probes:
        ka.keepalive_probes.value = keepalive.probes
    if keepalive.time is not None:
        ka.keepalive_time.value = int(keepalive.time.seconds)
    if keepalive.interval is not None:
        ka.keepalive_interval.value = int(keepalive.interval.seconds)


def apply_outlier_detection(c: cluster_pb2.Cluster, outlier: OutlierDetection | None) -> None:
    """outlierDetection → outlier_detection, with success-rate ejection off and the panic
    threshold at minHealthPercent (0: Istio disables panic mode for small deployments)."""
    if outlier is None:
        return
    od = c.outlier_detection
    od.enforcing_success_rate.value = 0
    if outlier.consecutive_5xx_errors is not None:
        od.consecutive_5xx.value = outlier.consecutive_5xx_errors
        od.enforcing_consecutive_5xx.value = 100 if outlier.consecutive_5xx_errors > 0 else 0
    if outlier.consecutive_gateway_errors is not None:
        od.consecutive_gateway_failure.value = outlier.consecutive_gateway_errors
        od.enforcing_consecutive_gateway_failure.value = 100 if outlier.consecutive_gateway_errors > 0 else 0
    if outlier.interval is not None:
        od.interval.CopyFrom(proto_duration(outlier.interval))
    if outlier.base_ejection_time is not None:
        od.base_ejection_time.CopyFrom(proto_duration(outlier.base_ejection_time))
    if outlier.max_ejection_percent and outlier.max_ejection_percent > 0:
        od.max_ejection_percent.value = outlier.max_ejection_percent
    if outlier.split_external_local_origin_errors:
        od.split_external_local_origin_errors = True
        if outlier.consecutive_local_origin_failures:
            od.consecutive_local_origin_failure.value = outlier.consecutive_local_origin_failures
            od.enforcing_consecutive_local_origin_failure.value = 100
        od.enforcing_local_origin_success_rate.value = 0
    min_health = outlier.min_health_percent or 0
    if min_health >= 0:
        c.common_lb_config.healthy_panic_threshold.value = float(min_health)


def apply_load_balancer(c: cluster_pb2.Cluster, lb: LoadBalancerSettings | None, defaults: MeshDefaults) -> None:
    """loadBalancer → lb_policy (Istio's default is LEAST_REQUEST), consistent hashing's ring or
    table, PASSTHROUGH's ORIGINAL_DST, and the locality-weighted flag."""
    if c.lb_policy == cluster_pb2.Cluster.CLUSTER_PROVIDED:
        return
    setting = locality.effective_setting(defaults.locality_lb_setting, lb)
    if locality.wants_locality_weighted_config(setting, c.HasField("outlier_detection")):
        c.common_lb_config.locality_weighted_lb_config.SetInParent()
    if c.type == cluster_pb2.Cluster.ORIGINAL_DST:
        c.lb_policy = cluster_pb2.Cluster.CLUSTER_PROVIDED
        return
    simple = lb.simple if lb is not None else None
    if simple in (SimpleLB.LEAST_CONN, SimpleLB.LEAST_REQUEST):
        c.lb_policy = cluster_pb2.Cluster.LEAST_REQUEST
    elif simple is SimpleLB.RANDOM:
        c.lb_policy = cluster_pb2.Cluster.RANDOM
    elif simple is SimpleLB.ROUND_ROBIN:
        c.lb_policy = cluster_pb2.Cluster.ROUND_ROBIN
    elif simple is SimpleLB.PASSTHROUGH:
        c.type = cluster_pb2.Cluster.ORIGINAL_DST
        c.lb_policy = cluster_pb2.Cluster.CLUSTER_PROVIDED
        c.ClearField("load_assignment")
        return
    else:
        c.lb_policy = cluster_pb2.Cluster.LEAST_REQUEST
    # warmup / warmupDurationSecs (slow_start_config) are refused by our proxy: left out
    ch = lb.consistent_hash if lb is not None else None
    if ch is None:
        return
    if ch.maglev is not None:
        c.lb_policy = cluster_pb2.Cluster.MAGLEV
        if ch.maglev.table_size:
            c.maglev_lb_config.table_size.value = ch.maglev.table_size
    elif ch.ring_hash is not None:
        c.lb_policy = cluster_pb2.Cluster.RING_HASH
        if ch.ring_hash.minimum_ring_size:
            c.ring_hash_lb_config.minimum_ring_size.value = ch.ring_hash.minimum_ring_size
    else:
        c.lb_policy = cluster_pb2.Cluster.RING_HASH
        c.ring_hash_lb_config.minimum_ring_size.value = ch.minimum_ring_size or DEFAULT_RING_SIZE


def apply_traffic_policy(c: cluster_pb2.Cluster, policy: TrafficPolicy | None, defaults: MeshDefaults,
                         *, inbound: bool = False) -> None:
    """The whole policy on ``c``; inbound clusters take only the connection pool (the server side
    needs the capacity its clients were granted)."""
    apply_connection_pool(c, policy.connection_pool if policy is not None else None, policy, defaults)
    if not inbound:
        apply_outlier_detection(c, policy.outlier_detection if policy is not None else None)
        apply_load_balancer(c, policy.load_balancer if policy is not None else None, defaults)
    if c.type == cluster_pb2.Cluster.ORIGINAL_DST:
        c.lb_policy = cluster_pb2.Cluster.CLUSTER_PROVIDED
