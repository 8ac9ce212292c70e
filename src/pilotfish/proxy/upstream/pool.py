"""Upstream HTTP/1.1 connections and a LIFO keep-alive pool per host.

A connection serves one stream at a time. ``ConnectionPool.acquire(stream)`` hands the stream
an idle connection at once (``stream.on_upstream_ready(conn, reused=True)``) or starts one
connect task, the only task on the request path, and later calls ``on_upstream_ready`` or
``on_upstream_connect_failure``. Writes go out after the loop's round of events, as downstream
ones do (``downstream.OutputBatch``).

Circuit breakers (the stream's ``rm``, its cluster's ResourceManager), as Envoy's HTTP/1 pool:
a request that needs a new connection takes a ``pending_requests`` slot until it has one (none
left: ``stream.on_upstream_overflow()``, 503 UO); a new connection takes a ``connections``
slot for its life. With none left the request waits for one of this pool's connections to be
released or closed, unless the pool has no connection at all (Envoy lets every pool have
one). The first connection a pool opens takes a ``connection_pools`` slot, kept until the pool
closes. The stream holds ``requests`` itself (stream.py).
"""

from __future__ import annotations

import asyncio
from bisect import bisect_right
from collections import deque
from math import floor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..http import tunnel
from ..http.downstream import output_batch
from ..common.errors import contain
from ..common.histogram import LOWER
from ..http.http1 import ExcessResponseError, Http1ClientCodec, HttpParserError, HttpParserUpgrade

if TYPE_CHECKING:
    from .circuit_breaker import ResourceManager
    from .cluster import Host
    from ..common.stats import ClusterStats


@dataclass(frozen=True, slots=True)
class PoolOptions:
    connect_timeout: float = 5.0
    idle_timeout: float = 3600.0  # Envoy's default for upstream connections
    max_requests_per_connection: int = 0  # 0: unlimited
    buffer_limit: int = 1024 * 1024  # per_connection_buffer_limit_bytes


class UpstreamConnection(asyncio.Protocol):
    """One upstream HTTP/1.1 connection. While it serves a stream, its codec delivers response
    events to that stream directly (``attach``); when idle, to the connection, which drops them."""

    __slots__ = ("pool", "transport", "codec", "parse", "stream", "requests", "closed", "idle_since",
                 "paused_writing", "stats", "out", "batch", "rm", "opened_at")

    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool
        self.stats = pool.stats
        self.transport: asyncio.Transport | None = None
        self.codec = Http1ClientCodec(self)
        self.parse = self.codec.parser.feed_data  # the codec's feed without a Python frame
        self.stream: Any = None
        self.requests = 0
        self.closed = False
        self.idle_since = 0.0
        self.paused_writing = False
        self.out: list[bytes] = []  # written after this round of events (downstream.OutputBatch)
        self.batch = output_batch(pool.loop or asyncio.get_running_loop())
        self.rm: ResourceManager | None = None  # holds one of its ``connections`` slots
        self.opened_at = 0.0

    def attach(self, stream: Any) -> None:
        self.stream = stream
        self.codec.handler = stream

    def detach(self) -> None:
        self.stream = None
        self.codec.handler = self

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.stats.upstream_cx_active += 1
        self.pool.cx_active += 1
        self.opened_at = self.batch.loop.time()

    def data_received(self, data: bytes) -> None:
        stream = self.stream
        if stream is None:  # bytes on an idle connection: nothing can be pending; drop it
            self.close()
            return
        self.stats.upstream_cx_rx_bytes_total += len(data)
        try:
            self.parse(data)
        except HttpParserUpgrade as exc:  # after a 101: the rest is tunnel payload
            tunnel.upstream_upgraded(self, data, exc.args[0])
        except HttpParserError as exc:
            self._framing_error(exc)
        except Exception as exc:  # a bug on the response path: this exchange ends, the proxy goes on
            contain(exc, "upstream response")
            self._framing_error(None)
        else:
            codec = self.codec
            if codec.ended:  # Http1ClientCodec.excess, inlined (a Python frame less per response)
                codec.ended = False
                if not codec.fresh:  # a message began after it: a partial head followed
                    self._framing_error(None, excess=True)
        conn = stream.conn
        if conn.out:
            if conn.dirty or conn.closing:
                conn.flush()
            else:  # DownstreamConnection.flush, inlined: written after this round of events
                conn.dirty = True
                batch = conn.batch
                if not batch.dirty:
                    batch.loop.call_soon(batch.run)
                batch.dirty.append(conn)

    def _framing_error(self, exc: Exception | None, excess: bool = False) -> None:
        """The upstream sent what is not HTTP/1.1 (or a callback failed): close the connection;
        the stream it serves ends with 502 UPE (or a reset once its response started). A stream
        that took this connection from the pool during this read never had its request sent
        (``close`` drops it): it is sent again on a fresh connection."""
        if exc is not None:
            excess = self.codec.ended  # whatever follows a response that ended in this read
            try:
                excess = isinstance(self.codec.error(exc), ExcessResponseError) or excess
            except Exception as inner:  # noqa: BLE001  a callback's own bug, re-raised by error()
                contain(inner.__context__ or inner, "upstream response")
        self.stats.upstream_cx_protocol_error += 1
        self.close()
        stream = self.stream
        if stream is not None:
            self.detach()
            stream.on_upstream_reset(self, protocol_error=not (excess and stream.reused
                                                               and not stream.response_started))

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed:
            self.closed = True
        stats = self.stats
        stats.upstream_cx_active -= 1
        self.pool.cx_active -= 1
        stats.upstream_cx_destroy += 1
        ms = floor((self.batch.loop.time() - self.opened_at) * 1000)
        stats.upstream_cx_length_ms[bisect_right(LOWER, ms)] += 1
        rm = self.rm
        if rm is not None:
            self.rm = None
            rm.connections.dec()
            if self.pool.waiting:
                self.pool.connect_waiter()
        stream = self.stream
        if stream is not None:
            self.detach()
            stream.on_upstream_reset(self, protocol_error=False)
            if stream.conn.out:
                stream.conn.flush()

    def pause_writing(self) -> None:
        self.paused_writing = True
        if self.stream is not None:
            self.stream.conn.pause_reading_for_upstream(True)

    def resume_writing(self) -> None:
        self.paused_writing = False
        if self.stream is not None:
            self.stream.conn.pause_reading_for_upstream(False)

    # codec callbacks while no stream is attached: a response nobody waits for is dropped
    def on_response_head(self, status: int, headers: list[tuple[bytes, bytes]], keep_alive: bool,
                         content_length: int | None, chunked: bool) -> None:
        pass

    def on_response_body(self, data: bytes) -> None:
        pass

    def on_response_end(self) -> None:
        pass

    def write(self, data: bytes) -> None:
        self.stats.upstream_cx_tx_bytes_total += len(data)
        out = self.out
        if not out:
            dirty = self.batch.dirty  # OutputBatch.add, inlined
            if not dirty:
                self.batch.loop.call_soon(self.batch.run)
            dirty.append(self)
        out.append(data)

    def flush_now(self) -> None:
        out = self.out
        if out and not self.closed:
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))  # type: ignore[union-attr]
        out.clear()

    def close(self) -> None:
        """Close, dropping output not yet written (the exchange it belonged to is over)."""
        self.out.clear()
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.close()


class ConnectionPool:
    __slots__ = ("host", "options", "stats", "loop", "idle", "cx_active", "idle_timer", "_closed", "waiting",
                 "connecting", "pool_rm", "keep_checked")

    def __init__(self, host: Host, options: PoolOptions, stats: ClusterStats,
                 loop: asyncio.AbstractEventLoop | None) -> None:
        self.host = host
        self.options = options
        self.stats = stats
        self.loop = loop
        self.idle: list[UpstreamConnection] = []
        self.cx_active = 0
        self.idle_timer: asyncio.TimerHandle | None = None
        self._closed = False
        self.waiting: deque[Any] = deque()  # streams waiting for a connection slot (max_connections)
        self.connecting = 0
        self.pool_rm: ResourceManager | None = None  # holds a ``connection_pools`` slot
        # Whether release() has more to check than the connection's flags and ``waiting`` (a
        # max_requests_per_connection limit, or the pool is closed); if not, streams return
        # their connection to ``idle`` themselves.
        self.keep_checked = bool(options.max_requests_per_connection)

    def acquire(self, stream: Any, fresh: bool = False) -> None:
        """Give ``stream`` a connection, now (reused) or when a new one is connected.

        Stream.begin inlines the reuse of the last idle connection: keep the two alike."""
        idle = self.idle
        while idle and not fresh:
            conn = idle.pop()  # LIFO: the most recently used is the most likely alive
            if conn.closed:
                continue
            conn.stream = stream  # attach(), inlined
            conn.codec.handler = stream
            conn.requests += 1
            stream.on_upstream_ready(conn, True)
            return
        rm = getattr(stream, "rm", None)
        if rm is not None:
            if self.pool_rm is None:
                if not rm.try_connection_pool():
                    stream.on_upstream_overflow(no_pool=True)
                    return
                self.pool_rm = rm
            if not rm.try_pending():
                stream.on_upstream_overflow()
                return
            if not rm.try_connection():
                if self.cx_active or self.connecting:
                    self.stats.upstream_rq_pending_total += 1
                    self.waiting.append(stream)  # served by release() or connect_waiter()
                    return
                rm.connections.count += 1  # a pool may always have one connection
        self.stats.upstream_rq_pending_total += 1
        self._start_connect(stream, rm)

    def _start_connect(self, stream: Any, rm: ResourceManager | None) -> None:
        loop = self.loop or asyncio.get_running_loop()
        self.loop = loop
        self.connecting += 1
        loop.create_task(self._connect(stream, rm))

    def connect_waiter(self) -> None:
        """A connection slot may have freed: connect for the first stream still waiting."""
        waiting = self.waiting
        while waiting:
            stream = waiting[0]
            rm = stream.rm
            if stream.done:
                waiting.popleft()
                rm.pending_requests.dec()
                continue
            if not rm.try_connection():
                if self.cx_active or self.connecting:
                    return
                rm.connections.count += 1  # a pool may always have one connection
            waiting.popleft()
            self._start_connect(stream, rm)
            return

    def cancel_wait(self, stream: Any) -> None:
        """A stream that waited for a connection is over (timeout, client gone)."""
        try:
            self.waiting.remove(stream)
        except ValueError:
            return
        stream.rm.pending_requests.dec()

    async def _connect(self, stream: Any, rm: ResourceManager | None = None) -> None:
        try:
            await self._open(stream, rm)
        except Exception as exc:  # a bug after connecting: that client's connection ends, no stuck task
            contain(exc, "upstream connect")
            stream.conn.abort()

    async def _open(self, stream: Any, rm: ResourceManager | None) -> None:
        stats = self.stats
        stats.upstream_cx_total += 1
        loop = self.loop
        assert loop is not None
        host = self.host
        host.cx_total += 1
        started = loop.time()
        try:
            async with asyncio.timeout(self.options.connect_timeout):
                _, conn = await loop.create_connection(
                    lambda: UpstreamConnection(self), host.address, host.port)
        except TimeoutError:
            self._connect_done(rm, True)
            stats.upstream_cx_connect_fail += 1
            stats.upstream_cx_connect_timeout += 1
            host.cx_connect_fail += 1
            stream.on_upstream_connect_failure("connection timeout")
        except OSError as exc:
            self._connect_done(rm, True)
            stats.upstream_cx_connect_fail += 1
            host.cx_connect_fail += 1
            stream.on_upstream_connect_failure(exc.strerror or "connection failure")
        else:
            stats.upstream_cx_connect_ms[bisect_right(LOWER, floor((loop.time() - started) * 1000))] += 1
            self._connect_done(None, False)
            if rm is not None:
                rm.pending_requests.dec()
                if conn.closed:  # lost before this task resumed: connection_lost gave back nothing
                    rm.connections.dec()
                else:
                    conn.rm = rm
            conn.requests = 1
            if self._closed:
                conn.close()
            if stream.done:
                self.release(conn)
            else:
                conn.attach(stream)
                stream.on_upstream_ready(conn, False)
        out = stream.conn.out
        if out:
            stream.conn.flush()
        if self.waiting and not self.connecting:
            self.connect_waiter()

    def _connect_done(self, rm: ResourceManager | None, failed: bool) -> None:
        self.connecting -= 1
        if failed and rm is not None:
            rm.pending_requests.dec()
            rm.connections.dec()

    def release(self, conn: UpstreamConnection) -> None:
        """Return a connection whose exchange completed cleanly; it is kept unless limits say no.

        Stream.on_response_end inlines the common case (see ``keep_checked``)."""
        conn.stream = None  # detach(), inlined
        conn.codec.handler = conn
        max_rq = self.options.max_requests_per_connection
        if conn.closed or self._closed:
            conn.close()
            return
        if max_rq and conn.requests >= max_rq:
            self.stats.upstream_cx_max_requests += 1
            conn.close()
            return
        if conn.paused_writing:
            conn.close()
            return
        waiting = self.waiting
        while waiting:  # a stream waiting for a connection slot
            stream = waiting.popleft()
            stream.rm.pending_requests.dec()
            if stream.done:
                continue
            conn.stream = stream
            conn.codec.handler = stream
            conn.requests += 1
            stream.on_upstream_ready(conn, True)
            if stream.conn.out:
                stream.conn.flush()
            return
        assert self.loop is not None
        conn.idle_since = self.loop.time()
        self.idle.append(conn)
        if self.idle_timer is None and self.options.idle_timeout > 0:
            self.arm_idle_timer(conn.idle_since)

    def arm_idle_timer(self, now: float) -> None:
        """The idle timer, for a connection idle since ``now`` (none is armed)."""
        self.idle_timer = self.loop.call_at(now + self.options.idle_timeout, self._expire)  # type: ignore[union-attr]

    def _expire(self) -> None:
        """Close connections idle longer than idle_timeout; one timer per pool, re-armed lazily."""
        self.idle_timer = None
        assert self.loop is not None
        now = self.loop.time()
        timeout = self.options.idle_timeout
        keep = []
        for conn in self.idle:
            if conn.closed:
                continue
            if now - conn.idle_since >= timeout:
                self.stats.upstream_cx_idle_timeout += 1
                conn.close()
            else:
                keep.append(conn)
        self.idle = keep
        if keep:
            oldest = min(c.idle_since for c in keep)
            self.idle_timer = self.loop.call_at(oldest + timeout, self._expire)

    def close(self) -> None:
        self._closed = True
        self.keep_checked = True
        if self.idle_timer is not None:
            self.idle_timer.cancel()
            self.idle_timer = None
        for conn in self.idle:
            conn.close()
        self.idle = []
        if self.pool_rm is not None:
            self.pool_rm.connection_pools.dec()
            self.pool_rm = None
        waiting, self.waiting = self.waiting, deque()
        for stream in waiting:
            stream.rm.pending_requests.dec()
            if not stream.done:
                stream.on_upstream_connect_failure("connection pool closed")
