"""The response side of a Stream: the upstream's head and body towards the client."""

from __future__ import annotations

from math import floor  # (not int(): ~0.4k instructions less per call, histogram.py)

from ..http import tunnel
from ..http.http1_encode import CHUNKED_END, STATUS_LINES, encode_chunk, encode_last_chunk, status_line
from ..http.date_header import date_line
from .local_reply import LocalReplyMixin
from .route_table import header_value
from ..http.config import APPEND_IF_ABSENT, OVERWRITE
from .stream_state import (
    _CHUNKED,
    _CONNECTION_CLOSE,
    _CONNECTION_KEEP_ALIVE,
    _CRLF,
    _END,
    _JOIN,
    _TE_CHUNKED,
    _UNTIL_CLOSE,
    _lines,
)

#: The x-envoy-upstream-service-time lines of the common values, built once (a list index
#: instead of a bytes %-format per response).
_SERVICE_TIME_CACHED = 1024
_SERVICE_TIME = [b"x-envoy-upstream-service-time: %d" % ms for ms in range(_SERVICE_TIME_CACHED)]


class ResponseMixin(LocalReplyMixin):
    """The upstream response (head, body, end) relayed to the client."""

    __slots__ = ()

    def on_response_head(self, status: int, headers: list[tuple[bytes, bytes]], keep_alive: bool,
                         content_length: int | None, chunked: bool) -> None:
        """The upstream's head (end-to-end headers only) → the client's head, as lines."""
        rz = self.rz
        if rz is None and self.retry_policy is not None and self._retriable(status, headers):
            rz = self._resilience()  # type: ignore[attr-defined]  # (Stream)
        if rz is not None and (rz.policy is not None or rz.on_head) and rz.on_response_head(self, status, headers):
            return  # retried
        if status == 101:
            return tunnel.on_switching(self, headers)
        self.replay = None
        self.response_started = True
        self.status = status
        hcm = self.hcm
        head = self.head
        conn = self.conn
        if self.resp_mutations or hcm.peer_exchange is not None or hcm.always_set_request_id:
            data = self._edited_response_head(status, headers, content_length)
        else:
            t = hcm.server_transformation
            if t == OVERWRITE:
                lines = []
                for h in headers:  # a loop, not a comprehension: on 3.11 that makes a function per call
                    if h[0] != b"server":
                        lines.append(_JOIN(h))
                lines.append(b"server: " + hcm.server_name)
            else:
                lines = _lines(headers)
                if t == APPEND_IF_ABSENT and header_value(headers, b"server") is None:
                    lines.append(b"server: " + hcm.server_name)
            if not self.upstream.codec.has_date:  # type: ignore[union-attr]
                lines.append(date_line.line)
            if content_length is None and status != 204 and status != 304 and head.method != b"HEAD":
                if head.version == "1.1":
                    self.mode = _CHUNKED
                    lines.append(_TE_CHUNKED)
                else:
                    self.mode = _UNTIL_CLOSE
                    self.close_after = True  # the end of the body is the end of the connection
            if not hcm.suppress_envoy_headers:
                ms = self.service_time = floor((conn.loop.time() - (self.complete_at or self.start)) * 1000)
                lines.append(_SERVICE_TIME[ms] if ms < _SERVICE_TIME_CACHED
                             else b"x-envoy-upstream-service-time: %d" % ms)
            max_rq = hcm.max_requests_per_connection
            if (self.close_after or not head.keep_alive or conn.shared.draining
                    or (max_rq and conn.requests >= max_rq)):
                self.close_after = True
                lines.append(_CONNECTION_CLOSE)
            elif head.version == "1.0":
                lines.append(_CONNECTION_KEEP_ALIVE)
            lines.append(_END)
            data = (STATUS_LINES.get(status) or status_line(status)) + _CRLF.join(lines)
        conn.out.append(data)  # flushed when the upstream read that brought it is done
        if head.method == b"HEAD":
            # httptools cannot be told a response has no body; end here and retire the connection.
            self._drop_upstream()
            self.finish()

    def _retriable(self, status: int, headers: list[tuple[bytes, bytes]]) -> bool:
        """Whether the route's retry policy could retry this response (its lowest retriable
        status, or a header that makes a lower one retriable: grpc-status, x-envoy-ratelimited)."""
        action = self.route.action
        if status >= action.retry_min_status:
            return True
        gate = action.retry_gate_headers
        if gate:
            for name, _ in headers:
                if name in gate:
                    return True
        return False

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
            self.service_time = floor((self.conn.loop.time() - (self.complete_at or self.start)) * 1000)
            out.append((b"x-envoy-upstream-service-time", b"%d" % self.service_time))
        self._server_header(out)
        up = self.upstream
        if up is not None and not up.codec.has_date:
            out.append((b"date", date_line.value))
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
        self.conn.write(data)

    def on_response_end(self) -> None:
        if self.mode == _CHUNKED:
            up = self.upstream
            trailers = up.codec.trailers if up is not None else None
            self.conn.write(CHUNKED_END if trailers is None else encode_last_chunk(trailers))
        up = self.upstream
        self.upstream = None
        now = self.conn.loop.time()  # (one clock read for the pool and the stream's end)
        if up is not None:
            # Read from the parser (valid until the next message) rather than kept from the head.
            if self.request_complete and up.codec.parser.should_keep_alive():
                up.pool.release(up, now)
            else:
                up.detach()
                up.close()
        self.finish(now)

    def on_response_end_after_close(self) -> None:
        if self.mode == _CHUNKED:
            self.conn.write(CHUNKED_END)
        self.close_after = self.close_after or self.mode == _UNTIL_CLOSE
        self.finish()
