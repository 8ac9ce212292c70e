"""A real asyncio loop with virtual time whose create_connection hands out fake transports
(pilotfish.proxy.testing's FakeTransport): the harnesses run the pool's connect task as the
process does, which pilotfish.proxy.testing's ManualLoop runs only when it never waits."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from pilotfish.proxy.testing import FakeTransport


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
        transport = FakeTransport(self, side="upstream")
        transport.set_protocol(protocol)
        self.upstreams.append(transport)
        protocol.connection_made(transport)
        return transport, protocol



