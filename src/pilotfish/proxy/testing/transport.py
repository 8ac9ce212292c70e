"""A fake asyncio transport for the request path's tests."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any



# ---- the transport ---------------------------------------------------------------------
class FakeTransport(asyncio.Transport):
    """Records writes. ``close``/``abort`` end the connection; with a ``loop`` the protocol's
    ``connection_lost`` follows on the loop's next round, as asyncio's transports do (without
    one, call ``lose``). Writes after close are dropped and counted, as asyncio drops them."""

    def __init__(self, loop: Any = None, *, peername: Any = ("127.0.0.1", 40000),
                 sockname: Any = ("127.0.0.1", 15001), side: str = "downstream",
                 extra: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.loop = loop
        self.side = side  # names the end in messages ("downstream", "upstream")
        self.protocol: asyncio.BaseProtocol | None = None
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False
        self.reading = True
        self.lost = False
        self.eof_written = False
        self.dropped = 0  # writes after close
        self.write_buffer_limits: tuple[int | None, int | None] | None = None
        self.extra = {"peername": peername, "sockname": sockname, "socket": None, **(extra or {})}

    @property
    def written(self) -> bytes:
        """Everything written so far."""
        return b"".join(self.writes)

    def take(self) -> bytes:
        """What was written since the last ``take``."""
        data = b"".join(self.writes)
        self.writes.clear()
        return data

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.closed:
            self.dropped += 1
            return
        self.writes.append(bytes(data))

    def writelines(self, items: Iterable[bytes | bytearray | memoryview]) -> None:
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
            if self.loop is not None:
                self.loop.call_soon(self.lose)

    def lose(self, exc: Exception | None = None) -> None:
        """Deliver ``connection_lost`` to the protocol (once): the peer is gone."""
        self.closed = True
        if not self.lost and self.protocol is not None:
            self.lost = True
            self.protocol.connection_lost(exc)

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
        return self.extra.get(name, default)

    def get_write_buffer_size(self) -> int:
        return 0

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.write_buffer_limits = (high, low)
