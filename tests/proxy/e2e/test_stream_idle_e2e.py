"""The connection manager's stream_idle_timeout on every stream, over loopback: a hung upstream
gets 504 SI, a stalled request body 408, a stalled response a reset client connection; a stream
that makes progress is spared; a route idle_timeout replaces it (0s disables both)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from ..conftest import Backend, Reply, client, port_of, read_until_closed, running_proxy
from .helpers import doc_for


class _Hung(asyncio.Protocol):
    def __init__(self, server: HungServer) -> None:
        self.server = server
        self.buf = b""
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.server.conns.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.conns.discard(self)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while b"\r\n\r\n" in self.buf:  # one request head (the tests send no body it must skip)
            _, self.buf = self.buf.split(b"\r\n\r\n", 1)
            n = self.server.heads
            self.server.heads += 1
            answers = self.server.answers
            if n < len(answers) and answers[n] is not None:
                self.transport.write(answers[n])


class HungServer:
    """Reads requests; answers the Nth with ``answers[N]`` (raw bytes, possibly a partial
    response), and the rest (or a None answer) never."""

    def __init__(self, answers: list[bytes | None] | None = None) -> None:
        self.answers = answers or []
        self.heads = 0
        self.conns: set[_Hung] = set()
        self.server: asyncio.base_events.Server | None = None
        self.port = 0


@contextlib.asynccontextmanager
async def hung_server(answers: list[bytes | None] | None = None) -> AsyncIterator[HungServer]:
    s = HungServer(answers)
    loop = asyncio.get_running_loop()
    s.server = await loop.create_server(lambda: _Hung(s), "127.0.0.1", 0)
    s.port = s.server.sockets[0].getsockname()[1]
    try:
        yield s
    finally:
        s.server.close()
        for c in list(s.conns):
            c.transport.abort()
        await s.server.wait_closed()


def idle_doc(port: int, timeout: str | None, route: dict[str, Any] | None = None,
             log: Path | None = None, retry: dict[str, Any] | None = None) -> dict:
    doc = doc_for([port], retry, route=route, log=log)
    if timeout is not None:
        hcm = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        hcm["stream_idle_timeout"] = timeout
    return doc


async def test_hung_upstream_504_si(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    async with hung_server() as up, running_proxy(idle_doc(up.port, "0.4s", log=log)) as proxy:
        loop = asyncio.get_running_loop()
        async with client(port_of(proxy)) as c:
            t0 = loop.time()
            r = await c.request()
            elapsed = loop.time() - t0
            assert r.status == 504 and r.body == b"stream timeout"
            assert 0.35 < elapsed < 0.7  # nothing moved since the head: one period, not two
        assert proxy.stats.http("ingress").downstream_rq_idle_timeout == 1
        assert up.heads == 1
    assert " 504 SI " in log.read_text()


async def test_hung_second_request_on_a_keep_alive_connection() -> None:
    ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
    async with hung_server([ok]) as up, running_proxy(idle_doc(up.port, "0.3s")) as proxy, \
            client(port_of(proxy)) as c:
        assert (await c.request()).status == 200
        await asyncio.sleep(0.4)  # the connection's timer looks at an idle connection meanwhile
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        r = await c.request()
        assert r.status == 504 and r.body == b"stream timeout"
        assert 0.25 < loop.time() - t0 < 0.7
        assert proxy.stats.http("ingress").downstream_rq_idle_timeout == 1


async def test_progressing_response_is_not_cut(backend: Backend) -> None:
    backend.handler = lambda s: Reply(chunks=[b"a"] * 10, chunk_delay=0.1)  # a byte per 0.1 s for 1 s
    async with running_proxy(idle_doc(backend.port, "0.3s")) as proxy, client(port_of(proxy)) as c:
        r = await c.request()
        assert r.status == 200 and r.body == b"a" * 10
        assert proxy.stats.http("ingress").downstream_rq_idle_timeout == 0


async def test_stalled_request_body_408(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    async with hung_server() as up, running_proxy(idle_doc(up.port, "0.3s", log=log)) as proxy, \
            client(port_of(proxy)) as c:
        c.send(b"POST / HTTP/1.1\r\nhost: example.com\r\ncontent-length: 100\r\n\r\n0123456789")
        r = await c.read_response(timeout=2.0)
        assert r.status == 408 and r.body == b"stream timeout"
        assert r.headers.get("connection") == "close"
        assert await c.closed_by_peer()
        assert proxy.stats.http("ingress").downstream_rq_idle_timeout == 1
    assert " 408 SI " in log.read_text()


async def test_started_response_then_stall_resets_the_client() -> None:
    partial = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1\r\na\r\n"
    async with hung_server([partial]) as up, running_proxy(idle_doc(up.port, "0.3s")) as proxy, \
            client(port_of(proxy)) as c:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        c.send(b"GET / HTTP/1.1\r\nhost: example.com\r\n\r\n")
        got = await read_until_closed(c)
        assert got.startswith(b"HTTP/1.1 200 ") and b"\r\n0\r\n\r\n" not in got  # cut short
        assert loop.time() - t0 < 1.5
        assert proxy.stats.http("ingress").downstream_rq_idle_timeout == 1


async def _no_answer_within(port: int, seconds: float) -> None:
    async with client(port) as c:
        c.send(b"GET / HTTP/1.1\r\nhost: example.com\r\n\r\n")
        with contextlib.suppress(TimeoutError):
            await c.read_response(timeout=seconds)
            raise AssertionError("answered")


async def test_route_idle_timeout_zero_disables_it() -> None:
    async with hung_server() as up, \
            running_proxy(idle_doc(up.port, "0.2s", route={"idle_timeout": "0s"})) as proxy:
        await _no_answer_within(port_of(proxy), 0.7)
        assert proxy.stats.http("ingress").downstream_rq_idle_timeout == 0


async def test_stream_idle_timeout_zero_disables_it() -> None:
    async with hung_server() as up, running_proxy(idle_doc(up.port, "0s")) as proxy:
        await _no_answer_within(port_of(proxy), 0.7)
        assert proxy.stats.http("ingress").downstream_rq_idle_timeout == 0


async def test_route_idle_timeout_replaces_it() -> None:
    # The connection manager's is off; the route's own still ends the stream.
    async with hung_server() as up, \
            running_proxy(idle_doc(up.port, "0s", route={"idle_timeout": "0.2s"})) as proxy, \
            client(port_of(proxy)) as c:
        r = await c.request()
        assert r.status == 504 and r.body == b"stream timeout"
        assert proxy.stats.http("ingress").downstream_rq_idle_timeout == 1


async def test_resilient_stream_without_route_idle_timeout_gets_it() -> None:
    retry = {"retry_on": "5xx", "num_retries": 1}
    async with hung_server() as up, running_proxy(idle_doc(up.port, "0.3s", retry=retry)) as proxy, \
            client(port_of(proxy)) as c:
        r = await c.request()
        assert r.status == 504 and r.body == b"stream timeout"
        assert proxy.stats.http("ingress").downstream_rq_idle_timeout == 1


async def test_pipelined_request_counts_from_when_it_starts(backend: Backend) -> None:
    # The first response takes 0.6 s (making progress); the second request, read at once but
    # started only then, gets its full period before it times out.
    backend.handler = lambda s: (Reply(chunks=[b"a"] * 6, chunk_delay=0.1) if s.path == "/1"
                                 else Reply(delay=1.5))
    async with running_proxy(idle_doc(backend.port, "0.3s")) as proxy, client(port_of(proxy)) as c:
        loop = asyncio.get_running_loop()
        c.send(b"GET /1 HTTP/1.1\r\nhost: example.com\r\n\r\nGET /2 HTTP/1.1\r\nhost: example.com\r\n\r\n")
        first = await c.read_response()
        t1 = loop.time()
        assert first.status == 200 and first.body == b"a" * 6
        second = await c.read_response()
        assert second.status == 504 and second.body == b"stream timeout"
        assert 0.2 < loop.time() - t1 < 0.6
        assert proxy.stats.http("ingress").downstream_rq_idle_timeout == 1
