"""The response side of a Stream: the upstream's head and body towards the client."""

from __future__ import annotations

from math import floor  # (not int(): ~0.4k instructions less per call, histogram.py)

from ..http import tunnel
from ..http.date_header import date_line
from .local_reply import LocalReplyMixin
from ..http.config import APPEND_IF_ABSENT, OVERWRITE
from ..common.stream_states import COMPLETE, RESPONDING

#: The x-envoy-upstream-service-time headers of the common values, made once (a list index
#: instead of a bytes %-format per response).
_SERVICE_TIME_CACHED = 1024
_SERVICE_TIME = [(b"x-envoy-upstream-service-time", b"%d" % ms) for ms in range(_SERVICE_TIME_CACHED)]


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
        self.resp = RESPONDING
        self.status = status
        hcm = self.hcm
        head = self.head
        conn = self.conn
        if self.resp_mutations or hcm.edits_response:
            headers = self._edited_response_head(status, headers)
        else:
            # The codec's list is this response's: headers are added to it in place.
            t = hcm.server_transformation
            codec = self.upstream.codec  # type: ignore[union-attr]
            if t == OVERWRITE:
                if codec.has_server:
                    headers = [h for h in headers if h[0] != b"server"]
                headers.append(hcm.server_header)
            elif t == APPEND_IF_ABSENT and not codec.has_server:
                headers.append(hcm.server_header)
            if not codec.has_date:
                headers.append(date_line.header)
            if not hcm.suppress_envoy_headers:
                if codec.has_service_time:  # an upstream proxy's: replaced, as Envoy sets it
                    headers = [h for h in headers if h[0] != _SERVICE_TIME[0][0]]
                ms = self.service_time = floor((conn.loop.time() - (self.complete_at or self.start)) * 1000)
                headers.append(_SERVICE_TIME[ms] if ms < _SERVICE_TIME_CACHED
                               else (b"x-envoy-upstream-service-time", b"%d" % ms))
        # Flushed when the upstream read that brought it is done.
        self.close_after = conn.send_head(head, status, headers, content_length is not None, self.close_after)
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

    def _edited_response_head(self, status: int, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """The response head as a header list that filters and mutations may edit."""
        hcm = self.hcm
        out = list(headers)
        if hcm.peer_exchange is not None:
            out = hcm.peer_exchange.response_headers(self, out)
        if not hcm.suppress_envoy_headers:
            up = self.upstream
            if up is not None and up.codec.has_service_time:  # an upstream proxy's: replaced
                out = [h for h in out if h[0] != b"x-envoy-upstream-service-time"]
            self.service_time = floor((self.conn.loop.time() - (self.complete_at or self.start)) * 1000)
            out.append((b"x-envoy-upstream-service-time", b"%d" % self.service_time))
        self._server_header(out)
        up = self.upstream
        if up is not None and not up.codec.has_date:
            out.append(date_line.header)
        for m in self.resp_mutations:
            out = m.apply(out)
        if hcm.always_set_request_id and self.request_id is not None:
            out.append((b"x-request-id", self.request_id))
        return out

    def on_response_body(self, data: bytes) -> None:
        self.tx += len(data)
        self.conn.send_body(data)

    def on_response_end(self) -> None:
        up = self.upstream
        self.upstream = None
        conn = self.conn
        if conn.needs_end:
            conn.send_end(up.codec.trailers if up is not None else None)
        now = conn.loop.time()  # (one clock read for the pool and the stream's end)
        if up is not None:
            # Read from the parser (valid until the next message) rather than kept from the head.
            if self.req is COMPLETE and up.codec.parser.should_keep_alive():
                up.pool.release(up, now)
            else:
                up.detach()
                up.close()
        self.finish(now)

    def on_response_end_after_close(self) -> None:
        """The upstream closed a response that had no length: that was its end."""
        if self.conn.needs_end:
            self.conn.send_end(None)
        self.finish()
