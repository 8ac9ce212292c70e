"""Retries, per-try and stream timeouts and outlier reports: the router's resilient path.

A stream whose route has a retry policy, an idle timeout, a max stream duration or attempt-count
headers, whose request carries router control headers (x-envoy-retry-on, x-envoy-upstream-rq-
timeout-ms, ...), or whose cluster has outlier detection gets a ``Resilience`` (``stream.rz``,
made in ``Stream.begin``): the state of Envoy's RetryStateImpl and the router's timers, in an
object of its own. The stream asks it at each event (one field read when there is none). Even
here the RetryState is made only when an attempt fails or a response could be retried
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
    retry_buffer_limit,
)
from .route_table import OVERWRITE_OR_ADD, HeaderMutation, header_value
from ..common.stream_states import COMPLETE, DONE, WAITING

_HEADER_ONLY_POLICY = RetryPolicy()  # a route without retry_policy: x-envoy-retry-on alone
_ROUTER_HEADERS = frozenset({
    b"x-envoy-upstream-rq-timeout-ms", b"x-envoy-upstream-rq-per-try-timeout-ms", b"x-envoy-retry-on",
    b"x-envoy-retry-grpc-on", b"x-envoy-max-retries", b"x-envoy-retriable-status-codes",
    b"x-envoy-retriable-header-names", b"x-envoy-hedge-on-per-try-timeout",
})
_PER_ATTEMPT = frozenset({b"x-envoy-expected-rq-timeout-ms", b"x-envoy-attempt-count"})


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


class Resilience:
    """Retries, timeouts and outlier reports of one stream (see the module docstring). Its
    methods take the stream: it holds no reference back, so a finished stream and its
    Resilience go with reference counting alone."""

    __slots__ = ("policy", "rs", "per_try", "try_timeout", "try_idle", "rq_deadline", "try_deadline",
                 "try_idle_deadline", "try_idle_mark", "idle_deadline", "idle_mark", "stream_deadline",
                 "body_buf", "fix_head", "backoff", "head_base", "attempt", "on_ready", "on_head")

    def __init__(self) -> None:
        self.policy: RetryPolicy | None = None  # while a retry is possible; ``rs`` made at the first failure
        self.rs: RetryState | None = None
        self.per_try = 0.0  # a per-try timer is configured: they start with the attempt
        self.try_timeout = 0.0  # per_try_timeout (or its header), seconds
        self.try_idle = 0.0  # per_try_idle_timeout, seconds
        self.rq_deadline = 0.0  # the route timeout's
        self.try_deadline = 0.0
        self.try_idle_deadline = 0.0
        self.try_idle_mark = -1
        self.idle_deadline = 0.0
        self.idle_mark = -1
        self.stream_deadline = 0.0
        self.body_buf: list[bytes] | None = None  # request body kept for a retry, from its first bytes
        self.fix_head = False  # attempt 1's head needs its per-attempt headers redone
        self.backoff: Any = None  # a pending retry's back-off TimerHandle
        self.head_base: list[tuple[bytes, bytes]] | None = None  # the request head without its per-attempt headers
        self.attempt = 1
        # Whether a connection's arrival and a response head have work here (set by ``setup``):
        # the stream asks only then, and otherwise runs as a plain one.
        self.on_ready = False
        self.on_head = False

    def arm(self, s: Any) -> None:
        """Set the stream's ``deadline`` (which the connection's timer reads) to the earliest of
        the deadlines here, and arm the timer for it."""
        d = self.rq_deadline
        for x in (self.try_deadline, self.idle_deadline, self.stream_deadline, self.try_idle_deadline):
            if x and (not d or x < d):
                d = x
        s.deadline = d
        if d:
            s.conn.arm(d)

    # ---- set-up (from Stream.begin, before the upstream head is built) ----------------------
    def setup(self, s: Any, action: Any, host: Any) -> None:
        """Timeouts and the retry policy of this request. Without control headers the
        RetryState is made only when an attempt fails (most requests never need one)."""
        policy = action.retry_policy
        if s.head.envoy_control:
            policy = self._control_headers(s, action, policy, host)
        elif policy is not None and policy.per_try_timers:
            self._per_try_timers(s, policy, None)
        if policy is not None:
            self.policy = policy  # body_buf when the body's first bytes come
        if self.try_timeout:  # the expected-timeout header is the per-try one (attempt count 1 is
            self.fix_head = True  # written by the head builders, RequestHeadMixin)
        outlier = s.cluster.outlier is not None
        self.on_ready = self.fix_head or outlier or bool(self.per_try)
        self.on_head = outlier or action.attempt_count_response
        if action.idle_timeout or action.max_stream_duration or s.req is COMPLETE:
            now = s.conn.loop.time()
            if action.idle_timeout:
                self.idle_deadline = now + action.idle_timeout
            if action.max_stream_duration:
                self.stream_deadline = s.start + action.max_stream_duration
            if s.req is COMPLETE and s.timeout:
                self.rq_deadline = now + s.timeout
            self.arm(s)

    def _control_headers(self, s: Any, action: Any, policy: RetryPolicy | None, host: Any) -> RetryPolicy | None:
        """x-envoy-upstream-rq-timeout-ms, -per-try-timeout-ms and the retry headers: read when
        trusted, removed either way. The RetryState is made now (it merges the headers)."""
        head = s.head
        headers = head.headers
        per_try_hdr = None
        is_trusted = trusted(s)
        if is_trusted:
            value = header_value(headers, b"x-envoy-upstream-rq-timeout-ms")
            if value is not None and value.strip().isdigit():
                s.timeout = int(value) / 1000.0
                self.fix_head = True
            per_try_hdr = header_value(headers, b"x-envoy-upstream-rq-per-try-timeout-ms")
            if policy is None:
                policy = _HEADER_ONLY_POLICY
        rs = None
        if policy is not None:
            rs = policy.begin(headers, s.rm, s.conn.rng, RetryCounters(s.cluster), is_trusted)
            self._per_try_timers(s, policy, per_try_hdr)
        head.headers = [h for h in headers if h[0] not in _ROUTER_HEADERS]
        if rs is None:
            return None
        rs.on_host_attempted(host)
        self.rs = rs
        return policy

    def _per_try_timers(self, s: Any, policy: RetryPolicy, header: bytes | None) -> None:
        """The per-try timeout (the trusted header may set it) and per-try idle timeout;
        ``per_try`` is set when either runs, for the stream's request end to start them."""
        self.try_timeout = per_try_timeout(policy.per_try_timeout, header, s.timeout)
        self.try_idle = policy.per_try_idle_timeout
        self.per_try = self.try_timeout or self.try_idle

    def _retry_state(self, s: Any) -> RetryState | None:
        """The RetryState, made at the first failed attempt (that attempt's host is the first
        previous host); None when this request cannot be retried."""
        rs = self.rs
        if rs is None and self.policy is not None:
            rs = self.policy.begin(s.head.headers, s.rm, s.conn.rng, RetryCounters(s.cluster))
            if rs is None:
                self.policy = None
                self.body_buf = None
                return None
            rs.on_host_attempted(s.host)
            self.rs = rs
        return rs

    def head_base_of(self, s: Any) -> list[tuple[bytes, bytes]]:
        """The headers the stream built, without its per-attempt ones (expected timeout,
        attempt count)."""
        head = self.head_base
        if head is None:
            head = self.head_base = [h for h in s.upstream_headers if h[0] not in _PER_ATTEMPT]
        return head

    def _attempt_headers(self, s: Any) -> list[tuple[bytes, bytes]]:
        """The request headers of this attempt: x-envoy-attempt-count and
        x-envoy-expected-rq-timeout-ms redone."""
        out = list(self.head_base_of(s))
        if s.route.action.attempt_count_upstream:
            out.append((b"x-envoy-attempt-count", b"%d" % self.attempt))
        if not s.hcm.suppress_envoy_headers:
            elapsed = s.conn.loop.time() - s.complete_at if s.complete_at and self.attempt > 1 else 0.0
            # expected_timeout_ms on whole milliseconds (0.15 s is 150, not 149)
            ms = expected_timeout_ms(round(s.timeout * 1000) / 1000 + 1e-7,
                                     round(self.try_timeout * 1000) / 1000 + 1e-7 if self.try_timeout else 0.0,
                                     elapsed)
            if ms:
                out.append((b"x-envoy-expected-rq-timeout-ms", b"%d" % ms))
        return out

    # ---- request side ------------------------------------------------------------------
    def keep_body(self, s: Any, data: bytes) -> bool:
        """Body bytes while a retry is possible (``policy``): kept for a retry while they fit
        the retry buffer; False when the stream was answered (507 during a back-off)."""
        buf = self.body_buf
        if buf is None:  # the body's first bytes
            buf = self.body_buf = []
        limit = retry_buffer_limit(s.hcm.buffer_limit, s.route.action.retry_buffer_limit)
        rs = self.rs
        if rs is None:
            kept = s.rx <= limit
            if not kept and self._retry_state(s) is not None:
                self.rs.on_body(s.rx, limit)  # type: ignore[union-attr]
        else:
            kept = rs.on_body(len(data), limit)
        if kept:
            buf.append(data)
            return True
        self.body_buf = None  # too big to retry: stream on without a copy
        self.policy = None
        if self.backoff is not None:
            self.backoff.cancel()
            self.backoff = None
            s.local_reply(507, b"exceeded request buffer limit while retrying upstream")
            return False
        return True

    def on_request_end(self, s: Any, now: float) -> None:
        """The request was read whole: the route timeout runs from now, and the per-try timers
        when the attempt has a connection."""
        if s.timeout and s.host is not None:
            self.rq_deadline = now + s.timeout
        if self.per_try and s.resp is not DONE and s.upstream is not None:
            self._start_try_timers(s, now)
        self.arm(s)

    def _start_try_timers(self, s: Any, now: float) -> None:
        if self.try_timeout:
            self.try_deadline = now + self.try_timeout
        if self.try_idle:
            self.try_idle_deadline = now + self.try_idle
            self.try_idle_mark = s.tx + s.resp

    # ---- upstream side -----------------------------------------------------------------
    def before_ready(self, s: Any, reused: bool) -> None:
        """An attempt has its connection (before the stream sends on it)."""
        if self.fix_head and self.head_base is None:  # the first attempt
            s.upstream_headers = self._attempt_headers(s)
        cluster = s.cluster
        if not reused and cluster.outlier is not None:
            cluster.report_local_origin(s.host, LOCAL_ORIGIN_CONNECT_SUCCESS)

    def after_ready(self, s: Any) -> None:
        if self.per_try and s.req is COMPLETE:
            self._start_try_timers(s, s.conn.loop.time())
            self.arm(s)

    def on_connect_failure(self, s: Any, reason: str) -> bool:
        """True when a retry was scheduled."""
        cluster = s.cluster
        if cluster.outlier is not None:
            cluster.report_local_origin(s.host, LOCAL_ORIGIN_TIMEOUT if reason == "connection timeout"
                                        else LOCAL_ORIGIN_CONNECT_FAILED)
        return self.policy is not None and self._maybe_retry(s, RESET_CONNECT_FAILURE, False)

    def on_reset(self, s: Any, protocol_error: bool) -> bool:
        """The attempt's connection closed before a response started. True when a retry was
        scheduled; False: the stream goes on as without a Resilience."""
        if not protocol_error and s.reused and s.replay is not None and not s.retried:
            return False  # the silent re-send (Stream.on_upstream_reset)
        s.upstream = None
        cluster = s.cluster
        if cluster.outlier is not None:
            cluster.report_local_origin(s.host, LOCAL_ORIGIN_CONNECT_FAILED)
        return self.policy is not None and self._maybe_retry(
            s, RESET_PROTOCOL_ERROR if protocol_error else RESET_CONNECTION_TERMINATION, True)

    def on_response_head(self, s: Any, status: int, headers: list[tuple[bytes, bytes]]) -> bool:
        """True when the response is retried (the stream drops it)."""
        cluster = s.cluster
        if cluster.outlier is not None:
            cluster.report_http_status(s.host, status)
        if self.policy is not None:
            rs = self.rs
            if rs is None:
                action = s.route.action
                if status >= action.retry_min_status:
                    rs = self._retry_state(s)
                else:  # a lower status is retried only for a response header (gRPC, rate limit)
                    gate = action.retry_gate_headers
                    if gate:
                        for name, _ in headers:
                            if name in gate:
                                rs = self._retry_state(s)
                                break
            if rs is not None:
                verdict = rs.should_retry_headers(status, headers)
                if verdict == RETRY:
                    s._drop_upstream()
                    self._schedule_retry(s)
                    return True
                if verdict == NO_LIMIT:
                    s.flags |= URX
                elif verdict == NO_OVERFLOW:
                    s.flags |= UO
                rs.finish()
                self.rs = None
            self.policy = None
            self.body_buf = None
        if s.route.action.attempt_count_response:
            s.resp_mutations = s.resp_mutations + (HeaderMutation((), (
                (b"x-envoy-attempt-count", b"%d" % self.attempt, OVERWRITE_OR_ADD),)),)
        return False

    # ---- retries -----------------------------------------------------------------------
    def _maybe_retry(self, s: Any, reason: str, request_started: bool) -> bool:
        rs = self._retry_state(s)
        if rs is None:
            return False
        verdict = rs.should_retry_reset(reason, request_started)
        if verdict == RETRY:
            self._schedule_retry(s)
            return True
        if verdict == NO_LIMIT:
            s.flags |= URX
        elif verdict == NO_OVERFLOW:
            s.flags |= UO
        return False

    def _schedule_retry(self, s: Any) -> None:
        self.try_deadline = 0.0
        self.try_idle_deadline = 0.0
        s.replay = None
        s.reused = False
        delay = self.rs.next_backoff()  # type: ignore[union-attr]
        self.backoff = s.conn.loop.call_later(delay, self._retry, s)

    def _retry(self, s: Any) -> None:
        self.backoff = None
        if s.resp is DONE:
            return
        rs = self.rs
        assert rs is not None
        self.attempt = rs.start_attempt()
        cluster = s.cluster
        old = s.host
        host = rs.choose_host(lambda: cluster.choose_host(s))
        if host is None:
            cluster.stats.upstream_cx_none_healthy += 1
            s.flags |= UH
            s.local_reply(503, b"no healthy upstream")
            _flush(s)
            return
        if host is not old:
            old.active_rq -= 1
            host.active_rq += 1
            s.host = host
        rs.on_host_attempted(host)
        cluster.stats.upstream_rq_total += 1
        cluster.stats.rq_retried += 1  # (not a start of upstream_rq_active: stats.py)
        host.rq_total += 1
        s.upstream_headers = self._attempt_headers(s)
        buf = self.body_buf
        s.pending = list(buf) if buf else None
        s.pending_bytes = 0
        host.pool.acquire(s)
        _flush(s)

    # ---- timeouts ----------------------------------------------------------------------
    def on_timeout(self, s: Any) -> None:
        """The connection's timer reached the stream's ``deadline``: whichever of these is due."""
        now = s.conn.loop.time()
        stats = s.hcm.stats
        if self.stream_deadline and now >= self.stream_deadline:
            stats.downstream_rq_max_duration_reached += 1
            s.flags |= DT
            return s.end_by_timeout(b"downstream duration timeout")  # type: ignore[no-any-return]
        if self.rq_deadline and now >= self.rq_deadline:
            if s.upstream is not None and s.resp is WAITING:
                self._report_timeout(s)
            self.cancel_retry()
            return s.route_timeout()  # type: ignore[no-any-return]
        if self.idle_deadline and now >= self.idle_deadline:
            mark = s.rx + s.tx + self.attempt + s.resp
            if mark != self.idle_mark:
                self.idle_mark = mark
                self.idle_deadline = now + s.route.action.idle_timeout
            else:
                stats.downstream_rq_idle_timeout += 1
                s.flags |= SI
                return s.end_by_timeout(b"stream timeout")  # type: ignore[no-any-return]
        if self.try_deadline and now >= self.try_deadline:
            self.try_deadline = 0.0
            if s.resp is WAITING:  # once it has, Envoy lets the route timeout decide
                s.cluster.stats.upstream_rq_per_try_timeout += 1
                s.host.rq_timeout += 1
                return self._try_timed_out(s)
        if self.try_idle_deadline and now >= self.try_idle_deadline:
            mark = s.tx + s.resp
            if mark != self.try_idle_mark:  # response bytes came: idle from now on at the latest
                self.try_idle_mark = mark
                self.try_idle_deadline = now + self.try_idle
            else:
                self.try_idle_deadline = 0.0
                s.cluster.stats.upstream_rq_per_try_idle_timeout += 1
                return self._try_timed_out(s)
        self.arm(s)

    def _try_timed_out(self, s: Any) -> None:
        """A per-try (idle) timeout: reset the attempt; retry it as a local reset when the
        policy allows and the response has not started, else 504 UT (or reset the client)."""
        self.try_deadline = self.try_idle_deadline = 0.0
        self._report_timeout(s)
        s._drop_upstream()
        if s.resp is not WAITING or self.policy is None or not self._maybe_retry(s, RESET_LOCAL, True):
            s.flags |= UT
            s.local_reply(504, b"upstream request timeout")  # (a reset once the response started)
            return
        self.arm(s)

    def _report_timeout(self, s: Any) -> None:
        cluster = s.cluster
        if cluster.outlier is not None:
            cluster.report_local_origin(s.host, LOCAL_ORIGIN_TIMEOUT)

    def cancel_retry(self) -> None:
        if self.backoff is not None:
            self.backoff.cancel()
            self.backoff = None

    def end(self) -> None:
        """The stream finished: no retry pending, the RetryState's slot given back."""
        if self.backoff is not None:
            self.backoff.cancel()
            self.backoff = None
        rs = self.rs
        if rs is not None:
            rs.finish()
            self.rs = None


def _flush(s: Any) -> None:
    conn = s.conn
    if conn.out:
        conn.flush()
