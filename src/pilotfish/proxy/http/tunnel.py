"""Upgrades (WebSocket and others) and CONNECT: after the handshake, a raw byte tunnel.

An Upgrade request is admitted when the HCM's ``upgrade_configs`` enable its type, unless the
route's ``upgrade_configs`` override that (Envoy's rule); otherwise 403. It is forwarded with its
``Connection: upgrade`` / ``Upgrade`` headers; on the upstream's 101 both transports get a
``TunnelSide`` protocol (``transport.set_protocol``) that copies bytes to the other side, with
back-pressure (a side whose writes are paused pauses reading on its peer) and half-close. The
upstream connection of a tunnel never goes back to its pool.

As Envoy's upgraded streams, the stream lives as long as the tunnel: it stays an active request
(and holds its circuit-breaker slot) and is counted and logged when either side closes, with the
tunnelled bytes as its bytes received and sent; those bytes also count in
``downstream_cx_rx/tx_bytes_total`` and ``upstream_cx_rx/tx_bytes_total``. The stream idle
timeout applies to it: the route's ``idle_timeout`` when set (0: none), else the connection
manager's ``stream_idle_timeout`` (5 minutes by default). No byte either way for that long
resets both connections (flag SI, ``downstream_rq_idle_timeout``).

CONNECT (a route whose ``upgrade_configs`` enable CONNECT, matched by ``connect_matcher``) is
terminated here as Envoy does by default: 200 once TCP to the routed host is open, then the
payload travels over that raw TCP connection.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..common.response_flags import SI
from .http1_encode import encode_response_head
from ..common.stream_states import DONE, RESPONDING

_CONNECT = b"connect"
_CONNECTING: set[asyncio.Task] = set()


class Tunnel:
    """What both sides of one tunnel share: the stream (logged and counted when the tunnel
    closes), the byte counters, and the idle timer (none when the timeout is 0)."""

    __slots__ = ("stream", "hstats", "cstats", "timeout", "last", "timer", "time", "down", "up")

    def __init__(self, stream: Any, timeout: float) -> None:
        self.stream = stream
        self.hstats = stream.hcm.stats
        self.cstats = stream.cluster.stats
        self.timeout = timeout
        self.time = stream.conn.loop.time
        self.last = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.down: TunnelSide | None = None
        self.up: TunnelSide | None = None

    def start(self) -> None:
        if self.timeout:
            self.last = now = self.time()
            self.timer = self.stream.conn.loop.call_at(now + self.timeout, self._check)

    def _check(self) -> None:
        """No byte either way for ``timeout``: Envoy's stream idle timeout on an upgraded
        stream resets it (flag SI, ``downstream_rq_idle_timeout``): both connections close."""
        self.timer = None
        idle_at = self.last + self.timeout
        if self.time() < idle_at:
            self.timer = self.stream.conn.loop.call_at(idle_at, self._check)
            return
        self.hstats.downstream_rq_idle_timeout += 1
        self.stream.flags |= SI
        for side in (self.down, self.up):
            if side is not None and not side.lost:
                side.transport.abort()

    def side_lost(self) -> None:
        """Either side closed (the other is being closed): the exchange is over."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        stream = self.stream
        if stream.resp is not DONE:
            stream.finish()  # stats, Istio metrics, access log: with the tunnelled bytes


class TunnelSide(asyncio.Protocol):
    """One transport of a tunnel; what it reads is written to ``peer``'s transport."""

    __slots__ = ("transport", "peer", "on_lost", "lost", "eof_out", "tunnel", "downstream")

    def __init__(self, transport: Any, on_lost: Any) -> None:
        self.transport = transport
        self.peer: TunnelSide | None = None
        self.on_lost = on_lost  # called once with the exception when this side's transport closes
        self.lost = False
        self.eof_out = False  # EOF written to this side's transport
        self.tunnel: Tunnel | None = None
        self.downstream = False  # the client's side

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        n = len(data)
        t = self.tunnel
        peer = self.peer
        sent = peer is not None and not peer.lost
        if t is not None:
            if t.timer is not None:
                t.last = t.time()
            if self.downstream:  # client → upstream
                t.stream.rx += n
                t.hstats.downstream_cx_rx_bytes_total += n
                if sent:
                    t.cstats.upstream_cx_tx_bytes_total += n
            else:  # upstream → client
                t.stream.tx += n
                t.cstats.upstream_cx_rx_bytes_total += n
                if sent:
                    t.hstats.downstream_cx_tx_bytes_total += n
        if sent:
            peer.transport.write(data)  # type: ignore[union-attr]

    def eof_received(self) -> bool:
        peer = self.peer
        if peer is None or peer.lost:
            return False
        if not self.eof_out and peer.transport.can_write_eof():
            peer.transport.write_eof()  # half-close: the other direction may go on
            peer.eof_out = True
            return True
        peer.transport.close()  # both directions are over
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        peer = self.peer
        if peer is not None and not peer.lost:
            peer.transport.close()
        if self.tunnel is not None:
            self.tunnel.side_lost()
        if self.on_lost is not None:
            on_lost, self.on_lost = self.on_lost, None
            on_lost(exc)

    def pause_writing(self) -> None:
        if self.peer is not None and not self.peer.lost:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and not self.peer.lost:
            self.peer.transport.resume_reading()


def idle_timeout(stream: Any) -> float:
    """The tunnel's idle timeout: the route's ``idle_timeout`` when set (0: none), else the
    connection manager's ``stream_idle_timeout`` (Envoy's default 5 minutes)."""
    action = stream.route.action
    if action.idle_timeout_set:
        return float(action.idle_timeout)
    return float(stream.hcm.stream_idle_timeout)


def admit(stream: Any, route: Any) -> bool:
    """Whether the upgrade request of ``stream`` may go on; sends 403 when not."""
    head = stream.head
    proto = _CONNECT if head.method == b"CONNECT" else head.upgrade_proto.lower()
    enabled = stream.hcm.upgrades.get(proto, False)
    overrides = getattr(route.action, "upgrades", None)
    if overrides:
        enabled = overrides.get(proto, enabled)
    if not enabled or (proto != _CONNECT and not head.upgrade_proto):
        stream.local_reply(403, b"", close=True)  # Envoy's upgrade_failed
        return False
    if proto != _CONNECT:
        head.headers.append((b"connection", b"upgrade"))
        head.headers.append((b"upgrade", head.upgrade_proto))
    conn = stream.conn
    conn.parse = stream.on_body  # bytes after the head are tunnel payload, buffered until open
    stream.close_after = True  # an upgrade the upstream declines ends the connection with its answer
    return True


def downstream_upgraded(conn: Any, data: bytes, offset: int) -> None:
    """The request parser stopped at the first tunnelled byte; hand the rest on."""
    # (bound methods are made per access: compare with ==, not is)
    if offset < len(data) and conn.parse != conn.codec.parser.feed_data:
        conn.parse(data[offset:])


def upstream_upgraded(up: Any, data: bytes, offset: int) -> None:
    """The response parser stopped after a 101; bytes after it belong to the client."""
    side = up.transport.get_protocol() if up.transport is not None else None
    if isinstance(side, TunnelSide) and offset < len(data):
        rest = data[offset:]
        if side.tunnel is not None:  # UpstreamConnection.data_received counted them already
            side.tunnel.cstats.upstream_cx_rx_bytes_total -= len(rest)
        side.data_received(rest)


def _join(stream: Any, up_transport: Any, on_up_lost: Any) -> None:
    """Swap both transports over to TunnelSide protocols. The HTTP connection is done; the
    stream stays open (an active request, as Envoy's) until the tunnel closes."""
    conn = stream.conn
    pending = stream.pending
    stream.pending = None
    conn.flush_now()
    if conn.timer is not None:
        conn.timer.cancel()
        conn.timer = None
    conn.closing = True  # no timers, no stream_done bookkeeping, no more parsing
    tunnel = Tunnel(stream, idle_timeout(stream))
    down = TunnelSide(conn.transport, conn.connection_lost)
    down.downstream = True
    upside = up_transport.get_protocol()
    if isinstance(upside, TunnelSide):  # CONNECT: made by create_connection
        upside.on_lost = on_up_lost
    else:
        upside = TunnelSide(up_transport, on_up_lost)
        up_transport.set_protocol(upside)
    down.peer, upside.peer = upside, down
    down.tunnel = upside.tunnel = tunnel
    tunnel.down, tunnel.up = down, upside
    conn.transport.set_protocol(down)
    if pending:
        data = b"".join(pending)
        tunnel.cstats.upstream_cx_tx_bytes_total += len(data)
        up_transport.write(data)
    conn.reads.set(conn.reads.reasons, False)  # the tunnel does its own flow control
    tunnel.start()


def on_switching(stream: Any, headers: list[tuple[bytes, bytes]]) -> None:
    """The upstream answered 101: send the client its 101, then tunnel."""
    up = stream.upstream
    head = stream.head
    if up is None or stream.resp is DONE:
        return
    if not head.upgrade:  # a 101 nobody asked for: a protocol error, as any other bad framing
        up.stats.upstream_cx_protocol_error += 1
        stream.upstream = None
        up.detach()
        up.close()
        stream.on_upstream_reset(up, protocol_error=True)
        return
    stream.upstream = None
    up.detach()
    stream.resp = RESPONDING
    stream.status = 101
    stream.conn.write(encode_response_head(101, headers + [
        (b"connection", b"upgrade"), (b"upgrade", head.upgrade_proto)]))
    pending = up.out
    if pending:
        up.flush_now()
    _join(stream, up.transport, up.connection_lost)


def connect(stream: Any, host: Any) -> None:
    """Terminate CONNECT: open TCP to ``host`` (one task), answer 200, tunnel."""
    task = stream.conn.loop.create_task(_connect(stream, host))
    _CONNECTING.add(task)  # the loop holds tasks weakly
    task.add_done_callback(_CONNECTING.discard)


async def _connect(stream: Any, host: Any) -> None:
    loop = stream.conn.loop
    cstats = stream.cluster.stats
    cstats.upstream_cx_total += 1
    try:
        async with asyncio.timeout(host.pool.options.connect_timeout):
            transport, _ = await loop.create_connection(
                lambda: TunnelSide(None, None), host.address, host.port)
    except (OSError, TimeoutError) as exc:
        cstats.upstream_cx_connect_fail += 1
        if isinstance(exc, TimeoutError):
            cstats.upstream_cx_connect_timeout += 1
        stream.on_upstream_connect_failure(type(exc).__name__)
        stream.conn.flush()
        return
    if stream.resp is DONE:
        transport.close()
        return
    cstats.upstream_cx_active += 1

    def lost(exc: Exception | None) -> None:
        cstats.upstream_cx_active -= 1
        cstats.upstream_cx_destroy += 1

    stream.resp = RESPONDING
    stream.status = 200
    stream.conn.write(encode_response_head(200, []))
    _join(stream, transport, lost)
