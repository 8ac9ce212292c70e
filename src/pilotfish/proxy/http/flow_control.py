"""Flow control: a connection stops reading while what it reads has nowhere to go.

Each connection has one ``ReadPause``: a bit per reason its reading is paused, the transport
paused while any is set. A client connection pauses for a pipelined request waiting its turn
(``PIPELINE``), for an upstream whose writes are backed up (``UPSTREAM_FULL``) and for a request
body buffered past the connection manager's limit while no upstream connection takes it
(``BUFFER_FULL``); an upstream connection pauses while the client's writes are backed up
(``CLIENT_FULL``). Tunnels (tunnel.py) pair two transports directly.
"""

from __future__ import annotations

from typing import Any

PIPELINE, UPSTREAM_FULL, BUFFER_FULL, CLIENT_FULL = 1, 2, 4, 8


class ReadPause:
    """Why a transport's reading is paused (``reasons``, a bit each)."""

    __slots__ = ("transport", "reasons")

    def __init__(self) -> None:
        self.transport: Any = None  # set once connected; None again when closing
        self.reasons = 0

    def set(self, reason: int, on: bool) -> None:
        old = self.reasons
        new = old | reason if on else old & ~reason
        self.reasons = new
        t = self.transport
        if t is None:
            return
        if old and not new:
            t.resume_reading()
        elif new and not old:
            t.pause_reading()
