"""A standing request-smuggling battery (RFC 9112 §6, §11.2; the obfuscations of public
request-smuggling research): routes send ``/admin`` to a ``direct_response 401`` and everything
else to a strict origin (llhttp) that records every request it parses. Each attack hides
``GET /admin/secret`` in a body whose framing is obfuscated; the proxy must refuse it, or the
origin must see exactly one well-framed request and never ``/admin``."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from ..conftest import Backend, bootstrap, client, cluster, port_of, read_for, running_proxy, stream_server

HIDDEN = b"GET /admin/secret HTTP/1.1\r\nHost: x\r\n\r\n"
CHUNK = b"%x\r\n%s\r\n0\r\n\r\n" % (len(HIDDEN), HIDDEN)


def _req(*headers: bytes, body: bytes = CHUNK) -> bytes:
    return b"POST /p HTTP/1.1\r\nHost: x\r\n" + b"".join(h + b"\r\n" for h in headers) + b"\r\n" + body


ATTACKS: dict[str, bytes] = {
    # Transfer-Encoding obfuscations
    "te trailing space": _req(b"Transfer-Encoding: chunked "),
    "te leading tab": _req(b"Transfer-Encoding:\tchunked"),
    "te trailing tab": _req(b"Transfer-Encoding: chunked\t"),
    "te vertical tab": _req(b"Transfer-Encoding: \x0bchunked"),
    "te form feed": _req(b"Transfer-Encoding: \x0cchunked"),
    "te nul": _req(b"Transfer-Encoding: chunked\x00"),
    "te upper case": _req(b"Transfer-Encoding: CHUNKED"),
    "te name upper case": _req(b"TRANSFER-ENCODING: chunked"),
    "te space before colon": _req(b"Transfer-Encoding : chunked"),
    "te underscore name": _req(b"Transfer_Encoding: chunked", b"Content-Length: 4"),
    "te xchunked": _req(b"Transfer-Encoding: xchunked"),
    "te chunk": _req(b"Transfer-Encoding: chunk"),
    "te quoted": _req(b'Transfer-Encoding: "chunked"'),
    "te gzip then chunked": _req(b"Transfer-Encoding: gzip, chunked"),
    "te identity then chunked": _req(b"Transfer-Encoding: identity, chunked"),
    "te chunked then identity": _req(b"Transfer-Encoding: chunked, identity"),
    "te chunked twice listed": _req(b"Transfer-Encoding: chunked, chunked"),
    "te chunked twice lines": _req(b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked"),
    "te two lines gzip last": _req(b"Transfer-Encoding: chunked", b"Transfer-Encoding: gzip"),
    "te two lines chunked last": _req(b"Transfer-Encoding: gzip", b"Transfer-Encoding: chunked"),
    "te with parameter": _req(b"Transfer-Encoding: chunked;q=1"),
    "te empty element": _req(b"Transfer-Encoding: , chunked"),
    "te obs-fold": _req(b"Transfer-Encoding:\r\n chunked"),
    "te obs-fold after value": _req(b"Transfer-Encoding: gzip\r\n chunked"),
    "te bare lf before": _req(b"X: 1\nTransfer-Encoding: chunked"),
    "te bare cr": _req(b"X: 1\rTransfer-Encoding: chunked"),
    "te in http/1.0": b"POST /p HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + CHUNK,
    # TE and CL together (CL.TE / TE.CL)
    "te then cl": _req(b"Transfer-Encoding: chunked", b"Content-Length: 4"),
    "cl then te": _req(b"Content-Length: 4", b"Transfer-Encoding: chunked"),
    "cl then te space": _req(b"Content-Length: 4", b"Transfer-Encoding: chunked "),
    "cl then obfuscated te": _req(b"Content-Length: 4", b"Transfer-Encoding: x"),
    # Content-Length obfuscations
    "cl plus": _req(b"Content-Length: +%d" % len(HIDDEN), body=HIDDEN),
    "cl hex": _req(b"Content-Length: 0x%x" % len(HIDDEN), body=HIDDEN),
    "cl minus": _req(b"Content-Length: -1", body=HIDDEN),
    "cl list same": _req(b"Content-Length: 0, 0", body=HIDDEN),
    "cl list different": _req(b"Content-Length: 0, %d" % len(HIDDEN), body=HIDDEN),
    "cl space inside": _req(b"Content-Length: 1 0", body=HIDDEN),
    "cl duplicate same": _req(b"Content-Length: 0", b"Content-Length: 0", body=HIDDEN),
    "cl duplicate different": _req(b"Content-Length: 0", b"Content-Length: %d" % len(HIDDEN), body=HIDDEN),
    "cl exponent": _req(b"Content-Length: 4e1", body=HIDDEN),
    "cl underscore digits": _req(b"Content-Length: 1_0", body=HIDDEN),
    "cl unicode digit": _req(b"Content-Length: \xd9\xa5", body=HIDDEN),
    "cl huge": _req(b"Content-Length: 99999999999999999999999", body=HIDDEN),
    "cl obs-fold": _req(b"Content-Length:\r\n 0", body=HIDDEN),
    "cl name space": _req(b"Content-Length : 0", body=HIDDEN),
    "cl vertical tab": _req(b"Content-Length: \x0b0", body=HIDDEN),
    # chunk-size tricks
    "chunk size hex prefix": _req(b"Transfer-Encoding: chunked", body=b"0x%x\r\n%s\r\n0\r\n\r\n" % (len(HIDDEN), HIDDEN)),
    "chunk size plus": _req(b"Transfer-Encoding: chunked", body=b"+%x\r\n%s\r\n0\r\n\r\n" % (len(HIDDEN), HIDDEN)),
    "chunk size space": _req(b"Transfer-Encoding: chunked", body=b"%x \r\n%s\r\n0\r\n\r\n" % (len(HIDDEN), HIDDEN)),
    "chunk size bare lf": _req(b"Transfer-Encoding: chunked", body=b"%x\n%s\n0\n\n" % (len(HIDDEN), HIDDEN)),
    "chunk size overflow": _req(b"Transfer-Encoding: chunked",
                                body=b"1%016x\r\n%s\r\n0\r\n\r\n" % (len(HIDDEN), HIDDEN)),
    "chunk size negative": _req(b"Transfer-Encoding: chunked", body=b"-1\r\n" + HIDDEN),
    "chunk zero then data": _req(b"Transfer-Encoding: chunked", body=b"0\r\n\r\n" + HIDDEN),
    "chunk data too long": _req(b"Transfer-Encoding: chunked", body=b"1\r\nAB\r\n0\r\n\r\n" + HIDDEN),
    "chunk no crlf after data": _req(b"Transfer-Encoding: chunked", body=b"1\r\nA0\r\n\r\n" + HIDDEN),
    "chunk extension smuggle": _req(b"Transfer-Encoding: chunked", body=b"2;\n\r\nxx\r\n0\r\n\r\n" + HIDDEN),
    "chunk trailer smuggle": _req(b"Transfer-Encoding: chunked", body=b"0\r\nX: 1\n\r\n" + HIDDEN),
    # request-line and header tricks
    "absolute target admin": b"GET http://x/admin/secret HTTP/1.1\r\nHost: x\r\n\r\n",
    "fragment": b"GET /p#/admin HTTP/1.1\r\nHost: x\r\n\r\n",
    "two hosts": b"GET /p HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
    "host with space": b"GET /p HTTP/1.1\r\nHost: x /admin\r\n\r\n",
}

# Attacks the proxy accepts as one plain request (the hidden text is only body bytes).
ACCEPTED = {"te upper case", "te name upper case", "te underscore name"}




@pytest.fixture
async def proxied() -> object:
    origin = await Backend("origin").start()
    doc = bootstrap([{"match": {"prefix": "/admin"}, "direct_response": {"status": 401}},
                     {"match": {"prefix": "/"}, "route": {"cluster": "origin", "timeout": "2s"}}],
                    [cluster("origin", origin.port)])
    async with running_proxy(doc) as proxy:
        yield proxy, origin
    await origin.stop()


@pytest.mark.parametrize("name", list(ATTACKS))
async def test_smuggled_request_never_reaches_the_origin(proxied: tuple, name: str) -> None:
    proxy, origin = proxied
    async with client(port_of(proxy)) as c:
        c.send(ATTACKS[name])
        got = await read_for(c, 0.5)
    assert not [s for s in origin.seen if "/admin" in s.path], f"{name}: {origin.seen}"
    assert len(origin.seen) <= 1, f"{name}: the origin parsed {len(origin.seen)} requests"
    status = got[9:12]
    if name in ACCEPTED:
        assert status == b"200" and len(origin.seen) == 1
    else:
        assert status in (b"400", b"501", b"413", b"431", b"200", b"401"), (name, got[:80])
        if status != b"200":
            assert origin.seen == [], f"{name}: refused but forwarded"


async def test_refused_framing_is_answered_and_the_connection_closed(proxied: tuple) -> None:
    """TE with another coding is 501 (Envoy), a bad TE or CL is 400, and the connection ends."""
    proxy, origin = proxied
    for attack, want in (("te gzip then chunked", b"501"), ("te trailing space", b"200"),
                         ("te then cl", b"400"), ("cl plus", b"400"), ("te xchunked", b"501"),
                         ("chunk size space", b"400"), ("fragment", b"400"), ("two hosts", b"400"),
                         ("host with space", b"400")):
        async with client(port_of(proxy)) as c:
            c.send(ATTACKS[attack])
            got = await read_for(c, 1.0)
        assert got[9:12] == want, (attack, got[:120])
        if want != b"200":
            assert b"connection: close" in got
    # "chunked " (trailing space) is chunked: the origin gets the body, re-framed, as one request
    bodies = [s.body for s in origin.seen]
    assert bodies == [HIDDEN]


async def test_chunked_request_is_refraimed_to_the_origin_as_one_request(proxied: tuple) -> None:
    proxy, origin = proxied
    async with client(port_of(proxy)) as c:
        c.send(_req(b"Transfer-Encoding: chunked ") + b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
        first = await c.read_response()
        second = await c.read_response()
    assert (first.status, second.status) == (200, 200)
    assert [(s.method, s.path, s.body) for s in origin.seen] == [("POST", "/p", HIDDEN), ("GET", "/next", b"")]
    assert origin.seen[0].headers.get("transfer-encoding") == "chunked"


@pytest.mark.parametrize("raw", [
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
])
async def test_badly_framed_responses_are_502_and_never_reach_the_client(raw: bytes) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(raw)
            await writer.drain()
            await reader.read()

    async with stream_server(handle) as port:
        doc = bootstrap([{"match": {"prefix": "/"}, "route": {"cluster": "c", "timeout": "2s"}}], [cluster("c", port)])
        async with running_proxy(doc) as proxy, client(port_of(proxy)) as c:
            r = await c.request()
            assert r.status == 502 and b"protocol error" in r.body
            assert proxy.stats.cluster("c").upstream_cx_protocol_error == 1


async def test_a_body_framed_wrongly_after_the_head_resets_the_client() -> None:
    """The head went out already: the client's connection is reset, the body never completes."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n")
            await writer.drain()
            await reader.read()

    async with stream_server(handle) as port:
        doc = bootstrap([{"match": {"prefix": "/"}, "route": {"cluster": "c", "timeout": "2s"}}], [cluster("c", port)])
        async with running_proxy(doc) as proxy, client(port_of(proxy)) as c:
            c.send(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            got = await read_for(c, 2.0)
            assert got.startswith(b"HTTP/1.1 200") and b"hello" not in got
            assert proxy.stats.cluster("c").upstream_cx_protocol_error == 1
