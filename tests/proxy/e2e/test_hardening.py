"""Reproductions from the hardening review: each failed before its fix. Misbehaving origins
(an unasked 101, excess bytes, a reset mid-head, half-closed sockets) end every request within
its timeouts; the request-header timer runs only while a head is being read; HTTP/1.1 details
as Envoy (fragments, Host, h2c, TE: trailers, Date, server)."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import re

import pytest
import re2

from pilotfish.proxy.router.regex_rewrite import global_replace

from ..conftest import Backend, Reply, bootstrap, client, cluster, port_of, read_for, running_proxy, stream_server


def route_to(port: int, timeout: str = "2s", **hcm: object) -> dict:
    return bootstrap([{"match": {"prefix": "/"}, "route": {"cluster": "c", "timeout": timeout}}],
                     [cluster("c", port)], **hcm)




def raw_origin(answer: bytes, then_close: bool = False):  # noqa: ANN201
    """An origin that answers every request head with ``answer`` (bytes as they are)."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while True:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(answer)
                await writer.drain()
                if then_close:
                    writer.close()
                    return
    return stream_server(handle)


# ---- C: an unasked 101 ---------------------------------------------------------------------
async def test_unasked_101_is_a_502_and_the_cluster_keeps_serving(backend: Backend) -> None:
    async with raw_origin(b"HTTP/1.1 101 Switching Protocols\r\nupgrade: foo\r\nconnection: upgrade\r\n\r\n") as port:
        doc = bootstrap([{"match": {"prefix": "/ok"}, "route": {"cluster": "b", "timeout": "3s"}},
                         {"match": {"prefix": "/"}, "route": {"cluster": "c", "timeout": "3s"}}],
                        [cluster("c", port), cluster("b", backend.port)])
        async with running_proxy(doc) as proxy, client(port_of(proxy)) as c:
            async with asyncio.timeout(2):
                r = await c.request(path="/x")
            assert r.status == 502 and b"protocol error" in r.body
            assert (await c.request(path="/ok")).status == 200
            assert proxy.stats.http("ingress").downstream_rq_active == 0


# ---- E: excess bytes after a response ------------------------------------------------------
@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 204 No Content\r\n\r\nEXCESS",
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiEXTRA",
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nEVIL!",
])
async def test_excess_response_bytes_never_reach_the_next_request(answer: bytes) -> None:
    async with raw_origin(answer) as port:
        async with running_proxy(route_to(port)) as proxy, client(port_of(proxy)) as c:
            c.send(b"GET /1 HTTP/1.1\r\nhost: x\r\n\r\nGET /2 HTTP/1.1\r\nhost: x\r\n\r\n")
            first = await c.read_response()
            second = await c.read_response()
            third = await c.request(path="/3")
    # each request gets its own answer from the origin (the next is re-sent on a fresh connection)
    assert first.status == second.status == third.status == int(answer[9:12])
    assert b"EVIL" not in second.body + third.body
    assert proxy.stats.cluster("c").upstream_cx_protocol_error >= 1


# ---- misbehaving origins end within their timeouts ---------------------------------------
@pytest.mark.parametrize("answer, close, want", [
    (b"HTTP/1.1 200 OK\r\nContent-Le", True, 503),  # reset mid-head
    (b"", True, 503),  # closed without a byte
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", True, 200),  # closed mid-body
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", False, 200),  # stalled mid-body
    (b"HTTP/1.1 200 OK\r\n", False, 504),  # stalled mid-head
    (b"\x00\x01garbage\r\n\r\n", False, 502),
])
async def test_misbehaving_origins_end_within_the_route_timeout(answer: bytes, close: bool, want: int) -> None:
    async with raw_origin(answer, then_close=close) as port:
        async with running_proxy(route_to(port, timeout="0.5s")) as proxy, client(port_of(proxy)) as c:
            c.send(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            got = await read_for(c, 2.0)
    assert got.startswith(b"HTTP/1.1 %d" % want), got[:60]
    if want == 200:
        assert not got.endswith(b"short") or b"content-length: 10" in got  # never a complete body


async def test_half_closed_client_after_its_request_still_gets_reset_not_a_hang(backend: Backend) -> None:
    backend.handler = lambda s: Reply(body=b"late", delay=0.2)
    async with running_proxy(route_to(backend.port)) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(proxy))
        writer.write(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        writer.write_eof()
        async with asyncio.timeout(2):
            await reader.read()  # Envoy's HTTP/1 codec: the client's FIN ends the connection
        writer.close()
        await until_zero(proxy)


async def until_zero(proxy: object) -> None:
    async with asyncio.timeout(2):
        while proxy.stats.http("ingress").downstream_rq_active:  # type: ignore[attr-defined]
            await asyncio.sleep(0.01)


# ---- B: request_headers_timeout ------------------------------------------------------------
async def test_request_headers_timeout_starts_at_the_first_byte(backend: Backend) -> None:
    backend.handler = lambda s: Reply(body=b"slow", delay=0.5)
    async with running_proxy(route_to(backend.port, request_headers_timeout="0.2s")) as proxy:
        async with client(port_of(proxy)) as c:
            await asyncio.sleep(0.4)  # idle before the first request: no 408
            r = await c.request()  # slower than the timeout after its head was complete: no 408
            assert r.status == 200 and r.body == b"slow"
            await asyncio.sleep(0.4)  # idle keep-alive between requests: no 408
            backend.handler = lambda s: Reply(body=b"ok")
            assert (await c.request()).status == 200
            c.send(b"GET / HTTP/1.1\r\nhost: x\r\n")  # a head that never completes
            got = await read_for(c, 1.0)
        assert got.startswith(b"HTTP/1.1 408")
        assert proxy.stats.http("ingress").downstream_rq_header_timeout == 1


# ---- HCM request_timeout --------------------------------------------------------------------
async def test_request_timeout_bounds_reading_the_whole_request(backend: Backend) -> None:
    async with running_proxy(route_to(backend.port, request_timeout="0.3s")) as proxy:
        async with client(port_of(proxy)) as c:
            assert (await c.request(method="POST", body=b"whole")).status == 200
            c.send(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\nabc")  # the rest never comes
            got = await read_for(c, 2.0)
        assert got.startswith(b"HTTP/1.1 408") and got.endswith(b"request timeout")
        assert proxy.stats.http("ingress").downstream_rq_timeout == 1


# ---- D: regex_rewrite is RE2::GlobalReplace ------------------------------------------------
@pytest.mark.parametrize("pattern, sub, path, want", [
    (".*", "/echo", "/foo", "/echo"),
    ("^/service/([^/]+)(/.*)$", "\\2/instance/\\1", "/service/foo/v1/api", "/v1/api/instance/foo"),
    ("o", "0", "/foo", "/f00"),
    ("x*", "-", "abc", "-a-b-c-"),
    ("(a)", "\\\\\\1", "a", "\\a"),
])
def test_regex_rewrite_follows_re2_global_replace(pattern: str, sub: str, path: str, want: str) -> None:
    assert global_replace(re2.compile(pattern), sub, path) == want


async def test_regex_rewrite_end_to_end(backend: Backend) -> None:
    doc = bootstrap([{"match": {"prefix": "/"}, "route": {
        "cluster": "c", "regex_rewrite": {"pattern": {"regex": ".*"}, "substitution": "/echo"}}}],
        [cluster("c", backend.port)])
    async with running_proxy(doc) as proxy, client(port_of(proxy)) as c:
        await c.request(path="/foo?x=1")
    assert backend.seen[0].path == "/echo?x=1"


# ---- H: smaller fidelity gaps ---------------------------------------------------------------
@pytest.mark.parametrize("raw", [
    b"GET /a#frag HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /a HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
    b"GET /a HTTP/1.1\r\nHost: a b\r\n\r\n",
    b"GET /a HTTP/1.1\r\nHost: a\x7fb\r\n\r\n",
])
async def test_fragments_and_bad_hosts_are_400(backend: Backend, raw: bytes) -> None:
    async with running_proxy(route_to(backend.port)) as proxy, client(port_of(proxy)) as c:
        c.send(raw)
        got = await read_for(c, 1.0)
    assert got.startswith(b"HTTP/1.1 400") and backend.seen == []


async def test_h2c_upgrade_is_declined_and_the_request_served(backend: Backend) -> None:
    async with running_proxy(route_to(backend.port)) as proxy, client(port_of(proxy)) as c:
        c.send(b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
               b"HTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n"
               b"POST /b HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nContent-Length: 5\r\n\r\nhel")
        first = await c.read_response()
        c.send(b"loGET /c HTTP/1.1\r\nHost: x\r\n\r\n")
        second = await c.read_response()
        third = await c.read_response()
    assert (first.status, second.status, third.status) == (200, 200, 200)
    assert [(s.method, s.path, s.body) for s in backend.seen] == [("GET", "/a", b""), ("POST", "/b", b"hello"),
                                                                  ("GET", "/c", b"")]
    for s in backend.seen:
        assert "upgrade" not in s.headers and "http2-settings" not in s.headers


async def test_te_trailers_is_forwarded(backend: Backend) -> None:
    async with running_proxy(route_to(backend.port)) as proxy, client(port_of(proxy)) as c:
        await c.request(headers={"te": "trailers"})
    assert backend.seen[0].headers["te"] == "trailers"


async def test_date_added_when_missing_and_kept_when_present(backend: Backend) -> None:
    async with running_proxy(route_to(backend.port)) as proxy, client(port_of(proxy)) as c:
        r = await c.request()
        date = email.utils.parsedate_to_datetime(r.headers["date"])
        assert date.tzinfo is not None
        backend.handler = lambda s: Reply(headers=[("Date", "Tue, 01 Jan 2030 00:00:00 GMT")])
        r = await c.request()
        assert [v for k, v in r.header_list if k == "date"] == ["Tue, 01 Jan 2030 00:00:00 GMT"]
        c.send(b"GET /a#x HTTP/1.1\r\nHost: x\r\n\r\n")  # local replies have one too
        assert b"\r\ndate: " in await read_for(c, 1.0)
    assert r.headers["server"] == "envoy"


# ---- headers_with_underscores_action ---------------------------------------------------------
@pytest.mark.parametrize("action, status, forwarded", [("ALLOW", 200, True), ("DROP_HEADER", 200, False),
                                                        ("REJECT_REQUEST", 400, False)])
async def test_headers_with_underscores_action(backend: Backend, action: str, status: int, forwarded: bool) -> None:
    doc = route_to(backend.port, common_http_protocol_options={"headers_with_underscores_action": action})
    async with running_proxy(doc) as proxy, client(port_of(proxy)) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\nx_secret: 1\r\nx-ok: 1\r\n\r\n")
        got = await read_for(c, 1.0)
    assert got.startswith(b"HTTP/1.1 %d" % status)
    if status == 200:
        assert ("x_secret" in backend.seen[0].headers) is forwarded and backend.seen[0].headers["x-ok"] == "1"
    stats = proxy.stats.http("ingress")
    assert stats.dropped_headers_with_underscores == (1 if action == "DROP_HEADER" else 0)
    assert stats.requests_rejected_with_underscores_in_headers == (1 if action == "REJECT_REQUEST" else 0)


# ---- exceptions in callbacks are contained ----------------------------------------------------
async def test_a_bug_in_a_callback_ends_that_connection_only(backend: Backend, monkeypatch: pytest.MonkeyPatch,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    from pilotfish.proxy.router import stream as stream_mod

    real_begin = stream_mod.Stream.begin

    def broken(self: object) -> None:
        if self.head.path == b"/boom":  # type: ignore[attr-defined]
            raise RuntimeError("kaboom")
        real_begin(self)  # type: ignore[arg-type]

    monkeypatch.setattr(stream_mod.Stream, "begin", broken)
    async with running_proxy(route_to(backend.port)) as proxy:
        with caplog.at_level(logging.ERROR, logger="pilotfish.proxy"):
            async with client(port_of(proxy)) as c:
                c.send(b"GET /boom HTTP/1.1\r\nHost: x\r\n\r\n")
                got = await read_for(c, 1.0)
            async with client(port_of(proxy)) as c:
                assert (await c.request(path="/fine")).status == 200
    assert got.startswith(b"HTTP/1.1 500") and b"connection: close" in got
    lines = [r for r in caplog.records if "kaboom" in r.getMessage()]
    assert len(lines) == 1 and re.search(r"internal error in downstream request", lines[0].getMessage())


def test_date_line_is_refreshed_by_its_timer() -> None:
    from pilotfish.proxy.http.date_header import DateLine

    now = [1_800_000_000.0]
    line = DateLine(lambda: now[0])
    assert line.header == (b"date", b"Fri, 15 Jan 2027 08:00:00 GMT")
    loop = asyncio.new_event_loop()
    try:
        line.start(loop)
        now[0] += 61
        loop.run_until_complete(asyncio.sleep(0.6))
        assert line.value == b"Fri, 15 Jan 2027 08:01:01 GMT"
        line.stop()
        assert line.timer is None
    finally:
        loop.close()


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 000 Zero\r\ncontent-length: 0\r\n\r\n",
    b"HTTP/1.1 716 Odd\r\n\r\nclose-delimited",
    b"HTTP/1.1 199 Interim\r\ncontent-length: 5\r\n\r\nhello",
])
async def test_status_codes_outside_the_rfc_are_protocol_errors(answer: bytes) -> None:
    async with raw_origin(answer, then_close=True) as port:
        async with running_proxy(route_to(port)) as proxy, client(port_of(proxy)) as c:
            r = await c.request()
    assert r.status == 502 and b"protocol error" in r.body


async def test_a_refused_upgrade_with_payload_is_403_without_an_error(backend: Backend,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    async with running_proxy(route_to(backend.port)) as proxy, client(port_of(proxy)) as c:
        with caplog.at_level(logging.ERROR):
            c.send(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\npayload")
            got = await read_for(c, 1.0)
    assert got.startswith(b"HTTP/1.1 403") and backend.seen == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_bug_in_a_timeout_path_resets_that_connection_only(backend: Backend, monkeypatch: pytest.MonkeyPatch,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    from pilotfish.proxy.router import stream as stream_mod

    def broken(self: object) -> None:
        raise RuntimeError("timeout bug")

    monkeypatch.setattr(stream_mod.Stream, "on_timeout", broken)
    backend.handler = lambda s: Reply(body=b"late", delay=1.0)
    async with running_proxy(route_to(backend.port, timeout="0.2s")) as proxy:
        with caplog.at_level(logging.ERROR, logger="pilotfish.proxy"):
            async with client(port_of(proxy)) as c:
                c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                got = await read_for(c, 1.5)
        assert got == b""  # reset, not left hanging
        backend.handler = lambda s: Reply(body=b"ok")
        async with client(port_of(proxy)) as c:
            assert (await c.request()).status == 200
    assert [r for r in caplog.records if "internal error in downstream timer" in r.getMessage()]


async def test_blank_lines_alone_start_no_request_header_timer(backend: Backend) -> None:
    """RFC 9112 §2.2: empty lines before a request are ignored; they begin no request head."""
    async with running_proxy(route_to(backend.port, request_headers_timeout="0.2s")) as proxy:
        async with client(port_of(proxy)) as c:
            c.send(b"\r\n\r\n")
            assert await read_for(c, 0.5) == b""
            assert (await c.request()).status == 200
        assert proxy.stats.http("ingress").downstream_rq_header_timeout == 0
