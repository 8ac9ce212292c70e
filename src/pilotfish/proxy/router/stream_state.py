"""The fields of one request/response exchange, shared by the Stream's parts.

Attributes take class-level defaults so a new stream sets only what differs (no __init__ on the
request path). Constants used by more than one part of the stream live here too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..http.downstream import DownstreamConnection
    from ..http.http1 import RequestHead
    from ..http.upstream_connection import UpstreamConnection

# Response body framing towards the client.
_LENGTH, _CHUNKED, _UNTIL_CLOSE = range(3)
_RESET_BEFORE_HEADERS = b"upstream connect error or disconnect/reset before headers. reset reason: "
_TEXT_PLAIN = (b"content-type", b"text/plain")
_XFP_HTTP = b"x-forwarded-proto: http"
_TE_CHUNKED = b"transfer-encoding: chunked"
_CONNECTION_CLOSE = b"connection: close"
_CONNECTION_KEEP_ALIVE = b"connection: keep-alive"
_END = b"\r\n"  # last element of a line list: b"\r\n".join(lines) then ends the head
_CRLF = b"\r\n"
_XFF_XFP = frozenset({b"x-forwarded-for", b"x-forwarded-proto"})


_JOIN = b": ".join


def _lines(headers: list[tuple[bytes, bytes]]) -> list[bytes]:
    return list(map(_JOIN, headers))  # no comprehension: on 3.11 that makes a function per call


class StreamState:
    """Per-stream fields with class-level defaults."""

    # Defaults shared by every stream; an instance stores only what it changes.
    route: Any = None
    rm: Any = None  # the cluster's circuit breakers (ResourceManager); holds one of its requests
    cluster: Any = None
    host: Any = None
    upstream: UpstreamConnection | None = None
    reused = False
    retried = False
    request_complete = False
    response_started = False
    done = False
    pending: list[bytes] | None = None  # body bytes waiting for an upstream connection
    pending_bytes = 0
    upstream_head = b""
    replay: list[bytes] | None = None  # what went out on a reused connection, for one retry
    flags = 0
    status = 0
    complete_at = 0.0  # when the request was read completely (x-envoy-upstream-service-time counts from it)
    rx = 0
    tx = 0
    mode = _LENGTH
    close_after = False
    deadline = 0.0
    timeout = 0.0
    resp_mutations: tuple = ()
    set_cookies: tuple = ()  # a cookie hash policy's generated Set-Cookie (hash_policy.SetCookie)
    request_id: bytes | None = None
    service_time: int | None = None
    original_path: bytes | None = None
    peer: Any = None  # the other side's Istio workload (peer_metadata.PeerInfo), when exchanged
    fault_resumed = False  # a fault delay is over: begin() again skips the fault filter
    shadows: list | None = None  # shadow.Shadow mirrors of this request
    # ResilientStream's (stream_retry.py), read by Stream methods so it needs no override there.
    per_try = 0.0  # the per-try timeout, seconds
    rs: Any = None  # retry_state.RetryState
    backoff: Any = None  # a pending retry's back-off TimerHandle

    authority = b""
    # Set by DownstreamConnection.on_request_head when it makes the stream (no __init__ on the
    # request path): conn, head, hcm (the connection's at that moment) and start (loop time).
    conn: DownstreamConnection
    head: RequestHead
    hcm: Any
    start: float
