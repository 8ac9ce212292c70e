"""A LIFO keep-alive pool of upstream connections per host.

A connection serves one stream at a time. ``ConnectionPool.acquire(stream)`` hands the stream
an idle connection at once (``stream.on_upstream_ready(conn, reused=True)``) or starts one
connect task, the only task on the request path, and later calls ``on_upstream_ready`` or
``on_upstream_connect_failure``. Writes go out after the loop's round of events, as downstream
ones do (``common/output_batch.py``). The connection class comes with the pool's options: it
speaks the cluster's upstream protocol (``http/upstream_connection.py`` for HTTP/1.1).

Circuit breakers (the stream's ``rm``, its cluster's ResourceManager), as Envoy's HTTP/1 pool:
a request that needs a new connection takes a ``pending_requests`` slot until it has one (none
left: ``stream.on_upstream_overflow()``, 503 UO); a new connection takes a ``connections``
slot for its life. With none left the request waits for one of this pool's connections to be
released or closed, unless the pool has no connection at all (Envoy lets every pool have
one). The first connection a pool opens takes a ``connection_pools`` slot, kept until the pool
closes. The stream holds ``requests`` itself (router/stream.py).
"""

from __future__ import annotations

import asyncio
from bisect import bisect_right
from collections import deque
from math import floor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ..common.errors import contain
from ..common.histogram import LOWER
from ..common.stream_states import DONE

if TYPE_CHECKING:
    from .circuit_breaker import ResourceManager
    from .host_set import Host
    from ..common.stats import ClusterStats


class Connection(Protocol):
    """What the pool reads and sets of its connections (``PoolOptions.connection`` makes them)."""

    codec: Any
    stream: Any
    rm: ResourceManager | None
    closed: bool
    idle_since: float
    requests: int
    paused_writing: bool

    def close(self) -> None: ...
    def abort(self) -> None: ...


@dataclass(frozen=True, slots=True)
class PoolOptions:
    connect_timeout: float = 5.0
    idle_timeout: float = 3600.0  # Envoy's default for upstream connections
    max_requests_per_connection: int = 0  # 0: unlimited
    buffer_limit: int = 1024 * 1024  # per_connection_buffer_limit_bytes
    # The connection class, which speaks the cluster's upstream protocol: called with the pool
    # (http/upstream_connection.py's UpstreamConnection for HTTP/1.1).
    connection: Any = None


class ConnectionPool:
    __slots__ = ("host", "options", "stats", "loop", "idle", "cx_active", "idle_timer", "_closed", "waiting",
                 "connecting", "pool_rm")

    def __init__(self, host: Host, options: PoolOptions, stats: ClusterStats,
                 loop: asyncio.AbstractEventLoop | None) -> None:
        self.host = host
        self.options = options
        self.stats = stats
        self.loop = loop
        self.idle: list[Connection] = []
        self.cx_active = 0
        self.idle_timer: asyncio.TimerHandle | None = None
        self._closed = False
        self.waiting: deque[Any] = deque()  # streams waiting for a connection slot (max_connections)
        self.connecting = 0
        self.pool_rm: ResourceManager | None = None  # holds a ``connection_pools`` slot

    def acquire(self, stream: Any, fresh: bool = False) -> None:
        """Give ``stream`` a connection, now (reused) or when a new one is connected."""
        idle = self.idle
        while idle and not fresh:
            conn = idle.pop()  # LIFO: the most recently used is the most likely alive
            if conn.closed:
                continue
            stream.on_upstream_ready(conn, True)  # (the connection serves it from its head on)
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
            if stream.resp is DONE:
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
                    lambda: self.options.connection(self), host.address, host.port)
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
            conn.requests = 0  # (send_head counts the first)
            if self._closed:
                conn.close()
            if stream.resp is DONE:
                self.release(conn)
            else:
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

    def release(self, conn: Connection, now: float = 0.0) -> None:
        """Return a connection whose exchange completed cleanly (its codec let the stream go when
        the response ended); it is kept unless limits say no (``now``: the loop's time, when the
        caller has read it)."""
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
            if stream.resp is DONE:
                continue
            stream.on_upstream_ready(conn, True)
            if stream.conn.out:
                stream.conn.flush()
            return
        conn.idle_since = now or self.loop.time()  # type: ignore[union-attr]  # (it served a stream: a loop)
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
            if stream.resp is not DONE:
                stream.on_upstream_connect_failure("connection pool closed")
