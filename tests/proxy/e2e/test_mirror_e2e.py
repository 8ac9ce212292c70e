"""Request mirroring (route request_mirror_policies) over loopback: the mirror gets a copy with
a ``-shadow`` host and the same body; it never changes the main response or its latency (hung,
refused, slow); a mirror falling behind a big body is abandoned; runtime_fraction 0 mirrors
nothing; the mirror cluster's circuit breaker bounds concurrent mirrors."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from pilotfish.proxy.router.shadow import port_start, shadow_head, shadow_host

from ..conftest import Backend, Reply, bootstrap, client, cluster, port_of, running_proxy, until


def mirror_route(*policies: dict[str, Any], **route: Any) -> list[dict[str, Any]]:
    return [{"match": {"prefix": "/"},
             "route": {"cluster": "main", "request_mirror_policies": list(policies), **route}}]


def doc_for(main: int, mirror: int, *policies: dict[str, Any], mirror_extra: dict[str, Any] | None = None,
            **hcm: Any) -> dict[str, Any]:
    policies = policies or ({"cluster": "mirror"},)
    return bootstrap(mirror_route(*policies), [cluster("main", main), cluster("mirror", mirror, **(mirror_extra or {}))],
                     **hcm)


async def stats(proxy: Any) -> str:
    async with client(proxy.admin_port) as c:
        return (await c.request(path="/stats")).body.decode()


def test_shadow_host_keeps_the_port() -> None:
    assert shadow_host(b"foo") == b"foo-shadow"
    assert shadow_host(b"foo:8080") == b"foo-shadow:8080"
    assert shadow_host(b"[::1]:80") == b"[::1]-shadow:80"
    assert shadow_host(b"[::1]") == b"[::1]-shadow"
    assert port_start(b"foo:bar") == -1
    head = [(b"host", b"a:1"), (b"x-forwarded-for", b"1.2.3.4"), (b"x-envoy-internal", b"false")]
    assert shadow_head(head, True, b"10.0.0.1") == [
        (b"host", b"a-shadow:1"), (b"x-forwarded-for", b"1.2.3.4,10.0.0.1"), (b"x-envoy-internal", b"true")]
    assert shadow_head([(b"host", b"a")], False, b"") == [(b"host", b"a"), (b"x-envoy-internal", b"true")]
    assert shadow_head([(b"host", b"a")], False, b"10.0.0.1") == [
        (b"host", b"a"), (b"x-envoy-internal", b"true"), (b"x-forwarded-for", b"10.0.0.1")]


async def test_mirror_gets_shadow_host_and_same_body(backend: Backend, backend_b: Backend) -> None:
    body = bytes(range(256)) * 400
    async with running_proxy(doc_for(backend.port, backend_b.port)) as proxy, client(port_of(proxy)) as c:
        r = await c.request(method="POST", path="/p?q=1", body=body, host="svc:8080")
        assert r.status == 200 and r.body == b"a /p?q=1"
        await until(lambda: len(backend_b.seen) == 1)
        seen = backend_b.seen[0]
        assert (seen.method, seen.path, seen.body) == ("POST", "/p?q=1", body)
        assert seen.headers["host"] == "svc-shadow:8080"
        assert seen.headers["x-envoy-internal"] == "true"
        assert seen.headers["x-request-id"] == backend.seen[0].headers["x-request-id"]
        assert backend.seen[0].headers["host"] == "svc:8080"
        # chunked bodies are mirrored chunk by chunk
        c.send(b"POST /c HTTP/1.1\r\nhost: svc\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
        assert (await c.read_response()).status == 200
        await until(lambda: len(backend_b.seen) == 2)
        assert (backend_b.seen[1].body, backend_b.seen[1].headers["host"]) == (b"hello", "svc-shadow")
        s = await stats(proxy)
        assert "cluster.mirror.upstream_rq_total: 2" in s
        await until(lambda: proxy.config.clusters["mirror"].stats.upstream_rq_active == 0)


async def test_suffix_can_be_disabled(backend: Backend, backend_b: Backend) -> None:
    doc = doc_for(backend.port, backend_b.port, {"cluster": "mirror", "disable_shadow_host_suffix_append": True})
    async with running_proxy(doc) as proxy, client(port_of(proxy)) as c:
        assert (await c.request(host="svc")).status == 200
        await until(lambda: len(backend_b.seen) == 1)
        assert backend_b.seen[0].headers["host"] == "svc"


async def test_runtime_fraction_zero_mirrors_nothing(backend: Backend, backend_b: Backend) -> None:
    doc = doc_for(backend.port, backend_b.port,
                  {"cluster": "mirror", "runtime_fraction": {"default_value": {"numerator": 0}}})
    async with running_proxy(doc) as proxy, client(port_of(proxy)) as c:
        for _ in range(5):
            assert (await c.request()).status == 200
        await asyncio.sleep(0.1)
        assert backend_b.seen == [] and backend_b.connections == 0


async def test_runtime_fraction_samples(backend: Backend, backend_b: Backend) -> None:
    doc = doc_for(backend.port, backend_b.port, {"cluster": "mirror", "runtime_fraction": {
        "default_value": {"numerator": 5000, "denominator": "TEN_THOUSAND"}}})
    async with running_proxy(doc) as proxy, client(port_of(proxy)) as c:
        for _ in range(60):
            assert (await c.request()).status == 200
        await asyncio.sleep(0.1)
        assert 15 < len(backend_b.seen) < 45


async def test_hung_mirror_changes_nothing(backend: Backend, backend_b: Backend) -> None:
    backend_b.handler = lambda s: Reply(delay=5.0)
    async with running_proxy(doc_for(backend.port, backend_b.port)) as proxy, client(port_of(proxy)) as c:
        loop = asyncio.get_running_loop()
        for _ in range(3):
            t0 = loop.time()
            r = await c.request(method="POST", body=b"x" * 1000)
            assert r.status == 200 and r.body == b"a /"
            assert loop.time() - t0 < 0.5
        await until(lambda: len(backend_b.seen) == 3)


async def test_mirror_timeout_is_the_route_timeout(backend: Backend, backend_b: Backend) -> None:
    backend_b.handler = lambda s: Reply(delay=5.0)
    doc = bootstrap(mirror_route({"cluster": "mirror"}, timeout="0.2s"),
                    [cluster("main", backend.port), cluster("mirror", backend_b.port)])
    async with running_proxy(doc) as proxy, client(port_of(proxy)) as c:
        assert (await c.request()).status == 200
        await asyncio.sleep(0.4)
        s = await stats(proxy)
        assert "cluster.mirror.upstream_rq_timeout: 1" in s
        assert "cluster.mirror.upstream_rq_active: 0" in s


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


async def test_refused_or_dying_mirror_changes_nothing(backend: Backend, backend_b: Backend) -> None:
    async with running_proxy(doc_for(backend.port, closed_port())) as proxy, client(port_of(proxy)) as c:
        for _ in range(3):
            r = await c.request(method="POST", body=b"y" * 100)
            assert (r.status, r.body) == (200, b"a /")
    backend_b.handler = lambda s: Reply(raw=b"garbage\r\n\r\n")  # a protocol error, then close
    async with running_proxy(doc_for(backend.port, backend_b.port)) as proxy, client(port_of(proxy)) as c:
        for _ in range(3):
            assert (await c.request()).status == 200
        await until(lambda: len(backend_b.seen) == 3)


class StalledServer:
    """Accepts connections and never reads from them (a mirror slower than anything)."""

    def __init__(self) -> None:
        self.conns: list[asyncio.Transport] = []
        self.lost = 0

    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        server = self

        class Proto(asyncio.Protocol):
            def connection_made(self, transport: Any) -> None:
                transport.pause_reading()
                server.conns.append(transport)

            def connection_lost(self, exc: Any) -> None:
                server.lost += 1

        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.bind(("127.0.0.1", 0))
        self.server = await loop.create_server(Proto, sock=sock)
        return sock.getsockname()[1]

    async def stop(self) -> None:
        self.server.close()
        for t in self.conns:
            t.abort()
        await self.server.wait_closed()


@pytest.fixture
async def stalled() -> AsyncIterator[StalledServer]:
    s = StalledServer()
    await s.start()
    yield s
    await s.stop()


@pytest.mark.parametrize("connected_first", [True, False])
async def test_slow_mirror_with_big_body_is_abandoned(backend: Backend, stalled: StalledServer,
                                                      connected_first: bool) -> None:
    """Body bytes the mirror has not taken, in its socket's write buffer (connected first) or
    waiting for its connection, never exceed the buffer limit: the mirror is given up."""
    port = stalled.server.sockets[0].getsockname()[1]
    limit = 64 * 1024
    doc = doc_for(backend.port, port)
    doc["static_resources"]["listeners"][0]["per_connection_buffer_limit_bytes"] = limit
    body = b"z" * (8 * 1024 * 1024)
    async with running_proxy(doc) as proxy, client(port_of(proxy)) as c:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        c.send(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n" % len(body))
        if connected_first:
            await until(lambda: len(stalled.conns) == 1)
        c.send(body)
        r = await c.read_response()
        assert r.status == 200 and backend.seen[0].body == body
        assert loop.time() - t0 < 3.0
        s = await stats(proxy)
        assert "cluster.main.retry_or_shadow_abandoned: 1" in s
        assert "cluster.mirror.upstream_rq_active: 0" in s
        if connected_first:  # the mirror's connection is reset, its write buffer freed
            assert "cluster.mirror.upstream_cx_destroy: 1" in s


async def test_circuit_breaker_bounds_concurrent_mirrors(backend: Backend, backend_b: Backend) -> None:
    backend_b.handler = lambda s: Reply(delay=5.0)
    doc = doc_for(backend.port, backend_b.port,
                  mirror_extra={"circuit_breakers": {"thresholds": [{"max_requests": 1}]}})
    async with running_proxy(doc) as proxy, client(port_of(proxy)) as c:
        for _ in range(3):
            assert (await c.request()).status == 200
        await until(lambda: len(backend_b.seen) == 1)
        await asyncio.sleep(0.1)
        assert len(backend_b.seen) == 1
        s = await stats(proxy)
        assert "cluster.mirror.upstream_rq_pending_overflow: 2" in s


async def test_unknown_mirror_cluster_is_a_config_error(backend: Backend) -> None:
    import random

    from pilotfish.proxy.compile.bootstrap_file import parse_bootstrap
    from pilotfish.proxy.compile import compile_bootstrap
    from pilotfish.proxy.common.errors import ProxyConfigError

    doc = bootstrap(mirror_route({"cluster": "nope"}), [cluster("main", backend.port)])
    with pytest.raises(ProxyConfigError) as err:
        loaded = parse_bootstrap(doc)
        compile_bootstrap(loaded.message, random.Random(1), loaded.warnings)
    assert err.value.field_path.endswith("request_mirror_policies[0].cluster")
    doc = bootstrap(mirror_route({"cluster": "main", "cluster_header": "x"}), [cluster("main", backend.port)])
    with pytest.raises(ProxyConfigError) as err:  # Envoy: only one of cluster and cluster_header
        loaded = parse_bootstrap(doc)
        compile_bootstrap(loaded.message, random.Random(1), loaded.warnings)
    assert err.value.field_path.endswith("request_mirror_policies[0]")
    doc = bootstrap(mirror_route({"cluster": "main", "trace_sampled": False}), [cluster("main", backend.port)])
    assert any("trace_sampled" in w for w in parse_bootstrap(doc).warnings)
