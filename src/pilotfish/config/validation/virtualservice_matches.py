"""Matches of a VirtualService HTTP route (Istio's validateHTTPRoute match checks): URI,
header, query and authority matches, RE2 patterns, JWT-claim routes and gateway names.
"""

from __future__ import annotations

from ..models.virtualservice import HTTPMatchRequest, HTTPRoute, StringMatch
from .domains import is_dns1123_label_any_case, validate_fqdn
from .metadata import validate_tag_labels
from .network import validate_port
from .regex import re2_error
from .virtualservice_headers import HEADER_NAME

MAX_REGEX_LENGTH = 1024

_PSEUDO_HEADERS = frozenset({":method", ":scheme", ":authority", ":path", ":status"})
JWT_CLAIM_PREFIX = "@request.auth.claims"


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
