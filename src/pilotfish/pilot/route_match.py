"""VirtualService HTTPMatchRequest → Envoy RouteMatch, and which matches apply to a proxy.

Every condition of one HTTPMatchRequest must hold (AND); a rule's several matches become one
Envoy route each (OR), so this module translates a single match.
"""

from __future__ import annotations

from collections.abc import Mapping, Set

from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.type.matcher.v3 import regex_pb2, string_pb2

from ..config.models.virtualservice import HTTPMatchRequest, StringMatch
from ..config.selectors import labels_match
from .proxy import Proxy

METHOD_HEADER = ":method"
AUTHORITY_HEADER = ":authority"
SCHEME_HEADER = ":scheme"


def string_matcher(match: StringMatch) -> string_pb2.StringMatcher:
    """exact / prefix / regex (RE2, as Envoy's safe_regex)."""
    if match.exact is not None:
        return string_pb2.StringMatcher(exact=match.exact)
    if match.prefix is not None:
        return string_pb2.StringMatcher(prefix=match.prefix)
    return string_pb2.StringMatcher(safe_regex=regex_pb2.RegexMatcher(regex=match.regex or ""))


def is_presence_match(match: StringMatch | None) -> bool:
    """An empty StringMatch, or the regex ``*`` (not RE2: Istio reads it as "present"), only
    asks that the header or parameter exist."""
    return match is None or match.kind is None or (match.regex is not None and match.regex == "*")


def header_matcher(name: str, match: StringMatch | None, *, invert: bool = False) -> rc.HeaderMatcher:
    out = rc.HeaderMatcher(name=name)
    if is_presence_match(match):
        out.present_match = True
    else:
        assert match is not None
        out.string_match.CopyFrom(string_matcher(match))
        if invert:
            # a missing header is "not equal" to the value: withoutHeaders then matches it
            out.treat_missing_header_as_empty = True
    if invert:
        out.invert_match = True
    return out


def query_matcher(name: str, match: StringMatch | None) -> rc.QueryParameterMatcher:
    out = rc.QueryParameterMatcher(name=name)
    if is_presence_match(match):
        out.present_match = True
    else:
        assert match is not None
        out.string_match.CopyFrom(string_matcher(match))
    return out


def translate_match(match: HTTPMatchRequest | None) -> rc.RouteMatch:
    """Istio's TranslateRouteMatch: no match is the catch-all prefix ``/``; headers and
    withoutHeaders sorted by name, then :method, :authority, :scheme; URI case sensitivity
    follows ignoreUriCase."""
    out = rc.RouteMatch(prefix="/")
    if match is None:
        return out
    headers = [header_matcher(n, m) for n, m in (match.headers or {}).items()]
    headers += [header_matcher(n, m, invert=True) for n, m in (match.without_headers or {}).items()]
    headers.sort(key=lambda h: h.name)
    uri = match.uri
    if uri is not None and uri.kind is not None:
        if uri.exact is not None:
            out.path = uri.exact
        elif uri.prefix is not None:
            out.prefix = uri.prefix
        else:
            out.safe_regex.regex = uri.regex or ""
    out.case_sensitive.value = not match.ignore_uri_case
    for name, sm in ((METHOD_HEADER, match.method), (AUTHORITY_HEADER, match.authority), (SCHEME_HEADER, match.scheme)):
        if sm is not None:
            headers.append(header_matcher(name, sm))
    out.headers.extend(headers)
    out.query_parameters.extend(query_matcher(n, m) for n, m in sorted((match.query_params or {}).items()))
    return out


def resolve_gateway(name: str, namespace: str) -> str:
    """A gateway named in a VirtualService: ``mesh``, ``ns/name``, or a short name meaning one in
    the VirtualService's namespace."""
    if name == "mesh" or "/" in name:
        return name
    return f"{namespace}/{name}"


def source_matches(match: HTTPMatchRequest | None, proxy: Proxy, gateways: Set[str], vs_namespace: str) -> bool:
    """Istio's sourceMatchHTTP: a match naming gateways applies only on those; otherwise its
    sourceLabels must select the proxy and its sourceNamespace be the proxy's."""
    if match is None:
        return True
    if match.gateways:
        return any(resolve_gateway(g, vs_namespace) in gateways for g in match.gateways)
    labels: Mapping[str, str] = match.source_labels or {}
    if labels and not labels_match(labels, proxy.labels):
        return False
    return not match.source_namespace or match.source_namespace == proxy.namespace


def port_matches(match: HTTPMatchRequest | None, listen_port: int) -> bool:
    """A match's ``port`` restricts it to the listener (service) port it names."""
    return match is None or not match.port or match.port == listen_port


def is_catch_all(route: rc.Route) -> bool:
    """Prefix ``/`` (or regex ``.*``) with no header or query conditions: later routes are dead."""
    m = route.match
    which = m.WhichOneof("path_specifier")
    path_all = ((which == "prefix" and m.prefix == "/") or (which == "path_separated_prefix" and m.path_separated_prefix == "/")
                or (which == "safe_regex" and m.safe_regex.regex == ".*"))
    return path_all and not m.headers and not m.query_parameters
