"""One HTTP request/response exchange: the router filter joining downstream and upstream.

A Stream is driven by callbacks only: the downstream connection feeds it request events, the
upstream connection feeds it response events. It builds the upstream request head once, then
moves body bytes through as they arrive. Local replies (404 NR, 503 UH/UF/UC, 504 UT, redirects,
direct responses) are written here.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from .access_log import DC, NC, NR, UC, UF, UH, UPE, UT
from .http1 import CHUNKED_END, HOP_BY_HOP, RequestHead, encode_chunk, encode_request_head, encode_response_head
from .route_table import DIRECT, REDIRECT, header_value, strip_port
from .router import pick_weighted, redirect_location, rewrite_path, select_route
from .runtime import APPEND_IF_ABSENT, OVERWRITE

if TYPE_CHECKING:
    from .downstream import DownstreamConnection
    from .upstream import UpstreamConnection

# Response body framing towards the client.
_LENGTH, _CHUNKED, _UNTIL_CLOSE = range(3)
_RESET_BEFORE_HEADERS = b"upstream connect error or disconnect/reset before headers. reset reason: "
_TEXT_PLAIN = (b"content-type", b"text/plain")


def request_id(rng: Any) -> bytes:
    """A version-4 UUID from the injected random source."""
    h = b"%032x" % rng.getrandbits(128)
    return b"%s-%s-4%s-%c%s-%s" % (h[:8], h[8:12], h[13:16], b"89ab"[h[16] & 3], h[17:20], h[20:])


class Stream:
    __slots__ = (
        "conn", "head", "hcm", "route", "cluster", "host", "upstream", "reused", "retried",
        "request_complete", "response_started", "done", "pending", "pending_bytes",
        "upstream_head", "replay", "replay_bytes", "flags", "status", "start", "sent_at", "rx",
        "tx", "mode", "upstream_keep_alive", "close_after", "deadline", "timeout",
        "resp_mutations", "authority", "request_id", "service_time", "original_path",
    )

    def __init__(self, conn: DownstreamConnection, head: RequestHead) -> None:
        self.conn = conn
        self.head = head
        self.hcm = conn.hcm
        self.route = None
        self.cluster = None
        self.host = None
        self.upstream: UpstreamConnection | None = None
        self.reused = False
        self.retried = False
        self.request_complete = False
        self.response_started = False
        self.done = False
        self.pending: list[bytes] | None = []  # encoded body waiting for an upstream connection
        self.pending_bytes = 0
        self.upstream_head = b""
        self.replay: list[bytes] | None = None  # what went out on a reused connection, for one retry
        self.replay_bytes = 0
        self.flags = 0
        self.status = 0
        self.start = conn.loop.time()
        self.sent_at = 0.0
        self.rx = 0
        self.tx = 0
        self.mode = _LENGTH
        self.upstream_keep_alive = False
        self.close_after = False
        self.deadline = 0.0
        self.timeout = 0.0
        self.resp_mutations: tuple = ()
        self.authority = head.authority
        self.request_id: bytes | None = None
        self.service_time: int | None = None
        self.original_path: bytes | None = None

    # ---- request side ------------------------------------------------------------------
    def begin(self) -> None:
        """Route the request and either reply locally or ask a pool for a connection."""
        hcm = self.hcm
        head = self.head
        stats = hcm.stats
        if head.upgrade:
            return self.local_reply(403, b"", close=True)  # no upgrade_configs: Envoy's upgrade_failed
        if head.version == "1.0" and not hcm.accept_http_10:
            return self.local_reply(426, b"", close=True)
        authority = head.authority
        if not authority:
            if head.version == "1.0" and hcm.default_host_http10:
                authority = hcm.default_host_http10
            else:
                return self.local_reply(400, b"missing host header", close=True)
        if hcm.strip_any_host_port:
            authority = strip_port(authority)
        elif hcm.strip_matching_host_port and authority.endswith(b":%d" % hcm.listener_port):
            authority = strip_port(authority)
        self.authority = authority
        limit = hcm.max_request_bytes
        if limit and head.content_length is not None and head.content_length > limit:
            stats.downstream_rq_too_large += 1
            return self.local_reply(413, b"Payload Too Large", close=True)
        route = select_route(hcm.route_table, head, authority)
        if route is None:
            stats.no_route += 1
            self.flags |= NR
            return self.local_reply(404, b"")
        self.route = route
        action = route.action
        if route.action_kind == DIRECT:
            stats.rq_direct_response += 1
            return self.local_reply(action.status, action.body, mutations=route.response_mutations)
        if route.action_kind == REDIRECT:
            stats.rq_redirect += 1
            scheme = header_value(head.headers, b"x-forwarded-proto") or b"http"
            location = redirect_location(route, action, head, authority, scheme)
            return self.local_reply(action.status, b"", extra=((b"location", location),),
                                    mutations=route.response_mutations)
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
            stats.no_cluster += 1
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
        self.resp_mutations = (entry.response_mutations + route.response_mutations) if entry else route.response_mutations
        self.upstream_head = self._upstream_head(route, action, entry, host)
        if head.expect_continue:
            self.conn.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if self.request_complete and self.timeout:
            self.deadline = self.conn.loop.time() + self.timeout
            self.conn.arm(self.deadline)
        host.pool.acquire(self)

    def _upstream_head(self, route: Any, action: Any, entry: Any, host: Any) -> bytes:
        hcm = self.hcm
        head = self.head
        drop = HOP_BY_HOP
        connection = header_value(head.headers, b"connection")
        if connection is not None:
            drop = drop | {t.strip().lower() for t in connection.split(b",")}
        headers = [h for h in head.headers if h[0] not in drop and h[0] != b"expect" and h[0] != b"host"]
        headers.insert(0, (b"host", self.authority))
        if hcm.generate_request_id:
            rid = header_value(headers, b"x-request-id")
            if rid is None:
                rid = request_id(self.conn.rng)
                headers.append((b"x-request-id", rid))
            self.request_id = rid
        if hcm.use_remote_address:
            xff = header_value(headers, b"x-forwarded-for")
            ip = self.conn.remote_ip
            if xff is None:
                headers.append((b"x-forwarded-for", ip))
            else:
                headers = [h for h in headers if h[0] != b"x-forwarded-for"]
                headers.append((b"x-forwarded-for", xff + b"," + ip))
            headers = [h for h in headers if h[0] != b"x-forwarded-proto"]
            headers.append((b"x-forwarded-proto", b"http"))
        elif header_value(headers, b"x-forwarded-proto") is None:
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
            new_path = rewrite_path(route, path, head.path_only, action.prefix_rewrite, action.regex_rewrite)
            if new_path != path:
                self.original_path = path
                if not hcm.suppress_envoy_headers:
                    headers.append((b"x-envoy-original-path", path))
                path = new_path
        return encode_request_head(head.method, path, headers)

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
        if self.timeout and self.host is not None:
            self.deadline = self.conn.loop.time() + self.timeout
            self.conn.arm(self.deadline)

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
        elif self.pending is not None:
            self.pending.append(data)
            self.pending_bytes += len(data)
            if self.pending_bytes > self.hcm.buffer_limit:
                self.conn.pause_reading_for_buffer(True)

    # ---- upstream side -----------------------------------------------------------------
    def on_upstream_ready(self, up: UpstreamConnection, reused: bool) -> None:
        self.upstream = up
        self.reused = reused
        pending = self.pending
        self.pending = None
        if self.upstream_head:
            pending.insert(0, self.upstream_head)  # type: ignore[union-attr]
        data = b"".join(pending) if len(pending) != 1 else pending[0]  # type: ignore[arg-type]
        if reused and len(data) <= self.hcm.buffer_limit:
            self.replay = [data]
            self.replay_bytes = len(data)
        else:
            self.replay = None
        if self.pending_bytes > self.hcm.buffer_limit:
            self.conn.pause_reading_for_buffer(False)
        self.sent_at = self.conn.loop.time()
        up.write(data)
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
        self.replay = None
        self.response_started = True
        self.status = status
        self.upstream_keep_alive = keep_alive
        hcm = self.hcm
        head = self.head
        conn = self.conn
        out = [h for h in headers if h[0] not in HOP_BY_HOP]
        no_body = head.method == b"HEAD" or status == 204 or status == 304
        if no_body or content_length is not None:
            self.mode = _LENGTH
        elif head.version == "1.1":
            self.mode = _CHUNKED
            out.append((b"transfer-encoding", b"chunked"))
        else:
            self.mode = _UNTIL_CLOSE
        if not hcm.suppress_envoy_headers:
            self.service_time = int((conn.loop.time() - self.sent_at) * 1000)
            out.append((b"x-envoy-upstream-service-time", b"%d" % self.service_time))
        self._server_header(out)
        for m in self.resp_mutations:
            out = m.apply(out)
        if hcm.always_set_request_id and self.request_id is not None:
            out.append((b"x-request-id", self.request_id))
        self._connection_header(out, self.mode == _UNTIL_CLOSE)
        conn.write(encode_response_head(status, out))
        if head.method == b"HEAD":
            # httptools cannot be told a response has no body; end here and retire the connection.
            up = self.upstream
            self.upstream = None
            if up is not None:
                up.stream = None
                up.close()
            self.finish()

    def on_response_body(self, data: bytes) -> None:
        self.tx += len(data)
        if self.mode == _CHUNKED:
            data = encode_chunk(data)
        self.conn.write(data)

    def on_response_end(self, up: UpstreamConnection) -> None:
        if self.mode == _CHUNKED:
            self.conn.write(CHUNKED_END)
        self.upstream = None
        if self.upstream_keep_alive and self.request_complete:
            up.pool.release(up)
        else:
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
        if not protocol_error and self._close_delimited(up):
            self.on_response_end_after_close()
            return
        self.flags |= UPE if protocol_error else UC
        self.conn.abort()
        self.finish()

    def _close_delimited(self, up: UpstreamConnection) -> bool:
        """A response with neither Content-Length nor chunked framing ends with the connection."""
        return self.mode != _LENGTH and not _has_framing(up)

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
            up.stream = None
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

    def _connection_header(self, out: list[tuple[bytes, bytes]], until_close: bool) -> None:
        conn = self.conn
        head = self.head
        max_rq = self.hcm.max_requests_per_connection
        close = (until_close or not head.keep_alive or conn.draining or self.close_after
                 or (max_rq and conn.requests >= max_rq))
        if close:
            self.close_after = True
            out.append((b"connection", b"close"))
        elif head.version == "1.0":
            out.append((b"connection", b"keep-alive"))

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
        self._connection_header(out, False)
        head = encode_response_head(status, out)
        if body and self.head.method != b"HEAD":
            self.tx = len(body)
            head += body
        self.conn.write(head)
        self.finish()

    def finish(self) -> None:
        if self.done:
            return
        self.done = True
        self.pending = None
        status = self.status
        stats = self.hcm.stats
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
        if self.hcm.access_logs:
            entry = self._log_entry()
            for sink in self.hcm.access_logs:
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
                header_value(headers, b"x-forwarded-for"), header_value(headers, b"user-agent"),
                self.request_id or header_value(headers, b"x-request-id"), self.authority,
                host.label if host is not None else None)


def _has_framing(up: Any) -> bool:
    for name, value in up.codec.headers:
        if name == b"content-length" or (name == b"transfer-encoding" and value.lower().endswith(b"chunked")):
            return True
    return False
