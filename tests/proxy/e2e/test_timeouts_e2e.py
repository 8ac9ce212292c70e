"""Route timeouts over loopback: the route timeout (and its request header), per-try timeouts
with retries, stream idle timeout and max stream duration; timed-out upstream connections close."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ..conftest import (
    Backend,
    Reply,
    Seen,
    client,
    port_of,
    read_until_closed,
    running_proxy,
    until,
)
from .helpers import doc_for


async def test_route_timeout_504_ut_and_upstream_closed(backend: Backend, tmp_path: Path) -> None:
    backend.handler = lambda s: Reply(delay=2.0)
    log = tmp_path / "access.log"
    doc = doc_for([backend.port], route={"timeout": "0.2s"}, log=log)
    async with running_proxy(doc) as proxy:
        loop = asyncio.get_running_loop()
        async with client(port_of(proxy)) as c:
            t0 = loop.time()
            r = await c.request()
            assert r.status == 504 and r.body == b"upstream request timeout"
            assert 0.15 < loop.time() - t0 < 1.0
        stats = proxy.config.clusters["c"].stats
        assert stats.upstream_rq_timeout == 1
        await until(lambda: stats.upstream_cx_active == 0 and not backend._conns)
        assert proxy.config.clusters["c"].resources[0].requests.count == 0
    assert " 504 UT " in log.read_text()


async def test_timeout_zero_means_none(backend: Backend) -> None:
    backend.handler = lambda s: Reply(delay=0.3, body=b"slow")
    async with running_proxy(doc_for([backend.port], route={"timeout": "0s"})) as proxy, \
            client(port_of(proxy)) as c:
        r = await c.request()
        assert r.status == 200 and "x-envoy-expected-rq-timeout-ms" not in backend.seen[0].headers


async def test_timeout_header_overrides_route(backend: Backend) -> None:
    backend.handler = lambda s: Reply(delay=2.0)
    async with running_proxy(doc_for([backend.port])) as proxy, client(port_of(proxy)) as c:
        r = await c.request(headers={"x-envoy-upstream-rq-timeout-ms": "150"})
        assert r.status == 504
        seen = backend.seen[0].headers
        assert "x-envoy-upstream-rq-timeout-ms" not in seen
        assert seen["x-envoy-expected-rq-timeout-ms"] == "150"


async def test_per_try_timeout_then_success(backend: Backend) -> None:
    def handler(s: Seen) -> Reply:
        return Reply(delay=2.0) if len(backend.seen) == 1 else Reply(body=b"second")

    backend.handler = handler
    retry = {"retry_on": "reset", "num_retries": 2, "per_try_timeout": "0.2s"}
    async with running_proxy(doc_for([backend.port], retry)) as proxy, client(port_of(proxy)) as c:
        r = await c.request()
        assert r.status == 200 and r.body == b"second"
        assert [s.headers["x-envoy-expected-rq-timeout-ms"] for s in backend.seen] == ["200", "200"]
        stats = proxy.config.clusters["c"].stats
        assert stats.upstream_rq_per_try_timeout == 1 and stats.upstream_rq_retry == 1


async def test_per_try_timeout_without_retry_is_504(backend: Backend) -> None:
    backend.handler = lambda s: Reply(delay=2.0)
    retry = {"retry_on": "5xx", "num_retries": 1, "per_try_timeout": "0.1s"}
    async with running_proxy(doc_for([backend.port], retry)) as proxy, client(port_of(proxy)) as c:
        r = await c.request(headers={"x-envoy-upstream-rq-per-try-timeout-ms": "150"})
        assert r.status == 504
        assert len(backend.seen) == 2  # 5xx covers a per-try timeout: one retry, then 504


async def test_idle_timeout(backend: Backend, tmp_path: Path) -> None:
    backend.handler = lambda s: Reply(delay=2.0)
    log = tmp_path / "access.log"
    async with running_proxy(doc_for([backend.port], route={"idle_timeout": "0.15s"}, log=log)) as proxy:
        async with client(port_of(proxy)) as c:
            r = await c.request()
            assert r.status == 504 and r.body == b"stream timeout"
        assert proxy.stats.http("ingress").downstream_rq_idle_timeout == 1
    assert " 504 SI " in log.read_text()


async def test_idle_timeout_spares_a_streaming_response(backend: Backend) -> None:
    backend.handler = lambda s: Reply(chunks=[b"a"] * 6, chunk_delay=0.05)
    async with running_proxy(doc_for([backend.port], route={"idle_timeout": "0.15s"})) as proxy, \
            client(port_of(proxy)) as c:
        r = await c.request()
        assert r.status == 200 and r.body == b"aaaaaa"


async def test_max_stream_duration(backend: Backend) -> None:
    backend.handler = lambda s: Reply(delay=2.0)
    doc = doc_for([backend.port], route={"max_stream_duration": {"max_stream_duration": "0.15s"}})
    async with running_proxy(doc) as proxy, client(port_of(proxy)) as c:
        r = await c.request()
        assert r.status == 504 and r.body == b"downstream duration timeout"
        assert proxy.stats.http("ingress").downstream_rq_max_duration_reached == 1


async def test_per_try_idle_timeout_is_retried(backend: Backend) -> None:
    def handler(s: Seen) -> Reply:
        return Reply(delay=2.0) if len(backend.seen) == 1 else Reply(body=b"second")

    backend.handler = handler
    retry = {"retry_on": "reset", "num_retries": 2, "per_try_idle_timeout": "0.2s"}
    async with running_proxy(doc_for([backend.port], retry)) as proxy, client(port_of(proxy)) as c:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        r = await c.request()
        assert r.status == 200 and r.body == b"second"
        assert 0.15 < loop.time() - t0 < 1.0
        stats = proxy.config.clusters["c"].stats
        assert stats.upstream_rq_per_try_idle_timeout == 1 and stats.upstream_rq_retry == 1
        assert stats.upstream_rq_per_try_timeout == 0
        # no per_try_timeout: the expected timeout is the route's (15 s), idle or not
        assert backend.seen[0].headers["x-envoy-expected-rq-timeout-ms"] == "15000"


async def test_per_try_idle_timeout_without_retry_is_504_ut(backend: Backend, tmp_path: Path) -> None:
    backend.handler = lambda s: Reply(delay=2.0)
    log = tmp_path / "access.log"
    retry = {"retry_on": "retriable-4xx", "per_try_idle_timeout": "0.2s"}
    async with running_proxy(doc_for([backend.port], retry, log=log)) as proxy:
        async with client(port_of(proxy)) as c:
            r = await c.request()
            assert r.status == 504 and r.body == b"upstream request timeout"
        stats = proxy.config.clusters["c"].stats
        assert stats.upstream_rq_per_try_idle_timeout == 1 and len(backend.seen) == 1
        await until(lambda: stats.upstream_cx_active == 0)  # the attempt's connection was reset
    assert " 504 UT " in log.read_text()


async def test_per_try_idle_timeout_spares_a_response_that_makes_progress(backend: Backend) -> None:
    backend.handler = lambda s: Reply(chunks=[b"a"] * 8, chunk_delay=0.08)
    retry = {"retry_on": "reset", "per_try_idle_timeout": "0.25s"}
    async with running_proxy(doc_for([backend.port], retry)) as proxy, client(port_of(proxy)) as c:
        r = await c.request()
        assert r.status == 200 and r.body == b"a" * 8
        assert proxy.config.clusters["c"].stats.upstream_rq_per_try_idle_timeout == 0


async def test_per_try_idle_timeout_after_the_response_started_resets_the_client(backend: Backend) -> None:
    backend.handler = lambda s: Reply(chunks=[b"a", b"b"], chunk_delay=3.0)
    retry = {"retry_on": "reset", "num_retries": 3, "per_try_idle_timeout": "0.2s"}
    async with running_proxy(doc_for([backend.port], retry)) as proxy, client(port_of(proxy)) as c:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        c.send(b"GET / HTTP/1.1\r\nhost: example.com\r\n\r\n")
        got = await read_until_closed(c)
        assert got.startswith(b"HTTP/1.1 200 ") and b"\r\n0\r\n\r\n" not in got  # cut short
        assert loop.time() - t0 < 1.0
        stats = proxy.config.clusters["c"].stats
        assert stats.upstream_rq_per_try_idle_timeout == 1
        assert stats.upstream_rq_retry == 0 and len(backend.seen) == 1  # never retried once started


async def test_per_try_timeout_stops_once_the_response_started(backend: Backend) -> None:
    # Envoy ignores the per-try timeout after the response head: the route timeout still applies.
    backend.handler = lambda s: Reply(chunks=[b"a"] * 5, chunk_delay=0.1)
    retry = {"retry_on": "reset", "per_try_timeout": "0.2s"}
    async with running_proxy(doc_for([backend.port], retry)) as proxy, client(port_of(proxy)) as c:
        r = await c.request()
        assert r.status == 200 and r.body == b"aaaaa"
        assert proxy.config.clusters["c"].stats.upstream_rq_per_try_timeout == 0
