"""Runtime routing tables: plain objects compiled once from RouteConfiguration.

Everything here works on bytes as they come off the wire (lower-cased header names). Nothing is
built per request except where a matcher has to look at a header or the query string.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

# Path match kinds.
PREFIX, PATH, REGEX, SEPARATED_PREFIX = range(4)
# Header append actions (envoy.config.core.v3.HeaderValueOption.HeaderAppendAction).
APPEND_OR_ADD, ADD_IF_ABSENT, OVERWRITE_OR_ADD, OVERWRITE_IF_EXISTS = range(4)
# Route action kinds.
FORWARD, REDIRECT, DIRECT = range(3)

StringMatch = Callable[[bytes], bool]


class HeaderMutation:
    """Removals then additions for one level (route config, virtual host, route, weighted cluster)."""

    __slots__ = ("remove", "add")

    def __init__(self, remove: tuple[bytes, ...], add: tuple[tuple[bytes, bytes, int], ...]) -> None:
        self.remove = remove
        self.add = add

    def apply(self, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        if self.remove:
            drop = self.remove
            headers = [h for h in headers if h[0] not in drop]
        for name, value, action in self.add:
            if action == APPEND_OR_ADD:
                headers.append((name, value))
                continue
            present = any(h[0] == name for h in headers)
            if action == ADD_IF_ABSENT:
                if not present:
                    headers.append((name, value))
            elif action == OVERWRITE_OR_ADD:
                if present:
                    headers = [h for h in headers if h[0] != name]
                headers.append((name, value))
            elif present:  # OVERWRITE_IF_EXISTS
                headers = [h for h in headers if h[0] != name]
                headers.append((name, value))
        return headers


def header_value(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    """All values of ``name`` joined with ',' (Envoy's view of a repeated header), or None."""
    found = None
    for k, v in headers:
        if k == name:
            found = v if found is None else found + b"," + v
    return found


class HeaderMatcher:
    __slots__ = ("name", "match", "present", "invert", "missing_as_empty")

    def __init__(self, name: bytes, match: StringMatch | None, present: bool | None,
                 invert: bool, missing_as_empty: bool) -> None:
        self.name = name
        self.match = match
        self.present = present
        self.invert = invert
        self.missing_as_empty = missing_as_empty

    def matches(self, headers: list[tuple[bytes, bytes]]) -> bool:
        value = header_value(headers, self.name)
        if self.match is None:  # present_match
            result = (value is not None) == bool(self.present)
            return result != self.invert
        if value is None:
            if not self.missing_as_empty:
                return False
            value = b""
        return self.match(value) != self.invert


class QueryMatcher:
    __slots__ = ("name", "match")

    def __init__(self, name: bytes, match: StringMatch | None) -> None:
        self.name = name
        self.match = match  # None: present_match

    def matches(self, params: dict[bytes, bytes]) -> bool:
        value = params.get(self.name)
        if value is None:
            return False
        return self.match is None or self.match(value)


@dataclass(slots=True)
class WeightedEntry:
    cluster: str
    weight: int
    request_mutations: tuple[HeaderMutation, ...]
    response_mutations: tuple[HeaderMutation, ...]


@dataclass(slots=True)
class ForwardAction:
    cluster: str  # "" when cluster_header or weighted
    cluster_header: bytes
    weighted: tuple[WeightedEntry, ...]
    cumulative: tuple[int, ...]  # running totals of weighted[i].weight
    total_weight: int
    not_found_status: int
    prefix_rewrite: bytes | None
    regex_rewrite: tuple[object, str] | None  # (compiled re2, substitution)
    host_rewrite: bytes | None
    auto_host_rewrite: bool
    timeout: float  # seconds; 0 means none
    # The x-envoy-expected-rq-timeout-ms header the router adds, made once.
    timeout_header: tuple[bytes, bytes] = field(default=(b"", b""), init=False)
    rewrites_path: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self.timeout_header = (b"x-envoy-expected-rq-timeout-ms", b"%d" % int(self.timeout * 1000))
        self.rewrites_path = self.prefix_rewrite is not None or self.regex_rewrite is not None
    hash_policy: object = None  # hash_policy.HashPolicy, read by RING_HASH/MAGLEV clusters
    mirrors: tuple = ()  # shadow.MirrorPolicy of request_mirror_policies
    # Resilience (compile/routes.py): the route's retry_policy, else its virtual host's.
    retry_policy: object = None  # retry_state.RetryPolicy
    idle_timeout: float = 0.0  # route idle_timeout (stream idle), seconds; 0: none
    max_stream_duration: float = 0.0  # max_stream_duration.max_stream_duration; 0: none
    retry_buffer_limit: int | None = None  # per_request_buffer_limit_bytes (route, else virtual host)
    attempt_count_upstream: bool = False  # virtual host include_request_attempt_count
    attempt_count_response: bool = False  # virtual host include_attempt_count_in_response
    upgrades: dict | None = None  # route upgrade_configs: type (lower-case bytes) -> enabled
    idle_timeout_set: bool = False  # idle_timeout present (a tunnel then uses it, not the HCM's)
    priority: int = 0  # route priority: the cluster's circuit breakers (0 DEFAULT, 1 HIGH)
    resilient: bool = False  # any of the above: the stream takes the retry/timeout path
    # ...with a Resilience from the start (timers, response attempt counts); a retry policy
    # alone makes one only at the first failure, body byte or retriable response
    eager_resilience: bool = False
    retry_min_status: int = 0  # responses below this status cannot be retried by retry_policy
    retry_gate_headers: frozenset = frozenset()  # ...unless one of these response headers is present


@dataclass(slots=True)
class RedirectAction:
    scheme: bytes | None
    host: bytes | None
    port: int | None
    path: bytes | None
    prefix_rewrite: bytes | None
    regex_rewrite: tuple[object, str] | None
    status: int
    strip_query: bool


@dataclass(slots=True)
class DirectAction:
    status: int
    body: bytes


class Route:
    __slots__ = ("name", "kind", "value", "case_sensitive", "regex", "headers", "query",
                 "action_kind", "action", "request_mutations", "response_mutations", "vhost",
                 "simple_prefix", "edits_request", "typed_per_filter", "pseudo")

    def __init__(self, name: str, kind: int, value: bytes, case_sensitive: bool, regex: object,
                 headers: tuple[HeaderMatcher, ...], query: tuple[QueryMatcher, ...],
                 action_kind: int, action: ForwardAction | RedirectAction | DirectAction,
                 request_mutations: tuple[HeaderMutation, ...],
                 response_mutations: tuple[HeaderMutation, ...]) -> None:
        self.name = name
        self.kind = kind
        self.value = value if case_sensitive else value.lower()
        self.case_sensitive = case_sensitive
        self.regex = regex
        self.headers = headers
        self.query = query
        self.action_kind = action_kind
        self.action = action
        self.request_mutations = request_mutations
        self.response_mutations = response_mutations
        self.vhost: VirtualHost | None = None
        # typed_per_filter_config by filter name, the virtual host's merged under the route's
        self.typed_per_filter: dict[str, object] = {}
        # A case-sensitive prefix and nothing else to match (Istio's usual route): the router
        # tests it inline. None: call ``matches``.
        self.simple_prefix = (self.value if kind == PREFIX and case_sensitive and not headers and not query
                              else None)
        # Whether a header matcher names :method, :path or :scheme, which the head's header list
        # does not carry (routing.request_headers adds them for such a route only).
        self.pseudo = any(isinstance(h, HeaderMatcher) and h.name.startswith(b":") for h in headers)
        # Whether forwarding needs the request headers as an editable list.
        self.edits_request = bool(request_mutations) or (
            isinstance(action, ForwardAction) and (action.host_rewrite is not None or action.auto_host_rewrite))

    def matches(self, path: bytes, path_only: bytes, headers: list[tuple[bytes, bytes]],
                query: Callable[[], dict[bytes, bytes]]) -> bool:
        kind = self.kind
        if kind == PREFIX:
            p = path if self.case_sensitive else path.lower()
            if not p.startswith(self.value):
                return False
        elif kind == PATH:
            p = path_only if self.case_sensitive else path_only.lower()
            if p != self.value:
                return False
        elif kind == REGEX:
            if self.regex.fullmatch(path_only.decode("latin-1")) is None:
                return False
        else:  # SEPARATED_PREFIX: the prefix, then end of path or '/'
            p = path_only if self.case_sensitive else path_only.lower()
            v = self.value
            if not p.startswith(v) or (len(p) > len(v) and p[len(v)] != 0x2F):
                return False
        for h in self.headers:
            if not h.matches(headers):
                return False
        if self.query:
            params = query()
            for q in self.query:
                if not q.matches(params):
                    return False
        return True


class VirtualHost:
    __slots__ = ("name", "routes", "require_tls")

    def __init__(self, name: str, routes: tuple[Route, ...], require_tls: int) -> None:
        self.name = name
        self.routes = routes
        self.require_tls = require_tls


class RouteTable:
    """Virtual hosts by domain with Envoy's precedence: exact, longest ``*suffix``,
    longest ``prefix*``, then ``*``."""

    __slots__ = ("name", "exact", "suffixes", "prefixes", "default", "ignore_port", "default_only",
                 "first_route", "first_prefix")

    def __init__(self, name: str, exact: dict[bytes, VirtualHost],
                 suffixes: list[tuple[int, dict[bytes, VirtualHost]]],
                 prefixes: list[tuple[int, dict[bytes, VirtualHost]]],
                 default: VirtualHost | None, ignore_port: bool) -> None:
        self.name = name
        self.exact = exact
        self.suffixes = suffixes  # longest first
        self.prefixes = prefixes  # longest first
        self.default = default
        self.ignore_port = ignore_port
        self.default_only = not exact and not suffixes and not prefixes  # one "*" host (or none)
        # The lone "*" host's first route when a case-sensitive prefix is all it matches on (the
        # usual catch-all): the stream tests it before calling select_route.
        first = default.routes[0] if self.default_only and default is not None and default.routes else None
        self.first_route = first if first is not None and first.simple_prefix is not None else None
        self.first_prefix = first.simple_prefix if self.first_route is not None else b""

    def find_virtual_host(self, host: bytes) -> VirtualHost | None:
        if not self.exact and not self.suffixes and not self.prefixes:
            return self.default
        host = host.lower()
        if self.ignore_port:
            host = strip_port(host)
        vh = self.exact.get(host)
        if vh is not None:
            return vh
        n = len(host)
        for length, table in self.suffixes:
            if length < n:
                vh = table.get(host[n - length:])
                if vh is not None:
                    return vh
        for length, table in self.prefixes:
            if length < n:
                vh = table.get(host[:length])
                if vh is not None:
                    return vh
        return self.default


def strip_port(host: bytes) -> bytes:
    """``host:port`` → ``host``; IPv6 literals (``[::1]:80``) keep their brackets."""
    i = host.rfind(b":")
    if i == -1 or host.endswith(b"]"):
        return host
    if host.startswith(b"[") and host[i - 1:i] != b"]":
        return host
    return host[:i]
