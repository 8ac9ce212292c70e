"""Fixtures for proxy tests: a small asyncio HTTP/1.1 backend, a raw client, bootstrap builders,
and an in-process proxy. Everything binds port 0 on 127.0.0.1 and is stopped by its test."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import random
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httptools
import pytest

from pilotfish.proxy.compile.bootstrap_file import parse_bootstrap
from pilotfish.proxy.compile import compile_bootstrap
from pilotfish.proxy.process.assemble import build_proxy
from pilotfish.proxy.process.server import ProxyServer
from pilotfish.proxy.testing import CheckedStream

HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER = {"name": "envoy.filters.http.router",
          "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}


@pytest.fixture(autouse=True)
def checked_streams(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every stream a proxy test starts in-process checks its state moves against the table
    (common/stream_states.py); a move it does not allow fails the test."""
    monkeypatch.setattr("pilotfish.proxy.compile.listeners.Stream", CheckedStream)
    CheckedStream.violations.clear()
    yield
    assert not CheckedStream.violations, CheckedStream.violations


# ---- backend ------------------------------------------------------------------------------
@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    conn_id: int


@dataclass
class Reply:
    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    chunks: list[bytes] | None = None  # send chunked, with a pause between chunks
    chunk_delay: float = 0.0
    delay: float = 0.0
    raw: bytes | None = None  # write these bytes instead of a response
    close: bool = False


class Backend:
    """An HTTP/1.1 server whose behaviour a test chooses with ``handler``."""

    def __init__(self, name: str = "backend") -> None:
        self.name = name
        self.seen: list[Seen] = []
        self.connections = 0
        self.handler: Callable[[Seen], Reply] = lambda s: Reply(body=f"{self.name} {s.path}".encode())
        self.keepalive_timeout = 0.0  # close idle connections after this many seconds
        self.max_requests_per_conn = 0  # silently close when the Nth+1 request arrives
        self.body_events: list[tuple[int, bytes]] = []  # (request number, chunk) as they arrive
        self.server: asyncio.base_events.Server | None = None
        self.port = 0
        self._conns: set[_BackendConn] = set()

    async def start(self) -> Backend:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: _BackendConn(self), "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for c in list(self._conns):
            c.transport.abort()
        await self.server.wait_closed()


class _BackendConn(asyncio.Protocol):
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.parser = httptools.HttpRequestParser(self)
        self.requests = 0
        self.idle_timer: asyncio.TimerHandle | None = None
        self.conn_id = 0

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.backend.connections += 1
        self.conn_id = self.backend.connections
        self.backend._conns.add(self)
        self._arm_idle()

    def connection_lost(self, exc: Any) -> None:
        self.backend._conns.discard(self)
        if self.idle_timer:
            self.idle_timer.cancel()

    def _arm_idle(self) -> None:
        if self.backend.keepalive_timeout:
            loop = asyncio.get_running_loop()
            self.idle_timer = loop.call_later(self.backend.keepalive_timeout, self.transport.close)

    def data_received(self, data: bytes) -> None:
        if self.idle_timer:
            self.idle_timer.cancel()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()

    def on_message_begin(self) -> None:
        self.url = b""
        self.headers: dict[str, str] = {}
        self.body = b""
        self.requests += 1
        if self.backend.max_requests_per_conn and self.requests > self.backend.max_requests_per_conn:
            self.transport.close()  # the stale keep-alive race: the request arrives, we close

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode().lower()] = value.decode()

    def on_body(self, body: bytes) -> None:
        self.body += body
        self.backend.body_events.append((len(self.backend.seen), body))

    def on_message_complete(self) -> None:
        if self.transport.is_closing():
            return
        seen = Seen(self.parser.get_method().decode(), self.url.decode(), self.headers, self.body,
                    self.conn_id)
        self.backend.seen.append(seen)
        reply = self.backend.handler(seen)
        asyncio.get_running_loop().create_task(self._respond(reply))

    async def _respond(self, r: Reply) -> None:
        if r.delay:
            await asyncio.sleep(r.delay)
        if r.raw is not None:
            self.transport.write(r.raw)
            self.transport.close()
            return
        lines = [f"HTTP/1.1 {r.status} X"] + [f"{k}: {v}" for k, v in r.headers]
        if r.chunks is not None:
            lines.append("transfer-encoding: chunked")
        else:
            lines.append(f"content-length: {len(r.body)}")
        if r.close:
            lines.append("connection: close")
        self.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        if r.chunks is not None:
            for c in r.chunks:
                self.transport.write(b"%x\r\n%s\r\n" % (len(c), c))
                if r.chunk_delay:
                    await asyncio.sleep(r.chunk_delay)
            self.transport.write(b"0\r\n\r\n")
        else:
            self.transport.write(r.body)
        if r.close:
            self.transport.close()
        else:
            self._arm_idle()


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    b = await Backend("a").start()
    yield b
    await b.stop()


@pytest.fixture
async def backend_b() -> AsyncIterator[Backend]:
    b = await Backend("b").start()
    yield b
    await b.stop()


# ---- client -------------------------------------------------------------------------------
@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    header_list: list[tuple[str, str]]


class Client:
    """A raw HTTP/1.1 client that keeps one connection and parses responses with httptools."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self._done: list[Response] = []
        self._parser: httptools.HttpResponseParser | None = None
        self.body_chunks: list[bytes] = []

    async def connect(self) -> Client:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self._parser = httptools.HttpResponseParser(self)
        return self

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()

    def send(self, data: bytes) -> None:
        assert self.writer is not None
        self.writer.write(data)

    async def request(self, method: str = "GET", path: str = "/", headers: dict[str, str] | None = None,
                      body: bytes = b"", host: str = "example.com") -> Response:
        h = {"host": host, **(headers or {})}
        if body or method in ("POST", "PUT"):
            h.setdefault("content-length", str(len(body)))
        head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n"
        self.send(head.encode() + body)
        return await self.read_response()

    async def read_response(self, timeout: float = 5.0) -> Response:
        assert self.reader is not None
        async with asyncio.timeout(timeout):
            while not self._done:
                data = await self.reader.read(65536)
                if not data:
                    raise ConnectionError("closed before a complete response")
                self._parser.feed_data(data)  # type: ignore[union-attr]
        return self._done.pop(0)

    async def closed_by_peer(self, timeout: float = 2.0) -> bool:
        assert self.reader is not None
        try:
            async with asyncio.timeout(timeout):
                return await self.reader.read(1) == b""
        except (ConnectionError, TimeoutError):
            return True

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._headers: list[tuple[str, str]] = []
        self._body: list[bytes] = []

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.decode().lower(), value.decode()))

    def on_body(self, body: bytes) -> None:
        self._body.append(body)
        self.body_chunks.append(body)

    def on_message_complete(self) -> None:
        self._done.append(Response(self._parser.get_status_code(), dict(self._headers),  # type: ignore[union-attr]
                                   b"".join(self._body), self._headers))


@contextlib.asynccontextmanager
async def client(port: int) -> AsyncIterator[Client]:
    c = await Client(port).connect()
    try:
        yield c
    finally:
        await c.close()


# ---- bootstrap builders --------------------------------------------------------------------
def sa(port: int, address: str = "127.0.0.1") -> dict[str, Any]:
    return {"socket_address": {"address": address, "port_value": port}}


def cluster(name: str, *ports: int, lb_policy: str = "ROUND_ROBIN", weights: list[int] | None = None,
            **extra: Any) -> dict[str, Any]:
    eps = []
    for i, p in enumerate(ports):
        ep: dict[str, Any] = {"endpoint": {"address": sa(p)}}
        if weights:
            ep["load_balancing_weight"] = weights[i]
        eps.append(ep)
    return {"name": name, "type": "STATIC", "connect_timeout": "1s", "lb_policy": lb_policy,
            "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": eps}]}, **extra}


def bootstrap(routes: list[dict[str, Any]] | dict[str, Any], clusters: list[dict[str, Any]],
              admin: bool = True, http_filters: list[dict[str, Any]] | None = None,
              **hcm: Any) -> dict[str, Any]:
    route_config = routes if isinstance(routes, dict) else {
        "virtual_hosts": [{"name": "all", "domains": ["*"], "routes": routes}]}
    doc: dict[str, Any] = {
        "node": {"id": "sidecar~127.0.0.1~test.default~default.svc.cluster.local", "cluster": "test"},
        "static_resources": {
            "listeners": [{
                "name": "main", "address": sa(0),
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {"@type": HCM, "stat_prefix": "ingress", "route_config": route_config,
                                     "http_filters": (http_filters or []) + [ROUTER], **hcm},
                }]}],
            }],
            "clusters": clusters,
        },
    }
    if admin:
        doc["admin"] = {"address": sa(0)}
    return copy.deepcopy(doc)  # tests mutate what they get; shared constants stay intact


@contextlib.asynccontextmanager
async def running_proxy(doc: dict[str, Any], seed: int = 1) -> AsyncIterator[ProxyServer]:
    loaded = parse_bootstrap(doc)
    compiled = compile_bootstrap(loaded.message, random.Random(seed), loaded.warnings)
    server = build_proxy(compiled, rng=random.Random(seed), drain_time=1.0)
    await server.start()
    try:
        yield server
    finally:
        await server.stop(drain_time=0.2)


def port_of(server: ProxyServer) -> int:
    return server.listener_ports["main"]


async def until(pred: Callable[[], bool], timeout: float = 3.0) -> None:
    """Poll a condition the proxy reaches asynchronously (stats, health, ejections)."""
    async with asyncio.timeout(timeout):
        while not pred():
            await asyncio.sleep(0.01)


async def admin_get(proxy: Any, path: str) -> str:
    async with client(proxy.admin_port) as c:
        return (await c.request(path=path)).body.decode()


async def first_words(port: int, n: int) -> Counter[str]:
    """Send n requests on one connection; count which backend answered (the body's first word)."""
    async with client(port) as c:
        return Counter([(await c.request()).body.split(b" ")[0].decode() for _ in range(n)])


async def read_until_closed(c: Client, timeout: float = 3.0) -> bytes:
    """Everything the proxy sends before it closes or resets the connection."""
    got = b""
    with contextlib.suppress(ConnectionError):
        while data := await asyncio.wait_for(c.reader.read(65536), timeout):  # type: ignore[union-attr]
            got += data
    return got


async def read_for(c: Client, seconds: float) -> bytes:
    """Everything the proxy sends within ``seconds`` or until it closes the connection."""
    got = b""
    with contextlib.suppress(ConnectionError, TimeoutError):
        async with asyncio.timeout(seconds):
            while data := await c.reader.read(65536):  # type: ignore[union-attr]
                got += data
    return got


@contextlib.asynccontextmanager
async def stream_server(handle: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any]) -> AsyncIterator[int]:
    """A raw asyncio streams server on a free loopback port (yields the port), closed on exit."""
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()
