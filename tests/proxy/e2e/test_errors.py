"""Bad input and failing upstreams: what the client sees, and that the proxy stays up."""

from __future__ import annotations

import asyncio
import socket

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..conftest import Backend, Reply, bootstrap, client, cluster, port_of, running_proxy


def simple(backend_port: int, route: dict | None = None, **hcm) -> dict:
    return bootstrap([{"match": {"prefix": "/"}, "route": {"cluster": "a", **(route or {})}}],
                     [cluster("a", backend_port)], **hcm)


async def test_garbage_gets_400_and_close(backend: Backend) -> None:
    async with running_proxy(simple(backend.port)) as proxy:
        async with client(port_of(proxy)) as c:
            c.send(b"\x16\x03\x01 this is not http\r\n\r\n")
            r = await c.read_response()
            assert r.status == 400 and r.headers["connection"] == "close"
            assert await c.closed_by_peer()
        async with client(port_of(proxy)) as c:
            assert (await c.request()).status == 200
        assert proxy.stats.http("ingress").downstream_cx_protocol_error == 1


async def test_too_large_headers_get_431(backend: Backend) -> None:
    async with running_proxy(simple(backend.port, max_request_headers_kb=1)) as proxy, client(port_of(proxy)) as c:
        r = await c.request(headers={"x-big": "v" * 2000})
        assert r.status == 431
        assert backend.seen == []


async def test_too_large_body_gets_413_with_buffer_filter(backend: Backend) -> None:
    buf = {"name": "envoy.filters.http.buffer", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer", "max_request_bytes": 100}}
    async with running_proxy(simple(backend.port, http_filters=[buf])) as proxy:
        async with client(port_of(proxy)) as c:
            assert (await c.request("POST", body=b"x" * 101)).status == 413
        async with client(port_of(proxy)) as c:
            c.send(b"POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n64\r\n" + b"y" * 100 + b"\r\n5\r\nhello\r\n")
            assert (await c.read_response()).status == 413
        async with client(port_of(proxy)) as c:
            assert (await c.request("POST", body=b"x" * 100)).status == 200


async def test_upstream_garbage_gets_502(backend: Backend) -> None:
    backend.handler = lambda s: Reply(raw=b"NOT HTTP AT ALL\r\n\r\n")
    async with running_proxy(simple(backend.port)) as proxy, client(port_of(proxy)) as c:
        r = await c.request()
    assert r.status == 502
    assert b"protocol error" in r.body


async def test_connection_refused_gets_503_uf(tmp_path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path / "a.log"
    doc = simple(port, access_log=[{"name": "log", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog", "path": str(log)}}])
    async with running_proxy(doc) as proxy, client(port_of(proxy)) as c:
        r = await c.request()
        assert r.status == 503 and b"connection failure" in r.body
        assert proxy.config.clusters["a"].stats.upstream_cx_connect_fail == 1
    assert " 503 UF " in log.read_text()


async def test_no_endpoints_gets_503_uh() -> None:
    doc = bootstrap([{"match": {"prefix": "/"}, "route": {"cluster": "empty"}}], [cluster("empty")])
    async with running_proxy(doc) as proxy, client(port_of(proxy)) as c:
        r = await c.request()
    assert r.status == 503 and r.body == b"no healthy upstream"


async def test_route_timeout_gets_504(backend: Backend) -> None:
    backend.handler = lambda s: Reply(delay=1.0)
    async with running_proxy(simple(backend.port, {"timeout": "0.1s"})) as proxy, client(port_of(proxy)) as c:
        r = await c.request()
        assert r.status == 504 and r.body == b"upstream request timeout"
        assert proxy.config.clusters["a"].stats.upstream_rq_timeout == 1


async def test_upstream_closing_before_response_gets_503_uc(backend: Backend) -> None:
    backend.handler = lambda s: Reply(raw=b"")
    async with running_proxy(simple(backend.port)) as proxy, client(port_of(proxy)) as c:
        r = await c.request()
    assert r.status == 503 and b"connection termination" in r.body


async def test_upstream_close_delimited_response_is_rechunked(backend: Backend) -> None:
    backend.handler = lambda s: Reply(raw=b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil the end")
    async with running_proxy(simple(backend.port)) as proxy, client(port_of(proxy)) as c:
        r = await c.request()
        assert r.status == 200 and r.body == b"until the end"
        assert r.headers["transfer-encoding"] == "chunked"
        assert (await c.request()).status == 200  # the client connection stays usable


async def test_request_header_timeout_gets_408(backend: Backend) -> None:
    async with running_proxy(simple(backend.port, request_headers_timeout="0.1s")) as proxy, client(port_of(proxy)) as c:
        c.send(b"GET / HTTP/1.1\r\nhost: x\r\n")  # never finishes its headers
        r = await c.read_response()
        assert r.status == 408
        assert await c.closed_by_peer()


async def test_idle_timeout_closes_connection(backend: Backend) -> None:
    doc = simple(backend.port, common_http_protocol_options={"idle_timeout": "0.1s"})
    async with running_proxy(doc) as proxy, client(port_of(proxy)) as c:
        assert (await c.request()).status == 200
        assert await c.closed_by_peer(timeout=2)
        assert proxy.stats.http("ingress").downstream_cx_idle_timeout == 1


async def test_client_disconnect_mid_request_is_dc(backend: Backend) -> None:
    backend.handler = lambda s: Reply(delay=0.3)
    async with running_proxy(simple(backend.port)) as proxy:
        async with client(port_of(proxy)) as c:
            c.send(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.05)
        stats = proxy.stats.http("ingress")
        assert stats.downstream_rq_rx_reset == 1 and stats.downstream_rq_active == 0
        async with client(port_of(proxy)) as c:
            backend.handler = lambda s: Reply()
            assert (await c.request()).status == 200


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(junk=st.binary(min_size=1, max_size=300))
def test_random_bytes_never_take_the_listener_down(junk: bytes) -> None:
    async def scenario() -> None:
        backend = await Backend().start()
        try:
            async with running_proxy(simple(backend.port, request_headers_timeout="0.2s")) as proxy:
                port = port_of(proxy)
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(junk)
                try:
                    async with asyncio.timeout(1):
                        await reader.read(65536)
                except TimeoutError:
                    pass
                writer.close()
                async with client(port) as c:
                    assert (await c.request()).status == 200
        finally:
            await backend.stop()

    asyncio.run(scenario())
