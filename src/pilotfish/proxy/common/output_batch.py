"""One batch of writes per round of the event loop, shared by every connection on the loop."""

from __future__ import annotations

import asyncio
import weakref
from functools import partial
from typing import Protocol


class _Flushable(Protocol):
    def flush_now(self) -> None: ...


class OutputBatch:
    """Writes made while the loop dispatches one round of I/O events go out after the round.

    A write to a peer asleep in epoll wakes it, and on a VM that wake-up (an inter-processor
    interrupt) costs the writer more than the rest of the system call. Written as they are
    produced, a busy proxy's writes trickle out one per request and wake the backend and the
    client for each; written together after the round, one wake-up serves many. A connection
    with output registers once per round (``add``) and is flushed by one ``call_soon``.
    """

    __slots__ = ("loop", "dirty", "_schedule", "__weakref__")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.dirty: list[_Flushable] = []
        self._schedule = partial(loop.call_soon, self.run)  # (made once: no bound method per round)

    def add(self, conn: _Flushable) -> None:
        """Flush ``conn`` after this round."""
        dirty = self.dirty
        if not dirty:
            self._schedule()
        dirty.append(conn)

    def run(self) -> None:
        dirty = self.dirty  # emptied in place: no new list per round
        try:
            for conn in dirty:  # (one added meanwhile is flushed in this round too)
                conn.flush_now()
        finally:
            dirty.clear()


_BATCHES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, OutputBatch] = weakref.WeakKeyDictionary()


def output_batch(loop: asyncio.AbstractEventLoop) -> OutputBatch:
    """The loop's one OutputBatch (every connection on a loop shares it)."""
    batch = _BATCHES.get(loop)
    if batch is None:
        batch = _BATCHES[loop] = OutputBatch(loop)
    return batch
