"""The downstream connection's one timer: request-header, request, idle, route and stream idle
timeouts.

One lazily re-armed timer per connection covers them all: ``arm(when)`` only ever moves it
earlier, and when it fires ``_timers`` ends what is due and arms it for what is next.

The stream idle timeout (the connection manager's ``stream_idle_timeout``, 5 minutes by default,
unless the route sets its own ``idle_timeout``) ends a stream on which no byte has moved either
way for that long: 504 ``stream timeout`` once the request was read completely, else 408 (Envoy's
maybeRequestTimeoutCode), flag SI, ``downstream_rq_idle_timeout``; after the response has
started, the client connection is reset. It costs a request no timer, task or clock read: a
starting stream only makes sure the connection's timer fires by ``start + timeout`` (a
comparison when it already does), and the timer compares the active stream's bytes received and
sent (and whether its response started) with what it saw at its previous check (``si_*``). A
stream so ends between one and two periods after its last byte; one on which nothing moved since
its request head ends after exactly one period.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..common.errors import ProtocolError, contain
from ..common.response_flags import SI
from ..common.stream_states import COMPLETE, DONE, WAITING

if TYPE_CHECKING:
    import asyncio


class ConnectionTimers:
    """The timer half of DownstreamConnection (downstream.py), which holds the fields."""

    __slots__ = ()
    loop: asyncio.AbstractEventLoop
    timer: Any
    timer_when: float
    closing: bool
    active: Any
    queue: Any
    hcm: Any
    codec: Any
    requests: int
    last_activity: float
    header_deadline: float
    header_timeout: float
    rq_deadline: float
    rq_stream: Any
    si_stream: Any
    si_mark: int
    si_at: float
    # DownstreamConnection's own methods the timers end things with
    abort: Any
    flush: Any
    _error_reply: Any
    _protocol_error: Any
    _close_after_flush: Any

    def _start_header_timer(self) -> None:
        self.header_deadline = self.loop.time() + self.header_timeout
        self.arm(self.header_deadline)

    def arm(self, when: float) -> None:
        if self.timer is not None:
            if self.timer_when <= when:
                return
            self.timer.cancel()
        self.timer_when = when
        self.timer = self.loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        try:
            self._timers()
        except Exception as exc:  # a bug in a timeout path: this connection ends, the proxy goes on
            contain(exc, "downstream timer")
            self.abort()

    def _timers(self) -> None:
        self.timer = None
        if self.closing:
            return
        now = self.loop.time()
        nxt = 0.0
        hcm = self.hcm
        active = self.active
        if active is not None and active.resp is not DONE and active.deadline:
            if now >= active.deadline:
                active.on_timeout()
            else:
                nxt = active.deadline
        if self.rq_deadline:
            if now >= self.rq_deadline:
                self._request_timeout()
                if self.closing:
                    return
            else:
                nxt = min(nxt, self.rq_deadline) if nxt else self.rq_deadline
        active = self.active  # (a timeout above may have ended it)
        if active is not None and active.resp is not DONE:
            idle_at = self._stream_idle(active, now)
            if idle_at:
                nxt = min(nxt, idle_at) if nxt else idle_at
        elif self.si_stream is not None:
            self.si_stream = None  # keep no finished stream alive
        if self.header_deadline and self.active is None:
            if self.codec.begun() == self.requests:  # (every head begun is complete)
                self.header_deadline = 0.0
            elif now >= self.header_deadline:
                hcm.stats.downstream_rq_header_timeout += 1
                self._error_reply(408)
                return
            else:
                nxt = min(nxt, self.header_deadline) if nxt else self.header_deadline
        if self.active is None and not self.queue and hcm.idle_timeout:
            idle_at = self.last_activity + hcm.idle_timeout
            if now >= idle_at:
                hcm.stats.downstream_cx_idle_timeout += 1
                self._close_after_flush()
                return
            nxt = min(nxt, idle_at) if nxt else idle_at
        if nxt and not self.closing:
            self.arm(nxt)
        self.flush()

    def _request_timeout(self) -> None:
        """HCM ``request_timeout``: a request not read whole in time gets 408 ``request timeout``
        (``downstream_rq_timeout``) and the connection closes, unless its response has started."""
        stream = self.rq_stream
        self.rq_stream = None
        self.rq_deadline = 0.0
        if stream is None or stream is not self.codec.stream or stream.req is COMPLETE \
                or stream.resp is not WAITING:
            return
        self.hcm.stats.downstream_rq_timeout += 1
        self._protocol_error(ProtocolError("request timeout", 408, b"request timeout"), counted=True)

    def _stream_idle(self, stream: Any, now: float) -> float:
        """The connection manager's stream idle timeout for the active stream (see the module
        docstring): when to look again, or 0.0 (none applies, or it has just ended the stream).
        A route ``idle_timeout`` replaces it (0: none); the stream's Resilience runs the route's."""
        route = stream.route
        if route is not None and getattr(route.action, "idle_timeout_set", False):
            return 0.0
        timeout = stream.hcm.stream_idle_timeout
        if not timeout:
            return 0.0
        mark = stream.rx + stream.tx + stream.resp
        if self.si_stream is not stream:  # first look at this stream
            self.si_stream = stream
            self.si_mark = mark
            # Nothing moved since the head: idle since the stream started (a pipelined one when
            # the one before it ended, last_activity).
            since = max(stream.start, self.last_activity) if mark == 0 else now
            self.si_at = since + timeout
        elif mark != self.si_mark:
            self.si_mark = mark
            self.si_at = now + timeout
        if now < self.si_at:
            return self.si_at
        self.si_stream = None
        stream.hcm.stats.downstream_rq_idle_timeout += 1
        stream.flags |= SI
        stream.end_by_timeout(b"stream timeout")
        return 0.0
