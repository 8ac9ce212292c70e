"""The codec interface (http/codec.py): the router sends heads, bodies and ends; the HTTP/1.1
codec alone chooses the framing and writes the bytes. Driven without sockets."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from pilotfish.proxy.common.stream_states import (
    BODY, COMPLETE, DONE, RESPONDING, TRANSITIONS, WAITING, InvalidTransition, check,
)
from pilotfish.proxy.http.http1_encode import (
    CONNECTION_CLOSE, TE_CHUNKED, encode_fields, encode_last_chunk, encode_request_head, encode_response_head,
)
from pilotfish.proxy.testing import CheckedStream, Proxy, bootstrap, static_cluster

ROUTER = Path(__file__).resolve().parents[3] / "src" / "pilotfish" / "proxy"


def proxy(**hcm: object) -> Proxy:
    routes = [{"match": {"prefix": "/"}, "route": {"cluster": "web"}}]
    return Proxy(bootstrap(routes, [static_cluster("web", 8080)], **hcm))


def exchange(p: Proxy, request: bytes, *responses: bytes) -> tuple[Any, Any]:
    """One request through ``p`` to its one upstream, which answers ``responses`` in turn:
    (the client, the upstream)."""
    c = p.connect()
    c.send(request)
    (up,) = p.upstreams
    up.received()
    for data in responses:
        up.respond(data)
    return c, up


def test_a_response_without_length_is_chunked_to_an_http11_client_with_its_trailers() -> None:
    c, _ = exchange(proxy(), b"GET / HTTP/1.1\r\nHost: web\r\n\r\n",
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
                    b"2\r\nde\r\n0\r\nx-checksum: 7\r\n\r\n")
    out = c.received()
    head, body = out.split(b"\r\n\r\n", 1)
    assert b"transfer-encoding: chunked" in head.split(b"\r\n")
    assert body == b"3\r\nabc\r\n2\r\nde\r\n0\r\nx-checksum: 7\r\n\r\n"
    assert not c.closed


def test_a_response_without_length_ends_with_the_connection_to_an_http10_client() -> None:
    c, up = exchange(proxy(http_protocol_options={"accept_http_10": True}),
                     b"GET / HTTP/1.0\r\nHost: web\r\nConnection: keep-alive\r\n\r\n",
                     b"HTTP/1.1 200 OK\r\n\r\nraw body")
    up.reset()  # the upstream's close ends the body
    out = c.received()
    head, body = out.split(b"\r\n\r\n", 1)
    assert b"connection: close" in head.split(b"\r\n") and b"transfer-encoding" not in head
    assert body == b"raw body" and c.closed


def test_an_http10_keep_alive_client_is_told_so_when_the_length_is_known() -> None:
    c, _ = exchange(proxy(http_protocol_options={"accept_http_10": True}),
                    b"GET / HTTP/1.0\r\nHost: web\r\nConnection: keep-alive\r\n\r\n",
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
    head = c.received().split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    assert b"connection: keep-alive" in head and not c.closed


def test_a_chunked_request_is_framed_by_the_upstream_codec_with_its_trailers() -> None:
    p = proxy()
    c = p.connect()
    # The whole request arrives before the upstream connection: it waits, then goes out at once.
    c.send(b"POST / HTTP/1.1\r\nHost: web\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"4\r\nwxyz\r\n0\r\nx-sum: 1\r\n\r\n")
    (up,) = p.upstreams
    sent = up.received()
    head, body = sent.split(b"\r\n\r\n", 1)
    assert head.split(b"\r\n")[0] == b"POST / HTTP/1.1"
    assert head.split(b"\r\n").count(b"transfer-encoding: chunked") == 1
    assert body == b"4\r\nwxyz\r\n0\r\nx-sum: 1\r\n\r\n"


@pytest.mark.parametrize(("transformation", "first", "second"), [
    ("OVERWRITE", [b"server: envoy"], [b"server: envoy"]),
    ("APPEND_IF_ABSENT", [b"server: app"], [b"server: envoy"]),
    ("PASS_THROUGH", [b"server: app"], []),
])
def test_the_server_header_follows_server_header_transformation_on_each_response(
        transformation: str, first: list[bytes], second: list[bytes]) -> None:
    """The upstream codec notes a Server header per response; a reused connection's next
    response without one is not taken for having one."""
    p = proxy(server_header_transformation=transformation)
    c = p.connect()
    (up,) = p.upstream("web")
    for answer, expected in ((b"HTTP/1.1 200 OK\r\nServer: app\r\nContent-Length: 0\r\n\r\n", first),
                             (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", second)):
        c.send(b"GET / HTTP/1.1\r\nHost: web\r\n\r\n")
        up.received()
        up.respond(answer)
        lines = c.received().split(b"\r\n\r\n", 1)[0].split(b"\r\n")
        assert [line for line in lines if line.startswith(b"server:")] == expected


def test_a_request_without_a_body_is_its_head_and_one_with_a_length_is_sent_whole() -> None:
    p = proxy()
    c = p.connect()
    (up,) = p.upstream("web")
    c.send(b"GET /a HTTP/1.1\r\nHost: web\r\n\r\n")
    sent = up.received()
    assert sent.startswith(b"GET /a HTTP/1.1\r\nhost: web\r\n") and sent.endswith(b"\r\n\r\n")
    assert sent.count(b"\r\n\r\n") == 1
    up.respond(b"HTTP/1.1 204 No Content\r\n\r\n")
    c.received()
    c.send(b"POST /b HTTP/1.1\r\nHost: web\r\nContent-Length: 3\r\n\r\nabc")
    head, body = up.received().split(b"\r\n\r\n", 1)
    assert b"content-length: 3" in head.split(b"\r\n") and body == b"abc"


def test_heads_are_encoded_with_or_without_fields() -> None:
    assert encode_response_head(204, []) == b"HTTP/1.1 204 No Content\r\n\r\n"
    assert encode_response_head(599, [(b"a", b"1")]) == b"HTTP/1.1 599 Unknown\r\na: 1\r\n\r\n"
    assert encode_request_head(b"GET", b"/", []) == b"GET / HTTP/1.1\r\n\r\n"
    assert encode_fields([(b"a", b"1")], TE_CHUNKED | CONNECTION_CLOSE) == (
        b"a: 1\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n")
    assert encode_last_chunk([(b"Content-Length", b"9"), (b"X-Sum", b"1")]) == b"0\r\nx-sum: 1\r\n\r\n"
    assert encode_last_chunk([(b"host", b"h")]) == b"0\r\n\r\n"


def test_a_retry_sends_the_head_again_with_its_attempt_count_and_the_body() -> None:
    doc = bootstrap([{"match": {"prefix": "/"}, "route": {"cluster": "web", "retry_policy": {
        "retry_on": "5xx", "num_retries": 1, "retry_back_off": {"base_interval": "0.001s"}}}}],
        [static_cluster("web", 8080)])
    hcm = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    hcm["route_config"]["virtual_hosts"][0]["include_request_attempt_count"] = True
    p = Proxy(doc)
    c = p.connect()
    c.send(b"POST /r HTTP/1.1\r\nHost: web\r\nContent-Length: 4\r\n\r\nbody")
    first = p.upstreams[0]
    sent = first.received()
    assert b"x-envoy-attempt-count: 1\r\n" in sent and sent.endswith(b"\r\n\r\nbody")
    first.respond(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
    p.loop.advance(0.1)
    second = p.upstreams[-1]
    again = second.received()
    assert again.startswith(b"POST /r HTTP/1.1\r\n") and again.endswith(b"\r\n\r\nbody")
    lines = again.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    assert b"x-envoy-attempt-count: 2" in lines and b"x-envoy-attempt-count: 1" not in lines
    second.respond(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    assert c.received().startswith(b"HTTP/1.1 200 OK\r\n")


def test_the_state_table() -> None:
    check(BODY, COMPLETE)
    check(WAITING, RESPONDING)
    check(RESPONDING, DONE)
    check(WAITING, DONE)
    check(DONE, DONE)  # staying is not a move
    for old, new in ((COMPLETE, BODY), (DONE, WAITING), (DONE, RESPONDING), (RESPONDING, WAITING)):
        assert new not in TRANSITIONS[old]
        with pytest.raises(InvalidTransition, match=f"{old.name} -> {new.name}"):
            check(old, new)


def test_a_checked_stream_refuses_a_move_the_table_does_not_allow() -> None:
    p = proxy()
    exchange(p, b"GET / HTTP/1.1\r\nHost: web\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
    stream = p.streams[-1]
    assert isinstance(stream, CheckedStream) and stream.resp is DONE and stream.req is COMPLETE
    with pytest.raises(InvalidTransition):
        stream.resp = RESPONDING
    assert CheckedStream.violations == ["stream state DONE -> RESPONDING"]
    CheckedStream.violations.clear()


def test_only_codecs_write_http1_bytes() -> None:
    """The router and the filters send through the codec interface: they import no HTTP/1.1
    encoder and hold no HTTP/1.1 wire literal (status lines, CRLF, chunk ends)."""
    for layer in ("router", "filters"):
        for path in sorted((ROUTER / layer).glob("*.py")):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom):
                    assert "http1" not in (node.module or ""), f"{path.name} imports {node.module}"
                if isinstance(node, ast.Constant) and isinstance(node.value, bytes):
                    assert b"HTTP/1." not in node.value and b"\r\n" not in node.value, \
                        f"{path.name}: {node.value!r}"
