"""Push debouncing: the pure rule with explicit times, then the asyncio runner."""

from __future__ import annotations

import asyncio
import logging

import pytest

from pilotfish.xds.debounce import Debounce, Debouncer


def test_a_burst_fires_once_quiet_seconds_after_its_last_event() -> None:
    d: Debounce[None] = Debounce(quiet=0.25, max_delay=10.0)
    assert d.deadline() is None and d.take(5.0) is None
    d.add(1.0)
    d.add(1.125)
    d.add(1.25)
    assert d.deadline() == 1.5
    assert d.take(1.375) is None  # an event 125 ms ago: not quiet yet
    batch = d.take(1.5)
    assert batch is not None and batch.events == 3 and (batch.first, batch.last) == (1.0, 1.25)
    assert not d.pending and d.take(2.0) is None


def test_events_that_never_stop_fire_max_delay_after_the_first() -> None:
    d: Debounce[None] = Debounce(quiet=0.25, max_delay=1.0)
    for i in range(16):  # an event every 62.5 ms, for a second
        d.add(i / 16)
        assert d.take(i / 16) is None
    assert d.deadline() == 1.0
    batch = d.take(1.0)
    assert batch is not None and batch.events == 16


def test_items_merge_into_one_batch() -> None:
    d: Debounce[frozenset[str]] = Debounce(quiet=0.1, merge=lambda a, b: a | b)
    d.add(0.0, frozenset({"reviews"}))
    d.add(0.01)
    d.add(0.02, frozenset({"ratings"}))
    batch = d.take(1.0)
    assert batch is not None and batch.item == {"reviews", "ratings"} and batch.events == 3
    d.add(2.0, frozenset({"details"}))
    later = d.take(3.0)
    assert later is not None and later.item == {"details"}  # a fresh batch starts empty


def test_nonsense_delays_are_refused() -> None:
    with pytest.raises(ValueError):
        Debounce(quiet=1.0, max_delay=0.5)
    with pytest.raises(ValueError):
        Debounce(quiet=-1.0)


async def test_the_runner_merges_a_burst_into_one_push() -> None:
    pushed: asyncio.Queue[int] = asyncio.Queue()
    runner = Debouncer(lambda: pushed.put_nowait(1), quiet=0.01, max_delay=1.0)
    try:
        for _ in range(5):
            runner.event()
        await asyncio.wait_for(pushed.get(), 2)
        assert (runner.fired, runner.merged) == (1, 5) and pushed.empty()
        runner.event()
        await asyncio.wait_for(pushed.get(), 2)
        assert (runner.fired, runner.merged) == (2, 6)
    finally:
        await runner.aclose()


async def test_the_runner_awaits_an_async_push_and_survives_a_failing_one(caplog: pytest.LogCaptureFixture) -> None:
    done: asyncio.Queue[str] = asyncio.Queue()
    calls = 0

    async def push() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("push failed")
        done.put_nowait("ok")

    runner = Debouncer(push, quiet=0.01, max_delay=1.0)
    try:
        with caplog.at_level(logging.ERROR, logger="pilotfish.xds"):
            runner.event()
            runner.event()
            await asyncio.wait_for(_until(lambda: calls == 1), 2)
            runner.event()
            assert await asyncio.wait_for(done.get(), 2) == "ok"
        assert "debounced push failed" in caplog.text and runner.fired == 2
    finally:
        await runner.aclose()


async def test_a_closed_runner_fires_no_more() -> None:
    fired: list[int] = []
    runner = Debouncer(lambda: fired.append(1), quiet=0.01)
    runner.event()
    await runner.aclose()
    runner.event()
    assert fired == [] and runner.fired == 0


async def _until(pred: object) -> None:
    assert callable(pred)
    while not pred():
        await asyncio.sleep(0.005)
