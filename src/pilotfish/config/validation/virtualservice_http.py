"""Validation of one VirtualService HTTP route (Istio's validateHTTPRoute and its helpers).

Each check appends Istio's exact error or warning text to a Verdict. ``delegate`` is true
for routes of a delegate VirtualService (one without hosts); a route with ``delegate`` set
is a root route that may only hand traffic over.
"""

from __future__ import annotations

import base64
import binascii
import re

from ..errors import Verdict
from ..models.virtualservice import (
    CorsPolicy,
    FaultAbort,
    FaultDelay,
    HTTPDirectResponse,
    HTTPFaultInjection,
    HTTPMatchRequest,
    HTTPMirrorPolicy,
    HTTPRedirect,
    HTTPRetry,
    HTTPRewrite,
    HTTPRoute,
    HTTPRouteDestination,
    Percent,
    StringMatch,
)
from .destination import validate_destination, validate_weight
from .domains import is_dns1123_label_any_case, validate_fqdn
from .durations import check_duration
from .metadata import validate_tag_labels
from .network import validate_port
from .regex import re2_error
from .virtualservice_headers import HEADER_NAME, authority_rewrite_errors, header_operation_errors

KB = 1024
MB = 1024 * KB
MAX_REGEX_LENGTH = 1024

_PSEUDO_HEADERS = frozenset({":method", ":scheme", ":authority", ":path", ":status"})
JWT_CLAIM_PREFIX = "@request.auth.claims"

SUPPORTED_RETRY_ON = frozenset({
    "5xx", "gateway-error", "reset", "reset-before-request", "connect-failure", "retriable-4xx",
    "refused-stream", "retriable-status-codes", "retriable-headers", "envoy-ratelimited",
    "http3-post-connect-failure", "cancelled", "deadline-exceeded", "internal", "resource-exhausted",
    "unavailable",
})
# Go's net/http StatusText: the codes a retryOn entry may name.
HTTP_STATUS_CODES = frozenset(
    [100, 101, 102, 103, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 307, 308]
    + list(range(400, 419)) + [421, 422, 423, 424, 425, 426, 428, 429, 431, 451]
    + list(range(500, 509)) + [510, 511]
)
CORS_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE", "*"})
GRPC_STATUSES = frozenset({
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
    "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
    "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
})


def validate_http_route(v: Verdict, http: HTTPRoute, *, delegate: bool, gateway_semantics: bool) -> None:
    """Istio's validateHTTPRoute: conflicts, matches, headers, policies and destinations."""
    v.errors += route_conflicts(http, delegate=delegate)
    v.errors += match_request_errors(http)
    v.errors += header_operation_errors(http.headers)
    v.errors += cors_errors(http.cors_policy)
    validate_fault(v, http.fault)
    mirror_percent = http.effective_mirror_percent
    if mirror_percent is not None:
        if mirror_percent > 100:
            v.errors.append(f"mirror_percent must have a max value of 100 (it has {mirror_percent})")
        v.warnings.append('using deprecated setting "mirrorPercent", use "mirrorPercentage" instead')
    if http.mirror_percentage is not None:
        value = http.mirror_percentage.value or 0.0
        if value > 100:
            v.errors.append(f"mirror_percentage must have a max value of 100 (it has {value:f})")
        if value < 0:
            v.errors.append(f"mirror_percentage must have a min value of 0 (it has {value:f})")
    v.errors += validate_destination(http.mirror)
    v.errors += mirrors_errors(http.mirrors)
    v.errors += redirect_errors(http.redirect)
    v.errors += prefix_rewrite_match_errors(http)
    validate_direct_response(v, http.direct_response)
    v.errors += retry_errors(http.retries)
    v.errors += rewrite_errors(http.rewrite)
    v.errors += authority_rewrite_errors(http.rewrite, http.headers)
    v.errors += route_destination_errors(http.route, gateway_semantics=gateway_semantics)
    v.errors += check_duration(http.timeout, "timeout")


def route_conflicts(http: HTTPRoute, *, delegate: bool) -> list[str]:
    """Which of route, redirect, direct response and delegate may appear together."""
    errs: list[str] = []
    if not delegate and http.delegate is not None:
        if http.redirect is not None:
            errs.append(f"root HTTP route {http.name or ''} must not specify redirect")
        if http.route is not None:
            errs.append(f"root HTTP route {http.name or ''} must not specify route")
        return errs
    if delegate and http.delegate is not None:
        errs.append("delegate HTTP route cannot contain delegate")
    if http.redirect is not None:
        if http.route:
            errs.append("HTTP route cannot contain both route and redirect")
        if http.fault is not None:
            errs.append("HTTP route cannot contain both fault and redirect")
        if http.rewrite is not None:
            errs.append("HTTP route rule cannot contain both rewrite and redirect")
        if http.direct_response is not None:
            errs.append("HTTP route rule cannot contain both direct_response and redirect")
    elif http.direct_response is not None:
        if http.route:
            errs.append("HTTP route cannot contain both route and direct_response")
        if http.fault is not None:
            errs.append("HTTP route cannot contain both fault and direct_response")
        if http.rewrite is not None:
            errs.append("HTTP route rule cannot contain both rewrite and direct_response")
    elif not http.route:
        errs.append("HTTP route, redirect or direct_response is required")
    if http.mirror is not None and http.mirrors:
        errs.append("HTTP route cannot contain both mirror and mirrors")
    return errs


# ---------------------------------------------------------------- matches


def match_request_errors(http: HTTPRoute) -> list[str]:
    errs: list[str] = []
    for match in http.match or []:
        errs += _match_errors(match)
    return errs


def _match_errors(match: HTTPMatchRequest) -> list[str]:
    errs: list[str] = []
    for name, header in (match.headers or {}).items():
        errs += header_name_or_jwt_claim_errors(name)
        errs += string_match_errors(header, "headers")
    for name, header in (match.without_headers or {}).items():
        errs += header_name_or_jwt_claim_errors(name)
        # "*" is not a regex here: it means "header present".
        if header.regex != "*":
            errs += string_match_errors(header, "withoutHeaders")
    # uri allows an empty prefix (Envoy's path match does); scheme/method/authority do not.
    errs += string_match_regex_errors(match.uri, "uri")
    errs += string_match_errors(match.scheme, "scheme")
    errs += string_match_errors(match.method, "method")
    errs += string_match_errors(match.authority, "authority")
    for qp in (match.query_params or {}).values():
        errs += string_match_errors(qp, "queryParams")
    if match.port:
        errs += validate_port(match.port)
    errs += validate_tag_labels(match.source_labels)
    errs += gateway_name_errors(match.gateways or [], gateway_semantics=False)[0]
    if match.source_namespace and not is_dns1123_label_any_case(match.source_namespace):
        errs.append(f"sourceNamespace match {match.source_namespace} is invalid")
    return errs


def string_match_errors(sm: StringMatch | None, where: str) -> list[str]:
    """Istio's validateStringMatch: no empty prefix, and a valid RE2 regex."""
    if sm is None:
        return []
    if sm.prefix is not None and sm.prefix == "":
        return [f'"{where}": prefix string match should not be empty']
    return string_match_regex_errors(sm, where)


def string_match_regex_errors(sm: StringMatch | None, where: str) -> list[str]:
    if sm is None or sm.regex is None:
        return []
    if sm.regex == "":
        return [f'"{where}": regex string match should not be empty']
    return regex_errors(sm.regex, where)


def regex_errors(pattern: str, where: str) -> list[str]:
    """Istio's validateStringRegexp: at most 1024 bytes and valid RE2 syntax."""
    if len(pattern.encode()) > MAX_REGEX_LENGTH:
        return [f'"{where}": regex is too large, max length allowed is 1024']
    error = re2_error(pattern)
    if error is None:
        return []
    return [f'"{where}": {error}; Istio uses RE2 style regex-based match (https://github.com/google/re2/wiki/Syntax)']


def is_jwt_claim_route(name: str) -> bool:
    """Istio's jwt.ToRoutingClaim(name).Match: ``@request.auth.claims.a.b`` or ``...claims[a][b]``."""
    if not name.lower().startswith(JWT_CLAIM_PREFIX):
        return False
    rest = name[len(JWT_CLAIM_PREFIX):]
    return (rest.startswith(".") and len(rest) > 1) or (rest.startswith("[") and rest.endswith("]") and len(rest) > 2)


def header_name_or_jwt_claim_errors(name: str) -> list[str]:
    if not name:
        return ["header name cannot be empty"]
    if is_jwt_claim_route(name) or name in _PSEUDO_HEADERS:
        return []
    if not HEADER_NAME.match(name):
        return [f"header name {name} is not a valid header name"]
    return []


def gateway_name_errors(names: list[str], *, gateway_semantics: bool) -> tuple[list[str], list[str]]:
    """Istio's validateGatewayNames: ``namespace/name`` (or a legacy FQDN); (errors, warnings)."""
    errs: list[str] = []
    warnings: list[str] = []
    for name in names:
        ns, slash, gw = name.partition("/")
        if not slash:
            if "." in name:
                parts = name.split(".")
                warnings.append(
                    f'using legacy gatewayName format "{name}"; prefer the <namespace>/<name> format: "{parts[1]}/{parts[0]}"'
                )
            errs += validate_fqdn(name)
            return errs, warnings  # Istio stops at the first short name
        if not ns or not gw:
            errs.append("config namespace and gateway name cannot be empty")
        if not is_dns1123_label_any_case(ns):
            errs.append(f'invalid value for namespace: "{ns}"')
        if not is_dns1123_label_any_case(gw) and not gateway_semantics:
            errs.append(f'invalid value for gateway name: "{gw}"')
    return errs, warnings


# ---------------------------------------------------------------- policies


def cors_errors(policy: CorsPolicy | None) -> list[str]:
    if policy is None:
        return []
    errs: list[str] = []
    for origin in policy.allow_origins or []:
        if not origin.value:
            errs.append(f"'{origin.value}' is not a valid match type for CORS allow origins")
        else:
            errs += string_match_regex_errors(origin, "corsPolicy.allowOrigins")
    for method in policy.allow_methods or []:
        if method not in CORS_METHODS:
            errs.append(f'"{method}" is not a supported HTTP method')
    for name in [*(policy.allow_headers or []), *(policy.expose_headers or [])]:
        errs += _cors_header_name_errors(name)
    if policy.max_age is not None:
        errs += check_duration(policy.max_age, "corsPolicy.maxAge")
        if policy.max_age.nanos % 1_000_000_000:
            errs.append("max_age duration is accurate only to seconds precision")
    return errs


def _cors_header_name_errors(name: str) -> list[str]:
    if not name:
        return ["header name cannot be empty"]
    if name != "*" and not HEADER_NAME.match(name):
        return [f"header name {name} is not a valid header name"]
    return []


def validate_fault(v: Verdict, fault: HTTPFaultInjection | None) -> None:
    if fault is None:
        return
    if fault.abort is None and fault.delay is None:
        v.errors.append("HTTP fault injection must have an abort and/or a delay")
    validate_fault_abort(v, fault.abort)
    v.errors += fault_delay_errors(fault.delay)


def percentage_errors(percentage: Percent | None) -> list[str]:
    if percentage is None:
        return []
    value = percentage.value or 0.0
    if value < 0.0 or value > 100.0 or 0.0 < value < 0.0001:
        return [f"percentage {_go_float(value)} is neither 0.0, nor in range [0.0001, 100.0]"]
    return []


def _go_float(value: float) -> str:
    """Go's %v for a float64: shortest representation, no trailing ".0"."""
    text = repr(value)
    return text[:-2] if text.endswith(".0") else text


def validate_fault_abort(v: Verdict, abort: FaultAbort | None) -> None:
    if abort is None:
        return
    v.errors += percentage_errors(abort.percentage)
    kind = abort.error_type
    if kind == "grpc_status":
        if abort.grpc_status not in GRPC_STATUSES:
            v.errors.append(
                f'gRPC status "{abort.grpc_status}" is not supported. See https://github.com/grpc/grpc/blob/master/doc/statuscodes.md '
                "for a list of supported codes, for example 'NOT_FOUND'"
            )
    elif kind == "http2_error":
        v.errors.append("HTTP/2 abort fault injection not supported yet")
    elif kind == "http_status":
        v.errors += http_status_errors(abort.http_status or 0)
    else:
        v.warnings.append("abort configured, but error type not set")


def http_status_errors(status: int) -> list[str]:
    if status < 200 or status > 600:
        return [f"HTTP status {status} is not in range 200-599"]
    return []


def fault_delay_errors(delay: FaultDelay | None) -> list[str]:
    if delay is None:
        return []
    errs = percentage_errors(delay.percentage)
    if delay.fixed_delay is not None:
        errs += check_duration(delay.fixed_delay, "fault.delay.fixedDelay")
    elif delay.exponential_delay is not None:
        errs += check_duration(delay.exponential_delay, "fault.delay.exponentialDelay")
        errs.append("exponentialDelay not supported yet")
    return errs


def mirrors_errors(mirrors: list[HTTPMirrorPolicy] | None) -> list[str]:
    errs: list[str] = []
    for mirror in mirrors or []:
        if mirror.destination is None:
            errs.append("destination is required for mirrors")
            continue
        errs += validate_destination(mirror.destination)
        if mirror.percentage is not None:
            value = mirror.percentage.value or 0.0
            if value > 100:
                errs.append(f"mirror percentage must have a max value of 100 (it has {value:f})")
            if value < 0:
                errs.append(f"mirror percentage must have a min value of 0 (it has {value:f})")
    return errs


def redirect_errors(redirect: HTTPRedirect | None) -> list[str]:
    """Istio's validateHTTPRedirect (it stops at the first problem)."""
    if redirect is None:
        return []
    has_port = redirect.port is not None or redirect.derive_port is not None
    if not (redirect.uri or redirect.prefix_rewrite or redirect.authority or has_port or redirect.scheme):
        return ["redirect must specify URI, authority, scheme, or port"]
    if redirect.uri and redirect.prefix_rewrite:
        return ["redirect may only contain one of URI or prefixRewrite"]
    if redirect.redirect_code and not 300 <= redirect.redirect_code <= 399:
        return [f"{redirect.redirect_code} is not a valid redirect code, must be 3xx"]
    if redirect.scheme and redirect.scheme not in ("http", "https"):
        return ['invalid redirect scheme, must be "http" or "https"']
    if redirect.port:
        return validate_port(redirect.port)
    return []


def prefix_rewrite_match_errors(http: HTTPRoute) -> list[str]:
    """A redirect's prefixRewrite swaps the matched prefix, which a regex URI match does not have."""
    if http.redirect is None or not http.redirect.prefix_rewrite:
        return []
    for match in http.match or []:
        if match.uri is not None and match.uri.regex is not None:
            return ["prefixRewrite redirect cannot be used with a regex uri match"]
    return []


def validate_direct_response(v: Verdict, response: HTTPDirectResponse | None) -> None:
    if response is None:
        return
    if response.body is not None:
        size = _body_size(response)
        if size > MB:
            v.errors.append("large direct_responses may impact control plane performance, must be less than 1MB")
        elif size > 100 * KB:
            v.warnings.append("large direct_responses may impact control plane performance")
    v.errors += http_status_errors(response.status)


def _body_size(response: HTTPDirectResponse) -> int:
    body = response.body
    if body is None:
        return 0
    if body.string_ is not None:
        return len(body.string_.encode())
    if body.bytes_ is not None:
        try:
            return len(base64.b64decode(body.bytes_, validate=True))
        except (binascii.Error, ValueError):
            return len(body.bytes_) * 3 // 4
    return 0


def retry_errors(retries: HTTPRetry | None) -> list[str]:
    if retries is None:
        return []
    errs: list[str] = []
    attempts = retries.attempts or 0
    if attempts < 0:
        errs.append("attempts cannot be negative")
    if attempts == 0 and (retries.per_try_timeout is not None or retries.retry_on or retries.retry_remote_localities is not None):
        errs.append("http retry policy configured when attempts are set to 0 (disabled)")
    errs += check_duration(retries.per_try_timeout, "retries.perTryTimeout")
    if retries.retry_on:
        for policy in retries.retry_on.split(","):
            if not _is_status_code(policy) and policy not in SUPPORTED_RETRY_ON:
                errs.append(f'"{policy}" is not a valid retryOn policy')
    errs += check_duration(retries.backoff, "retries.backoff")
    return errs


def _is_status_code(text: str) -> bool:
    """Go: strconv.Atoi(text) names a status code net/http knows."""
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        return False
    return int(text) in HTTP_STATUS_CODES


def rewrite_errors(rewrite: HTTPRewrite | None) -> list[str]:
    if rewrite is None:
        return []
    regex = rewrite.uri_regex_rewrite
    if rewrite.uri and regex is not None:
        return ["rewrite may only contain one of URI or UriRegexRewrite"]
    if not rewrite.uri and regex is None and not rewrite.authority:
        return [
            "rewrite must specify at least one of URI, UriRegexRewrite, or authority. "
            "Only one of URI or UriRegexRewrite may be specified"
        ]
    if regex is None:
        return []
    if not regex.match or not regex.rewrite:
        problems = ["UriRegexRewrite requires both Rewrite and Match fields to be specified"]
    else:
        problems = regex_errors(regex.match, "HTTPRewrite.UriRegexRewrite.Match")
    return ["UriRegexRewrite has errors\n" + p for p in problems]


def route_destination_errors(routes: list[HTTPRouteDestination] | None, *, gateway_semantics: bool) -> list[str]:
    errs: list[str] = []
    total = 0
    for route in routes or []:
        if route.destination is None:
            errs.append("destination is required")
        errs += header_operation_errors(route.headers)
        if not gateway_semantics:
            errs += validate_destination(route.destination)
        errs += validate_weight(route.weight)
        total += route.weight or 0
    if routes and len(routes) > 1 and total == 0:
        errs.append("total destination weight = 0")
    return errs
