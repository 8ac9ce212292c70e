"""Cluster → runtime Cluster settings."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

from ..cluster import STATIC, STRICT_DNS, ClusterSettings, EndpointSpec
from ..errors import ProxyConfigError
from ..support import unpack_any
from ..upstream import PoolOptions
from .durations import seconds

_TYPES = {0: STATIC, 1: STRICT_DNS}
_TYPE_NAMES = {2: "LOGICAL_DNS", 3: "EDS", 4: "ORIGINAL_DST"}
_LB = {0: "ROUND_ROBIN", 1: "LEAST_REQUEST", 3: "RANDOM"}
_LB_NAMES = {2: "RING_HASH", 5: "MAGLEV", 6: "CLUSTER_PROVIDED", 7: "LOAD_BALANCING_POLICY_CONFIG"}
# dns_lookup_family: AUTO, V4_ONLY, V6_ONLY, V4_PREFERRED, ALL
_FAMILY = {0: (socket.AF_UNSPEC, True), 1: (socket.AF_INET, False), 2: (socket.AF_INET6, True),
           3: (socket.AF_UNSPEC, False), 4: (socket.AF_UNSPEC, False)}
_USABLE_HEALTH = {0, 1, 5}  # UNKNOWN, HEALTHY, DEGRADED


def compile_cluster(c: Any, path: str) -> ClusterSettings:
    if not c.name:
        raise ProxyConfigError("a cluster needs a name", f"{path}.name")
    kind = c.WhichOneof("cluster_discovery_type")
    if kind == "cluster_type":
        raise ProxyConfigError("custom cluster types are not supported", f"{path}.cluster_type")
    if c.type not in _TYPES:
        raise ProxyConfigError(f"cluster type {_TYPE_NAMES.get(c.type, c.type)} is not supported yet "
                               "(STATIC and STRICT_DNS are)", f"{path}.type")
    ctype = _TYPES[c.type]
    if c.lb_policy not in _LB:
        raise ProxyConfigError(f"lb_policy {_LB_NAMES.get(c.lb_policy, c.lb_policy)} is not supported yet "
                               "(ROUND_ROBIN, LEAST_REQUEST and RANDOM are)", f"{path}.lb_policy")
    choice_count = 2
    if c.HasField("least_request_lb_config") and c.least_request_lb_config.HasField("choice_count"):
        choice_count = c.least_request_lb_config.choice_count.value
    endpoints = []
    la = c.load_assignment
    for li, loc in enumerate(la.endpoints):
        lpath = f"{path}.load_assignment.endpoints[{li}]"
        if loc.priority:
            raise ProxyConfigError("endpoint priorities are not supported yet", f"{lpath}.priority")
        for ei, lbe in enumerate(loc.lb_endpoints):
            epath = f"{lpath}.lb_endpoints[{ei}]"
            if lbe.WhichOneof("host_identifier") != "endpoint":
                raise ProxyConfigError("an lb_endpoint needs an endpoint", epath)
            if lbe.health_status not in _USABLE_HEALTH:
                continue
            sa = lbe.endpoint.address.socket_address
            if not sa.address or not sa.port_value:
                raise ProxyConfigError("an endpoint needs a socket_address with address and port_value",
                                       f"{epath}.endpoint.address.socket_address")
            if ctype == STATIC:
                try:
                    ipaddress.ip_address(sa.address)
                except ValueError:
                    raise ProxyConfigError(f"STATIC clusters need IP addresses, got {sa.address!r}",
                                           f"{epath}.endpoint.address.socket_address.address") from None
            weight = lbe.load_balancing_weight.value if lbe.HasField("load_balancing_weight") else 1
            if weight < 1:
                raise ProxyConfigError("load_balancing_weight must be at least 1", f"{epath}.load_balancing_weight")
            endpoints.append(EndpointSpec(sa.address, sa.port_value, weight, lbe.endpoint.hostname))
    http = _protocol_options(c, path)
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
    return ClusterSettings(
        name=c.name, kind=ctype, endpoints=tuple(endpoints), lb_policy=_LB[c.lb_policy],
        choice_count=choice_count,
        pool=PoolOptions(connect_timeout=connect_timeout, idle_timeout=idle,
                         max_requests_per_connection=max_rq, buffer_limit=buffer_limit),
        dns_refresh_rate=seconds(c.dns_refresh_rate) if c.HasField("dns_refresh_rate") else 5.0,
        dns_family=family, prefer_v6=prefer_v6,
    )


def _protocol_options(c: Any, path: str) -> Any:
    """typed_extension_protocol_options' HttpProtocolOptions (HTTP/1.1 only, for now)."""
    common = None
    for key, value in c.typed_extension_protocol_options.items():
        p = f"{path}.typed_extension_protocol_options[{key!r}]"
        opts = unpack_any(value, p, "protocol_options")
        which = opts.WhichOneof("upstream_protocol_options")
        if which is not None and which != "explicit_http_config":
            raise ProxyConfigError(f"{which} is not supported yet (HTTP/1.1 upstreams only)", p)
        if which == "explicit_http_config" and opts.explicit_http_config.WhichOneof("protocol_config") != "http_protocol_options":
            raise ProxyConfigError("only http_protocol_options (HTTP/1.1) is supported", f"{p}.explicit_http_config")
        if opts.HasField("common_http_protocol_options"):
            common = opts.common_http_protocol_options
    return common
