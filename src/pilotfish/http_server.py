"""A small HTTP/1.1 server for control endpoints: istiod's API (debug, metrics, resource CRUD)
and the agent's status port (readiness, merged metrics).

Requests are few and small, so each one is read whole (httptools frames it), handed to an
async handler, and answered with a Content-Length; keep-alive is honoured. Bodies are limited
to 4 MiB: the API takes config documents, not uploads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

import httptools

log = logging.getLogger("pilotfish.http")

MAX_BODY = 4 * 1024 * 1024


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes = b""
    peer: str = ""


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)

    @staticmethod
    def text(text: str, status: int = 200) -> Response:
        return Response(status, text.encode())

    @staticmethod
    def json(data: bytes, status: int = 200) -> Response:
        return Response(status, data, "application/json")


Handler = Callable[[Request], Awaitable[Response]]


class _Protocol(asyncio.Protocol):
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.headers: dict[str, str] = {}
        self.body: list[bytes] = []
        self.size = 0
        self.queue: asyncio.Queue[Request | None] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.task = asyncio.get_running_loop().create_task(self._serve())

    def connection_lost(self, exc: Exception | None) -> None:
        self.queue.put_nowait(None)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._fail(400)
        except _TooLarge:
            self._fail(413)

    def _fail(self, status: int) -> None:
        if self.transport is not None:
            phrase = HTTPStatus(status).phrase
            self.transport.write(f"HTTP/1.1 {status} {phrase}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".encode())
            self.transport.close()

    # httptools callbacks
    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size > MAX_BODY:
            raise _TooLarge()
        self.body.append(body)

    def on_message_complete(self) -> None:
        parts = urlsplit(self.url.decode("latin-1"))
        peer = self.transport.get_extra_info("peername") if self.transport is not None else None
        self.queue.put_nowait(Request(
            method=self.parser.get_method().decode(), path=parts.path,
            query={k: v[0] for k, v in parse_qs(parts.query).items()}, headers=self.headers,
            body=b"".join(self.body), peer=str(peer[0]) if peer else ""))
        self.url, self.headers, self.body, self.size = b"", {}, [], 0

    async def _serve(self) -> None:
        while True:
            request = await self.queue.get()
            if request is None or self.transport is None or self.transport.is_closing():
                return
            try:
                response = await self.handler(request)
            except Exception:  # a bug in one handler answers 500; the server goes on
                log.exception("%s %s failed", request.method, request.path)
                response = Response.text("internal error\n", 500)
            close = request.headers.get("connection", "").lower() == "close"
            head = [f"HTTP/1.1 {response.status} {_phrase(response.status)}",
                    f"content-type: {response.content_type}", f"content-length: {len(response.body)}"]
            head += [f"{k}: {v}" for k, v in response.headers.items()]
            if close:
                head.append("connection: close")
            self.transport.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + response.body)
            if close:
                self.transport.close()
                return


class _TooLarge(Exception):
    pass


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


async def serve_http(handler: Handler, host: str, port: int) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: _Protocol(handler), host, port)
