"""Returning an upstream connection to its pool at the end of a response (the pool's common
case runs inline in the stream; everything else goes through ConnectionPool.release)."""

from __future__ import annotations

from ..conftest import (
    Backend,
    Reply,
    bootstrap,
    client,
    cluster,
    port_of,
    running_proxy,
    until,
)


def _doc(backend: Backend, **extra: object) -> dict:
    return bootstrap([{"match": {"prefix": "/"}, "route": {"cluster": "a"}}], [cluster("a", backend.port, **extra)])


async def test_a_released_connection_is_kept_and_reused(backend: Backend) -> None:
    async with running_proxy(_doc(backend)) as proxy, client(port_of(proxy)) as c:
        pool = proxy.config.clusters["a"].hosts[0].pool
        for _ in range(3):
            assert (await c.request()).status == 200
            assert len(pool.idle) == 1 and pool.idle[0].stream is None
            assert pool.idle_timer is not None  # armed for the idle timeout
    assert backend.connections == 1


async def test_a_connection_released_after_its_pool_closed_is_closed(backend: Backend) -> None:
    backend.handler = lambda s: Reply(body=b"ok", delay=0.2)
    async with running_proxy(_doc(backend)) as proxy, client(port_of(proxy)) as c:
        c.send(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        pool = proxy.config.clusters["a"].hosts[0].pool
        await until(lambda: pool.cx_active == 1)
        pool.close()  # in flight: the response still reaches the client
        r = await c.read_response()
        assert (r.status, r.body) == (200, b"ok")
        assert pool.idle == []
        await until(lambda: pool.cx_active == 0)


async def test_a_connection_at_its_request_limit_is_closed_on_release(backend: Backend) -> None:
    async with running_proxy(_doc(backend, max_requests_per_connection=1)) as proxy, client(port_of(proxy)) as c:
        pool = proxy.config.clusters["a"].hosts[0].pool
        for _ in range(2):
            assert (await c.request()).status == 200
            assert pool.idle == []
        assert proxy.config.clusters["a"].stats.upstream_cx_max_requests == 2
    assert backend.connections == 2
