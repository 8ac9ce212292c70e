"""One upstream HTTP/1.1 connection: the pool's (upstream/pool.py) connection class for
HTTP/1.1 clusters. A stream given the connection sends its request through ``send_head /
send_body / send_end`` (codec.RequestSender), which write the HTTP/1.1 bytes; from its head
until its response ends, the codec delivers the response events to that stream directly, and
while the connection is idle, to the connection, which drops them."""

from __future__ import annotations

import asyncio
from bisect import bisect_right
from math import floor
from typing import TYPE_CHECKING, Any

from ..common.errors import contain
from ..common.histogram import LOWER
from ..common.output_batch import output_batch
from . import tunnel
from .flow_control import ReadPause
from .http1_client import ExcessResponseError, Http1ClientCodec
from .http1_encode import (CHUNKED_END, HEAD_ENDS, JOIN_FIELD, TE_CHUNKED, encode_chunk, encode_last_chunk,
                           encode_request_head)
from .http1_server import HttpParserError, HttpParserUpgrade
from ..common.stream_states import WAITING

if TYPE_CHECKING:
    from ..upstream.circuit_breaker import ResourceManager
    from ..upstream.pool import ConnectionPool

_CRLF = b"\r\n"
_HTTP11 = b" HTTP/1.1\r\n"


class UpstreamConnection(asyncio.Protocol):
    """One upstream HTTP/1.1 connection. While it serves a stream, its codec delivers response
    events to that stream directly (its ``handler``, from ``send_head`` until the response ends
    or ``detach``); when idle, to the connection, which drops them. The codec's handler is the
    one record of the stream served (``stream``)."""

    __slots__ = ("pool", "transport", "codec", "parse", "requests", "closed", "idle_since",
                 "paused_writing", "stats", "out", "batch", "rm", "opened_at", "reads", "chunked")

    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool
        self.stats = pool.stats
        self.transport: asyncio.Transport | None = None
        self.codec = Http1ClientCodec(self)
        self.parse = self.codec.parser.feed_data  # the codec's feed without a Python frame
        self.requests = 0
        self.closed = False
        self.idle_since = 0.0
        self.paused_writing = False
        self.reads = ReadPause()  # paused while the client's writes are backed up (flow_control.py)
        self.out: list[bytes] = []  # written after this round of events (downstream.OutputBatch)
        self.batch = output_batch(pool.loop or asyncio.get_running_loop())
        self.rm: ResourceManager | None = None  # holds one of its ``connections`` slots
        self.opened_at = 0.0
        self.chunked = False  # the request being sent is chunked

    @property
    def stream(self) -> Any:
        """The stream served (None while idle)."""
        handler = self.codec.handler
        return None if handler is self else handler

    def detach(self) -> None:
        """Serve no stream: response events come here, and are dropped (the codec does so
        itself when a response ends)."""
        self.codec.handler = self

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = self.reads.transport = transport  # type: ignore[assignment]
        self.stats.upstream_cx_active += 1
        self.pool.cx_active += 1
        self.opened_at = self.batch.loop.time()

    def data_received(self, data: bytes) -> None:
        stream = self.codec.handler
        if stream is self:  # bytes on an idle connection: nothing can be pending; drop it
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
            self._framing_error(None, stream=stream)  # (its response may have ended: the codec let go)
        else:
            codec = self.codec
            if codec.ended and codec.excess():  # a partial head followed a complete response
                self._framing_error(None, excess=True)

    def _framing_error(self, exc: Exception | None, excess: bool = False, stream: Any = None) -> None:
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
        served = self.stream
        if stream is None or stream is served:
            stream = served
            if stream is None:
                return
            self.detach()
        stream.on_upstream_reset(self, protocol_error=not (excess and stream.reused and stream.resp is WAITING))

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

    # codec.RequestSender
    def send_head(self, stream: Any, method: bytes, path: bytes, headers: list[tuple[bytes, bytes]], chunked: bool,
                  end_stream: bool) -> None:
        self.codec.handler = stream  # served until its response ends (the codec delivers its events to it)
        self.requests += 1
        self.chunked = chunked  # (HTTP/1.1 needs no end for a request without a body: end_stream)
        codec_lines = TE_CHUNKED if chunked else 0
        # http1_encode.encode_request_head's join (a request always has its host field) and then
        # write()'s body, inlined: 0.4k instructions less per request (137.9k against 137.5k,
        # benchmarks/request_path_instructions.py).
        data = (b"".join((method, b" ", path, _HTTP11, _CRLF.join(map(JOIN_FIELD, headers)), HEAD_ENDS[codec_lines]))
                if headers else encode_request_head(method, path, headers, codec_lines))
        self.stats.upstream_cx_tx_bytes_total += len(data)
        out = self.out
        if not out:
            self.batch.add(self)
        out.append(data)

    def send_body(self, data: bytes) -> None:
        self.write(encode_chunk(data) if self.chunked else data)

    def send_end(self, trailers: list[tuple[bytes, bytes]] | None) -> None:
        if self.chunked:
            self.chunked = False
            self.write(CHUNKED_END if trailers is None else encode_last_chunk(trailers))

    def write(self, data: bytes) -> None:
        self.stats.upstream_cx_tx_bytes_total += len(data)
        out = self.out
        if not out:
            self.batch.add(self)
        out.append(data)

    def flush_now(self) -> None:
        out = self.out
        if out and not self.closed:
            self.transport.write(b"".join(out))  # type: ignore[union-attr]  # (of one piece: that piece, not a copy)
        out.clear()

    def close(self) -> None:
        """Close, dropping output not yet written (the exchange it belonged to is over)."""
        self.out.clear()
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.close()
