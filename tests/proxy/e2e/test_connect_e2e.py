"""CONNECT terminated at the proxy over loopback: 200, then raw TCP (plain and TLS) to the host."""

from __future__ import annotations

import asyncio
import contextlib
import random
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pilotfish.proxy.compile.bootstrap_file import parse_bootstrap
from pilotfish.proxy.compile import compile_bootstrap
from pilotfish.proxy.common.errors import ProxyConfigError

from ..conftest import ROUTER, bootstrap, cluster, port_of, running_proxy, until


@contextlib.asynccontextmanager
async def tcp_echo(ssl_ctx: ssl.SSLContext | None = None) -> AsyncIterator[int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ssl_ctx)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


def connect_doc(port: int, hcm_connect: bool = True) -> dict:
    routes = [
        {"match": {"connect_matcher": {}},
         "route": {"cluster": "echo", "upgrade_configs": [{"upgrade_type": "CONNECT", "connect_config": {}}]}},
        {"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": "plain"}}},
    ]
    extra = {"upgrade_configs": [{"upgrade_type": "CONNECT"}]} if hcm_connect else {}
    return bootstrap(routes, [cluster("echo", port)], **extra)


async def open_connect(port: int, target: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"CONNECT %b HTTP/1.1\r\nHost: %b\r\n\r\n" % (target, target))
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    return reader, writer, head


async def test_connect_tunnels_raw_tcp() -> None:
    async with tcp_echo() as port, running_proxy(connect_doc(port)) as proxy:
        reader, writer, head = await open_connect(port_of(proxy), b"echo.local:%d" % port)
        assert head.startswith(b"HTTP/1.1 200 ")
        for chunk in (b"ping", b"x" * 200_000):
            writer.write(chunk)
            assert await asyncio.wait_for(reader.readexactly(len(chunk)), 5) == chunk
        writer.close()
        # The same listener still serves ordinary requests.
        r2, w2 = await asyncio.open_connection("127.0.0.1", port_of(proxy))
        w2.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await asyncio.wait_for(r2.readuntil(b"plain"), 5)).startswith(b"HTTP/1.1 200 ")
        w2.close()


async def test_connect_refused_without_hcm_upgrade_config() -> None:
    async with tcp_echo() as port:
        doc = connect_doc(port, hcm_connect=False)
        # The route's CONNECT config alone enables it (route overrides the HCM) ...
        async with running_proxy(doc) as proxy:
            _, writer, head = await open_connect(port_of(proxy), b"echo.local:1")
            assert head.startswith(b"HTTP/1.1 200 ")
            writer.close()
        # ... and without either it is refused.
        del doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"][
            "route_config"]["virtual_hosts"][0]["routes"][0]["route"]["upgrade_configs"]
        async with running_proxy(doc) as proxy:
            _, writer, head = await open_connect(port_of(proxy), b"echo.local:1")
            assert head.startswith(b"HTTP/1.1 403 ")
            writer.close()


async def test_connect_to_a_closed_port_is_503() -> None:
    async with tcp_echo() as port:
        pass  # closed again: nothing listens there now
    async with running_proxy(connect_doc(port)) as proxy:
        _, writer, head = await open_connect(port_of(proxy), b"gone:1")
        assert head.startswith(b"HTTP/1.1 503 ")
        writer.close()


@pytest.fixture
def tls_contexts(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    key, cert = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                    "-days", "1", "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    return server, client


async def test_tls_through_the_tunnel(tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    server_ctx, client_ctx = tls_contexts
    async with tcp_echo(server_ctx) as port, running_proxy(connect_doc(port)) as proxy:
        reader, writer, head = await open_connect(port_of(proxy), b"localhost:%d" % port)
        assert head.startswith(b"HTTP/1.1 200 ")
        await asyncio.wait_for(writer.start_tls(client_ctx, server_hostname="localhost"), 5)
        writer.write(b"secret hello")
        assert await asyncio.wait_for(reader.readexactly(12), 5) == b"secret hello"
        writer.close()


def config_error(doc: dict) -> ProxyConfigError:
    with pytest.raises(ProxyConfigError) as info:
        loaded = parse_bootstrap(doc)
        compile_bootstrap(loaded.message, random.Random(1), loaded.warnings)
    return info.value


def test_unsupported_upgrade_fields_are_config_errors() -> None:
    doc = connect_doc(1)
    hcm = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    hcm["upgrade_configs"][0]["filters"] = [{"name": "envoy.filters.http.router", "typed_config": ROUTER["typed_config"]}]
    assert "upgrade_configs[0].filters" in str(config_error(doc))
    doc = connect_doc(1)
    hcm = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    hcm["route_config"]["virtual_hosts"][0]["routes"][0]["route"]["upgrade_configs"][0]["connect_config"] = {
        "allow_post": True}
    assert "connect_config.allow_post" in str(config_error(doc))


async def test_connect_bytes_counted_and_idle_tunnel_closed() -> None:
    async with tcp_echo() as port:
        doc = connect_doc(port)
        doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"][
            "stream_idle_timeout"] = "0.3s"
        async with running_proxy(doc) as proxy:
            loop = asyncio.get_running_loop()
            target = b"echo.local:%d" % port
            reader, writer, head = await open_connect(port_of(proxy), target)
            t0 = loop.time()
            writer.write(b"ping")
            assert await asyncio.wait_for(reader.readexactly(4), 5) == b"ping"
            assert await asyncio.wait_for(reader.read(), 5) == b""  # idle: both sides closed
            assert 0.25 < loop.time() - t0 < 1.5
            writer.close()
            hcm = proxy.config.listeners[0].hcm
            cstats = hcm.clusters["echo"].stats
            await until(lambda: hcm.stats.downstream_cx_active == 0 and cstats.upstream_cx_active == 0)
            request = b"CONNECT %b HTTP/1.1\r\nHost: %b\r\n\r\n" % (target, target)
            assert hcm.stats.downstream_cx_rx_bytes_total == len(request) + 4
            assert hcm.stats.downstream_cx_tx_bytes_total == len(head) + 4
            assert (cstats.upstream_cx_tx_bytes_total, cstats.upstream_cx_rx_bytes_total) == (4, 4)
            assert hcm.stats.downstream_rq_idle_timeout == 1 and hcm.stats.rq_class[2] == 1
            assert cstats.upstream_cx_destroy == 1
