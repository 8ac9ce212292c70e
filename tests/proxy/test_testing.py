"""pilotfish.proxy.testing's doubles behave as the request path expects of a loop and a transport."""

from __future__ import annotations

import asyncio

import pytest

from pilotfish.proxy.testing import FakeTransport, ManualLoop


def test_manual_loop_runs_timers_in_order_at_their_time_and_only_when_advanced() -> None:
    loop = ManualLoop(start=10.0)
    seen: list[tuple[str, float]] = []
    loop.call_later(2.0, lambda: seen.append(("b", loop.time())))
    loop.call_at(11.0, lambda: seen.append(("a", loop.time())))
    gone = loop.call_later(1.5, lambda: seen.append(("cancelled", loop.time())))
    gone.cancel()
    loop.call_soon(lambda: seen.append(("soon", loop.time())))
    assert seen == [] and loop.timers() == [11.0, 12.0]
    loop.advance(1.0)
    assert seen == [("soon", 10.0), ("a", 11.0)] and loop.time() == 11.0

    def chained() -> None:  # a timer that schedules another within the same advance
        seen.append(("c", loop.time()))
        loop.call_later(0.5, lambda: seen.append(("d", loop.time())))

    loop.call_at(11.2, chained)
    loop.advance(5.0)
    assert seen[2:] == [("c", 11.2), ("d", 11.7), ("b", 12.0)] and loop.time() == 16.0


def test_manual_loop_runs_a_task_that_never_waits_and_refuses_one_that_does() -> None:
    loop = ManualLoop()

    async def quick() -> int:
        async with asyncio.timeout(1.0):  # noqa: ASYNC100  (it asks for the current task and the running loop)
            return 7

    assert loop.create_task(quick()).result == 7

    async def slow() -> None:
        await asyncio.sleep(0)  # suspends once

    with pytest.raises(RuntimeError):
        loop.create_task(slow())


def test_fake_transport_records_writes_and_delivers_connection_lost_on_the_next_round() -> None:
    loop = ManualLoop()
    lost: list[object] = []

    class Protocol(asyncio.Protocol):
        def connection_lost(self, exc: Exception | None) -> None:
            lost.append(exc)

    t = FakeTransport(loop, peername=("10.0.0.9", 1234))
    t.set_protocol(Protocol())
    t.write(b"a")
    t.writelines([b"b", b"c"])
    assert t.take() == b"abc" and t.written == b""
    assert t.get_extra_info("peername") == ("10.0.0.9", 1234) and t.get_extra_info("nothing", 1) == 1
    t.pause_reading()
    assert not t.is_reading()
    t.abort()
    t.write(b"late")
    assert t.aborted and t.is_closing() and t.dropped == 1 and lost == []
    loop.run_ready()
    assert lost == [None] and t.lost
