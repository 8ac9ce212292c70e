"""The ``envoy.filters.http.cors`` HTTP filter on the request path (Envoy's CorsFilter).

The filter's own config (``Cors``) is empty: the policies are a route's ``typed_per_filter_config``
entries under the filter's name (compile/cors.py merges the route configuration's, virtual host's
and route's attribute by attribute, the most specific first, as Envoy's getters do). A request
whose ``Origin`` the policy allows is a CORS request: a preflight (OPTIONS with
``access-control-request-method``) is answered here with 200 and the allow headers; any other
request goes on and its response gets ``access-control-allow-origin`` (and ``-credentials``,
``-expose-headers``) through the stream's per-request response mutations. An origin the policy
does not allow changes nothing, except that a preflight is answered with a bare 200 when
``forward_not_matching_preflights`` is false.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from envoy.extensions.filters.http.cors.v3 import cors_pb2  # noqa: F401  (registers Cors for unpack_any)

CORS_TYPE = "envoy.extensions.filters.http.cors.v3.Cors"
CORS_POLICY_TYPE = "envoy.extensions.filters.http.cors.v3.CorsPolicy"
DETAILS = "cors_response"  # Envoy's StreamInfo::ResponseCodeDetails CorsResponse


@dataclass(frozen=True, slots=True)
class CorsPolicy:
    """One level's (or the merged) policy; ``None`` fields are unset, so a less specific level's
    value applies."""

    origins: tuple[Callable[[bytes], bool], ...] | None = None
    allow_methods: bytes | None = None
    allow_headers: bytes | None = None
    expose_headers: bytes | None = None
    max_age: bytes | None = None
    allow_credentials: bool | None = None
    allow_private_network_access: bool | None = None
    forward_not_matching_preflights: bool | None = None
    enabled: Any = None  # filter_enabled (common.fractional.Fraction); None: always

    def over(self, outer: CorsPolicy) -> CorsPolicy:
        """This policy with ``outer``'s values where this one has none."""
        return CorsPolicy(*(mine if mine is not None else theirs for mine, theirs in zip(
            (getattr(self, f) for f in self.__slots__), (getattr(outer, f) for f in outer.__slots__))))

    def allows(self, origin: bytes) -> bool:
        """Envoy's isOriginAllowed: a matcher that accepts the origin, or accepts ``*``."""
        for match in self.origins or ():
            if match(origin) or match(b"*"):
                return True
        return False


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for k, v in headers:
        if k == name:
            return v
    return None


@dataclass(frozen=True, slots=True)
class CorsResponse:
    """The response headers of an allowed CORS request (a per-request response mutation)."""

    headers: tuple[tuple[bytes, bytes], ...]

    def apply(self, out: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        names = {k for k, _ in self.headers}
        return [h for h in out if h[0] not in names] + list(self.headers)


class CorsFilter:
    """One CORS filter in a connection manager's chain (compiled once per config)."""

    __slots__ = ("name", "before_fault")

    def __init__(self, name: str) -> None:
        self.name = name
        self.before_fault = False  # set by the chain: a fault delay's re-entry skips this filter

    def intercept(self, stream: Any, route: Any, cluster: str) -> bool:
        """Apply the route's policy; True when the request was answered (a preflight)."""
        if not route.typed_per_filter or (stream.fault_resumed and self.before_fault):
            return False
        policy = route.typed_per_filter.get(self.name)
        if policy is None:
            return False
        headers = stream.head.headers
        origin = _header(headers, b"origin")
        if not origin:
            return False
        enabled = policy.enabled is None or policy.enabled.sample(stream.conn.rng)
        preflight = stream.head.method == b"OPTIONS"
        request_method = _header(headers, b"access-control-request-method") if preflight else None
        if not policy.allows(origin):
            if request_method and enabled and policy.forward_not_matching_preflights is False:
                stream.local_reply(200, b"", details=DETAILS)
                return True
            return False
        if not enabled:
            return False
        if request_method:
            stream.local_reply(200, b"", extra=self._preflight(policy, origin, request_method, headers),
                               details=DETAILS)
            return True
        out = [(b"access-control-allow-origin", origin)]
        if policy.allow_credentials:
            out.append((b"access-control-allow-credentials", b"true"))
        if policy.expose_headers:
            out.append((b"access-control-expose-headers", policy.expose_headers))
        stream.response_extras += (CorsResponse(tuple(out)),)
        return False

    @staticmethod
    def _preflight(policy: CorsPolicy, origin: bytes, request_method: bytes,
                   headers: list[tuple[bytes, bytes]]) -> tuple[tuple[bytes, bytes], ...]:
        out = [(b"access-control-allow-origin", origin)]
        if policy.allow_credentials:
            out.append((b"access-control-allow-credentials", b"true"))
        methods = policy.allow_methods
        if methods:
            out.append((b"access-control-allow-methods", request_method if methods == b"*" else methods))
        allow = policy.allow_headers
        if allow == b"*":
            requested = _header(headers, b"access-control-request-headers")
            if requested:
                out.append((b"access-control-allow-headers", requested))
        elif allow:
            out.append((b"access-control-allow-headers", allow))
        if policy.max_age:
            out.append((b"access-control-max-age", policy.max_age))
        if policy.allow_private_network_access and \
                _header(headers, b"access-control-request-private-network") == b"true":
            out.append((b"access-control-allow-private-network", b"true"))
        return tuple(out)
