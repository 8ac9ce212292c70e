"""The ``date`` header the proxy adds to responses that lack one (Envoy's date provider).

RFC 9110 §6.6.1: an origin server with a clock must send Date; Envoy adds it to every response
that has none, local replies included. As Envoy's cached date provider, the line is formatted
by a loop timer every 500 ms, so a response reads one attribute instead of calling a clock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

_REFRESH = 0.5  # seconds, as Envoy's TlsCachingDateProviderImpl
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def imf_fixdate(seconds: float) -> bytes:
    """RFC 9110 §5.6.7's IMF-fixdate (``Sun, 06 Nov 1994 08:49:37 GMT``)."""
    t = time.gmtime(seconds)
    return (f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year:04d} "
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT").encode()


class DateLine:
    """The ``date`` header (``header``: name and value) and its value (``value``), kept current
    while a server on the loop has started it (``start``/``stop`` are counted: several servers
    may share it)."""

    __slots__ = ("clock", "header", "value", "users", "timer")

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.users = 0
        self.timer: asyncio.TimerHandle | None = None
        self.value = b""
        self.header = (b"date", b"")
        self.refresh()

    def refresh(self) -> None:
        self.value = imf_fixdate(int(self.clock()))
        self.header = (b"date", self.value)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.users += 1
        if self.timer is None:
            self._tick(loop)

    def stop(self) -> None:
        self.users -= 1
        if self.users <= 0 and self.timer is not None:
            self.users = 0
            self.timer.cancel()
            self.timer = None

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        self.refresh()
        self.timer = loop.call_later(_REFRESH, self._tick, loop)


#: The process's date line (each worker process has its own).
date_line = DateLine()
