"""Replies from the proxy itself (Envoy's sendLocalReply) and the end of a stream: stats,
Istio metrics and access-log entries."""

from __future__ import annotations

from bisect import bisect_right
from math import floor

from ..common.histogram import BIN, FAST, LOWER
from .route_table import header_value
from .shadow import cancel_unfinished
from ..http.config import APPEND_IF_ABSENT, OVERWRITE
from .stream_state import _TEXT_PLAIN, StreamState
from ..http.date_header import date_line
from .local_reply_config import local_details
from ..common.stream_states import BODY, COMPLETE, DONE, RESPONDING, WAITING


class LocalReplyMixin(StreamState):
    """Local replies and the end-of-stream bookkeeping."""

    __slots__ = ()

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

    def local_reply(self, status: int, body: bytes, *, close: bool = False,
                    extra: tuple[tuple[bytes, bytes], ...] = (), mutations: tuple = (),
                    details: str | None = None) -> None:
        """Answer from the proxy itself (Envoy's sendLocalReply)."""
        if self.resp is not WAITING:
            self.conn.reset()
            self.finish()
            return
        rewriter = self.hcm.local_reply
        content_type = _TEXT_PLAIN
        if rewriter is not None:  # local_reply_config (local_reply_config.py)
            self.details = details or local_details(self, status)
            status, body, ctype, extra = rewriter.rewrite(self, status, body, extra)
            if ctype is not None:
                content_type = (b"content-type", ctype)
        self.status = status
        self.resp = RESPONDING
        out = [(b"content-length", b"%d" % len(body))]
        if body:
            out.append(content_type)
        out.extend(extra)
        out.append(date_line.header)
        self._server_header(out)
        for m in mutations:
            out = m.apply(out)
        if rewriter is not None and rewriter.keep_headers:
            self.reply_headers = out
        conn = self.conn
        # (close_after may be set already: keep-alive disabled by overload)
        self.close_after = conn.send_head(self.head, status, out, True, close or self.close_after)
        if body and self.head.method != b"HEAD":
            self.tx = len(body)
            conn.send_body(body)
        self.finish()  # (a Content-Length: no send_end)

    def end_by_timeout(self, body: bytes) -> None:
        """Envoy's stream idle timeout and max stream duration (maybeRequestTimeoutCode): 504
        once the request was read completely, else 408 and the connection closes (the rest of
        the request cannot be skipped); after the response has started, the client connection
        is reset."""
        if self.rz is not None:
            self.rz.cancel_retry()
        self._drop_upstream()  # type: ignore[attr-defined]  # Stream
        done = self.req is COMPLETE
        self.local_reply(504 if done else 408, body, close=not done)  # (a reset once the response started)

    def finish(self, now: float = 0.0) -> None:
        """The stream's end: stats, histograms, Istio metrics, access logs, the connection's
        next stream (``now``: the loop's time, when the caller has read it)."""
        if self.resp is DONE:
            return
        self.resp = DONE
        rz = self.rz
        if rz is not None and (rz.backoff is not None or rz.rs is not None):
            rz.end()
        if self.pending is not None:
            self.pending = None
        if self.req is BODY and self.shadows is not None:
            cancel_unfinished(self.shadows)
        status = self.status
        hcm = self.hcm
        stats = hcm.stats
        stats.rq_class[status // 100] += 1  # (also the end of downstream_rq_active: stats.py)
        conn = self.conn
        now = now or conn.loop.time()  # (also the connection's last activity: stream_done takes it)
        ms = floor((now - self.start) * 1000)  # Envoy's downstream_rq_time (histogram.py)
        stats.downstream_rq_time[BIN[ms] if ms < FAST else bisect_right(LOWER, ms)] += 1
        host = self.host
        if host is not None:
            host.active_rq -= 1
            if status >= 500:  # Envoy's per-host rq_error / rq_success
                host.rq_error += 1
            elif status:
                host.rq_success += 1
            self.rm.requests.count -= 1
            cstats = self.cluster.stats
            cstats.rq_code[status if status < 600 else 0] += 1  # (the end of upstream_rq_active: stats.py)
            if not self.flags:  # an upstream response, not a reset or local reply: upstream_rq_time
                ms = floor((now - (self.complete_at or self.start)) * 1000)
                cstats.upstream_rq_time[BIN[ms] if ms < FAST else bisect_right(LOWER, ms)] += 1
        if hcm.istio_stats is not None:
            hcm.istio_stats.record(self)
        if hcm.access_logs:
            entry = self._log_entry()
            for sink in hcm.access_logs:
                sink.record(entry)
        conn.stream_done(self, now)

    def _log_entry(self) -> tuple:
        head = self.head
        headers = head.headers
        now = self.conn.loop.time()
        host = self.host
        entry = (self.start, head.method, self.original_path or head.path, head.version, self.status,
                 self.flags, self.rx, self.tx, int((now - self.start) * 1000), self.service_time,
                 head.forwarded_for, header_value(headers, b"user-agent"),
                 self.request_id or head.request_id, self.authority,
                 host.label if host is not None else None)
        capture = self.hcm.log_capture
        if capture is not None:  # a log_format reads more (common/substitution_format.py)
            entry += capture(self)
        return entry
