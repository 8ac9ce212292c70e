"""The HTTP/1.1 response encoder of a downstream connection (codec.ResponseSender).

HTTP/1.1 answers one request at a time, so the encoder's state (how the body being sent is
framed) is one field of the connection. Framing follows RFC 9112 §6 and Envoy's codec: a
response without Content-Length is sent chunked to an HTTP/1.1 client and until the connection
closes to an HTTP/1.0 one; 204, 304 and responses to HEAD have no body. The connection header
says ``close`` when the connection ends after the response (the client, the stream, draining or
``max_requests_per_connection`` asked for it) and ``keep-alive`` to an HTTP/1.0 client otherwise.
"""

from __future__ import annotations

from typing import Any

from .http1_encode import (BARE_HEAD_ENDS, CHUNKED_END, CONNECTION_CLOSE, CONNECTION_KEEP_ALIVE, HEAD_ENDS,
                           JOIN_FIELD, STATUS_LINES, TE_CHUNKED, encode_chunk, encode_last_chunk, status_line)

_CRLF = b"\r\n"
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class Http1ResponseSender:
    """The sending half of DownstreamConnection (downstream.py), which holds the fields."""

    __slots__ = ()
    needs_end: bool  # the response being sent is chunked: its end is a last chunk (codec.ResponseSender)
    out: list[bytes]
    requests: int
    shared: Any
    hcm: Any
    batch: Any
    write: Any
    abort: Any

    def send_head(self, head: Any, status: int, headers: list[tuple[bytes, bytes]], has_length: bool,
                  close: bool) -> bool:
        if has_length or status == 204 or status == 304 or head.method == b"HEAD":
            self.needs_end = False
            codec_lines = 0
        elif head.version == "1.1":
            self.needs_end = True
            codec_lines = TE_CHUNKED
        else:
            self.needs_end = False  # the end of the body is the end of the connection
            codec_lines = 0
            close = True
        max_rq = self.hcm.max_requests_per_connection
        if close or not head.keep_alive or self.shared.draining or (max_rq and self.requests >= max_rq):
            close = True
            codec_lines |= CONNECTION_CLOSE
        elif head.version == "1.0":
            codec_lines |= CONNECTION_KEEP_ALIVE
        out = self.out
        if not out:  # (the first piece joins the batch, as in DownstreamConnection.write)
            self.batch.add(self)
        # http1_encode.encode_fields, inlined: 0.4k instructions less per response (137.9k against
        # 137.5k, benchmarks/request_path_instructions.py).
        out.append((STATUS_LINES.get(status) or status_line(status))
                        + (_CRLF.join(map(JOIN_FIELD, headers)) + HEAD_ENDS[codec_lines] if headers
                           else BARE_HEAD_ENDS[codec_lines]))
        return close

    def send_body(self, data: bytes) -> None:
        if self.needs_end:
            data = encode_chunk(data)
        out = self.out
        if not out:
            self.batch.add(self)
        out.append(data)

    def send_end(self, trailers: list[tuple[bytes, bytes]] | None) -> None:
        if self.needs_end:
            self.needs_end = False
            self.write(CHUNKED_END if trailers is None else encode_last_chunk(trailers))

    def send_continue(self) -> None:
        self.write(_CONTINUE)

    def reset(self) -> None:
        self.abort()  # HTTP/1.1 has no other way to tell a client its response is broken
