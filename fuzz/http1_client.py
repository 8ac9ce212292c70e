"""Fuzz the upstream HTTP/1.1 codec (``Http1ClientCodec``): arbitrary response bytes in arbitrary splits.

Fed as UpstreamConnection feeds it, with a recording handler, as answers to GETs. Invariants:
parser errors become ``ProtocolError`` (502) and nothing else escapes; 1xx interim responses
are consumed (a 101 hands the rest to a tunnel); events come in order; a delivered response is
framed as RFC 9112 says (Transfer-Encoding only as a final chunked, a Content-Length only as
digits, never both; the body as long as declared; none for 204 and 304) and carries no
hop-by-hop header on.
"""

from __future__ import annotations

from _common import check, instrumented, main, reraise_cause, split

with instrumented(__name__):
    from pilotfish.proxy.common.errors import ProtocolError
    from pilotfish.proxy.http.head import HOP_BY_HOP
    from pilotfish.proxy.http.http1_client import Http1ClientCodec
    from pilotfish.proxy.http.http1_server import HttpParserError, HttpParserUpgrade

_DIGITS = frozenset(b"0123456789")


def _number(value: bytes) -> int | None:
    """A Content-Length value as RFC 9110 §8.6 reads it (1*DIGIT around OWS), else None."""
    value = value.strip(b" \t")
    return int(value) if value and set(value) <= _DIGITS else None


class _RawCodec(Http1ClientCodec):
    """The codec, also keeping each response's header fields as they arrived."""

    def __init__(self, handler: _Recorder) -> None:
        super().__init__(handler)
        self.raw: list[tuple[bytes, bytes]] = []
        self.last_raw: list[tuple[bytes, bytes]] = []

    def on_header(self, name: bytes, value: bytes) -> None:
        self.raw.append((name.lower(), value))
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self.last_raw, self.raw = self.raw, []
        super().on_headers_complete()


class _Recorder:
    def __init__(self) -> None:
        self.codec: _RawCodec | None = None
        self.status = 0
        self.content_length: int | None = None
        self.chunked = False
        self.body = 0
        self.open = False  # a head arrived and its end not yet

    def on_response_head(self, status: int, headers: list[tuple[bytes, bytes]], keep_alive: bool,
                         content_length: int | None, chunked: bool) -> None:
        check(not self.open, "client: head before the previous response ended")
        check(status == 101 or 200 <= status <= 999 or status < 100, "client: interim response delivered", str(status))
        check(100 <= status <= 599, "client: status outside 100-599 delivered", str(status))
        assert self.codec is not None
        raw = self.codec.last_raw
        check(not (chunked and content_length is not None), "client: both chunked and content-length")
        te = [v for n, v in raw if n == b"transfer-encoding"]
        cls = [v.strip(b" \t") for n, v in raw if n == b"content-length"]
        check(not (te and cls), "client: transfer-encoding and content-length both accepted", repr(raw))
        if te:
            codings = [c.strip(b" \t").lower() for v in te for c in v.split(b",")]
            check(codings and codings[-1] == b"chunked" and codings.count(b"chunked") == 1,
                  "client: transfer-encoding without a final chunked accepted", repr(te))
            # (RFC 9112 §6.3: a 304 ends with its head, whatever its framing headers say)
            check(chunked or status == 304, "client: chunked transfer-encoding not framed as chunked", repr(te))
        if cls:
            check(all(v and set(v) <= _DIGITS for v in cls), "client: content-length not digits accepted", repr(cls))
            check(len(set(cls)) == 1, "client: differing content-lengths accepted", repr(cls))
            check(content_length == int(cls[0]), "client: content-length value changed",
                  f"{cls!r} -> {content_length}")
        for name, value in headers:
            check(name not in HOP_BY_HOP, "client: hop-by-hop header forwarded", repr(name))
            if name == b"content-length":
                check(content_length is not None and _number(value) == content_length,
                      "client: forwarded content-length differs from the framing", repr(value))
        self.status, self.content_length, self.chunked = status, content_length, chunked
        self.body = 0
        self.open = True

    def on_response_body(self, data: bytes) -> None:
        check(self.open, "client: body outside a response")
        check(data, "client: empty body event")
        check(self.status not in (101, 204, 304), "client: body on a bodiless status", str(self.status))
        self.body += len(data)
        cl = self.content_length
        check(cl is None or self.body <= cl, "client: more body than content-length", f"{self.body} > {cl}")

    def on_response_end(self) -> None:
        check(self.open, "client: end outside a response")
        self.open = False
        cl = self.content_length
        if self.status not in (101, 204, 304):
            check(cl is None or self.body == cl, "client: body shorter than content-length", f"{self.body} != {cl}")


def test_one_input(data: bytes) -> None:
    rec = _Recorder()
    codec = rec.codec = _RawCodec(rec)
    for piece in split(data):
        try:
            codec.parser.feed_data(piece)
        except HttpParserUpgrade:
            check(rec.status == 101, "client: upgrade without a 101", str(rec.status))
            return  # the rest is tunnel payload
        except HttpParserError as exc:
            error = reraise_cause(codec.error, exc)
            check(isinstance(error, ProtocolError) and error.status == 502, "client: bad error", repr(error))
            return


if __name__ == "__main__":
    main(test_one_input)
