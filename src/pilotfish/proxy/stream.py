"""One HTTP request/response exchange: the router filter joining downstream and upstream.

A Stream is driven by callbacks only: the downstream connection feeds it request events, the
upstream connection's codec feeds it response events. It builds the upstream request head once,
then moves body bytes through as they arrive. Local replies (404 NR, 503 UH/UF/UC, 504 UT,
redirects, direct responses) are written here.

Per-request cost matters here more than anywhere: attributes take class-level defaults so a new
stream sets only what differs, and heads are encoded straight from the codec's header list into
``name: value`` lines. A list of (name, value) tuples is built only when something configured
(header mutations, peer metadata exchange, use_remote_address, host rewrites) must edit it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from .access_log import DC, NC, NR, UC, UF, UH, UPE, UT
from .http1 import CHUNKED_END, STATUS_LINES, RequestHead, encode_chunk, status_line
from .route_table import DIRECT, FORWARD, header_value, strip_port
from .router import pick_weighted, redirect_location, rewrite_path, select_route
from .runtime import APPEND_IF_ABSENT, OVERWRITE

if TYPE_CHECKING:
    from .downstream import DownstreamConnection
    from .upstream import UpstreamConnection

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
# A hex digit → the RFC 4122 variant digit (10xx) with the same low two bits.
_VARIANT = bytes(b"89ab"[int(chr(c), 16) & 3] if chr(c) in "0123456789abcdef" else c for c in range(256))


class RequestIds:
    """Version-4 UUIDs for x-request-id, made 512 at a time from the injected random source.

    Formatting one UUID per request in Python costs more than a microsecond; a batch is one
    hex conversion and a few strided slice assignments, so a request pays a list pop.
    """

    __slots__ = ("randbytes", "ready")

    BATCH = 512

    def __init__(self, rng: Any) -> None:
        self.randbytes = rng.randbytes
        self.ready: list[bytes] = []

    def __call__(self) -> bytes:
        ready = self.ready
        if not ready:
            ready = self.ready = self._batch()
        return ready.pop()

    def _batch(self) -> list[bytes]:
        n = self.BATCH
        raw = bytearray(self.randbytes(18 * n).hex().encode())  # 36 hex digits per id
        dash = b"-" * n
        raw[8::36] = dash
        raw[13::36] = dash
        raw[18::36] = dash
        raw[23::36] = dash
        raw[14::36] = b"4" * n  # version 4
        raw[19::36] = raw[19::36].translate(_VARIANT)
        data = bytes(raw)
        ids = [data[i:i + 36] for i in range(0, 36 * n, 36)]
        ids.reverse()  # pop() hands them out in generation order
        return ids


def request_id(rng: Any) -> bytes:
    """One version-4 UUID from ``rng`` (for callers without a RequestIds batch)."""
    h = b"%032x" % rng.getrandbits(128)
    return b"%s-%s-4%s-%c%s-%s" % (h[:8], h[8:12], h[13:16], b"89ab"[h[16] & 3], h[17:20], h[20:])


def _lines(headers: list[tuple[bytes, bytes]]) -> list[bytes]:
    return [b": ".join(h) for h in headers]


class Stream:
    # Defaults shared by every stream; an instance stores only what it changes.
    route: Any = None
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
    replay_bytes = 0
    flags = 0
    status = 0
    complete_at = 0.0  # when the request was read completely (x-envoy-upstream-service-time counts from it)
    rx = 0
    tx = 0
    mode = _LENGTH
    upstream_keep_alive = False
    close_after = False
    deadline = 0.0
    timeout = 0.0
    resp_mutations: tuple = ()
    set_cookies: tuple = ()  # a cookie hash policy's generated Set-Cookie (hash_policy.SetCookie)
    request_id: bytes | None = None
    service_time: int | None = None
    original_path: bytes | None = None
    peer: Any = None  # the other side's Istio workload (peer_metadata.PeerInfo), when exchanged

    authority = b""
    # Set by DownstreamConnection.on_request_head when it makes the stream (no __init__ on the
    # request path): conn, head, hcm (the connection's at that moment) and start (loop time).
    conn: DownstreamConnection
    head: RequestHead
    hcm: Any
    start: float

    # ---- request side ------------------------------------------------------------------
    def begin(self) -> None:
        """Route the request and either reply locally or ask a pool for a connection."""
        hcm = self.hcm
        head = self.head
        authority = self.authority = head.authority
        if (head.upgrade or head.version != "1.1" or not authority or hcm.strip_any_host_port
                or hcm.strip_matching_host_port):
            authority = self._check_head(hcm, head, authority)
            if authority is None:
                return
        limit = hcm.max_request_bytes
        if limit and head.content_length is not None and head.content_length > limit:
            hcm.stats.downstream_rq_too_large += 1
            return self.local_reply(413, b"Payload Too Large", close=True)
        route = select_route(hcm.route_table, head, authority)
        if route is None:
            hcm.stats.no_route += 1
            self.flags |= NR
            return self.local_reply(404, b"")
        self.route = route
        action = route.action
        if route.action_kind != FORWARD:
            return self._reply_by_route(route, action, authority)
        entry = None
        if action.weighted:
            entry = pick_weighted(action, self.conn.rng)
            name = entry.cluster
        elif action.cluster_header:
            value = header_value(head.headers, action.cluster_header)
            name = value.decode("latin-1") if value else ""
        else:
            name = action.cluster
        cluster = hcm.clusters.get(name)
        if cluster is None:
            hcm.stats.no_cluster += 1
            self.flags |= NC
            return self.local_reply(action.not_found_status, b"")
        self.cluster = cluster
        host = cluster.choose_host(self)
        if host is None:
            cluster.stats.upstream_cx_none_healthy += 1
            self.flags |= UH
            return self.local_reply(503, b"no healthy upstream")
        self.host = host
        cstats = cluster.stats
        cstats.upstream_rq_total += 1
        cstats.upstream_rq_active += 1
        host.active_rq += 1
        self.timeout = action.timeout
        if entry is not None:
            self.resp_mutations = entry.response_mutations + route.response_mutations
            self.upstream_head = self._edited_upstream_head(route, action, entry, host)
        else:
            if route.response_mutations:
                self.resp_mutations = route.response_mutations
            if route.edits_request or hcm.use_remote_address or hcm.peer_exchange is not None:
                self.upstream_head = self._edited_upstream_head(route, action, None, host)
            else:
                self.upstream_head = self._upstream_head(action)
        if self.set_cookies:
            self.resp_mutations += self.set_cookies
        if head.expect_continue:
            self.conn.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if self.request_complete and self.timeout:  # a pipelined request read while it waited
            self.deadline = self.conn.loop.time() + self.timeout
            self.conn.arm(self.deadline)
        host.pool.acquire(self)

    def _check_head(self, hcm: Any, head: RequestHead, authority: bytes) -> bytes | None:
        """Upgrades, HTTP/1.0, a missing host, port stripping: the authority to route by, or
        None when a local reply was sent."""
        if head.upgrade:
            self.local_reply(403, b"", close=True)  # no upgrade_configs: Envoy's upgrade_failed
            return None
        if head.version == "1.0" and not hcm.accept_http_10:
            self.local_reply(426, b"", close=True)
            return None
        if not authority:
            if head.version == "1.0" and hcm.default_host_http10:
                authority = hcm.default_host_http10
            else:
                self.local_reply(400, b"missing host header", close=True)
                return None
        if hcm.strip_any_host_port:
            authority = strip_port(authority)
        elif hcm.strip_matching_host_port and authority.endswith(b":%d" % hcm.listener_port):
            authority = strip_port(authority)
        self.authority = authority
        return authority

    def _reply_by_route(self, route: Any, action: Any, authority: bytes) -> None:
        """direct_response and redirect routes."""
        stats = self.hcm.stats
        if route.action_kind == DIRECT:
            stats.rq_direct_response += 1
            return self.local_reply(action.status, action.body, mutations=route.response_mutations)
        stats.rq_redirect += 1
        head = self.head
        scheme = head.forwarded_proto or b"http"
        location = redirect_location(route, action, head, authority, scheme)
        return self.local_reply(action.status, b"", extra=((b"location", location),),
                                mutations=route.response_mutations)

    def _upstream_head(self, action: Any) -> bytes:
        """The request head when no configured edit needs a header list: lines straight away."""
        hcm = self.hcm
        head = self.head
        lines = [b": ".join(h) for h in head.headers if h[0] != b"host"]
        if hcm.generate_request_id:
            rid = head.request_id
            if rid is None:
                ids = self.conn.request_ids
                rid = ids.ready.pop() if ids.ready else ids()
                lines.append(b"x-request-id: " + rid)
            self.request_id = rid
        if head.forwarded_proto is None:
            lines.append(_XFP_HTTP)
        if self.timeout and not hcm.suppress_envoy_headers:
            lines.append(action.timeout_header)
        if head.chunked:
            lines.append(_TE_CHUNKED)
        path = head.path
        if action.rewrites_path:
            path = self._rewrite(path, lines, None)
        lines.append(_END)
        return b"%b %b HTTP/1.1\r\nhost: %b\r\n%b" % (head.method, path, self.authority, _CRLF.join(lines))

    def _rewrite(self, path: bytes, lines: list[bytes] | None,
                 headers: list[tuple[bytes, bytes]] | None) -> bytes:
        route = self.route
        action = route.action
        head = self.head
        new_path = rewrite_path(route, path, head.path_only, action.prefix_rewrite, action.regex_rewrite)
        if new_path == path:
            return path
        self.original_path = path
        if not self.hcm.suppress_envoy_headers:
            if lines is not None:
                lines.append(b"x-envoy-original-path: " + path)
            else:
                headers.append((b"x-envoy-original-path", path))  # type: ignore[union-attr]
        return new_path

    def _edited_upstream_head(self, route: Any, action: Any, entry: Any, host: Any) -> bytes:
        """The request head as a header list that mutations and filters may edit, then lines."""
        hcm = self.hcm
        head = self.head
        headers = [h for h in head.headers if h[0] != b"host"]
        headers.insert(0, (b"host", self.authority))
        if hcm.generate_request_id:
            rid = head.request_id
            if rid is None:
                rid = self.conn.request_ids()
                headers.append((b"x-request-id", rid))
            self.request_id = rid
        if hcm.use_remote_address:
            ip = self.conn.remote_ip
            xff = head.forwarded_for
            if head.forwarded_for is not None or head.forwarded_proto is not None:
                headers = [h for h in headers if h[0] not in _XFF_XFP]
            headers.append((b"x-forwarded-for", ip if xff is None else xff + b"," + ip))
            headers.append((b"x-forwarded-proto", b"http"))
        elif head.forwarded_proto is None:
            headers.append((b"x-forwarded-proto", b"http"))
        if self.timeout and not hcm.suppress_envoy_headers:
            headers.append((b"x-envoy-expected-rq-timeout-ms", b"%d" % int(self.timeout * 1000)))
        if head.chunked:
            headers.append((b"transfer-encoding", b"chunked"))
        if entry is not None:
            for m in entry.request_mutations:
                headers = m.apply(headers)
        for m in route.request_mutations:
            headers = m.apply(headers)
        new_host = action.host_rewrite
        if new_host is None and action.auto_host_rewrite:
            new_host = host.hostname
        if new_host is not None:
            headers[0] = (b"host", new_host)
        path = head.path
        if action.prefix_rewrite is not None or action.regex_rewrite is not None:
            path = self._rewrite(path, None, headers)
        if hcm.peer_exchange is not None:
            headers = hcm.peer_exchange.request_headers(self, headers)
        lines = _lines(headers)
        lines.append(_END)
        return b"%b %b HTTP/1.1\r\n%b" % (head.method, path, _CRLF.join(lines))

    def on_body(self, data: bytes) -> None:
        self.rx += len(data)
        limit = self.hcm.max_request_bytes
        if limit and self.rx > limit:
            if not self.response_started:
                self.hcm.stats.downstream_rq_too_large += 1
                self._drop_upstream()
                self.local_reply(413, b"Payload Too Large", close=True)
            return
        if self.done:
            return  # the response is complete: discard the rest of the body
        if self.head.chunked:
            data = encode_chunk(data)
        self._send(data)

    def on_request_end(self) -> None:
        self.request_complete = True
        if self.done:
            self.conn.stream_done(self)
            return
        if self.head.chunked:
            self._send(CHUNKED_END)
        conn = self.conn
        now = self.complete_at = conn.loop.time()
        if self.timeout and self.host is not None:
            deadline = self.deadline = now + self.timeout
            if conn.timer is None or conn.timer_when > deadline:
                conn.arm(deadline)

    def _send(self, data: bytes) -> None:
        up = self.upstream
        if up is not None:
            up.write(data)
            replay = self.replay
            if replay is not None:
                self.replay_bytes += len(data)
                if self.replay_bytes > self.hcm.buffer_limit:
                    self.replay = None
                else:
                    replay.append(data)
        elif not self.done:
            pending = self.pending
            if pending is None:
                pending = self.pending = []
            pending.append(data)
            self.pending_bytes += len(data)
            if self.pending_bytes > self.hcm.buffer_limit:
                self.conn.pause_reading_for_buffer(True)

    # ---- upstream side -----------------------------------------------------------------
    def on_upstream_ready(self, up: UpstreamConnection, reused: bool) -> None:
        self.upstream = up
        self.reused = reused
        pending = self.pending
        if pending:
            self.pending = None
            if self.upstream_head:
                pending.insert(0, self.upstream_head)
            data = b"".join(pending) if len(pending) != 1 else pending[0]
            if self.pending_bytes > self.hcm.buffer_limit:
                self.conn.pause_reading_for_buffer(False)
        else:
            data = self.upstream_head
        n = len(data)
        if reused and n <= self.hcm.buffer_limit:
            self.replay = [data]
            self.replay_bytes = n
        elif self.replay is not None:
            self.replay = None
        up.stats.upstream_cx_tx_bytes_total += n  # UpstreamConnection.write, inlined
        out = up.out
        if not out:
            dirty = up.batch.dirty
            if not dirty:
                up.batch.loop.call_soon(up.batch.run)
            dirty.append(up)
        out.append(data)
        if self.conn.write_paused:
            up.transport.pause_reading()

    def on_upstream_connect_failure(self, reason: str) -> None:
        if self.done:
            return
        self.flags |= UF
        self.local_reply(503, _RESET_BEFORE_HEADERS + b"connection failure, transport failure reason: "
                         + reason.encode())

    def on_response_head(self, status: int, headers: list[tuple[bytes, bytes]], keep_alive: bool,
                         content_length: int | None, chunked: bool) -> None:
        """The upstream's head (end-to-end headers only) → the client's head, as lines."""
        self.replay = None
        self.response_started = True
        self.status = status
        self.upstream_keep_alive = keep_alive
        hcm = self.hcm
        head = self.head
        if self.resp_mutations or hcm.peer_exchange is not None or hcm.always_set_request_id:
            data = self._edited_response_head(status, headers, content_length)
        else:
            t = hcm.server_transformation
            if t == OVERWRITE:
                lines = [b": ".join(h) for h in headers if h[0] != b"server"]
                lines.append(b"server: " + hcm.server_name)
            else:
                lines = _lines(headers)
                if t == APPEND_IF_ABSENT and header_value(headers, b"server") is None:
                    lines.append(b"server: " + hcm.server_name)
            if content_length is None and status != 204 and status != 304 and head.method != b"HEAD":
                if head.version == "1.1":
                    self.mode = _CHUNKED
                    lines.append(_TE_CHUNKED)
                else:
                    self.mode = _UNTIL_CLOSE
            conn = self.conn
            if not hcm.suppress_envoy_headers:
                ms = self.service_time = int((conn.loop.time() - (self.complete_at or self.start)) * 1000)
                lines.append(b"x-envoy-upstream-service-time: %d" % ms)
            max_rq = hcm.max_requests_per_connection
            if (not head.keep_alive or self.mode == _UNTIL_CLOSE or self.close_after or conn.shared.draining
                    or (max_rq and conn.requests >= max_rq)):
                self.close_after = True
                lines.append(_CONNECTION_CLOSE)
            elif head.version == "1.0":
                lines.append(_CONNECTION_KEEP_ALIVE)
            lines.append(_END)
            data = (STATUS_LINES.get(status) or status_line(status)) + _CRLF.join(lines)
        self.conn.out.append(data)  # flushed when the upstream read that brought it is done
        if head.method == b"HEAD":
            # httptools cannot be told a response has no body; end here and retire the connection.
            self._drop_upstream()
            self.finish()

    def _edited_response_head(self, status: int, headers: list[tuple[bytes, bytes]],
                              content_length: int | None) -> bytes:
        """The response head as a header list that filters and mutations may edit."""
        hcm = self.hcm
        head = self.head
        out = list(headers)
        if hcm.peer_exchange is not None:
            out = hcm.peer_exchange.response_headers(self, out)
        if content_length is not None or head.method == b"HEAD" or status == 204 or status == 304:
            pass
        elif head.version == "1.1":
            self.mode = _CHUNKED
            out.append((b"transfer-encoding", b"chunked"))
        else:
            self.mode = _UNTIL_CLOSE
        if not hcm.suppress_envoy_headers:
            self.service_time = int((self.conn.loop.time() - (self.complete_at or self.start)) * 1000)
            out.append((b"x-envoy-upstream-service-time", b"%d" % self.service_time))
        self._server_header(out)
        for m in self.resp_mutations:
            out = m.apply(out)
        if hcm.always_set_request_id and self.request_id is not None:
            out.append((b"x-request-id", self.request_id))
        lines = _lines(out)
        self._connection_header(lines, self.mode == _UNTIL_CLOSE)
        lines.append(_END)
        return status_line(status) + _CRLF.join(lines)

    def on_response_body(self, data: bytes) -> None:
        self.tx += len(data)
        if self.mode == _CHUNKED:
            data = encode_chunk(data)
        conn = self.conn
        out = conn.out  # DownstreamConnection.write, inlined
        out.append(data)
        if len(out) > 16 and not conn.in_feed:
            conn.flush()

    def on_response_end(self) -> None:
        if self.mode == _CHUNKED:
            self.conn.write(CHUNKED_END)
        up = self.upstream
        self.upstream = None
        if up is not None:
            if self.upstream_keep_alive and self.request_complete:
                up.pool.release(up)
            else:
                up.detach()
                up.close()
        self.finish()

    def on_upstream_reset(self, up: UpstreamConnection, protocol_error: bool) -> None:
        """The upstream connection closed (or sent garbage) while serving this stream."""
        self.upstream = None
        if self.done:
            return
        if not self.response_started:
            if protocol_error:
                self.flags |= UPE
                self.local_reply(502, _RESET_BEFORE_HEADERS + b"protocol error")
            elif self.reused and self.replay is not None and not self.retried:
                # A keep-alive connection the upstream had already closed: send again, once, on
                # a fresh connection. Nothing of a response was seen, so nothing is duplicated.
                self.retried = True
                self.cluster.stats.upstream_rq_retry += 1
                self.pending = self.replay
                self.pending_bytes = 0
                self.replay = None
                self.upstream_head = b""
                self.host.pool.acquire(self, fresh=True)
            else:
                self.flags |= UC
                self.local_reply(503, _RESET_BEFORE_HEADERS + b"connection termination")
            return
        if not protocol_error and self.mode != _LENGTH and not up.codec.has_framing:
            # A response with neither Content-Length nor chunked framing ends with the connection.
            self.on_response_end_after_close()
            return
        self.flags |= UPE if protocol_error else UC
        self.conn.abort()
        self.finish()

    def on_response_end_after_close(self) -> None:
        if self.mode == _CHUNKED:
            self.conn.write(CHUNKED_END)
        self.close_after = self.close_after or self.mode == _UNTIL_CLOSE
        self.finish()

    def on_timeout(self) -> None:
        if self.done:
            return
        self.flags |= UT
        if self.cluster is not None:
            self.cluster.stats.upstream_rq_timeout += 1
        self._drop_upstream()
        if not self.response_started:
            self.local_reply(504, b"upstream request timeout")
        else:
            self.conn.abort()
            self.finish()

    def on_downstream_reset(self) -> None:
        if self.done:
            return
        self.flags |= DC
        self._drop_upstream()
        self.finish()

    def _drop_upstream(self) -> None:
        up = self.upstream
        if up is not None:
            self.upstream = None
            up.detach()
            up.close()

    # ---- responses -----------------------------------------------------------------------
    def _server_header(self, out: list[tuple[bytes, bytes]]) -> None:
        t = self.hcm.server_transformation
        if t == OVERWRITE:
            for i, h in enumerate(out):
                if h[0] == b"server":
                    out[i] = (b"server", self.hcm.server_name)
                    break
            else:
                out.append((b"server", self.hcm.server_name))
        elif t == APPEND_IF_ABSENT:
            if header_value(out, b"server") is None:
                out.append((b"server", self.hcm.server_name))

    def _connection_header(self, lines: list[bytes], until_close: bool) -> None:
        conn = self.conn
        head = self.head
        max_rq = self.hcm.max_requests_per_connection
        if (until_close or not head.keep_alive or conn.shared.draining or self.close_after
                or (max_rq and conn.requests >= max_rq)):
            self.close_after = True
            lines.append(_CONNECTION_CLOSE)
        elif head.version == "1.0":
            lines.append(_CONNECTION_KEEP_ALIVE)

    def local_reply(self, status: int, body: bytes, *, close: bool = False,
                    extra: tuple[tuple[bytes, bytes], ...] = (), mutations: tuple = ()) -> None:
        """Answer from the proxy itself (Envoy's sendLocalReply)."""
        if self.response_started:
            self.conn.abort()
            self.finish()
            return
        self.status = status
        self.response_started = True
        self.close_after = close
        out = [(b"content-length", b"%d" % len(body))]
        if body:
            out.append(_TEXT_PLAIN)
        out.extend(extra)
        self._server_header(out)
        for m in mutations:
            out = m.apply(out)
        lines = _lines(out)
        self._connection_header(lines, False)
        lines.append(_END)
        data = status_line(status) + _CRLF.join(lines)
        if body and self.head.method != b"HEAD":
            self.tx = len(body)
            data += body
        self.conn.write(data)
        self.finish()

    def finish(self) -> None:
        if self.done:
            return
        self.done = True
        if self.pending is not None:
            self.pending = None
        status = self.status
        hcm = self.hcm
        stats = hcm.stats
        stats.downstream_rq_active -= 1
        stats.downstream_rq_completed += 1
        stats.rq_class[status // 100] += 1
        host = self.host
        if host is not None:
            host.active_rq -= 1
            cstats = self.cluster.stats
            cstats.upstream_rq_active -= 1
            cstats.upstream_rq_completed += 1
            if 100 <= status < 600:
                cstats.rq_code[status] += 1
        if hcm.istio_stats is not None:
            hcm.istio_stats.record(self)
        if hcm.access_logs:
            entry = self._log_entry()
            for sink in hcm.access_logs:
                sink.record(entry)
        self.conn.stream_done(self)

    def _log_entry(self) -> tuple:
        head = self.head
        headers = head.headers
        now = self.conn.loop.time()
        start_wall = time.time() - (now - self.start)
        host = self.host
        return (start_wall, head.method, self.original_path or head.path, head.version, self.status,
                self.flags, self.rx, self.tx, int((now - self.start) * 1000), self.service_time,
                head.forwarded_for, header_value(headers, b"user-agent"),
                self.request_id or head.request_id, self.authority,
                host.label if host is not None else None)
