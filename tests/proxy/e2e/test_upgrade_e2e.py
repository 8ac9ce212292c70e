"""Upgrade (WebSocket) passthrough over loopback: 101, then bytes both ways through the proxy."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from ..conftest import bootstrap, cluster, port_of, running_proxy, stream_server, until

# A client's masked text frame "hello" (RFC 6455 §5.7).
FRAME = bytes([0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58])
HANDSHAKE = (b"GET /chat HTTP/1.1\r\nHost: example.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
             b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


class WsEcho:
    """A raw-socket WebSocket backend: answers 101 and echoes every byte after it."""

    def __init__(self) -> None:
        self.close_after_101 = False
        self.decline = False  # answer 426 instead of 101
        self.heads: list[bytes] = []
        self.eof = asyncio.Event()
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.heads.append(head)
            if self.decline:
                writer.write(b"HTTP/1.1 426 Upgrade Required\r\ncontent-length: 4\r\n\r\nnope")
                await writer.drain()
                await reader.read()
                return
            writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
            if self.close_after_101:
                await writer.drain()
                return
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
            self.eof.set()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def ws_echo() -> AsyncIterator[WsEcho]:
    echo = WsEcho()
    async with stream_server(echo.handle) as echo.port:
        yield echo


def doc(port: int, hcm_upgrades: list | None = None, route_upgrades: list | None = None) -> dict:
    route: dict = {"cluster": "ws"}
    if route_upgrades is not None:
        route["upgrade_configs"] = route_upgrades
    extra = {"upgrade_configs": hcm_upgrades} if hcm_upgrades is not None else {}
    return bootstrap([{"match": {"prefix": "/"}, "route": route}], [cluster("ws", port)], **extra)


async def open_ws(port: int, extra: bytes = b"") -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(HANDSHAKE + extra)
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    return reader, writer, head


async def test_websocket_handshake_and_frames_both_ways() -> None:
    async with ws_echo() as echo, running_proxy(doc(echo.port, [{"upgrade_type": "websocket"}])) as proxy:
        reader, writer, head = await open_ws(port_of(proxy))
        assert head.startswith(b"HTTP/1.1 101 ")
        lower = head.lower()
        assert b"upgrade: websocket" in lower and b"connection: upgrade" in lower
        assert b"sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo=" in lower
        for _ in range(3):
            writer.write(FRAME)
            assert await asyncio.wait_for(reader.readexactly(len(FRAME)), 5) == FRAME
        big = bytes(range(256)) * 4096  # 1 MiB: back-pressure both ways
        writer.write(big)
        assert await asyncio.wait_for(reader.readexactly(len(big)), 10) == big
        writer.write_eof()  # half-close reaches the backend, which then closes
        await asyncio.wait_for(echo.eof.wait(), 5)
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
        sent = echo.heads[0].lower()
        assert b"connection: upgrade" in sent and b"upgrade: websocket" in sent
        assert b"sec-websocket-key: dghlihnhbxbszsbub25jzq==" in sent
        hcm = proxy.config.listeners[0].hcm
        assert hcm.stats.rq_class[1] == 1  # the 101 completes the HTTP exchange
        for _ in range(50):  # the tunnel's connections close, and none went back to a pool
            if hcm.stats.downstream_cx_active == 0 and hcm.clusters["ws"].stats.upstream_cx_active == 0:
                break
            await asyncio.sleep(0.02)
        assert hcm.stats.downstream_cx_active == 0
        assert hcm.clusters["ws"].stats.upstream_cx_active == 0
        assert all(not h.pool.idle for h in hcm.clusters["ws"].hosts) if hasattr(hcm.clusters["ws"], "hosts") else True


async def test_bytes_sent_with_the_handshake_reach_the_backend() -> None:
    async with ws_echo() as echo, running_proxy(doc(echo.port, [{"upgrade_type": "websocket"}])) as proxy:
        reader, writer, head = await open_ws(port_of(proxy), extra=FRAME)
        assert head.startswith(b"HTTP/1.1 101 ")
        assert await asyncio.wait_for(reader.readexactly(len(FRAME)), 5) == FRAME
        writer.close()


async def test_upgrade_refused_with_403_when_not_enabled() -> None:
    async with ws_echo() as echo, running_proxy(doc(echo.port)) as proxy:
        reader, writer, head = await open_ws(port_of(proxy))
        assert head.startswith(b"HTTP/1.1 403 ")
        writer.close()
    assert echo.heads == []


async def test_route_upgrade_configs_override_the_hcm() -> None:
    async with ws_echo() as echo:
        off = doc(echo.port, [{"upgrade_type": "websocket"}], [{"upgrade_type": "websocket", "enabled": False}])
        async with running_proxy(off) as proxy:
            _, writer, head = await open_ws(port_of(proxy))
            assert head.startswith(b"HTTP/1.1 403 ")
            writer.close()
        on = doc(echo.port, None, [{"upgrade_type": "WebSocket"}])
        async with running_proxy(on) as proxy:
            reader, writer, head = await open_ws(port_of(proxy))
            assert head.startswith(b"HTTP/1.1 101 ")
            writer.write(FRAME)
            assert await asyncio.wait_for(reader.readexactly(len(FRAME)), 5) == FRAME
            writer.close()


async def test_backend_closing_closes_the_client() -> None:
    async with ws_echo() as echo, running_proxy(doc(echo.port, [{"upgrade_type": "websocket"}])) as proxy:
        echo.close_after_101 = True
        reader, writer, head = await open_ws(port_of(proxy))
        assert head.startswith(b"HTTP/1.1 101 ")
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()


async def test_declined_upgrade_is_answered_and_the_connection_closed() -> None:
    async with ws_echo() as echo, running_proxy(doc(echo.port, [{"upgrade_type": "websocket"}])) as proxy:
        echo.decline = True
        reader, writer, head = await open_ws(port_of(proxy), extra=FRAME)
        assert head.startswith(b"HTTP/1.1 426 ")
        assert await asyncio.wait_for(reader.read(), 5) == b"nope"  # then the proxy closes
        writer.close()


LOG = "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog"
SWITCHING = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")  # what WsEcho answers


def logged_doc(port: int, log: Any, route: dict | None = None, **hcm: Any) -> dict:
    d = bootstrap([{"match": {"prefix": "/"}, "route": {"cluster": "ws", **(route or {})}}], [cluster("ws", port)],
                  upgrade_configs=[{"upgrade_type": "websocket"}],
                  access_log=[{"name": "log", "typed_config": {"@type": LOG, "path": str(log)}}], **hcm)
    return d


async def test_tunnelled_bytes_are_counted_and_logged_when_the_tunnel_closes(tmp_path: Any) -> None:
    log = tmp_path / "access.log"
    async with ws_echo() as echo, running_proxy(logged_doc(echo.port, log)) as proxy:
        reader, writer, head = await open_ws(port_of(proxy))
        hcm = proxy.config.listeners[0].hcm
        cstats = hcm.clusters["ws"].stats
        for _ in range(3):
            writer.write(FRAME)
            assert await asyncio.wait_for(reader.readexactly(len(FRAME)), 5) == FRAME
        assert hcm.stats.downstream_rq_active == 1 and cstats.upstream_rq_active == 1  # still open
        assert hcm.stats.rq_class[1] == 0
        writer.close()
        await until(lambda: hcm.stats.downstream_cx_active == 0 and cstats.upstream_cx_active == 0)
        n = 3 * len(FRAME)
        assert hcm.stats.downstream_cx_rx_bytes_total == len(HANDSHAKE) + n
        assert hcm.stats.downstream_cx_tx_bytes_total == len(head) + n
        assert cstats.upstream_cx_tx_bytes_total == len(echo.heads[0]) + n
        assert cstats.upstream_cx_rx_bytes_total == len(SWITCHING) + n
        assert hcm.stats.rq_class[1] == 1 and hcm.stats.downstream_rq_active == 0
        assert cstats.upstream_rq_active == 0 and hcm.clusters["ws"].resources[0].requests.count == 0
    assert f" 101 - {n} {n} " in log.read_text()


async def test_bytes_with_the_handshake_and_after_the_101_are_counted_once(tmp_path: Any) -> None:
    log = tmp_path / "access.log"
    async with ws_echo() as echo, running_proxy(logged_doc(echo.port, log)) as proxy:
        reader, writer, _ = await open_ws(port_of(proxy), extra=FRAME)
        assert await asyncio.wait_for(reader.readexactly(len(FRAME)), 5) == FRAME
        writer.close()
        hcm = proxy.config.listeners[0].hcm
        cstats = hcm.clusters["ws"].stats
        await until(lambda: hcm.stats.downstream_cx_active == 0 and cstats.upstream_cx_active == 0)
        assert hcm.stats.downstream_cx_rx_bytes_total == len(HANDSHAKE) + len(FRAME)
        assert cstats.upstream_cx_tx_bytes_total == len(echo.heads[0]) + len(FRAME)
        assert cstats.upstream_cx_rx_bytes_total == len(SWITCHING) + len(FRAME)
    assert f" 101 - {len(FRAME)} {len(FRAME)} " in log.read_text()


async def test_idle_tunnel_is_closed_both_ways(tmp_path: Any) -> None:
    log = tmp_path / "access.log"
    async with ws_echo() as echo, running_proxy(logged_doc(echo.port, log, {"idle_timeout": "0.3s"})) as proxy:
        loop = asyncio.get_running_loop()
        reader, writer, _ = await open_ws(port_of(proxy))
        t0 = loop.time()
        for _ in range(3):  # traffic keeps it open past the timeout
            await asyncio.sleep(0.15)
            writer.write(FRAME)
            assert await asyncio.wait_for(reader.readexactly(len(FRAME)), 5) == FRAME
        assert await asyncio.wait_for(reader.read(), 5) == b""  # then idle: closed
        elapsed = loop.time() - t0
        assert 0.7 < elapsed < 1.5
        await asyncio.wait_for(echo.eof.wait(), 5)  # the upstream side was closed too
        writer.close()
        hcm = proxy.config.listeners[0].hcm
        assert hcm.stats.downstream_rq_idle_timeout == 1
        await until(lambda: hcm.stats.downstream_cx_active == 0)
    assert " 101 SI " in log.read_text()


async def test_hcm_stream_idle_timeout_applies_unless_the_route_sets_its_own(tmp_path: Any) -> None:
    log = tmp_path / "access.log"
    async with ws_echo() as echo:
        async with running_proxy(logged_doc(echo.port, log, stream_idle_timeout="0.2s")) as proxy:
            reader, writer, _ = await open_ws(port_of(proxy))
            assert await asyncio.wait_for(reader.read(), 5) == b""
            writer.close()
            assert proxy.config.listeners[0].hcm.stats.downstream_rq_idle_timeout == 1
        doc = logged_doc(echo.port, log, {"idle_timeout": "0s"}, stream_idle_timeout="0.2s")
        async with running_proxy(doc) as proxy:  # the route's 0 disables it
            reader, writer, _ = await open_ws(port_of(proxy))
            await asyncio.sleep(0.5)
            writer.write(FRAME)
            assert await asyncio.wait_for(reader.readexactly(len(FRAME)), 5) == FRAME
            writer.close()
            assert proxy.config.listeners[0].hcm.stats.downstream_rq_idle_timeout == 0
