"""The ``date`` header the proxy adds to responses that lack one (Envoy's date provider).

RFC 9110 §6.6.1: an origin server with a clock must send Date; Envoy adds it to every response
that has none, local replies included. The line is formatted once per second, not per response.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from email.utils import formatdate


class DateLine:
    """``date: <IMF-fixdate>`` for the current second, from an injected wall clock."""

    __slots__ = ("clock", "second", "line", "value")

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.second = -1
        self.line = b""
        self.value = b""  # the header's value (for header lists), as of the last call

    def __call__(self) -> bytes:
        now = int(self.clock())
        if now != self.second:
            self.second = now
            self.value = formatdate(now, usegmt=True).encode()
            self.line = b"date: " + self.value
        return self.line


#: The process's date line (each worker process has its own).
date_line = DateLine()
