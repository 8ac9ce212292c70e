"""The HTTP/1.1 codecs without sockets: bytes in, events out."""

from __future__ import annotations

import pytest

from pilotfish.proxy.errors import ProtocolError
from pilotfish.proxy.http1 import Http1ClientCodec, Http1ServerCodec, encode_chunk, encode_request_head


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def on_request_head(self, head) -> None:
        self.events.append(("head", head.method, head.path, head.authority, head.chunked, head.content_length))

    def on_request_body(self, data: bytes) -> None:
        self.events.append(("body", data))

    def on_request_end(self) -> None:
        self.events.append(("end",))

    def on_response_head(self, status, headers, keep_alive, content_length, chunked) -> None:
        self.events.append(("rhead", status, keep_alive, content_length, chunked))

    def on_response_body(self, data: bytes) -> None:
        self.events.append(("rbody", data))

    def on_response_end(self) -> None:
        self.events.append(("rend",))


def test_pipelined_requests_split_anywhere() -> None:
    raw = (b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
           b"POST /b HTTP/1.1\r\nhost: y\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
    for split in range(1, len(raw)):
        r = Recorder()
        codec = Http1ServerCodec(r)
        codec.feed(raw[:split])
        codec.feed(raw[split:])
        heads = [e for e in r.events if e[0] == "head"]
        assert heads == [("head", b"GET", b"/a", b"x", False, None), ("head", b"POST", b"/b", b"y", True, None)]
        assert b"".join(e[1] for e in r.events if e[0] == "body") == b"abc"
        assert r.events.count(("end",)) == 2


def test_absolute_form() -> None:
    r = Recorder()
    Http1ServerCodec(r).feed(b"GET http://reviews:9080?q=1 HTTP/1.1\r\nhost: other\r\n\r\n")
    assert r.events[0][2:4] == (b"/?q=1", b"reviews:9080")


def test_header_limit_is_431() -> None:
    codec = Http1ServerCodec(Recorder(), max_header_bytes=100)
    with pytest.raises(ProtocolError) as info:
        codec.feed(b"GET / HTTP/1.1\r\nx: " + b"a" * 200 + b"\r\n\r\n")
    assert info.value.status == 431


def test_garbage_is_400() -> None:
    with pytest.raises(ProtocolError) as info:
        Http1ServerCodec(Recorder()).feed(b"\x00\x01\x02 nope\r\n\r\n")
    assert info.value.status == 400


def test_client_codec_skips_100_continue() -> None:
    r = Recorder()
    codec = Http1ClientCodec(r)
    codec.feed(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
    assert r.events == [("rhead", 200, True, 2, False), ("rbody", b"ok"), ("rend",)]


def test_encoders() -> None:
    assert encode_chunk(b"hello") == b"5\r\nhello\r\n"
    assert encode_request_head(b"GET", b"/", [(b"host", b"x")]) == b"GET / HTTP/1.1\r\nhost: x\r\n\r\n"
