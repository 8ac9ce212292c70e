"""Validation of one VirtualService HTTP route (Istio's validateHTTPRoute).

Each check appends Istio's exact error or warning text to a Verdict. ``delegate`` is true
for routes of a delegate VirtualService (one without hosts); a route with ``delegate`` set
is a root route that may only hand traffic over.
"""

from __future__ import annotations

from ..errors import FieldError, Verdict, at
from ..models.virtualservice import HTTPRoute, HTTPRouteDestination
from .destination import validate_destination, validate_weight
from .durations import check_duration
from .virtualservice_headers import authority_rewrite_errors, header_operation_errors
from .virtualservice_matches import match_request_errors
from .virtualservice_policies import (
    cors_errors,
    mirrors_errors,
    prefix_rewrite_match_errors,
    redirect_errors,
    retry_errors,
    rewrite_errors,
    validate_direct_response,
    validate_fault,
)


def validate_http_route(v: Verdict, http: HTTPRoute, *, delegate: bool, gateway_semantics: bool) -> None:
    """Istio's validateHTTPRoute: conflicts, matches, headers, policies and destinations."""
    v.errors += route_conflicts(http, delegate=delegate)
    v.errors += at(("match",), match_request_errors(http))
    v.errors += at(("headers",), header_operation_errors(http.headers))
    v.errors += at(("corsPolicy",), cors_errors(http.cors_policy))
    v.under(("fault",), lambda one: validate_fault(one, http.fault))
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
    v.errors += at(("mirror",), validate_destination(http.mirror))
    v.errors += at(("mirrors",), mirrors_errors(http.mirrors))
    v.errors += at(("redirect",), redirect_errors(http.redirect))
    v.errors += at(("rewrite",), prefix_rewrite_match_errors(http))
    v.under(("directResponse",), lambda one: validate_direct_response(one, http.direct_response))
    v.errors += at(("retries",), retry_errors(http.retries))
    v.errors += at(("rewrite",), rewrite_errors(http.rewrite))
    v.errors += at(("rewrite",), authority_rewrite_errors(http.rewrite, http.headers))
    v.errors += at(("route",), route_destination_errors(http.route, gateway_semantics=gateway_semantics))
    v.errors += at(("timeout",), check_duration(http.timeout, "timeout"))


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


def route_destination_errors(routes: list[HTTPRouteDestination] | None, *, gateway_semantics: bool) -> list[str]:
    errs: list[str] = []
    total = 0
    for i, route in enumerate(routes or []):
        if route.destination is None:
            errs.append(FieldError("destination is required", (i,)))
        errs += at((i, "headers"), header_operation_errors(route.headers))
        if not gateway_semantics:
            errs += at((i, "destination"), validate_destination(route.destination))
        errs += at((i, "weight"), validate_weight(route.weight))
        total += route.weight or 0
    if routes and len(routes) > 1 and total == 0:
        errs.append("total destination weight = 0")
    return errs
