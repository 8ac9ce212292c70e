"""Warnings for VirtualService rules that can never match (Istio's analyzeUnreachable*Rules).

A rule is unreachable when an earlier rule has no match (it catches everything) or when all
its matches repeat earlier ones; a single match is ineffective when an earlier one equals or,
for URI prefixes, covers it. Istio reports these as warnings, never errors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..models.virtualservice import HTTPMatchRequest, HTTPRoute, L4MatchAttributes, StringMatch, TCPRoute, TLSMatchAttributes, TLSRoute
from .golang import go_quote


def route_name(route: HTTPRoute | TCPRoute | TLSRoute, index: int) -> str:
    if isinstance(route, HTTPRoute) and route.name:
        return go_quote(route.name)
    return f"#{index}"


def request_name(match: HTTPMatchRequest | L4MatchAttributes | TLSMatchAttributes, index: int) -> str:
    if isinstance(match, HTTPMatchRequest) and match.name:
        return go_quote(match.name)
    return f"#{index}"


def _omit_empty(value: Any) -> Any:
    """Drop what Go's ``omitempty`` drops, so equal matches serialize equally."""
    if isinstance(value, dict):
        out = {k: _omit_empty(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, "", 0, False, {}, [])}
    if isinstance(value, list):
        return [_omit_empty(v) for v in value]
    return value


def match_key(match: HTTPMatchRequest | L4MatchAttributes | TLSMatchAttributes) -> str:
    """Istio's asJSON: the match without its name, for comparing matches."""
    data = match.model_dump(mode="json", by_alias=True, exclude_none=True)
    data.pop("name", None)
    string_matches = {k: v for k, v in data.items() if k in ("uri", "scheme", "method", "authority")}
    maps = {k: v for k, v in data.items() if k in ("headers", "queryParams", "withoutHeaders")}
    rest = _omit_empty({k: v for k, v in data.items() if k not in string_matches and k not in maps})
    rest.update(string_matches)  # a set StringMatch is never empty in Go's JSON, even exact: ""
    rest.update({k: v for k, v in maps.items() if v})
    return json.dumps(rest, sort_keys=True)


@dataclass
class _PrefixMatch:
    """The parts of a URI-prefix match that the overlap check compares."""

    route: str
    match: str
    prefix: str
    port: int
    method: str
    authority: str
    headers: dict[str, str]
    query_params: dict[str, str]
    without_headers: dict[str, str]


def _exact_or_prefix(sm: StringMatch | None) -> str:
    if sm is None:
        return ""
    if sm.exact:
        return "exact:" + sm.exact
    if sm.prefix:
        return "prefix:" + sm.prefix
    return ""


def _prefix_match(route: HTTPRoute, match: HTTPMatchRequest, rule: int, index: int) -> _PrefixMatch | None:
    if match.uri is None or not match.uri.prefix:
        return None
    return _PrefixMatch(
        route=route_name(route, rule),
        match=request_name(match, index),
        prefix=match.uri.prefix,
        port=match.port or 0,
        method=_exact_or_prefix(match.method) or "exact:GET",
        authority=_exact_or_prefix(match.authority),
        headers={k: _exact_or_prefix(v) for k, v in (match.headers or {}).items()},
        query_params={k: _exact_or_prefix(v) for k, v in (match.query_params or {}).items()},
        without_headers={k: _exact_or_prefix(v) for k, v in (match.without_headers or {}).items()},
    )


def _map_covered(a: dict[str, str], b: dict[str, str]) -> bool:
    if len(a) != len(b):
        return False
    return all(k in b and (v == b[k] or v.startswith(b[k])) for k, v in a.items())


def _covers(a: _PrefixMatch, b: _PrefixMatch) -> bool:
    """Istio's coveredValidation: does earlier match ``a`` catch everything later match ``b`` does."""
    if not b.prefix.startswith(a.prefix) or a.port != b.port:
        return False
    if a.method != b.method and not a.method.startswith(b.method):
        return False
    if a.authority != b.authority and not a.authority.startswith(b.authority):
        return False
    return (
        _map_covered(a.headers, b.headers)
        and _map_covered(a.query_params, b.query_params)
        and _map_covered(a.without_headers, b.without_headers)
    )


def unreachable_rule_warnings(routes: list[HTTPRoute] | list[TCPRoute] | list[TLSRoute] | None) -> list[str]:
    """Warnings for rules after a catch-all, duplicate matches and covered URI prefixes."""
    warnings: list[str] = []
    seen: dict[str, int] = {}
    empty_seen = -1
    prefixes: list[_PrefixMatch] = []
    routes = routes or []
    for rule, route in enumerate(routes):
        name = route_name(route, rule)
        if not route.match:
            if empty_seen >= 0:
                warnings.append(f"virtualService rule {name} not used (only the last rule can have no matches)")
            empty_seen = rule
            continue
        duplicates = 0
        for index, match in enumerate(route.match):
            if empty_seen >= 0:
                warnings.append(f"virtualService rule {name} not used (route without matches defined before)")
                continue
            key = match_key(match)
            if key in seen:
                dup = seen[key]
                warnings.append(
                    f"virtualService rule {name} match {request_name(match, index)} is not used "
                    f"(duplicate/overlapping match in rule {route_name(routes[dup], dup)})"
                )
                duplicates += 1
                continue
            seen[key] = rule
            if isinstance(route, HTTPRoute) and isinstance(match, HTTPMatchRequest):
                found = _prefix_match(route, match, rule, index)
                if found is not None:
                    prefixes.append(found)
        if duplicates == len(route.match):
            warnings.append(f"virtualService rule {name} not used (all matches used by prior rules)")
    for i, earlier in enumerate(prefixes):
        for later in prefixes[i + 1 :]:
            if later.prefix == earlier.prefix or not _covers(earlier, later):
                continue
            warnings.append(
                f"virtualService rule {later.route} match {later.match} of prefix {later.prefix} is not used "
                f"(duplicate/overlapping match in rule {earlier.match} of prefix {earlier.prefix} on {earlier.route})"
            )
    return warnings
