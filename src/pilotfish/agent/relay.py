"""The network a pod gets, for a workload without a sidecar: its app listens on a private port of
127.0.0.1, and connections to the instance's address on the container port are relayed there
byte for byte."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            writer.close()


def _relay_to(port: int):  # type: ignore[no-untyped-def]
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
    return handle


async def relay_ports(ip: str, ports: Mapping[int, int]) -> list[asyncio.AbstractServer]:
    """A listener on ``ip:container port`` for each entry, relaying to 127.0.0.1:private port."""
    return [await asyncio.start_server(_relay_to(private), ip, public) for public, private in ports.items()]
