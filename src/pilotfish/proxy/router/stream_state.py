"""The fields of one request/response exchange, shared by the Stream's parts, and the constants
more than one part uses."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from ..common.stream_states import BODY, COMPLETE, WAITING

if TYPE_CHECKING:
    from ..http.downstream import DownstreamConnection
    from ..http.head import RequestHead
    from ..http.upstream_connection import UpstreamConnection

_RESET_BEFORE_HEADERS = b"upstream connect error or disconnect/reset before headers. reset reason: "
_TEXT_PLAIN = (b"content-type", b"text/plain")
_XFP_HTTP = (b"x-forwarded-proto", b"http")
_XFF_XFP = frozenset({b"x-forwarded-for", b"x-forwarded-proto"})


class StreamState:
    """The fields of one stream (slots: a fixed layout). A stream is made per request and each
    store costs, so ``__init__`` sets every field but five that are set before anything reads
    them: the upstream request (``upstream_headers``, ``upstream_path``) and ``timeout``, set
    in ``begin`` with the host (``timeout`` is read only once there is one); ``reused``, set
    in ``on_upstream_ready`` before a connection serves the stream; ``pending_bytes``, set
    with a ``pending`` list."""

    __slots__ = (
        "conn", "head", "hcm", "start", "req", "resp", "authority", "route", "rm", "cluster", "host",
        "upstream", "reused", "retried", "pending",
        "pending_bytes", "upstream_headers", "upstream_path", "replay", "flags", "status", "complete_at",
        "rx", "tx", "close_after", "deadline", "timeout", "resp_mutations", "response_extras",
        "request_id", "service_time", "original_path", "peer", "fault_resumed", "shadows",
        "details", "health_check", "reply_headers", "rz", "retry_policy",
    )

    def __init__(self, conn: DownstreamConnection, head: RequestHead, hcm: Any, start: float) -> None:
        self.conn = conn
        self.head = head
        self.hcm = hcm  # the connection's connection manager config when the request came
        self.start = start  # loop time
        # The request's and the response's states (common/stream_states.py); a request without
        # a body (no Content-Length, not chunked) is read whole with its head (the codec sends
        # no end for it).
        self.req = BODY if head.chunked or head.content_length else COMPLETE
        self.resp = WAITING
        self.authority = b""
        self.route: Any = None
        self.rm: Any = None  # the cluster's circuit breakers (ResourceManager); holds one of its requests
        self.cluster: Any = None
        self.host: Any = None
        self.upstream: UpstreamConnection | None = None
        self.retried = False
        self.pending: list[bytes] | None = None  # body bytes waiting for an upstream connection
        self.replay: list[bytes] | None = None  # the body sent on a reused connection, for one re-send
        self.flags = 0
        self.status = 0
        self.complete_at = 0.0  # when the request was read completely (x-envoy-upstream-service-time counts from it)
        self.rx = 0
        self.tx = 0
        self.close_after = False
        self.deadline = 0.0  # the earliest of the stream's deadlines (the connection's timer reads it)
        self.resp_mutations: tuple = ()
        # Response mutations this request adds: a cookie hash policy's Set-Cookie (hash_policy.SetCookie),
        # the CORS filter's allow headers, the %RESP(X)% capture (compile/edge.py)
        self.response_extras: tuple = ()
        self.request_id: bytes | None = None
        self.service_time: int | None = None
        self.original_path: bytes | None = None
        self.peer: Any = None  # the other side's Istio workload (common.peer_info.PeerInfo), when exchanged
        self.fault_resumed = False  # a fault delay is over: begin() again skips the fault filter
        self.shadows: list | None = None  # shadow.Shadow mirrors of this request
        self.details: str | None = None  # Envoy's response code details of a local reply
        self.health_check = False  # the health_check filter matched the request
        self.reply_headers: list[tuple[bytes, bytes]] | None = None  # a local reply's head, for %RESP(X)%
        # Retries, per-try and stream timeouts, outlier reports: a Resilience (resilience.py),
        # made only for a route or request that needs one.
        self.rz: Any = None
        # A route's retry policy while its Resilience is not made yet (resilience.py: a policy
        # alone makes one only when a retry may follow).
        self.retry_policy: Any = None
