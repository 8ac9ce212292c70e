"""Probes the agent makes of its own proxy and app: one HTTP GET, one TCP connect. Local and
short, so each is a plain connection with a deadline; a failure is an answer (status 0), not an
exception."""

from __future__ import annotations

import asyncio
import contextlib

import httptools


async def http_get(host: str, port: int, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """(status, body) of ``GET path``; (0, b"") when nothing answers in time."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, asyncio.TimeoutError):
        return 0, b""
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nhost: {host}:{port}\r\nconnection: close\r\n\r\n".encode())
        data = await asyncio.wait_for(reader.read(), timeout)
    except (OSError, asyncio.TimeoutError):
        return 0, b""
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return _parse(data)


class _Response:
    def __init__(self) -> None:
        self.body: list[bytes] = []

    def on_body(self, body: bytes) -> None:
        self.body.append(body)


def _parse(data: bytes) -> tuple[int, bytes]:
    """httptools frames the answer (Content-Length, chunked, or up to the close)."""
    response = _Response()
    parser = httptools.HttpResponseParser(response)
    try:
        parser.feed_data(data)
        status = parser.get_status_code()
    except httptools.HttpParserError:
        return 0, b""
    return status, b"".join(response.body)


async def tcp_open(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether something accepts connections on host:port."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, asyncio.TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True
