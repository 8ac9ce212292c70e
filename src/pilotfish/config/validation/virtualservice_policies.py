"""Policies of a VirtualService HTTP route (Istio's validateHTTPRoute helpers): CORS, fault
injection, mirrors, redirect, direct response, retries and rewrite.
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
    HTTPMirrorPolicy,
    HTTPRedirect,
    HTTPRetry,
    HTTPRewrite,
    HTTPRoute,
    Percent,
)
from .destination import validate_destination
from .durations import check_duration
from .network import validate_port
from .virtualservice_headers import HEADER_NAME
from .virtualservice_matches import regex_errors, string_match_regex_errors

KB = 1024
MB = 1024 * KB

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
