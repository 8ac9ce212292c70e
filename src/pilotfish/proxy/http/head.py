"""What a request is once parsed: the head the router reads, and the header names with a meaning
beyond one hop (RFC 9110 §7.6.1) or to the router."""

from __future__ import annotations

#: Headers that describe one hop only; never forwarded (RFC 9110 §7.6.1).
HOP_BY_HOP = frozenset({
    b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"te",
    b"upgrade", b"trailer", b"proxy-authenticate", b"proxy-authorization",
})
#: Router control headers (timeouts, retries): kept in the list, flagged on the head so the
#: router looks for them only when one is present.
ENVOY_CONTROL_HEADERS = frozenset({
    b"x-envoy-upstream-rq-timeout-ms", b"x-envoy-upstream-rq-per-try-timeout-ms", b"x-envoy-retry-on",
    b"x-envoy-retry-grpc-on", b"x-envoy-max-retries", b"x-envoy-retriable-status-codes",
    b"x-envoy-retriable-header-names", b"x-envoy-hedge-on-per-try-timeout",
})
class RequestHead:
    """A parsed request line and its end-to-end headers (names lower-cased bytes; the codec puts
    a Host header first)."""

    __slots__ = ("method", "path", "path_only", "authority", "headers", "version", "keep_alive",
                 "chunked", "content_length", "upgrade", "upgrade_proto", "expect_continue",
                 "connection_tokens", "has_connection_header", "request_id", "forwarded_for",
                 "forwarded_proto", "envoy_control", "trailers", "_query")

    def __init__(self) -> None:
        self.method = b""
        self.path = b""
        self.path_only = b""
        self.authority = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.version = "1.1"
        self.keep_alive = True
        self.chunked = False
        self.content_length: int | None = None
        self.upgrade = False
        self.upgrade_proto = b""  # the Upgrade header's value
        self.expect_continue = False
        self.connection_tokens: tuple[bytes, ...] = ()  # extra names the Connection header nominated
        self.has_connection_header = False
        # Values of the x-request-id / x-forwarded-for / x-forwarded-proto headers (repeats
        # joined with ","), so the router need not search the list for them.
        self.request_id: bytes | None = None
        self.forwarded_for: bytes | None = None
        self.forwarded_proto: bytes | None = None
        self.envoy_control = False  # one of ENVOY_CONTROL_HEADERS is present
        self.trailers: list[tuple[bytes, bytes]] | None = None  # a chunked body's trailer fields
        self._query: dict[bytes, bytes] | None = None

    def query(self) -> dict[bytes, bytes]:
        """Query parameters (first value wins), parsed only when a route asks for them."""
        if self._query is None:
            q: dict[bytes, bytes] = {}
            i = self.path.find(b"?")
            if i != -1:
                for part in self.path[i + 1:].split(b"&"):
                    if part:
                        k, _, v = part.partition(b"=")
                        q.setdefault(k, v)
            self._query = q
        return self._query

    def set_path(self, path: bytes) -> None:
        self.path = path
        i = path.find(b"?")
        self.path_only = path if i == -1 else path[:i]
        self._query = None
