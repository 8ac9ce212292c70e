"""The HTTP/1.1 codecs without sockets: bytes in, events out."""

from __future__ import annotations

import random
import uuid

import pytest

from pilotfish.proxy.common.errors import ProtocolError
from pilotfish.proxy.http.http1_client import Http1ClientCodec
from pilotfish.proxy.http.http1_encode import encode_chunk, encode_request_head
from pilotfish.proxy.http.http1_server import Http1ServerCodec
from pilotfish.proxy.router.stream import RequestIds


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple] = []
        self.heads: list = []

    def on_request_head(self, head) -> Recorder:
        self.events.append(("head", head.method, head.path, head.authority, head.chunked, head.content_length))
        self.heads.append(head)
        return self  # receives the body too

    def on_body(self, data: bytes) -> None:
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
        assert r.events.count(("end",)) == 1  # the POST's: the GET, without a body, ended with its head


def test_absolute_form() -> None:
    r = Recorder()
    Http1ServerCodec(r).feed(b"GET http://reviews:9080?q=1 HTTP/1.1\r\nhost: other\r\n\r\n")
    assert r.events[0][2:4] == (b"/?q=1", b"reviews:9080")


@pytest.mark.parametrize("raw", [
    b"CONNECT https://example.com:443 HTTP/1.1\r\nhost: example.com\r\n\r\n",  # RFC 9112 3.2.3: authority-form only
    b"CONNECT https:// HTTP/1.1\r\ncontent-length: 2\r\n\r\nab",
    b"CONNECT // HTTP/1.1\r\ncontent-length: 2\r\n\r\nab",  # origin-form: not routed as a path
    b"CONNECT example.com:443 HTTP/1.1\r\nhost: example.com\r\ncontent-length: 2\r\n\r\nab",  # RFC 9110 9.3.6
    b"CONNECT /a HTTP/1.1\r\nhost: example.com\r\n\r\n",  # origin-form
    b"CONNECT /1.1\r\nhost: a\r\ncontent-length: 5\r\n\r\n\r\n",  # (the fuzzer's: origin-form, content)
])
def test_connect_takes_an_authority_form_target_and_no_content(raw: bytes) -> None:
    r = Recorder()
    with pytest.raises(ProtocolError) as info:
        Http1ServerCodec(r).feed(raw)
    assert info.value.status == 400 and r.events == []


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


def test_connection_level_headers_become_fields_not_headers() -> None:
    r = Recorder()
    Http1ServerCodec(r).feed(b"POST / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\n"
                             b"Keep-Alive: 5\r\nTE: trailers\r\nExpect: 100-continue\r\nX-Kept: 2\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    head = r.heads[0]
    assert head.headers == [(b"host", b"h"), (b"te", b"trailers"), (b"x-kept", b"2")]  # Envoy keeps TE: trailers
    assert head.chunked and head.content_length is None and head.expect_continue
    assert head.connection_tokens == (b"x-secret",) and head.keep_alive and head.version == "1.1"


def test_recorded_request_headers_join_repeats() -> None:
    r = Recorder()
    Http1ServerCodec(r).feed(b"GET / HTTP/1.1\r\nhost: h\r\nX-Forwarded-For: 1.1.1.1\r\nx-forwarded-for: 2.2.2.2\r\n"
                             b"x-request-id: abc\r\nx-forwarded-proto: https\r\n\r\n")
    head = r.heads[0]
    assert head.forwarded_for == b"1.1.1.1,2.2.2.2" and head.request_id == b"abc"
    assert head.forwarded_proto == b"https"
    assert (b"x-forwarded-for", b"2.2.2.2") in head.headers  # still forwarded as received


@pytest.mark.parametrize(("raw", "version", "keep_alive"), [
    (b"GET / HTTP/1.1\r\nhost: h\r\n\r\n", "1.1", True),
    (b"GET / HTTP/1.1\r\nhost: h\r\nconnection: close\r\n\r\n", "1.1", False),
    (b"GET / HTTP/1.0\r\nhost: h\r\n\r\n", "1.0", False),
    (b"GET / HTTP/1.0\r\nhost: h\r\nconnection: keep-alive\r\n\r\n", "1.0", True),
])
def test_version_and_keep_alive(raw: bytes, version: str, keep_alive: bool) -> None:
    r = Recorder()
    Http1ServerCodec(r).feed(raw)
    assert (r.heads[0].version, r.heads[0].keep_alive) == (version, keep_alive)


def test_each_request_of_a_connection_gets_a_fresh_head() -> None:
    r = Recorder()
    Http1ServerCodec(r).feed(b"GET /a HTTP/1.1\r\nhost: a\r\nx-request-id: 1\r\n\r\nGET /b HTTP/1.1\r\nhost: b\r\n\r\n")
    a, b = r.heads
    assert (a.authority, a.request_id, a.headers) == (b"a", b"1", [(b"host", b"a"), (b"x-request-id", b"1")])
    assert (b.authority, b.request_id, b.headers) == (b"b", None, [(b"host", b"b")])


def test_client_codec_drops_hop_by_hop_and_length_when_chunked() -> None:
    r = Recorder()
    codec = Http1ClientCodec(r)
    heads: list = []
    r.on_response_head = lambda status, headers, ka, cl, chunked: heads.append((headers, cl, chunked))  # type: ignore[method-assign]
    codec.feed(b"HTTP/1.1 200 OK\r\nServer: s\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n")
    codec.feed(b"HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n")  # the next exchange's read
    assert heads[0] == ([(b"server", b"s")], None, True)
    assert heads[1] == ([(b"x-a", b"1")], None, False)  # nothing left over from the first response


def test_length_and_chunked_together_are_rejected_both_ways() -> None:
    both = b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n"
    with pytest.raises(ProtocolError) as info:
        Http1ServerCodec(Recorder()).feed(b"POST / HTTP/1.1\r\nhost: h\r\n" + both)
    assert info.value.status == 400
    with pytest.raises(ProtocolError) as info:
        Http1ClientCodec(Recorder()).feed(b"HTTP/1.1 200 OK\r\n" + both)
    assert info.value.status == 502


def test_request_ids_are_version_4_uuids_from_the_injected_source() -> None:
    ids = RequestIds(random.Random(7))
    made = [ids() for _ in range(2 * RequestIds.BATCH + 3)]
    assert len(set(made)) == len(made)
    for rid in made[:50] + made[-50:]:
        u = uuid.UUID(rid.decode())
        assert u.version == 4 and u.variant == uuid.RFC_4122 and str(u).encode() == rid
    again = RequestIds(random.Random(7))
    assert [again() for _ in range(3)] == made[:3]  # deterministic
