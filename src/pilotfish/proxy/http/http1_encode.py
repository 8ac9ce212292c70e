"""HTTP/1.1 on the wire, outbound: status lines, heads, chunks and trailer sections as bytes."""

from __future__ import annotations

from http import HTTPStatus

from .head import HOP_BY_HOP

STATUS_LINES = {
    s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n".encode() for s in HTTPStatus
}
CHUNKED_END = b"0\r\n\r\n"
_CRLF = b"\r\n"
#: One field line without its CRLF: ``JOIN_FIELD((name, value))``.
JOIN_FIELD = b": ".join

#: What the codec adds after the fields it was given, as bits indexing HEAD_ENDS.
TE_CHUNKED, CONNECTION_CLOSE, CONNECTION_KEEP_ALIVE = 1, 2, 4
_CODEC_LINES = ((TE_CHUNKED, b"transfer-encoding: chunked\r\n"), (CONNECTION_CLOSE, b"connection: close\r\n"),
                (CONNECTION_KEEP_ALIVE, b"connection: keep-alive\r\n"))


def _head_end(bits: int, after_field: bool) -> bytes:
    lines = b"".join(line for bit, line in _CODEC_LINES if bits & bit)
    return (_CRLF if after_field else b"") + lines + _CRLF


#: A head's tail after its fields, ``_CRLF.join``-ed without the last CRLF: that CRLF, the
#: codec's own lines and the empty line, made once (one join per head instead of a list, its
#: appends and two joins: ~0.8k instructions per head on CPython 3.11). BARE_HEAD_ENDS: the
#: same for a head without fields.
HEAD_ENDS = tuple(_head_end(bits, True) for bits in range(8))
BARE_HEAD_ENDS = tuple(_head_end(bits, False) for bits in range(8))


def status_line(status: int) -> bytes:
    line = STATUS_LINES.get(status)
    if line is None:
        line = f"HTTP/1.1 {status} Unknown\r\n".encode()
    return line


def encode_fields(headers: list[tuple[bytes, bytes]], codec_lines: int = 0) -> bytes:
    """The field section after a start line: the given fields, the codec's lines, the empty line."""
    if headers:
        return _CRLF.join(map(JOIN_FIELD, headers)) + HEAD_ENDS[codec_lines]
    return BARE_HEAD_ENDS[codec_lines]


def encode_request_head(method: bytes, path: bytes, headers: list[tuple[bytes, bytes]], codec_lines: int = 0) -> bytes:
    return method + b" " + path + b" HTTP/1.1\r\n" + encode_fields(headers, codec_lines)


def encode_response_head(status: int, headers: list[tuple[bytes, bytes]]) -> bytes:
    return status_line(status) + encode_fields(headers)


#: Fields a trailer section must not carry (RFC 9110 §6.5.1): framing, routing, hop-by-hop.
_NOT_IN_TRAILERS = HOP_BY_HOP | {b"content-length", b"host", b"content-type", b"content-encoding",
                                 b"content-range", b"expect"}


def encode_last_chunk(trailers: list[tuple[bytes, bytes]] | None) -> bytes:
    """The last chunk, with the trailer section when there are trailers."""
    if not trailers:
        return CHUNKED_END
    return b"0\r\n" + encode_fields([(n.lower(), v) for n, v in trailers if n.lower() not in _NOT_IN_TRAILERS])


def encode_chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)
