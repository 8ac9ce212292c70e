"""Cluster → runtime ClusterSettings; ClusterLoadAssignment → LoadAssignment.

Circuit breakers, outlier detection and health checks are compiled by compile/resilience.py
(which checks their fields) and stored on the settings; the Cluster builds the live objects.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from typing import Any, TypeVar

from ..upstream.circuit_breaker import CircuitBreakerSettings
from ..upstream.cluster import (
    EDS, LOGICAL_DNS, ORIGINAL_DST, STATIC, STRICT_DNS, ClusterSettings, EndpointSpec,
    Cluster, LoadAssignment, LocalitySpec, OriginalDstOptions,
)
from ..common.errors import ProxyConfigError
from ..upstream.lb import CLUSTER_PROVIDED, LbOptions
from ..upstream.lb.original_dst import DEFAULT_HEADER
from ..upstream.lb.ring_hash import DEFAULT_MAX_RING, DEFAULT_MIN_RING
from ..upstream.lb.maglev import DEFAULT_TABLE_SIZE
from ..upstream.priority import DEFAULT_OVERPROVISIONING, DEFAULT_PANIC_THRESHOLD
from .subset import CheckResult, check_message, unpack_any
from ..http.upstream_connection import UpstreamConnection
from ..upstream.pool import PoolOptions
from .durations import seconds
from .resilience import compile_circuit_breakers, compile_health_checks, compile_outlier_detection

T = TypeVar("T")

_TYPES = {0: STATIC, 1: STRICT_DNS, 2: LOGICAL_DNS, 3: EDS, 4: ORIGINAL_DST}
_LB = {0: "ROUND_ROBIN", 1: "LEAST_REQUEST", 2: "RING_HASH", 3: "RANDOM", 5: "MAGLEV",
       6: CLUSTER_PROVIDED}
_LB_NAMES = {7: "LOAD_BALANCING_POLICY_CONFIG"}
# dns_lookup_family: AUTO, V4_ONLY, V6_ONLY, V4_PREFERRED, ALL
_FAMILY = {0: (socket.AF_UNSPEC, True), 1: (socket.AF_INET, False), 2: (socket.AF_INET6, True),
           3: (socket.AF_UNSPEC, False), 4: (socket.AF_UNSPEC, False)}
_MAX_TABLE_SIZE = 5000011
_NO_H2 = ("HTTP/2 upstreams are not supported yet for proxied traffic (http2_protocol_options is accepted "
          "only on the ADS cluster and on static clusters of gRPC services no route uses)")


def compile_cluster(c: Any, path: str) -> ClusterSettings:
    if not c.name:
        raise ProxyConfigError("a cluster needs a name", f"{path}.name")
    kind = c.WhichOneof("cluster_discovery_type")
    if kind == "cluster_type":
        raise ProxyConfigError("custom cluster types are not supported", f"{path}.cluster_type")
    if c.type not in _TYPES:
        raise ProxyConfigError(f"cluster type {c.type} is not supported", f"{path}.type")
    ctype = _TYPES[c.type]
    if c.lb_policy not in _LB:
        raise ProxyConfigError(f"lb_policy {_LB_NAMES.get(c.lb_policy, c.lb_policy)} is not supported",
                               f"{path}.lb_policy")
    policy = _LB[c.lb_policy]
    if (ctype == ORIGINAL_DST) != (policy == CLUSTER_PROVIDED):
        raise ProxyConfigError("'CLUSTER_PROVIDED' is the only lb_policy for ORIGINAL_DST clusters, and "
                               "is allowed only with ORIGINAL_DST", f"{path}.lb_policy")
    errors: list[ProxyConfigError] = []  # the sections below are independent: all their errors are listed

    def attempt(compile_section: Callable[[], T], fallback: T) -> T:
        try:
            return compile_section()
        except ProxyConfigError as exc:
            errors.extend(exc.errors)
            return fallback

    options = attempt(lambda: _lb_options(c, path, policy), None)
    assignment = attempt(lambda: _assignment(c, path, ctype), LoadAssignment())
    http = attempt(lambda: _protocol_options(c, path), None)
    idle = 3600.0
    max_rq = c.max_requests_per_connection.value if c.HasField("max_requests_per_connection") else 0
    for opts in (c.common_http_protocol_options, http):
        if opts is not None and opts.HasField("idle_timeout"):
            idle = seconds(opts.idle_timeout)
        if opts is not None and opts.HasField("max_requests_per_connection"):
            max_rq = opts.max_requests_per_connection.value
    connect_timeout = seconds(c.connect_timeout) if c.HasField("connect_timeout") else 5.0
    buffer_limit = (c.per_connection_buffer_limit_bytes.value
                    if c.HasField("per_connection_buffer_limit_bytes") else 1024 * 1024)
    family, prefer_v6 = _FAMILY.get(c.dns_lookup_family, (socket.AF_UNSPEC, False))
    breakers = attempt(lambda: compile_circuit_breakers(c.circuit_breakers, f"{path}.circuit_breakers")
                       if c.HasField("circuit_breakers") else CircuitBreakerSettings(), CircuitBreakerSettings())
    outlier = attempt(lambda: compile_outlier_detection(c.outlier_detection, f"{path}.outlier_detection")
                      if c.HasField("outlier_detection") else None, None)
    health_check = attempt(lambda: compile_health_checks(c.health_checks, f"{path}.health_checks"), None)
    if health_check is not None and ctype == ORIGINAL_DST:
        errors.append(ProxyConfigError("health checks are not supported on ORIGINAL_DST clusters (hosts are "
                                       "made on demand)", f"{path}.health_checks"))
    original_dst = attempt(lambda: _original_dst(c, path), OriginalDstOptions())
    if errors:
        raise ProxyConfigError.collected(errors)
    assert options is not None
    return ClusterSettings(
        name=c.name, kind=ctype, assignment=assignment, lb=options,
        pool=PoolOptions(connection=UpstreamConnection, connect_timeout=connect_timeout, idle_timeout=idle,
                         max_requests_per_connection=max_rq, buffer_limit=buffer_limit),
        dns_refresh_rate=seconds(c.dns_refresh_rate) if c.HasField("dns_refresh_rate") else 5.0,
        dns_family=family, prefer_v6=prefer_v6,
        eds_service_name=c.eds_cluster_config.service_name or c.name,
        cleanup_interval=seconds(c.cleanup_interval) if c.HasField("cleanup_interval") else 5.0,
        original_dst=original_dst,
        circuit_breakers=breakers, outlier=outlier, health_check=health_check,
    )


def _assignment(c: Any, path: str, ctype: str) -> LoadAssignment:
    if ctype == ORIGINAL_DST:
        if c.HasField("load_assignment"):
            raise ProxyConfigError("ORIGINAL_DST clusters must have no load assignment configured",
                                   f"{path}.load_assignment")
        return LoadAssignment()
    if ctype == EDS:
        return LoadAssignment()  # endpoints arrive with update_load_assignment()
    assignment = compile_load_assignment(c.load_assignment, f"{path}.load_assignment", ctype)
    if ctype == LOGICAL_DNS and (len(assignment.localities) != 1
                                 or len(assignment.localities[0].endpoints) != 1):
        raise ProxyConfigError("LOGICAL_DNS clusters must have a single locality_lb_endpoint and a "
                               "single lb_endpoint", f"{path}.load_assignment")
    return assignment


def _lb_options(c: Any, path: str, policy: str) -> LbOptions:
    choice_count, bias = 2, None
    if c.HasField("least_request_lb_config"):
        lr = c.least_request_lb_config
        if lr.HasField("choice_count"):
            choice_count = lr.choice_count.value
            if choice_count < 2:
                raise ProxyConfigError("choice_count must be at least 2",
                                       f"{path}.least_request_lb_config.choice_count")
        if lr.HasField("active_request_bias"):
            bias = lr.active_request_bias.default_value
        if lr.HasField("slow_start_config"):
            raise ProxyConfigError("slow start is not supported", f"{path}.least_request_lb_config.slow_start_config")
    min_ring, max_ring = DEFAULT_MIN_RING, DEFAULT_MAX_RING
    if c.HasField("ring_hash_lb_config"):
        rh = c.ring_hash_lb_config
        rpath = f"{path}.ring_hash_lb_config"
        if rh.hash_function != 0:
            raise ProxyConfigError("only the XX_HASH hash_function is supported", f"{rpath}.hash_function")
        if rh.HasField("minimum_ring_size"):
            min_ring = rh.minimum_ring_size.value
        if rh.HasField("maximum_ring_size"):
            max_ring = rh.maximum_ring_size.value
        if not 0 < min_ring <= DEFAULT_MAX_RING or not 0 < max_ring <= DEFAULT_MAX_RING:
            raise ProxyConfigError(f"ring sizes must be in (0, {DEFAULT_MAX_RING}]", rpath)
        if min_ring > max_ring:
            raise ProxyConfigError(f"ring hash: minimum_ring_size ({min_ring}) > maximum_ring_size ({max_ring})",
                                   rpath)
    table_size = DEFAULT_TABLE_SIZE
    if c.HasField("maglev_lb_config") and c.maglev_lb_config.HasField("table_size"):
        table_size = c.maglev_lb_config.table_size.value
        if table_size > _MAX_TABLE_SIZE or not _is_prime(table_size):
            raise ProxyConfigError(f"The table size of maglev must be prime number (at most {_MAX_TABLE_SIZE})",
                                   f"{path}.maglev_lb_config.table_size")
    panic, locality_weighted, use_hostname = DEFAULT_PANIC_THRESHOLD, False, False
    if c.HasField("common_lb_config"):
        common = c.common_lb_config
        cpath = f"{path}.common_lb_config"
        if common.HasField("healthy_panic_threshold"):
            panic = int(round(common.healthy_panic_threshold.value))
        locality_weighted = common.HasField("locality_weighted_lb_config")
        if common.HasField("consistent_hashing_lb_config"):
            ch = common.consistent_hashing_lb_config
            use_hostname = ch.use_hostname_for_hashing
            if ch.HasField("hash_balance_factor"):
                raise ProxyConfigError("bounded-load consistent hashing is not supported",
                                       f"{cpath}.consistent_hashing_lb_config.hash_balance_factor")
    return LbOptions(policy=policy, choice_count=choice_count, active_request_bias=bias,
                     minimum_ring_size=min_ring, maximum_ring_size=max_ring, table_size=table_size,
                     panic_threshold=panic, locality_weighted=locality_weighted,
                     use_hostname_for_hashing=use_hostname)


def _original_dst(c: Any, path: str) -> OriginalDstOptions:
    if not c.HasField("original_dst_lb_config"):
        return OriginalDstOptions()
    od = c.original_dst_lb_config
    opath = f"{path}.original_dst_lb_config"
    if od.http_header_name and not od.use_http_header:
        raise ProxyConfigError(f"ORIGINAL_DST cluster: invalid config http_header_name={od.http_header_name} "
                               "and use_http_header is false", f"{opath}.http_header_name")
    if od.HasField("metadata_key"):
        raise ProxyConfigError("metadata_key is not supported", f"{opath}.metadata_key")
    header = None
    if od.use_http_header:
        header = od.http_header_name.lower().encode() if od.http_header_name else DEFAULT_HEADER
    port = od.upstream_port_override.value if od.HasField("upstream_port_override") else None
    return OriginalDstOptions(header, port)


def compile_load_assignment(la: Any, path: str, kind: str = STATIC) -> LoadAssignment:
    """``path`` names the ClusterLoadAssignment (``…load_assignment`` or ``ClusterLoadAssignment[x]``)."""
    localities = []
    for li, loc in enumerate(la.endpoints):
        lpath = f"{path}.endpoints[{li}]"
        if loc.HasField("load_balancer_endpoints") or loc.HasField("leds_cluster_locality_config"):
            raise ProxyConfigError("only lb_endpoints are supported", lpath)
        lweight = 0
        if loc.HasField("load_balancing_weight"):
            lweight = loc.load_balancing_weight.value
            if lweight < 1:
                raise ProxyConfigError("load_balancing_weight must be at least 1", f"{lpath}.load_balancing_weight")
        endpoints = []
        for ei, lbe in enumerate(loc.lb_endpoints):
            epath = f"{lpath}.lb_endpoints[{ei}]"
            if lbe.WhichOneof("host_identifier") != "endpoint":
                raise ProxyConfigError("an lb_endpoint needs an endpoint", epath)
            kind_of_address = lbe.endpoint.address.WhichOneof("address")
            if kind_of_address == "pipe":
                raise ProxyConfigError("unix socket (pipe) endpoints are supported only for the ADS cluster",
                                       f"{epath}.endpoint.address.pipe")
            if kind_of_address not in (None, "socket_address"):
                raise ProxyConfigError(f"{kind_of_address} endpoints are not supported",
                                       f"{epath}.endpoint.address.{kind_of_address}")
            sa = lbe.endpoint.address.socket_address
            if not sa.address or not sa.port_value:
                raise ProxyConfigError("an endpoint needs a socket_address with address and port_value",
                                       f"{epath}.endpoint.address.socket_address")
            if kind in (STATIC, EDS):
                try:
                    ipaddress.ip_address(sa.address)
                except ValueError:
                    raise ProxyConfigError(f"{kind} clusters need IP addresses, got {sa.address!r}",
                                           f"{epath}.endpoint.address.socket_address.address") from None
            weight = lbe.load_balancing_weight.value if lbe.HasField("load_balancing_weight") else 1
            if weight < 1:
                raise ProxyConfigError("load_balancing_weight must be at least 1", f"{epath}.load_balancing_weight")
            hc = lbe.endpoint.health_check_config
            if hc.HasField("address"):
                raise ProxyConfigError("health_check_config.address is not supported (port_value is)",
                                       f"{epath}.endpoint.health_check_config.address")
            endpoints.append(EndpointSpec(sa.address, sa.port_value, weight, lbe.endpoint.hostname,
                                          lbe.health_status, _hash_key(lbe), hc.port_value, hc.hostname,
                                          hc.disable_active_health_check))
        l = loc.locality
        localities.append(LocalitySpec(tuple(endpoints), loc.priority, (l.region, l.zone, l.sub_zone), lweight))
    factor, weighted = DEFAULT_OVERPROVISIONING, False
    if la.HasField("policy"):
        p = la.policy
        if p.drop_overloads:
            raise ProxyConfigError("drop_overloads is not supported", f"{path}.policy.drop_overloads")
        if p.HasField("overprovisioning_factor"):
            factor = p.overprovisioning_factor.value
            if factor < 1:
                raise ProxyConfigError("overprovisioning_factor must be greater than 0",
                                       f"{path}.policy.overprovisioning_factor")
        weighted = p.weighted_priority_health
    return LoadAssignment(tuple(localities), factor, weighted)


def _hash_key(lbe: Any) -> str:
    """Endpoint metadata ``envoy.lb`` / ``hash_key``: what ring hash and Maglev hash instead of
    the address."""
    md = lbe.metadata.filter_metadata
    if "envoy.lb" in md:
        value = md["envoy.lb"].fields.get("hash_key")
        if value is not None and value.WhichOneof("kind") == "string_value":
            return value.string_value  # type: ignore[no-any-return]
    return ""


def _is_prime(n: int) -> bool:
    if n < 2:
        return False
    i = 2
    while i * i <= n:
        if n % i == 0:
            return False
        i += 1
    return True


def _protocol_options(c: Any, path: str) -> Any:
    """typed_extension_protocol_options' HttpProtocolOptions (HTTP/1.1 only, for now)."""
    if c.HasField("http2_protocol_options"):
        raise ProxyConfigError(_NO_H2, f"{path}.http2_protocol_options")
    common = None
    for key, value in c.typed_extension_protocol_options.items():
        p = f"{path}.typed_extension_protocol_options[{key!r}]"
        opts = unpack_any(value, p, "protocol_options")
        which = opts.WhichOneof("upstream_protocol_options")
        if which is not None and which != "explicit_http_config":
            raise ProxyConfigError(f"{which} is not supported yet (HTTP/1.1 upstreams only)", p)
        protocol = opts.explicit_http_config.WhichOneof("protocol_config") if which else None
        if protocol == "http2_protocol_options":
            raise ProxyConfigError(_NO_H2, f"{p}.explicit_http_config.http2_protocol_options")
        if which == "explicit_http_config" and protocol != "http_protocol_options":
            raise ProxyConfigError("only http_protocol_options (HTTP/1.1) is supported", f"{p}.explicit_http_config")
        if opts.HasField("common_http_protocol_options"):
            common = opts.common_http_protocol_options
    return common


def install_load_assignment(cluster: Cluster, cla: Any) -> list[str]:
    """Install an EDS ClusterLoadAssignment in ``cluster``; raises ProxyConfigError (a NACK)
    when it uses something unsupported. Returns warnings for ignored fields."""
    s = cluster.settings
    path = f"ClusterLoadAssignment[{cla.cluster_name or s.eds_service_name or cluster.name}]"
    result = CheckResult()
    check_message(cla, path, result)
    cluster.install(compile_load_assignment(cla, path, s.kind))
    return result.warnings
