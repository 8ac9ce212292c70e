"""Fuzz the downstream HTTP/1.1 codec (``Http1ServerCodec``): arbitrary bytes in arbitrary splits.

Fed as DownstreamConnection feeds it (``parser.feed_data``, parser exceptions through
``codec.error``), with a recording handler. Invariants: only ``ProtocolError`` escapes; events
come in order (head, body, end; a request without a body ends with its head, and no end event
follows); a delivered request is framed as RFC 9112 says (at most one
of chunked and a Content-Length, whose value is digits and matches every Content-Length header
sent, a Transfer-Encoding only as chunked, the body delivered as long as declared, no body
without framing), has one Host without whitespace and a target without a fragment (RFC 9112
§3.2; Envoy answers 400), and carries no hop-by-hop header on.
"""

from __future__ import annotations


from _common import check, instrumented, main, reraise_cause, split

with instrumented(__name__):
    from pilotfish.proxy.common.errors import ProtocolError
    from pilotfish.proxy.http.head import HOP_BY_HOP, RequestHead
    from pilotfish.proxy.http.http1_server import PARSE_ERRORS, Http1ServerCodec

_DIGITS = frozenset(b"0123456789")


def _number(value: bytes) -> int | None:
    """A Content-Length value as RFC 9110 §8.6 reads it (1*DIGIT around OWS), else None."""
    value = value.strip(b" \t")
    return int(value) if value and set(value) <= _DIGITS else None


class _RawCodec(Http1ServerCodec):
    """The codec, also keeping each head's header fields as they arrived (for the checks)."""

    def __init__(self, handler: _Recorder) -> None:
        super().__init__(handler, 8 * 1024, 50)
        self.raw: list[tuple[bytes, bytes]] = []
        self.last_raw: list[tuple[bytes, bytes]] = []
        self.raw_target = self.last_target = b""  # the request target as it arrived

    def on_url(self, url: bytes) -> None:
        self.raw_target += url
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.raw.append((name.lower(), value))
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self.last_raw, self.raw = self.raw, []
        self.last_target, self.raw_target = self.raw_target, b""
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self.raw = []  # trailer fields
        super().on_message_complete()


class _Sink:
    def __init__(self, head: RequestHead, raw: list[tuple[bytes, bytes]]) -> None:
        self.head = head
        self.raw = raw
        self.body = 0
        self.ended = False

    def on_body(self, data: bytes) -> None:
        check(not self.ended, "server: body after end")
        check(data, "server: empty body event")
        self.body += len(data)
        cl = self.head.content_length
        check(cl is None or self.body <= cl, "server: more body than content-length", f"{self.body} > {cl}")
        check(cl is not None or self.head.chunked or self.head.upgrade,
              "server: body on a request without framing")

    def on_request_end(self) -> None:
        check(not self.ended, "server: request ended twice")
        self.ended = True
        cl = self.head.content_length
        if not self.head.upgrade:  # an upgrade's message ends at its head; the rest is tunnel payload
            check(cl is None or self.body == cl, "server: body shorter than content-length", f"{self.body} != {cl}")


class _Recorder:
    def __init__(self) -> None:
        self.codec: _RawCodec | None = None
        self.sinks: list[_Sink] = []

    def on_request_head(self, head: RequestHead) -> _Sink:
        check(not self.sinks or self.sinks[-1].ended, "server: head before the previous request ended")
        assert self.codec is not None
        raw = self.codec.last_raw
        check_head(head, raw, self.codec.last_target)
        sink = _Sink(head, raw)
        sink.ended = not (head.chunked or head.content_length)  # no body: it ended with its head
        self.sinks.append(sink)
        return sink


def check_head(head: RequestHead, raw: list[tuple[bytes, bytes]], target: bytes) -> None:
    """A delivered request head is framed as RFC 9112 §6 allows."""
    check(isinstance(head.method, bytes) and head.method, "server: no method")
    check(not (head.chunked and head.content_length is not None), "server: both chunked and content-length")
    te = [v for n, v in raw if n == b"transfer-encoding"]
    cls = [v.strip(b" \t") for n, v in raw if n == b"content-length"]  # OWS is not the value
    check(not (te and cls), "server: transfer-encoding and content-length both accepted", repr(raw))
    if te:
        codings = [c.strip(b" \t").lower() for v in te for c in v.split(b",")]
        check(head.chunked, "server: transfer-encoding accepted without chunked framing", repr(te))
        check(codings == [b"chunked"], "server: transfer-encoding other than one chunked accepted", repr(te))
    if cls:
        check(all(v and set(v) <= _DIGITS for v in cls), "server: content-length not digits accepted", repr(cls))
        check(len(set(cls)) == 1, "server: differing content-lengths accepted", repr(cls))
        check(head.content_length == int(cls[0]), "server: content-length value changed",
              f"{cls!r} -> {head.content_length}")
    else:
        check(head.content_length is None, "server: content-length without the header")
    for name, value in head.headers:
        check(name not in HOP_BY_HOP, "server: hop-by-hop header forwarded", repr(name))
        if name == b"content-length":
            check(head.content_length is not None and _number(value) == head.content_length,
                  "server: forwarded content-length differs from the framing", repr(value))
    if not head.upgrade:
        check(head.path[:1] == b"/" or head.path == b"*", "server: path not origin-form", repr(head.path))
    if head.method == b"CONNECT":  # RFC 9110 §9.3.6: a CONNECT request has no content
        check(not head.content_length and not head.chunked, "server: CONNECT with content accepted",
              f"content_length={head.content_length} chunked={head.chunked}")
    hosts = [v.strip(b" \t") for n, v in raw if n == b"host"]
    check(len(hosts) <= 1, "server: several host headers accepted", repr(hosts))
    check(not any(c in v for v in hosts for c in b" \t"), "server: host with whitespace accepted", repr(hosts))
    check(b"#" not in target, "server: target with a fragment accepted", repr(target))


def test_one_input(data: bytes) -> None:
    rec = _Recorder()
    codec = rec.codec = _RawCodec(rec)
    for piece in split(data):
        try:
            codec.parser.feed_data(piece)
        except PARSE_ERRORS as exc:
            error = reraise_cause(codec.error, exc)
            if error is None:
                return  # an upgrade: the rest is tunnel payload
            check(isinstance(error, ProtocolError) and error.status in (400, 413, 431, 501),
                  "server: bad error", repr(error))
            return


if __name__ == "__main__":
    main(test_one_input)
