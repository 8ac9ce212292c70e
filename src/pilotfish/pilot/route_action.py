"""The parts of an Envoy route that say what happens to a matched request: where it goes
(cluster, weighted clusters, subsets), rewrites, redirects, direct responses, header edits,
retries, timeouts, faults, mirrors and hash policies — Istio's translateRoute pieces.

Only fields our proxy's supported subset accepts are emitted (proxy/compile/subset.py): a
field outside it makes the proxy refuse the whole RDS response.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from envoy.config.core.v3 import base_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.extensions.filters.common.fault.v3 import fault_pb2 as common_fault_pb2
from envoy.extensions.filters.http.fault.v3 import fault_pb2
from envoy.extensions.retry.host.previous_hosts.v3 import previous_hosts_pb2
from envoy.type.v3 import percent_pb2
from google.protobuf import any_pb2, duration_pb2
from pydantic import ValidationError

from ..config.duration import Duration
from ..config.models.virtualservice import (
    Destination,
    FaultDelay,
    HTTPDirectResponse,
    HTTPFaultInjection,
    HTTPRedirect,
    HTTPRetry,
    Headers,
    Percent,
    RedirectPortSelection,
)
from ..registry.model import Service
from .cluster_policy import consistent_hash_of
from .naming import OUTBOUND, cluster_name
from .proxy import Proxy
from .push_context import PushContext

FAULT_FILTER = "envoy.filters.http.fault"
DEFAULT_RETRY_ON = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
DEFAULT_RETRY_ATTEMPTS = 2
DEFAULT_RETRIABLE_STATUS = 503
HOST_SELECTION_RETRY_MAX_ATTEMPTS = 5
PREVIOUS_HOSTS = "envoy.retry_host_predicates.previous_hosts"
_REDIRECT_CODES = {0: rc.RedirectAction.MOVED_PERMANENTLY, 301: rc.RedirectAction.MOVED_PERMANENTLY,
                   302: rc.RedirectAction.FOUND, 303: rc.RedirectAction.SEE_OTHER,
                   307: rc.RedirectAction.TEMPORARY_REDIRECT, 308: rc.RedirectAction.PERMANENT_REDIRECT}
GRPC_STATUS = {
    "OK": 0, "CANCELLED": 1, "UNKNOWN": 2, "INVALID_ARGUMENT": 3, "DEADLINE_EXCEEDED": 4, "NOT_FOUND": 5,
    "ALREADY_EXISTS": 6, "PERMISSION_DENIED": 7, "RESOURCE_EXHAUSTED": 8, "FAILED_PRECONDITION": 9,
    "ABORTED": 10, "OUT_OF_RANGE": 11, "UNIMPLEMENTED": 12, "INTERNAL": 13, "UNAVAILABLE": 14,
    "DATA_LOSS": 15, "UNAUTHENTICATED": 16,
}


def duration(value: Duration | None) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    if value is not None:
        d.FromNanoseconds(value.nanos)
    return d


# ---------------------------------------------------------------- destinations


def destination_cluster(push: PushContext, proxy: Proxy, dest: Destination, namespace: str, listen_port: int) -> str:
    """``outbound|port|subset|host``: the port is the destination's, else the service's only
    port, else the port the request arrived on (Istio's GetDestinationCluster). Short hosts are
    resolved in ``namespace`` (the VirtualService's)."""
    host = str(push.resolve(dest.host, namespace))
    port = listen_port
    if dest.port is not None and dest.port.number:
        port = dest.port.number
    else:
        service = push.service(host, proxy.namespace)
        if service is not None and len(service.ports) == 1:
            port = service.ports[0].number
    return cluster_name(OUTBOUND, port, dest.subset or "", host)


def hash_policy_for(push: PushContext, proxy: Proxy, dest: Destination, namespace: str,
                    listen_port: int) -> rc.RouteAction.HashPolicy | None:
    """The DestinationRule's consistentHash for this destination (subset and port level win),
    as a route hash policy; None when there is none."""
    host = str(push.resolve(dest.host, namespace))
    service = push.service(host, proxy.namespace)
    if service is None:
        return None
    port = dest.port.number if dest.port is not None and dest.port.number else listen_port
    if len(service.ports) == 1 and not (dest.port is not None and dest.port.number):
        port = service.ports[0].number
    return hash_policy(consistent_hash_of(push, proxy.namespace, service, dest.subset or "", port))


def service_hash_policy(push: PushContext, proxy: Proxy, service: Service, port: int) -> rc.RouteAction.HashPolicy | None:
    try:
        from .cluster_policy import consistent_hash_of  # type: ignore[attr-defined]
    except ImportError:
        return None
    return hash_policy(consistent_hash_of(push, proxy.namespace, service, "", port))


def hash_policy(lb: Any) -> rc.RouteAction.HashPolicy | None:
    """Istio's ConsistentHashToHashPolicy: header, cookie, source IP or query parameter."""
    if lb is None:
        return None
    if isinstance(lb, rc.RouteAction.HashPolicy):
        return lb
    out = rc.RouteAction.HashPolicy()
    if getattr(lb, "http_header_name", None):
        out.header.header_name = lb.http_header_name
    elif getattr(lb, "http_cookie", None) is not None:
        cookie = lb.http_cookie
        out.cookie.name = cookie.name
        if cookie.ttl is not None:
            out.cookie.ttl.CopyFrom(duration(cookie.ttl))
        if cookie.path:
            out.cookie.path = cookie.path
        for attr in cookie.attributes or ():
            out.cookie.attributes.add(name=attr.name, value=attr.value or "")
    elif getattr(lb, "use_source_ip", None):
        out.connection_properties.source_ip = True
    elif getattr(lb, "http_query_parameter_name", None):
        out.query_parameter.name = lb.http_query_parameter_name
    else:
        return None
    return out


# ---------------------------------------------------------------- headers


class HeaderOps:
    """One Headers block as Envoy wants it: adds (set overwrites, add appends), removes, and the
    authority the rule sets (Envoy rewrites the host with host_rewrite_literal, not a header)."""

    __slots__ = ("request_add", "request_remove", "response_add", "response_remove", "authority")

    def __init__(self, headers: Headers) -> None:
        req, resp = headers.request, headers.response
        set_add, set_auth = _adds(req.set if req else None, append=False)
        add_add, add_auth = _adds(req.add if req else None, append=True)
        self.request_add = set_add + add_add
        self.authority = set_auth or add_auth
        self.response_add = _adds(resp.set if resp else None, append=False)[0] + _adds(resp.add if resp else None, append=True)[0]
        self.request_remove = [h for h in (req.remove if req and req.remove else ()) if not _internal(h)]
        self.response_remove = [h for h in (resp.remove if resp and resp.remove else ()) if not _internal(h)]

    def apply(self, target: Any) -> None:
        """Append onto a Route or a WeightedCluster.ClusterWeight."""
        target.request_headers_to_add.extend(self.request_add)
        target.request_headers_to_remove.extend(self.request_remove)
        target.response_headers_to_add.extend(self.response_add)
        target.response_headers_to_remove.extend(self.response_remove)


def _internal(key: str) -> bool:
    return key.startswith(":") or key.lower() == "host"


def _adds(values: Mapping[str, str] | None, append: bool) -> tuple[list[base_pb2.HeaderValueOption], str]:
    authority = ""
    out = []
    action = (base_pb2.HeaderValueOption.APPEND_IF_EXISTS_OR_ADD if append
              else base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD)
    for key, value in sorted((values or {}).items()):
        if key.lower() in (":authority", "host"):
            authority = value
        if _internal(key):
            continue
        if "%" in value:
            # Envoy's %VAR% formatters are not supported by our proxy, which would refuse the
            # whole route configuration: such a header is left out.
            continue
        out.append(base_pb2.HeaderValueOption(header=base_pb2.HeaderValue(key=key, value=value), append_action=action))
    return out, authority


# ---------------------------------------------------------------- retries and timeouts


def mesh_retry(push: PushContext) -> HTTPRetry | None:
    """The mesh's ``defaultHttpRetryPolicy``: what a route that sets no retries gets in place of
    Istio's built-in default (None: not set, or not a valid HTTPRetry)."""
    key = "mesh-default-retry"
    if key not in push.generated:
        raw = (push.mesh.model_extra or {}).get("defaultHttpRetryPolicy")
        try:
            push.generated[key] = HTTPRetry.model_validate(raw, by_alias=True, by_name=False) if isinstance(raw, dict) else None
        except ValidationError:
            push.generated[key] = None
    return push.generated[key]  # type: ignore[no-any-return]


def retry_policy(retries: HTTPRetry | None, consistent_hash: bool) -> rc.RetryPolicy | None:
    """Istio's retry.ConvertPolicy: its default policy when the rule sets none, none when
    ``attempts`` is 0. A consistent-hash destination keeps its host across retries (no
    previous_hosts predicate)."""
    if retries is not None and not retries.attempts:
        return None
    out = rc.RetryPolicy(retry_on=DEFAULT_RETRY_ON, host_selection_retry_max_attempts=HOST_SELECTION_RETRY_MAX_ATTEMPTS)
    out.num_retries.value = DEFAULT_RETRY_ATTEMPTS
    previous_hosts = not consistent_hash
    codes = [DEFAULT_RETRIABLE_STATUS]
    if retries is not None:
        out.num_retries.value = retries.attempts or DEFAULT_RETRY_ATTEMPTS
        if retries.retry_on:
            conditions, codes = parse_retry_on(retries.retry_on)
            if codes and "retriable-status-codes" not in conditions:
                conditions.append("retriable-status-codes")
            out.retry_on = ",".join(conditions)
        if retries.per_try_timeout is not None:
            out.per_try_timeout.CopyFrom(duration(retries.per_try_timeout))
        if retries.retry_ignore_previous_hosts is not None:
            previous_hosts = retries.retry_ignore_previous_hosts
        if retries.backoff is not None:
            out.retry_back_off.base_interval.CopyFrom(duration(retries.backoff))
        # retryRemoteLocalities (Envoy's previous_priorities retry_priority) is outside our
        # proxy's subset: left out.
    out.retriable_status_codes.extend(codes)
    if previous_hosts:
        pred = out.retry_host_predicate.add(name=PREVIOUS_HOSTS)
        pred.typed_config.Pack(previous_hosts_pb2.PreviousHostsPredicate())
    return out


def parse_retry_on(text: str) -> tuple[list[str], list[int]]:
    """Envoy retry conditions and the status codes written among them (``5xx,503,gateway-error``)."""
    conditions: list[str] = []
    codes: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if part.isdigit():
            codes.append(int(part))
        elif part not in conditions:
            conditions.append(part)
    return conditions, codes


def set_timeout(action: rc.RouteAction, timeout: Duration | None, proxyless_grpc: bool) -> None:
    """Istio: no route timeout unless the rule sets one (Envoy's 15s default is turned off with
    0s). gRPC's xDS client reads max_stream_duration instead."""
    action.timeout.CopyFrom(duration(timeout))
    if proxyless_grpc:
        action.max_stream_duration.max_stream_duration.CopyFrom(duration(timeout))


# ---------------------------------------------------------------- redirect, direct response


def redirect_action(redirect: HTTPRedirect, listen_port: int, is_tls: bool = False) -> rc.RedirectAction | None:
    """Istio's ApplyRedirect; None for a redirect code Envoy has no value for (the rule is dropped)."""
    if (redirect.redirect_code or 0) not in _REDIRECT_CODES:
        return None
    out = rc.RedirectAction(host_redirect=redirect.authority or "", response_code=_REDIRECT_CODES[redirect.redirect_code or 0])
    if redirect.prefix_rewrite:
        out.prefix_rewrite = redirect.prefix_rewrite
    elif redirect.uri:
        out.path_redirect = redirect.uri
    if redirect.scheme:
        out.scheme_redirect = redirect.scheme
    if redirect.port is not None or redirect.derive_port is not None:
        port = redirect.port or 0
        if redirect.derive_port is RedirectPortSelection.FROM_REQUEST_PORT:
            port = listen_port  # routes are built per request port: the port is known here
        scheme = redirect.scheme or ("https" if is_tls else "http")
        if (port, scheme) in ((80, "http"), (443, "https")):
            port = 0
        out.port_redirect = port
    return out


def direct_response_action(direct: HTTPDirectResponse) -> rc.DirectResponseAction:
    out = rc.DirectResponseAction(status=direct.status)
    body = direct.body
    if body is not None and body.string_ is not None:
        out.body.inline_string = body.string_
    elif body is not None and body.bytes_ is not None:
        try:
            out.body.inline_bytes = base64.b64decode(body.bytes_, validate=True)
        except (binascii.Error, ValueError):
            out.body.inline_bytes = body.bytes_.encode()
    return out


# ---------------------------------------------------------------- fault, mirror


def percent(p: Percent | None) -> percent_pb2.FractionalPercent:
    """Istio's Percent (0-100, fractional) as parts per million."""
    return percent_pb2.FractionalPercent(numerator=int(round((p.value if p and p.value else 0.0) * 10000)),
                                         denominator=percent_pb2.FractionalPercent.MILLION)


def integer_percent(value: int) -> percent_pb2.FractionalPercent:
    return percent_pb2.FractionalPercent(numerator=value, denominator=percent_pb2.FractionalPercent.HUNDRED)


def fault_config(fault: HTTPFaultInjection) -> any_pb2.Any | None:
    """Istio's TranslateFault, packed for the route's typed_per_filter_config. Exponential delays
    and HTTP/2 errors are not expressible in Envoy and are dropped, as Istio does."""
    out = fault_pb2.HTTPFault()
    if fault.delay is not None and fault.delay.fixed_delay is not None:
        out.delay.CopyFrom(_delay(fault.delay))
    abort = fault.abort
    if abort is not None and abort.error_type in ("http_status", "grpc_status"):
        if abort.http_status is not None:
            out.abort.http_status = abort.http_status
        else:
            out.abort.grpc_status = GRPC_STATUS.get((abort.grpc_status or "").upper(), 2)
        if abort.percentage is not None:
            out.abort.percentage.CopyFrom(percent(abort.percentage))
    if not out.HasField("delay") and not out.HasField("abort"):
        return None
    packed = any_pb2.Any()
    packed.Pack(out)
    return packed


def _delay(delay: FaultDelay) -> common_fault_pb2.FaultDelay:
    out = common_fault_pb2.FaultDelay()
    out.fixed_delay.CopyFrom(duration(delay.fixed_delay))
    if delay.percentage is not None:
        out.percentage.CopyFrom(percent(delay.percentage))
    else:
        out.percentage.CopyFrom(integer_percent(delay.percent or 0))
    return out


def mirror_policy(cluster: str, fraction: percent_pb2.FractionalPercent) -> rc.RouteAction.RequestMirrorPolicy:
    """A shadow to ``cluster`` for ``fraction`` of requests (the host gets Envoy's ``-shadow``
    suffix; trace_sampled only shapes tracing, which our proxy ignores, so it is left out)."""
    out = rc.RouteAction.RequestMirrorPolicy(cluster=cluster)
    out.runtime_fraction.default_value.CopyFrom(fraction)
    return out


def mirror_fraction(percentage: Percent | None, legacy_percent: int | None) -> percent_pb2.FractionalPercent | None:
    """Istio's MirrorPercent: 100% unless set; an explicit zero turns mirroring off."""
    if percentage is not None:
        return percent(percentage) if percentage.value and percentage.value > 0 else None
    if legacy_percent is not None:
        return integer_percent(legacy_percent) if legacy_percent > 0 else None
    return integer_percent(100)
