"""Push debouncing, as Istio's PILOT_DEBOUNCE_AFTER (quiet) and PILOT_DEBOUNCE_MAX (max_delay).

Config changes come in bursts (an editor saving, ``kubectl apply`` of many documents, workloads
starting together); one push per burst is enough. Events merge into one batch that fires once no
event came for ``quiet`` seconds, or ``max_delay`` seconds after the batch's first event even if
events keep coming. ``Debounce`` is the pure rule (times passed in); ``Debouncer`` runs it on
asyncio, calling ``fire`` one batch at a time: events during a push wait for the next batch.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

log = logging.getLogger("pilotfish.xds")

T = TypeVar("T")

DEFAULT_QUIET = 0.1  # PILOT_DEBOUNCE_AFTER
DEFAULT_MAX_DELAY = 10.0  # PILOT_DEBOUNCE_MAX


@dataclass(frozen=True, slots=True)
class Batch(Generic[T]):
    """Events merged into one push."""

    item: T | None  # the events' items merged (None when none carried one)
    events: int
    first: float  # when the first event came
    last: float  # when the last one came


class Debounce(Generic[T]):
    """When a batch of events is due. ``merge`` combines two events' items (default: keep the
    latest)."""

    __slots__ = ("quiet", "max_delay", "merge", "_item", "_events", "_first", "_last")

    def __init__(self, quiet: float = DEFAULT_QUIET, max_delay: float = DEFAULT_MAX_DELAY,
                 merge: Callable[[T, T], T] | None = None) -> None:
        if quiet < 0 or max_delay < quiet:
            raise ValueError("debounce needs 0 <= quiet <= max_delay")
        self.quiet = quiet
        self.max_delay = max_delay
        self.merge = merge
        self._item: T | None = None
        self._events = 0
        self._first = 0.0
        self._last = 0.0

    @property
    def pending(self) -> bool:
        return self._events > 0

    def add(self, now: float, item: T | None = None) -> None:
        if self._events == 0:
            self._first = now
        self._events += 1
        self._last = now
        if item is not None:
            if self._item is None or self.merge is None:
                self._item = item
            else:
                self._item = self.merge(self._item, item)

    def deadline(self) -> float | None:
        """When the pending batch fires if nothing else comes (None: nothing pending)."""
        if not self._events:
            return None
        return min(self._last + self.quiet, self._first + self.max_delay)

    def take(self, now: float) -> Batch[T] | None:
        """The batch, when due at ``now`` (and a fresh start), else None."""
        deadline = self.deadline()
        if deadline is None or now < deadline:
            return None
        batch = Batch(self._item, self._events, self._first, self._last)
        self._item, self._events = None, 0
        return batch


class Debouncer:
    """Runs a Debounce on the running loop: ``event()`` records a change, ``fire()`` (plain or
    async) is called once per batch, never two at once. A failing ``fire`` is logged; the
    next batch still fires."""

    def __init__(self, fire: Callable[[], object], *, quiet: float = DEFAULT_QUIET,
                 max_delay: float = DEFAULT_MAX_DELAY) -> None:
        self.fire = fire
        self.state: Debounce[None] = Debounce(quiet, max_delay)
        self.fired = 0  # batches fired
        self.merged = 0  # events those batches held
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    def event(self) -> None:
        """A change: a push follows within ``quiet`` seconds of the last event of its burst."""
        if self._closed:
            return
        self.state.add(self._now())
        if self._task is None:
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run())
        assert self._wake is not None
        self._wake.set()

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            while (deadline := self.state.deadline()) is not None:
                now = self._now()
                batch = self.state.take(now)
                if batch is None:
                    await asyncio.sleep(deadline - now)  # the timer: later events move it on
                    continue
                self.fired += 1
                self.merged += batch.events
                try:
                    result = self.fire()
                    if inspect.isawaitable(result):
                        await result
                except Exception:  # noqa: BLE001 - a failed push must not stop the next one
                    log.exception("debounced push failed")

    def close(self) -> None:
        """Stop; a pending batch is dropped."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def aclose(self) -> None:
        """Stop and wait for a running ``fire`` to be cancelled."""
        task = self._task
        self.close()
        if task is not None:
            try:
                await task
            except asyncio.CancelledError:
                pass
