"""The part of an event loop the request path uses, on a clock that moves when a test says."""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Callable, Coroutine
from itertools import count
from typing import Any



# ---- the clock -------------------------------------------------------------------------
class Timer:
    """A callback scheduled on a ManualLoop (asyncio's Handle/TimerHandle, as far as used)."""

    __slots__ = ("_cancelled", "_when", "args", "callback")

    def __init__(self, when: float, callback: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self._when = when
        self.callback = callback
        self.args = args
        self._cancelled = False

    def when(self) -> float:
        return self._when

    def cancel(self) -> None:
        self._cancelled = True

    def cancelled(self) -> bool:
        return self._cancelled


class _Task:
    """What ``asyncio.current_task()`` returns while a ManualLoop runs a coroutine."""

    def __init__(self) -> None:
        self.result: Any = None
        self._cancels = 0

    def cancel(self, msg: Any = None) -> bool:
        self._cancels += 1
        return True

    def cancelling(self) -> int:
        return self._cancels

    def uncancel(self) -> int:
        self._cancels = max(0, self._cancels - 1)
        return self._cancels

    def done(self) -> bool:
        return True


class ManualLoop:
    """An event loop stand-in whose clock moves only in ``advance``. Callbacks raise into the
    test (nothing is swallowed by an exception handler)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.ready: list[Timer] = []
        self._timers: list[tuple[float, int, Timer]] = []
        self._seq = count()
        # Called by create_connection with (protocol factory, host, port): returns (transport,
        # protocol) or raises OSError. ``Proxy`` sets it to connect fake upstreams.
        self.connector: Callable[[Callable[[], Any], Any, Any], tuple[Any, Any]] | None = None

    def time(self) -> float:
        return self.now

    def get_debug(self) -> bool:
        return False

    def call_soon(self, callback: Callable[..., Any], *args: Any, context: Any = None) -> Timer:
        handle = Timer(self.now, callback, args)
        self.ready.append(handle)
        return handle

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any, context: Any = None) -> Timer:
        handle = Timer(when, callback, args)
        heapq.heappush(self._timers, (when, next(self._seq), handle))
        return handle

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any, context: Any = None) -> Timer:
        return self.call_at(self.now + delay, callback, *args)

    def create_task(self, coro: Coroutine[Any, Any, Any], **_: Any) -> _Task:
        """Run ``coro`` now, to its end: a task here must not wait (the pool's connect does not,
        with ``create_connection`` below). One that would is closed and raises."""
        task = _Task()
        outer = asyncio._get_running_loop()
        asyncio._set_running_loop(self)  # type: ignore[arg-type]  (asyncio.timeout asks for the task)
        asyncio.tasks._enter_task(self, task)  # type: ignore[arg-type]
        try:
            coro.send(None)
        except StopIteration as stop:
            task.result = stop.value
        else:
            coro.close()
            raise RuntimeError("a task on a ManualLoop waited for something; only tasks that never "
                               "suspend can run here")
        finally:
            asyncio.tasks._leave_task(self, task)  # type: ignore[arg-type]
            asyncio._set_running_loop(outer)
        return task

    async def create_connection(self, protocol_factory: Callable[[], Any], host: str | None = None,
                                port: int | None = None, **_: Any) -> tuple[Any, Any]:
        """``connector(protocol_factory, host, port)``; without one, connection refused."""
        if self.connector is None:
            raise ConnectionRefusedError(111, "Connection refused")
        return self.connector(protocol_factory, host, port)

    def timers(self) -> list[float]:
        """When the pending timers are due, earliest first."""
        return sorted(w for w, _, h in self._timers if not h.cancelled())

    def run_ready(self) -> None:
        """Run the callbacks made ready (call_soon), and those they make ready, until none is left."""
        for _ in range(10_000):
            if not self.ready:
                return
            ready, self.ready = self.ready, []
            for handle in ready:
                if not handle.cancelled():
                    handle.callback(*handle.args)
        raise RuntimeError("call_soon callbacks keep scheduling each other")

    def advance(self, seconds: float = 0.0) -> None:
        """Move the clock ``seconds`` on, running every timer due on the way at its own time."""
        self.advance_to(self.now + seconds)

    def advance_to(self, when: float) -> None:
        self.run_ready()
        timers = self._timers
        while timers and timers[0][0] <= when:
            due, _, handle = heapq.heappop(timers)
            if handle.cancelled():
                continue
            self.now = max(self.now, due)
            handle.callback(*handle.args)
            self.run_ready()
        self.now = max(self.now, when)


def run_sync(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never suspends (a static cluster's ``initialize``) to its end."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise RuntimeError(f"{coro!r} waited for something: it needs a real event loop")
