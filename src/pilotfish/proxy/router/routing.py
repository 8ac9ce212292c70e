"""Route selection and the request rewrites a route asks for. Pure functions of precompiled
tables and one request head; the random source is injected."""

from __future__ import annotations

import bisect
import random

from .regex_rewrite import global_replace
from ..http.head import RequestHead
from .route_table import (
    PATH, PREFIX, SEPARATED_PREFIX, ForwardAction, RedirectAction, Route, RouteTable,
    WeightedEntry, strip_port,
)


def select_route(table: RouteTable, head: RequestHead, authority: bytes) -> Route | None:
    """The first route of the matching virtual host that matches the request, or None (NR)."""
    vh = table.default if table.default_only else table.find_virtual_host(authority)
    if vh is None:
        return None
    path = head.path
    for route in vh.routes:
        prefix = route.simple_prefix
        if prefix is not None:
            if path.startswith(prefix):
                return route
        elif route.matches(path, head.path_only, request_headers(head) if route.pseudo else head.headers,
                           head.query):
            return route
    return None


def request_headers(head: RequestHead) -> list[tuple[bytes, bytes]]:
    """The head's headers with the pseudo-headers Envoy's header matchers see (``:authority``
    is matched as ``host``, which the list carries)."""
    return [(b":method", head.method), (b":path", head.path), (b":scheme", b"http"), *head.headers]


def pick_weighted(action: ForwardAction, rng: random.Random) -> WeightedEntry:
    """Envoy's pick: a random value below the total weight, then the first cumulative above it."""
    value = rng.randrange(action.total_weight)
    return action.weighted[bisect.bisect_right(action.cumulative, value)]


def rewrite_path(route: Route, path: bytes, path_only: bytes, prefix: bytes | None,
                 regex: tuple[object, str] | None) -> bytes:
    """Apply prefix_rewrite or regex_rewrite; the query string is kept."""
    query = path[len(path_only):]
    if prefix is not None:
        if route.kind in (PREFIX, SEPARATED_PREFIX):
            n = len(route.value)
            return prefix + path[n:]
        if route.kind == PATH:
            return prefix + query
        return prefix + query
    if regex is not None:
        compiled, substitution = regex
        new = global_replace(compiled, substitution, path_only.decode("latin-1"))
        return new.encode("latin-1") + query
    return path


_DEFAULT_PORTS = {b"http": b"80", b"https": b"443"}


def redirect_location(route: Route, action: RedirectAction, head: RequestHead, authority: bytes,
                      scheme: bytes) -> bytes:
    """The Location of a redirect route (Envoy's RouteEntryImplBase::newUri)."""
    new_scheme = action.scheme or scheme
    host = authority
    if action.host is not None:
        host = action.host
    if action.port is not None:
        host = strip_port(host) + b":%d" % action.port
    elif new_scheme != scheme or action.host is not None:
        # Changing scheme (or host) drops a port that was only the old scheme's default.
        bare = strip_port(host)
        port = host[len(bare) + 1:]
        if port and port in (_DEFAULT_PORTS.get(scheme), _DEFAULT_PORTS.get(new_scheme)):
            host = bare
    if host.endswith(b":" + _DEFAULT_PORTS.get(new_scheme, b"-")):
        host = strip_port(host)
    if action.path is not None:
        path = action.path
        if b"?" not in path and not action.strip_query:
            path += head.path[len(head.path_only):]
    elif action.prefix_rewrite is not None or action.regex_rewrite is not None:
        path = rewrite_path(route, head.path, head.path_only, action.prefix_rewrite, action.regex_rewrite)
    else:
        path = head.path
    if action.strip_query:
        i = path.find(b"?")
        if i != -1:
            path = path[:i]
    return new_scheme + b"://" + host + path
