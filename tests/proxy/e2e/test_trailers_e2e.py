"""Chunked trailers through the proxy over loopback, both ways; dropped where framing can't carry them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httptools

from ..conftest import bootstrap, cluster, port_of, running_proxy, stream_server


class TrailerBackend:
    """Reads each request with httptools (headers and trailers apart); answers chunked + trailers."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.chunked_reply = True
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        backend = self

        class Req:
            def __init__(self) -> None:
                self.headers: dict[bytes, bytes] = {}
                self.trailers: dict[bytes, bytes] = {}
                self.body = b""
                self.in_body = False
                self.done = False

            def on_header(self, name: bytes, value: bytes) -> None:
                (self.trailers if self.in_body else self.headers)[name.lower()] = value

            def on_headers_complete(self) -> None:
                self.in_body = True

            def on_body(self, data: bytes) -> None:
                self.body += data

            def on_message_complete(self) -> None:
                self.done = True

        try:
            while True:
                req = Req()
                parser = httptools.HttpRequestParser(req)
                while not req.done:
                    data = await reader.read(65536)
                    if not data:
                        return
                    parser.feed_data(data)
                backend.requests.append({"headers": req.headers, "trailers": req.trailers, "body": req.body})
                if backend.chunked_reply:
                    writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntrailer: grpc-status\r\n\r\n"
                                 b"5\r\nhello\r\n0\r\ngrpc-status: 0\r\ngrpc-message: fine\r\n\r\n")
                else:
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello")
                await writer.drain()
        except (ConnectionError, httptools.HttpParserError):
            pass
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def trailer_backend() -> AsyncIterator[TrailerBackend]:
    b = TrailerBackend()
    async with stream_server(b.handle) as b.port:
        yield b


def doc(port: int) -> dict:
    return bootstrap([{"match": {"prefix": "/"}, "route": {"cluster": "t"}}], [cluster("t", port)])


REQUEST = (b"POST /rpc HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: x-checksum\r\n\r\n"
           b"3\r\nabc\r\n0\r\nX-Checksum: 900150983cd2\r\nHost: evil\r\n\r\n")


async def read_chunked_response(reader: asyncio.StreamReader) -> bytes:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    rest = await asyncio.wait_for(reader.readuntil(b"0\r\n"), 5)
    tail = await asyncio.wait_for(reader.readuntil(b"\r\n"), 5)
    while tail != b"\r\n" and not tail.endswith(b"\r\n\r\n"):
        tail += await asyncio.wait_for(reader.readuntil(b"\r\n"), 5)
    return head + rest + tail


async def test_request_and_response_trailers_are_forwarded() -> None:
    async with trailer_backend() as backend, running_proxy(doc(backend.port)) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(proxy))
        for _ in range(2):  # keep-alive: the trailers do not leak into the next request
            writer.write(REQUEST)
            resp = (await read_chunked_response(reader)).lower()
            assert resp.startswith(b"http/1.1 200 ")
            assert resp.endswith(b"0\r\ngrpc-status: 0\r\ngrpc-message: fine\r\n\r\n")
        writer.close()
    for seen in backend.requests:
        assert seen["body"] == b"abc"
        assert seen["trailers"] == {b"x-checksum": b"900150983cd2"}  # host is not a trailer
        assert b"x-checksum" not in seen["headers"]
    assert len(backend.requests) == 2


async def test_trailers_dropped_for_an_http10_client_when_accepted() -> None:
    async with trailer_backend() as backend:
        d = doc(backend.port)
        hcm = d["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        hcm["http_protocol_options"] = {"accept_http_10": True}
        async with running_proxy(d) as proxy:
            reader, writer = await asyncio.open_connection("127.0.0.1", port_of(proxy))
            writer.write(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
            data = await asyncio.wait_for(reader.read(), 5)
            writer.close()
    assert data.startswith(b"HTTP/1.1 200 ") and data.endswith(b"\r\n\r\nhello")
    assert b"grpc-status" not in data.lower()


async def test_request_without_trailers_ends_plainly() -> None:
    async with trailer_backend() as backend, running_proxy(doc(backend.port)) as proxy:
        backend.chunked_reply = False
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(proxy))
        writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200 ")
        assert await asyncio.wait_for(reader.readexactly(5), 5) == b"hello"
        writer.close()
    assert backend.requests[0]["trailers"] == {} and backend.requests[0]["body"] == b"hi"
