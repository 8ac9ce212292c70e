"""Upstream HTTP/1.1 connections and a LIFO keep-alive pool per host.

A connection serves one stream at a time. ``ConnectionPool.acquire(stream)`` hands the stream
an idle connection at once (``stream.on_upstream_ready(conn, reused=True)``) or starts one
connect task, the only task on the request path, and later calls ``on_upstream_ready`` or
``on_upstream_connect_failure``. Writes go out after the loop's round of events, as downstream
ones do (``downstream.OutputBatch``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .downstream import output_batch
from .http1 import Http1ClientCodec, HttpParserError

if TYPE_CHECKING:
    from .cluster import Host
    from .stats import ClusterStats


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
                 "paused_writing", "stats", "out", "batch")

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

    def data_received(self, data: bytes) -> None:
        stream = self.stream
        if stream is None:  # bytes on an idle connection: nothing can be pending; drop it
            self.close()
            return
        self.stats.upstream_cx_rx_bytes_total += len(data)
        try:
            self.parse(data)
        except HttpParserError as exc:
            self.codec.error(exc)  # re-raises what a callback raised
            self.stats.upstream_cx_protocol_error += 1
            self.close()
            stream = self.stream
            if stream is not None:
                self.detach()
                stream.on_upstream_reset(self, protocol_error=True)
        conn = stream.conn
        if conn.out:
            conn.flush()

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed:
            self.closed = True
        stats = self.stats
        stats.upstream_cx_active -= 1
        self.pool.cx_active -= 1
        stats.upstream_cx_destroy += 1
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
    __slots__ = ("host", "options", "stats", "loop", "idle", "cx_active", "_timer", "_closed")

    def __init__(self, host: Host, options: PoolOptions, stats: ClusterStats,
                 loop: asyncio.AbstractEventLoop | None) -> None:
        self.host = host
        self.options = options
        self.stats = stats
        self.loop = loop
        self.idle: list[UpstreamConnection] = []
        self.cx_active = 0
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False

    def acquire(self, stream: Any, fresh: bool = False) -> None:
        """Give ``stream`` a connection, now (reused) or when a new one is connected."""
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
        self.stats.upstream_rq_pending_total += 1
        loop = self.loop or asyncio.get_running_loop()
        self.loop = loop
        loop.create_task(self._connect(stream))

    async def _connect(self, stream: Any) -> None:
        stats = self.stats
        stats.upstream_cx_total += 1
        loop = self.loop
        assert loop is not None
        host = self.host
        try:
            async with asyncio.timeout(self.options.connect_timeout):
                _, conn = await loop.create_connection(
                    lambda: UpstreamConnection(self), host.address, host.port)
        except TimeoutError:
            stats.upstream_cx_connect_fail += 1
            stats.upstream_cx_connect_timeout += 1
            stream.on_upstream_connect_failure("connection timeout")
        except OSError as exc:
            stats.upstream_cx_connect_fail += 1
            stream.on_upstream_connect_failure(exc.strerror or "connection failure")
        else:
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

    def release(self, conn: UpstreamConnection) -> None:
        """Return a connection whose exchange completed cleanly; it is kept unless limits say no."""
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
        assert self.loop is not None
        conn.idle_since = self.loop.time()
        self.idle.append(conn)
        if self._timer is None and self.options.idle_timeout > 0:
            self._timer = self.loop.call_at(conn.idle_since + self.options.idle_timeout, self._expire)

    def _expire(self) -> None:
        """Close connections idle longer than idle_timeout; one timer per pool, re-armed lazily."""
        self._timer = None
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
            self._timer = self.loop.call_at(oldest + timeout, self._expire)

    def close(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for conn in self.idle:
            conn.close()
        self.idle = []
