"""The downstream side: one asyncio.Protocol per client connection, HTTP/1.1 via the codec.

Requests are answered in order. A pipelined request that arrives while another is in flight
waits in a queue (reading pauses meanwhile). Output is collected in ``out`` and written with
one ``transport.write`` after the loop's current round of events (``OutputBatch``, which the
connection joins when ``out`` gets its first piece; at once when the connection closes). One
lazily re-armed timer per connection covers the request-header timeout, the idle timeout, the
route timeout and the stream idle timeout. The timers are in connection_timers.py.
"""

from __future__ import annotations

import asyncio
import random
from bisect import bisect_right
from collections import deque
from math import floor
from typing import TYPE_CHECKING, Any, Protocol

from . import tunnel
from .date_header import date_line
from ..common.errors import ProtocolError, contain
from ..common.histogram import LOWER
from .head import RequestHead
from .http1_encode import encode_response_head
from .http1_server import PARSE_ERRORS, server_codec
from .overload import ConnectionGate, shed_request
from ..common.output_batch import output_batch
from .flow_control import BUFFER_FULL, CLIENT_FULL, PIPELINE, UPSTREAM_FULL, ReadPause
from .connection_timers import ConnectionTimers
from .http1_response import Http1ResponseSender
from .request_ids import RequestIds
from ..common.stream_states import BODY, DONE, WAITING, RequestState, ResponseState

if TYPE_CHECKING:
    from .config import ListenerConfig



class Stream(Protocol):
    """What the connection reads of and asks of a stream: the router's (router/stream.py), made
    by ``HcmConfig.new_stream`` so that this layer does not import the one above it."""

    conn: Any
    head: RequestHead
    hcm: Any
    start: float
    req: RequestState  # (common/stream_states.py)
    resp: ResponseState
    close_after: bool
    deadline: float
    upstream: Any
    route: Any
    flags: int
    rx: int
    tx: int

    def begin(self) -> None: ...
    def on_timeout(self) -> None: ...
    def end_by_timeout(self, body: bytes) -> None: ...
    def on_downstream_reset(self) -> None: ...
    def local_reply(self, status: int, body: bytes, *, close: bool = False) -> None: ...
    def _drop_upstream(self) -> None: ...


class ConnectionSet:
    """What the server shares with a listener's connections: the loop, the random source,
    draining, and what admits a new connection (``gate``: None when no connection limit nor
    connection-level overload action is configured; else the process's ConnectionGate, with
    this listener's ``limit`` and exemptions)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, rng: random.Random, gate: ConnectionGate | None = None,
                 limit: int | None = None, ignore_global: bool = False, bypass_overload: bool = False) -> None:
        self.loop = loop
        self.rng = rng
        self.request_ids = RequestIds(rng)
        self.batch = output_batch(loop)
        self.connections: set[DownstreamConnection] = set()
        self.draining = False
        self.gate = gate
        self.limit = limit
        self.ignore_global = ignore_global
        self.bypass_overload = bypass_overload


class DownstreamConnection(ConnectionTimers, Http1ResponseSender, asyncio.Protocol):
    """One client connection: the HTTP/1.1 codec's connection, sending through
    ``Http1ResponseSender`` (http1_response.py, the codec interface of codec.py)."""

    __slots__ = ("hcm", "lstats", "shared", "loop", "rng", "request_ids", "transport", "codec",
                 "parse", "out", "batch", "active", "queue", "reads", "closing", "in_feed",
                 "_remote_ip", "requests", "timer", "timer_when", "last_activity", "header_deadline",
                 "write_paused", "error_status", "_advancing", "si_stream", "si_mark", "si_at",
                 "rq_deadline", "rq_stream", "header_timeout", "opened_at", "needs_end")

    def __init__(self, listener: ListenerConfig, shared: ConnectionSet) -> None:
        hcm = listener.hcm
        self.hcm = hcm
        self.lstats = listener.stats
        self.shared = shared
        self.loop = shared.loop
        self.rng = shared.rng
        self.request_ids = shared.request_ids
        self.transport: asyncio.Transport | None = None
        self.codec = server_codec(self, hcm.max_header_bytes, hcm.max_headers, hcm.underscores, hcm.stats,
                                  count_begins=bool(hcm.request_headers_timeout))
        self.parse = self.codec.parser.feed_data  # the codec's feed without a Python frame
        self.out: list[bytes] = []  # not empty: registered with the batch (see write)
        self.batch = shared.batch
        self.active: Stream | None = None  # the stream whose response is being produced
        self.queue: deque[Stream] = deque()
        self.reads = ReadPause()  # flow_control.py
        self.closing = False
        self.in_feed = False
        self._remote_ip: bytes | None = None
        self.requests = 0
        self.timer: asyncio.TimerHandle | None = None
        self.timer_when = 0.0
        self.last_activity = 0.0
        self.header_deadline = 0.0
        self.write_paused = False
        self.error_status = 0
        self._advancing = False
        self.si_stream: Stream | None = None  # the stream the stream idle check last saw
        self.si_mark = 0  # its rx + tx + response_started then
        self.si_at = 0.0  # when it is idle unless that sum moves
        self.rq_deadline = 0.0  # the connection manager's request_timeout for rq_stream's request
        self.rq_stream: Stream | None = None
        self.header_timeout = hcm.request_headers_timeout  # (one attribute read per read)
        self.opened_at = 0.0
        self.needs_end = False  # the response being sent is chunked (http1_response.py)

    @property
    def draining(self) -> bool:
        return self.shared.draining

    @property
    def remote_ip(self) -> bytes:
        """The client's address, looked up when first asked for (one system call)."""
        ip = self._remote_ip
        if ip is None:
            peer = self.transport.get_extra_info("peername") if self.transport is not None else None
            ip = self._remote_ip = peer[0].encode() if peer else b""
        return ip

    # ---- asyncio.Protocol -------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        shared = self.shared
        gate = shared.gate
        if gate is not None and not gate.admit(shared, self.lstats):
            self.closing = True  # refused: closed at once, never counted (transport stays None)
            transport.abort()
            return
        self.transport = self.reads.transport = transport  # type: ignore[assignment]
        shared.connections.add(self)
        stats = self.hcm.stats
        stats.downstream_cx_total += 1
        stats.downstream_cx_http1_total += 1
        stats.downstream_cx_active += 1
        self.lstats.downstream_cx_total += 1
        self.lstats.downstream_cx_active += 1
        now = self.opened_at = self.loop.time()
        self.last_activity = now
        if self.hcm.idle_timeout:
            self.arm(now + self.hcm.idle_timeout)

    def data_received(self, data: bytes) -> None:
        self.hcm.stats.downstream_cx_rx_bytes_total += len(data)
        if self.closing or self.error_status:
            return
        self.in_feed = True
        try:
            self.parse(data)
        except PARSE_ERRORS as exc:
            self._parse_stopped(exc, data)
        except Exception as exc:  # a bug on the request path: this connection ends, the proxy goes on
            self._internal_error(exc)
        finally:
            self.in_feed = False
        if self.header_timeout and not self.header_deadline and self.active is None \
                and self.codec.begun() > self.requests:
            self._start_header_timer()  # a request head has begun and is not complete
        active = self.active
        if active is not None and active.resp is DONE and active.req is BODY:
            active.close_after = True  # answered before the request was read: don't read on
            self.closing = True
            self.reads.transport = None  # (nothing to pause or resume any more)
        if self.closing:
            self.flush_now()
            if self.transport is not None:
                self.transport.close()

    def _parse_stopped(self, exc: Exception, data: bytes) -> None:
        """The parser stopped: bad bytes (a local reply), an upgrade (a tunnel follows), or a
        declined h2c upgrade (parsing goes on with a fresh parser)."""
        codec = self.codec
        try:
            error = codec.error(exc)
        except Exception as inner:  # noqa: BLE001  a callback's own bug, re-raised by error()
            self._internal_error(inner.__context__ or inner)  # the callback's own exception
            return
        if error is not None:
            self._protocol_error(error)
        elif codec.h2c:
            rest = codec.h2c_resume(data, exc.args[0])
            self.parse = self._read_body if codec.body_left else codec.parser.feed_data
            if rest:
                self._feed(rest)
        else:  # an upgrade: the parser stopped at the first tunnelled byte
            tunnel.downstream_upgraded(self, data, exc.args[0])

    def _read_body(self, data: bytes) -> None:
        """``parse`` while a request body is read by hand (after a declined h2c upgrade)."""
        rest = self.codec.feed_body(data)
        if not self.codec.body_left:
            self.parse = self.codec.parser.feed_data
            if rest:
                self._feed(rest)

    def _feed(self, data: bytes) -> None:
        try:
            self.parse(data)
        except PARSE_ERRORS as exc:
            self._parse_stopped(exc, data)

    def _internal_error(self, exc: BaseException) -> None:
        """An unexpected error in a callback: log it once, answer 500 if nothing of a response
        was sent yet (else reset), and close the connection."""
        contain(exc, "downstream request")
        self.hcm.stats.downstream_cx_protocol_error += 1
        active = self.active
        if active is not None and active.resp is not DONE:
            try:
                active._drop_upstream()
                active.local_reply(500, b"", close=True)
            except Exception:  # noqa: BLE001  the stream is broken: reset the connection
                self.abort()
                return
        elif active is None:
            self._error_reply(500)
        self.closing = True
        self.reads.transport = None  # (nothing to pause or resume any more)

    def eof_received(self) -> bool:
        # Like Envoy's HTTP/1 codec: a client's FIN ends the connection and resets its streams (DC).
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is None:
            return  # refused in connection_made
        self.closing = True
        self.reads.transport = None  # (nothing to pause or resume any more)
        shared = self.shared
        shared.connections.discard(self)
        if shared.gate is not None:
            shared.gate.active -= 1
        stats = self.hcm.stats
        stats.downstream_cx_active -= 1
        stats.downstream_cx_destroy += 1
        self.lstats.downstream_cx_active -= 1
        self.lstats.downstream_cx_destroy += 1
        i = bisect_right(LOWER, floor((self.loop.time() - self.opened_at) * 1000))  # downstream_cx_length_ms
        stats.downstream_cx_length_ms[i] += 1
        self.lstats.downstream_cx_length_ms[i] += 1
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        active = self.active
        if active is not None and active.resp is not DONE:
            stats.downstream_rq_rx_reset += 1
            active.on_downstream_reset()
        for s in self.queue:
            s.on_downstream_reset()
        self.queue.clear()
        self.out = []

    def pause_writing(self) -> None:
        self.write_paused = True
        active = self.active
        if active is not None and active.upstream is not None:
            active.upstream.reads.set(CLIENT_FULL, True)

    def resume_writing(self) -> None:
        self.write_paused = False
        active = self.active
        if active is not None and active.upstream is not None:
            active.upstream.reads.set(CLIENT_FULL, False)

    # ---- codec callbacks -------------------------------------------------------------
    def on_request_head(self, head: RequestHead) -> Stream:
        """A new request: its stream starts now, or after the streams ahead of it."""
        if self.header_deadline:
            self.header_deadline = 0.0
        self.requests += 1
        hcm = self.hcm
        stats = hcm.stats
        stats.downstream_rq_total += 1  # (the HTTP/1.1 count and the active gauge follow from it: stats.py)
        now = self.loop.time()
        stream = hcm.new_stream(self, head, hcm, now)  # the router's (router/stream.py)
        if hcm.request_timeout:  # the whole request must arrive within it
            self.rq_stream = stream
            self.rq_deadline = now + hcm.request_timeout
            self.arm(self.rq_deadline)
        if self.active is None:
            self.active = stream
            si = hcm.stream_idle_timeout
            if si and (self.timer is None or self.timer_when > now + si):
                self.arm(now + si)
            if hcm.overload is None or not shed_request(stream, hcm.overload):
                stream.begin()
        else:
            self.queue.append(stream)
            self.reads.set(PIPELINE, True)
        return stream

    # ---- streams ---------------------------------------------------------------------
    def stream_done(self, stream: Stream, now: float = 0.0) -> None:
        """A response is complete (or the stream was reset); ``now``: the loop's time, if read."""
        if stream is not self.active or self.closing:
            return
        self.last_activity = now or self.loop.time()
        if stream.close_after:
            self._close_after_flush()
            return
        if stream.req is BODY:
            if not self.in_feed:  # the upstream answered early; the rest of the body is unwanted
                self._close_after_flush()
            return
        if self.queue or self.reads.reasons or self.error_status or self.shared.draining:
            self._advance()
        else:
            self.active = None  # idle, with nothing to start, resume or arm

    def _advance(self) -> None:
        self.active = None
        if self._advancing:
            return  # the loop below picks up the next stream
        self._advancing = True
        try:
            while self.active is None and self.queue and not self.closing:
                nxt = self.queue.popleft()
                self.active = nxt
                si = self.hcm.stream_idle_timeout  # it starts now (last_activity: stream_done's clock)
                if si and (self.timer is None or self.timer_when > self.last_activity + si):
                    self.arm(self.last_activity + si)
                shed = self.hcm.overload
                if shed is None or not shed_request(nxt, shed):
                    nxt.begin()
        finally:
            self._advancing = False
        if not self.queue and self.reads.reasons & PIPELINE:
            self.reads.set(PIPELINE, False)
        if self.active is None and not self.closing:
            if self.error_status:
                self._error_reply(self.error_status)
            elif self.draining:
                self._close_after_flush()

    def _protocol_error(self, exc: ProtocolError, counted: bool = False) -> None:
        if not counted:
            self.hcm.stats.downstream_cx_protocol_error += 1
        parsing = self.codec.stream  # the stream whose request bytes were bad, if its head was read
        if parsing is not None and parsing is self.active and parsing.resp is not WAITING:
            self.abort()
            return
        if parsing is not None:
            # The request whose bytes were bad never reaches an upstream.
            if parsing in self.queue:
                self.queue.remove(parsing)
                self.hcm.stats.rq_dropped += 1  # (never finished: not among the active any more)
            elif parsing is self.active:
                parsing._drop_upstream()
                parsing.local_reply(exc.status, exc.body, close=True)
                return
        if self.active is None:
            self._error_reply(exc.status)
        else:
            self.error_status = exc.status

    def _error_reply(self, status: int) -> None:
        self.write(encode_response_head(status, [
            (b"content-length", b"0"), (b"date", date_line.value), (b"server", self.hcm.server_name),
            (b"connection", b"close")]))
        self._close_after_flush()

    # ---- output and lifecycle --------------------------------------------------------
    def write(self, data: bytes) -> None:
        """Output, sent after this round of events: the first piece joins the batch (so does
        every method that appends to ``out``: one registration per round, no flush call after
        each event)."""
        out = self.out
        if not out:
            self.batch.add(self)
        out.append(data)

    def flush(self) -> None:
        """Send ``out`` at once when closing (otherwise it goes after this round: see write)."""
        if self.closing:
            self.flush_now()

    def flush_now(self) -> None:
        out = self.out
        if not out or self.transport is None:
            return
        data = b"".join(out)  # (of one piece: that piece, not a copy)
        out.clear()
        self.hcm.stats.downstream_cx_tx_bytes_total += len(data)
        self.transport.write(data)
        if self.closing:
            self.transport.close()

    def _close_after_flush(self) -> None:
        self.closing = True
        self.reads.transport = None  # (nothing to pause or resume any more)
        if not self.in_feed:
            self.flush_now()
            if self.transport is not None:
                self.transport.close()

    def abort(self) -> None:
        """Reset: the only way HTTP/1.1 can tell a client its response is broken."""
        self.closing = True
        self.reads.transport = None  # (nothing to pause or resume any more)
        if self.out:
            self.flush_now()
        if self.transport is not None:
            self.transport.abort()

    def drain(self) -> None:
        """Stop serving: close now if idle, else after the in-flight response."""
        if self.active is None and not self.in_feed:
            self._close_after_flush()

    def pause_reading_for_upstream(self, on: bool) -> None:
        self.reads.set(UPSTREAM_FULL, on)

    def pause_reading_for_buffer(self, on: bool) -> None:
        self.reads.set(BUFFER_FULL, on)


def connection_factory(listener: ListenerConfig, shared: ConnectionSet) -> Any:
    return lambda: DownstreamConnection(listener, shared)
