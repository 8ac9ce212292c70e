"""HTTP/1.1 on the wire, outbound: status lines, heads, chunks and trailer sections as bytes."""

from __future__ import annotations

from http import HTTPStatus

from .head import HOP_BY_HOP

STATUS_LINES = {
    s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n".encode() for s in HTTPStatus
}
CHUNKED_END = b"0\r\n\r\n"
_CRLF = b"\r\n"


def status_line(status: int) -> bytes:
    line = STATUS_LINES.get(status)
    if line is None:
        line = f"HTTP/1.1 {status} Unknown\r\n".encode()
    return line


def encode_headers(out: list[bytes], headers: list[tuple[bytes, bytes]]) -> None:
    for name, value in headers:
        out.append(name + b": " + value + _CRLF)
    out.append(_CRLF)


def encode_request_head(method: bytes, path: bytes, headers: list[tuple[bytes, bytes]]) -> bytes:
    out = [method + b" " + path + b" HTTP/1.1\r\n"]
    encode_headers(out, headers)
    return b"".join(out)


def encode_response_head(status: int, headers: list[tuple[bytes, bytes]]) -> bytes:
    out = [status_line(status)]
    encode_headers(out, headers)
    return b"".join(out)


#: Fields a trailer section must not carry (RFC 9110 §6.5.1): framing, routing, hop-by-hop.
_NOT_IN_TRAILERS = HOP_BY_HOP | {b"content-length", b"host", b"content-type", b"content-encoding",
                                 b"content-range", b"expect"}


def encode_last_chunk(trailers: list[tuple[bytes, bytes]] | None) -> bytes:
    """The last chunk, with the trailer section when there are trailers."""
    if not trailers:
        return CHUNKED_END
    out = [b"0\r\n"]
    encode_headers(out, [(n.lower(), v) for n, v in trailers if n.lower() not in _NOT_IN_TRAILERS])
    return b"".join(out)


def encode_chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)
