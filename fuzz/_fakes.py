"""Test doubles for driving asyncio protocols without sockets: a transport and a loop with
virtual time whose create_connection hands out fake transports."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any



class FakeTransport(asyncio.Transport):
    """Collects writes; close and abort end the connection on the loop's next round, as asyncio's do."""

    # ``side`` names the end in messages ("downstream", "upstream").

    def __init__(self, loop: asyncio.AbstractEventLoop, side: str = "downstream") -> None:
        super().__init__()
        self.loop = loop
        self.side = side
        self.protocol: asyncio.BaseProtocol | None = None
        self.out: list[bytes] = []
        self.closed = False
        self.aborted = False
        self.reading = True
        self.lost = False
        self.eof_written = False
        self.dropped = 0  # writes after close

    def write(self, data: bytes) -> None:  # type: ignore[override]
        if self.closed:  # dropped, as asyncio's transports drop them
            self.dropped += 1
            return
        self.out.append(bytes(data))

    def writelines(self, items: Any) -> None:
        for item in items:
            self.write(item)

    def close(self) -> None:
        self._end()

    def abort(self) -> None:
        self.aborted = True
        self._end()

    def _end(self) -> None:
        if not self.closed:
            self.closed = True
            self.loop.call_soon(self._lost)

    def _lost(self) -> None:
        if not self.lost and self.protocol is not None:
            self.lost = True
            self.protocol.connection_lost(None)  # type: ignore[attr-defined]

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        assert self.protocol is not None
        return self.protocol

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof_written = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_reading(self) -> bool:
        return self.reading

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def get_write_buffer_size(self) -> int:
        return 0


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """A loop whose clock moves only when told (``advance_to_next``), so timers fire at once, and
    whose ``create_connection`` connects to a FakeTransport (``upstreams``) without a socket."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 1000.0
        self.upstreams: list[FakeTransport] = []

    def time(self) -> float:
        return self.now

    def next_timer(self) -> float | None:
        timers = [h.when() for h in self._scheduled if not h.cancelled()]  # type: ignore[attr-defined]
        return min(timers) if timers else None

    def advance_to_next(self, limit: float) -> bool:
        """Move the clock to the next timer if it is due within ``limit`` seconds."""
        when = self.next_timer()
        if when is None or when > self.now + limit:
            return False
        self.now = max(self.now, when)
        return True

    def cancel_timers(self) -> None:
        for h in self._scheduled:  # type: ignore[attr-defined]
            h.cancel()

    async def create_connection(self, protocol_factory: Callable[[], Any], host: Any = None,  # type: ignore[override]
                                port: Any = None, **kwargs: Any) -> tuple[FakeTransport, Any]:
        protocol = protocol_factory()
        transport = FakeTransport(self, "upstream")
        transport.protocol = protocol
        self.upstreams.append(transport)
        protocol.connection_made(transport)
        return transport, protocol



