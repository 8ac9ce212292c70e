"""Retries, per-try and stream timeouts and outlier reports: the router's resilient path.

A stream whose route has a retry policy, an idle timeout, a max stream duration or attempt-count
headers, whose request carries router control headers (x-envoy-retry-on, x-envoy-upstream-rq-
timeout-ms, ...), or whose cluster has outlier detection is a ``ResilientStream``: made as one
when its route table has such a route (``RouteTable.resilient``; until ``setup_resilience`` it
behaves as a Stream), else switched to one in ``Stream.begin`` (the slower way: an instance whose
class changed loses CPython's fast attribute access). Every other stream runs the plain Stream
code: no RetryState, no extra timer, no per-event check for any of this. Even here the
RetryState is made only when an attempt fails or a response could be retried
(``retry_min_status``, ``retry_gate_headers``), unless control headers must be merged into it.

As Envoy's router (source/common/router/router.cc):
* the route timeout (x-envoy-upstream-rq-timeout-ms when trusted; 0 = none) runs from the end of
  the request to the end of the response: 504 UT, the upstream connection closed;
* the per-try timeout runs from when an attempt has both a connection and the whole request
  until the response head (once the response has started it no longer applies); it is retried
  as a local reset (retry_on reset, 5xx, gateway-error), else 504 UT;
* the per-try idle timeout (retry_policy.per_try_idle_timeout) starts at the same moment and
  runs as long as the attempt lasts, restarted by each response byte: expiry counts
  ``upstream_rq_per_try_idle_timeout`` and is retried like a per-try timeout, else 504 UT (after
  the response head: the client connection is reset);
* a retry waits a jittered back-off (``loop.call_later``, no task), picks a host again (with
  the previous_hosts predicate when configured) and re-sends the head and the buffered body;
  a body beyond the retry buffer abandons retries (507 while a back-off is pending);
* out of retries the last result goes to the client with flag URX; a retry refused by the
  ``max_retries`` circuit breaker gives UO;
* outlier detection hears each attempt's connect success/failure, reset, timeout and status.
The silent re-send of a request that met a stale keep-alive connection (Stream.on_upstream_reset)
is neither a retry nor an outlier failure.

Stream idle and per-try idle timeouts are checked lazily: when the deadline passes, the stream
is idle unless bytes moved since the deadline was set, in which case the deadline moves on. They
so fire between one and two idle periods after the last activity, for no work per body chunk
(an attempt that never sees a response byte times out after exactly one period). The route's
``idle_timeout`` runs here and replaces the connection manager's ``stream_idle_timeout`` (which
the downstream connection's timer checks for every other stream, downstream.py); a route
``idle_timeout`` of 0 disables both.

All stream deadlines share the downstream connection's one timer: ``deadline`` is the earliest.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from . import shadow
from ..common.response_flags import DT, SI, UH, UO, URX, UT
from ..upstream.outlier import LOCAL_ORIGIN_CONNECT_FAILED, LOCAL_ORIGIN_CONNECT_SUCCESS, LOCAL_ORIGIN_TIMEOUT
from .retry_state import (
    NO_LIMIT, NO_OVERFLOW, RESET_CONNECT_FAILURE, RESET_CONNECTION_TERMINATION, RESET_LOCAL,
    RESET_PROTOCOL_ERROR, RETRY, RetryPolicy, RetryState, expected_timeout_ms, per_try_timeout,
)
from .route_table import OVERWRITE_OR_ADD, HeaderMutation, header_value
from .stream_state import StreamState

_HEADER_ONLY_POLICY = RetryPolicy()  # a route without retry_policy: x-envoy-retry-on alone
_ROUTER_HEADERS = frozenset({
    b"x-envoy-upstream-rq-timeout-ms", b"x-envoy-upstream-rq-per-try-timeout-ms", b"x-envoy-retry-on",
    b"x-envoy-retry-grpc-on", b"x-envoy-max-retries", b"x-envoy-retriable-status-codes",
    b"x-envoy-retriable-header-names", b"x-envoy-hedge-on-per-try-timeout",
})
_EXPECTED_LINE = b"\r\nx-envoy-expected-rq-timeout-ms: "
_ATTEMPT_LINE = b"\r\nx-envoy-attempt-count: "


def _stat(name: str) -> property:
    return property(lambda self: getattr(self.stats, name),
                    lambda self, value: setattr(self.stats, name, value))


class RetryCounters:
    """What RetryState counts, onto the cluster's stats (``upstream_rq_retry_overflow`` is
    counted by the ResourceManager, ``retry_or_shadow_abandoned`` shared with mirroring)."""

    __slots__ = ("stats", "cluster")

    def __init__(self, cluster: Any) -> None:
        self.cluster = cluster
        self.stats = cluster.stats

    upstream_rq_retry = _stat("upstream_rq_retry")
    upstream_rq_retry_success = _stat("upstream_rq_retry_success")
    upstream_rq_retry_limit_exceeded = _stat("upstream_rq_retry_limit_exceeded")
    upstream_rq_retry_backoff_exponential = _stat("upstream_rq_retry_backoff_exponential")
    upstream_rq_retry_overflow = property(lambda self: 0, lambda self, value: None)
    retry_or_shadow_abandoned = property(lambda self: 0,
                                         lambda self, value: shadow.count_abandoned(self.cluster))


def trusted(stream: Any) -> bool:
    """Whether router control headers are honoured: always, unless the connection manager uses
    the remote address and it is not an internal one (Envoy's cleanInternalHeaders)."""
    if not stream.hcm.use_remote_address:
        return True
    try:
        return ipaddress.ip_address(stream.conn.remote_ip.decode()).is_private
    except ValueError:
        return False


class ResilienceMixin(StreamState):
    """The ResilientStream overrides (see the module docstring); ``super()`` is Stream, and
    ``_stream_<name>`` its method for the overrides run on every request."""

    rs: RetryState | None  # (default in StreamState: Stream.finish checks it)
    per_try: float  # a per-try timer is configured (default in StreamState: Stream.on_request_end checks it)
    try_timeout = 0.0  # per_try_timeout (or its header), seconds
    try_idle = 0.0  # per_try_idle_timeout, seconds
    rq_deadline = 0.0
    try_deadline = 0.0
    try_idle_deadline = 0.0
    try_idle_mark = -1
    idle_deadline = 0.0
    idle_mark = -1
    stream_deadline = 0.0
    policy: RetryPolicy | None = None  # while a retry is possible; ``rs`` made at the first failure
    body_buf: list[bytes] | None = None  # request body kept for a retry (wire form), from its first bytes
    fix_head = False  # attempt 1's head needs its per-attempt lines redone
    backoff: Any  # the back-off TimerHandle (default in StreamState: Stream.finish checks it)
    head_base: bytes | None = None  # the request head without its per-attempt lines and end
    attempt = 1

    _HOT = ("_send", "on_upstream_ready", "on_response_head")
    _stream_send: Any
    _stream_on_upstream_ready: Any
    _stream_on_response_head: Any

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Bind the Stream methods the hot overrides extend as ``_stream_<name>``: calling them
        so costs no super() object per call (about 0.4 µs each on CPython 3.11)."""
        super().__init_subclass__(**kwargs)
        base = cls.__mro__[cls.__mro__.index(ResilienceMixin) + 1]
        for name in ResilienceMixin._HOT:
            setattr(cls, "_stream_" + name.lstrip("_"), getattr(base, name))

    @property  # type: ignore[override]
    def deadline(self) -> float:
        """The earliest of the stream's deadlines (the connection's timer reads this)."""
        d = self.rq_deadline
        for x in (self.try_deadline, self.idle_deadline, self.stream_deadline, self.try_idle_deadline):
            if x and (not d or x < d):
                d = x
        return d

    @deadline.setter
    def deadline(self, value: float) -> None:
        self.rq_deadline = value  # Stream sets the route timeout's deadline

    def _arm(self) -> None:
        d = self.deadline
        if d:
            self.conn.arm(d)

    # ---- set-up (from Stream.begin, before the upstream head is built) ----------------------
    def setup_resilience(self, action: Any, host: Any) -> None:
        """Timeouts and the retry policy of this request. Without control headers the
        RetryState is made only when an attempt fails (most requests never need one)."""
        policy = action.retry_policy
        if self.head.envoy_control:
            policy = self._control_headers(action, policy, host)
        elif policy is not None and policy.per_try_timers:
            self._per_try_timers(policy, None)
        if policy is not None:
            self.policy = policy  # body_buf when the body's first bytes come
        if self.try_timeout:  # the expected-timeout line is the per-try one (attempt count 1 is
            self.fix_head = True  # written by the head builders, RequestHeadMixin)
        if action.idle_timeout or action.max_stream_duration or self.request_complete:
            now = self.conn.loop.time()
            if action.idle_timeout:
                self.idle_deadline = now + action.idle_timeout
            if action.max_stream_duration:
                self.stream_deadline = self.start + action.max_stream_duration
            if self.request_complete and self.timeout:
                self.rq_deadline = now + self.timeout
            self._arm()

    def _control_headers(self, action: Any, policy: RetryPolicy | None, host: Any) -> RetryPolicy | None:
        """x-envoy-upstream-rq-timeout-ms, -per-try-timeout-ms and the retry headers: read when
        trusted, removed either way. The RetryState is made now (it merges the headers)."""
        head = self.head
        headers = head.headers
        per_try_hdr = None
        is_trusted = trusted(self)
        if is_trusted:
            value = header_value(headers, b"x-envoy-upstream-rq-timeout-ms")
            if value is not None and value.strip().isdigit():
                self.timeout = int(value) / 1000.0
                self.fix_head = True
            per_try_hdr = header_value(headers, b"x-envoy-upstream-rq-per-try-timeout-ms")
            if policy is None:
                policy = _HEADER_ONLY_POLICY
        rs = None
        if policy is not None:
            rs = policy.begin(headers, self.rm, self.conn.rng, RetryCounters(self.cluster), is_trusted)
            self._per_try_timers(policy, per_try_hdr)
        head.headers = [h for h in headers if h[0] not in _ROUTER_HEADERS]
        if rs is None:
            return None
        rs.on_host_attempted(host)
        self.rs = rs
        return policy

    def _per_try_timers(self, policy: RetryPolicy, header: bytes | None) -> None:
        """The per-try timeout (the trusted header may set it) and per-try idle timeout;
        ``per_try`` is set when either runs, for Stream.on_request_end to start them."""
        self.try_timeout = per_try_timeout(policy.per_try_timeout, header, self.timeout)
        self.try_idle = policy.per_try_idle_timeout
        self.per_try = self.try_timeout or self.try_idle

    def _retry_state(self) -> RetryState | None:
        """The RetryState, made at the first failed attempt (that attempt's host is the first
        previous host); None when this request cannot be retried."""
        rs = self.rs
        if rs is None and self.policy is not None:
            rs = self.policy.begin(self.head.headers, self.rm, self.conn.rng, RetryCounters(self.cluster))
            if rs is None:
                self.policy = None
                self.body_buf = None
                return None
            rs.on_host_attempted(self.host)
            self.rs = rs
        return rs

    def _head_base(self) -> bytes:
        """The head Stream built, without its per-attempt lines (expected timeout, attempt
        count) and its end."""
        head = self.head_base
        if head is None:
            head = self.upstream_head[:-2]
            for line in (_EXPECTED_LINE, _ATTEMPT_LINE):
                i = head.find(line)
                while i != -1:
                    head = head[:i] + head[head.index(b"\r\n", i + 2):]
                    i = head.find(line, i)
            self.head_base = head
        return head

    def _attempt_lines(self) -> bytes:
        """x-envoy-attempt-count and x-envoy-expected-rq-timeout-ms for this attempt."""
        out = b""
        if self.route.action.attempt_count_upstream:
            out = b"x-envoy-attempt-count: %d\r\n" % self.attempt
        if not self.hcm.suppress_envoy_headers:
            elapsed = self.conn.loop.time() - self.complete_at if self.complete_at and self.attempt > 1 else 0.0
            # expected_timeout_ms on whole milliseconds (0.15 s is 150, not 149)
            ms = expected_timeout_ms(round(self.timeout * 1000) / 1000 + 1e-7,
                                     round(self.try_timeout * 1000) / 1000 + 1e-7 if self.try_timeout else 0.0,
                                     elapsed)
            if ms:
                out += b"x-envoy-expected-rq-timeout-ms: %d\r\n" % ms
        return out

    # ---- request side ------------------------------------------------------------------
    def _send(self, data: bytes) -> None:
        if self.policy is not None:
            buf = self.body_buf
            if buf is None:  # the body's first bytes
                buf = self.body_buf = []
            # The limit and the body bytes so far (rx, as Envoy counts decoded bytes) are not kept
            # as fields of their own: a stream has no room for more names (attr_layout.py).
            limit = self.hcm.buffer_limit  # retry_buffer_limit(), inlined
            own = self.route.action.retry_buffer_limit
            if own is not None and own < limit:
                limit = own
            rs = self.rs
            if rs is None:
                kept = self.rx <= limit
                if not kept and self._retry_state() is not None:
                    self.rs.on_body(self.rx, limit)  # type: ignore[union-attr]
            else:
                kept = rs.on_body(len(data), limit)
            if kept:
                buf.append(data)
            else:  # too big to retry: stream on without a copy
                self.body_buf = None
                self.policy = None
                if self.backoff is not None:
                    self.backoff.cancel()
                    self.backoff = None
                    self.local_reply(507, b"exceeded request buffer limit while retrying upstream")
                    return
        self._stream_send(data)

    def start_per_try(self) -> None:
        """From Stream.on_request_end when ``per_try`` is set: the per-try timers start when
        an attempt has both a connection and the whole request."""
        if not self.done and self.upstream is not None:
            self._start_try_timers(self.complete_at)

    def _start_try_timers(self, now: float) -> None:
        if self.try_timeout:
            self.try_deadline = now + self.try_timeout
        if self.try_idle:
            self.try_idle_deadline = now + self.try_idle
            self.try_idle_mark = self.tx + self.response_started
        self._arm()

    # ---- upstream side -----------------------------------------------------------------
    def on_upstream_ready(self, up: Any, reused: bool) -> None:
        if self.fix_head and self.head_base is None:  # the first attempt
            self.upstream_head = self._head_base() + self._attempt_lines() + b"\r\n"
        cluster = self.cluster
        if not reused and cluster.outlier is not None:
            cluster.report_local_origin(self.host, LOCAL_ORIGIN_CONNECT_SUCCESS)
        self._stream_on_upstream_ready(up, reused)
        if self.per_try and self.request_complete:
            self._start_try_timers(self.conn.loop.time())

    def on_upstream_connect_failure(self, reason: str) -> None:
        if self.done:
            return
        cluster = self.cluster
        if cluster.outlier is not None:
            cluster.report_local_origin(self.host, LOCAL_ORIGIN_TIMEOUT if reason == "connection timeout"
                                        else LOCAL_ORIGIN_CONNECT_FAILED)
        if self.policy is not None and self._maybe_retry(RESET_CONNECT_FAILURE, False):
            return
        super().on_upstream_connect_failure(reason)  # type: ignore[misc]

    def on_upstream_reset(self, up: Any, protocol_error: bool) -> None:
        if self.done or self.response_started:
            return super().on_upstream_reset(up, protocol_error)  # type: ignore[misc, no-any-return]
        if not protocol_error and self.reused and self.replay is not None and not self.retried:
            # The silent re-send replays the bytes sent and clears the head: keep its base for a
            # later retry first.
            if self.policy is not None and self.upstream_head:
                self._head_base()
            return super().on_upstream_reset(up, protocol_error)  # type: ignore[misc, no-any-return]
        self.upstream = None
        cluster = self.cluster
        if cluster.outlier is not None:
            cluster.report_local_origin(self.host, LOCAL_ORIGIN_CONNECT_FAILED)
        if self.policy is not None and self._maybe_retry(
                RESET_PROTOCOL_ERROR if protocol_error else RESET_CONNECTION_TERMINATION, True):
            return
        super().on_upstream_reset(up, protocol_error)  # type: ignore[misc]

    def on_response_head(self, status: int, headers: list[tuple[bytes, bytes]], keep_alive: bool,
                         content_length: int | None, chunked: bool) -> None:
        cluster = self.cluster
        if cluster.outlier is not None:
            cluster.report_http_status(self.host, status)
        if self.policy is not None:
            rs = self.rs
            if rs is None:
                action = self.route.action
                if status >= action.retry_min_status:
                    rs = self._retry_state()
                else:  # a lower status is retried only for a response header (gRPC, rate limit)
                    gate = action.retry_gate_headers
                    if gate:
                        for name, _ in headers:
                            if name in gate:
                                rs = self._retry_state()
                                break
            if rs is not None:
                verdict = rs.should_retry_headers(status, headers)
                if verdict == RETRY:
                    self._drop_upstream()  # type: ignore[attr-defined]
                    self._schedule_retry()
                    return
                if verdict == NO_LIMIT:
                    self.flags |= URX
                elif verdict == NO_OVERFLOW:
                    self.flags |= UO
                rs.finish()
                self.rs = None
            self.policy = None
            self.body_buf = None
        if self.route.action.attempt_count_response:  # (a resilient route: setup_resilience ran)
            self.resp_mutations = self.resp_mutations + (HeaderMutation((), (
                (b"x-envoy-attempt-count", b"%d" % self.attempt, OVERWRITE_OR_ADD),)),)
        self._stream_on_response_head(status, headers, keep_alive, content_length, chunked)

    # ---- retries -----------------------------------------------------------------------
    def _maybe_retry(self, reason: str, request_started: bool) -> bool:
        rs = self._retry_state()
        if rs is None:
            return False
        verdict = rs.should_retry_reset(reason, request_started)
        if verdict == RETRY:
            self._schedule_retry()
            return True
        if verdict == NO_LIMIT:
            self.flags |= URX
        elif verdict == NO_OVERFLOW:
            self.flags |= UO
        return False

    def _schedule_retry(self) -> None:
        self.try_deadline = 0.0
        self.try_idle_deadline = 0.0
        self.replay = None
        self.reused = False
        delay = self.rs.next_backoff()  # type: ignore[union-attr]
        self.backoff = self.conn.loop.call_later(delay, self._retry)

    def _retry(self) -> None:
        self.backoff = None
        if self.done:
            return
        rs = self.rs
        assert rs is not None
        self.attempt = rs.start_attempt()
        cluster = self.cluster
        old = self.host
        host = rs.choose_host(lambda: cluster.choose_host(self))
        if host is None:
            cluster.stats.upstream_cx_none_healthy += 1
            self.flags |= UH
            self.local_reply(503, b"no healthy upstream")
            self._flush()
            return
        if host is not old:
            old.active_rq -= 1
            host.active_rq += 1
            self.host = host
        rs.on_host_attempted(host)
        cluster.stats.upstream_rq_total += 1
        host.rq_total += 1
        self.upstream_head = self._head_base() + self._attempt_lines() + b"\r\n"
        buf = self.body_buf
        self.pending = list(buf) if buf else None
        self.pending_bytes = 0
        host.pool.acquire(self)
        self._flush()

    def _flush(self) -> None:
        conn = self.conn
        if conn.out:
            conn.flush()

    # ---- timeouts ----------------------------------------------------------------------
    def on_timeout(self) -> None:
        if self.done:
            return
        now = self.conn.loop.time()
        stats = self.hcm.stats
        if self.stream_deadline and now >= self.stream_deadline:
            stats.downstream_rq_max_duration_reached += 1
            self.flags |= DT
            return self.end_by_timeout(b"downstream duration timeout")
        if self.rq_deadline and now >= self.rq_deadline:
            if self.upstream is not None and not self.response_started:
                self._report_timeout()
            self._cancel_retry()
            return super().on_timeout()  # type: ignore[misc, no-any-return]
        if self.idle_deadline and now >= self.idle_deadline:
            mark = self.rx + self.tx + self.attempt + self.response_started
            if mark != self.idle_mark:
                self.idle_mark = mark
                self.idle_deadline = now + self.route.action.idle_timeout
            else:
                stats.downstream_rq_idle_timeout += 1
                self.flags |= SI
                return self.end_by_timeout(b"stream timeout")
        if self.try_deadline and now >= self.try_deadline:
            self.try_deadline = 0.0
            if not self.response_started:  # once it has, Envoy lets the route timeout decide
                self.cluster.stats.upstream_rq_per_try_timeout += 1
                self.host.rq_timeout += 1
                return self._try_timed_out()
        if self.try_idle_deadline and now >= self.try_idle_deadline:
            mark = self.tx + self.response_started
            if mark != self.try_idle_mark:  # response bytes came: idle from now on at the latest
                self.try_idle_mark = mark
                self.try_idle_deadline = now + self.try_idle
            else:
                self.try_idle_deadline = 0.0
                self.cluster.stats.upstream_rq_per_try_idle_timeout += 1
                return self._try_timed_out()
        self._arm()

    def _try_timed_out(self) -> None:
        """A per-try (idle) timeout: reset the attempt; retry it as a local reset when the
        policy allows and the response has not started, else 504 UT (or reset the client)."""
        self.try_deadline = self.try_idle_deadline = 0.0
        self._report_timeout()
        self._drop_upstream()  # type: ignore[attr-defined]
        if self.response_started or self.policy is None or not self._maybe_retry(RESET_LOCAL, True):
            self.flags |= UT
            self.local_reply(504, b"upstream request timeout")  # (a reset once the response started)
            return
        self._arm()

    def _report_timeout(self) -> None:
        cluster = self.cluster
        if cluster.outlier is not None:
            cluster.report_local_origin(self.host, LOCAL_ORIGIN_TIMEOUT)

    def _cancel_retry(self) -> None:
        if self.backoff is not None:
            self.backoff.cancel()
            self.backoff = None

    def end_retries(self) -> None:
        """From Stream.finish when a back-off or a RetryState is pending."""
        if self.backoff is not None:
            self.backoff.cancel()
            self.backoff = None
        rs = self.rs
        if rs is not None:
            rs.finish()
            self.rs = None
