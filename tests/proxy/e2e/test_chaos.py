"""Chaos: steady load over three backends while one is killed and restarted again and again.

With retry_on connect-failure,reset,5xx and 2 retries (previous_hosts), every request succeeds;
afterwards no connection, circuit-breaker slot or retry unit is left behind, and memory allocated
by the proxy's request path stays flat between two equal rounds of traffic."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from collections import Counter

from ..conftest import Backend, Client, _BackendConn, port_of, running_proxy
from .helpers import PREVIOUS_HOSTS, doc_for

CLIENTS = 6


async def restart(b: Backend) -> None:
    """Listen again on the same port (Backend.start picks a new one)."""
    loop = asyncio.get_running_loop()
    b.server = await loop.create_server(lambda: _BackendConn(b), "127.0.0.1", b.port, reuse_address=True)


async def kill(b: Backend) -> None:
    await b.stop()


async def load(port: int, stop: asyncio.Event, statuses: Counter[int]) -> None:
    c = await Client(port).connect()
    try:
        while not stop.is_set():
            r = await c.request()
            statuses[r.status] += 1
            if r.headers.get("connection") == "close":
                await c.close()
                c = await Client(port).connect()
    finally:
        await c.close()


async def chaos(victim: Backend, stop: asyncio.Event) -> int:
    kills = 0
    while not stop.is_set():
        await asyncio.sleep(0.15)
        await kill(victim)
        kills += 1
        await asyncio.sleep(0.1)
        await restart(victim)
    return kills


async def round_of(port: int, victim: Backend, seconds: float) -> tuple[Counter[int], int]:
    stop = asyncio.Event()
    statuses: Counter[int] = Counter()
    loaders = [asyncio.create_task(load(port, stop, statuses)) for _ in range(CLIENTS)]
    chaos_task = asyncio.create_task(chaos(victim, stop))
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.gather(*loaders)
    kills = await chaos_task
    return statuses, kills


async def test_kill_and_restart_a_backend_under_load() -> None:
    backends = [await Backend(name).start() for name in "abc"]
    victim = backends[0]
    retry = {"retry_on": "connect-failure,reset,5xx", "num_retries": 2,
             "retry_host_predicate": [PREVIOUS_HOSTS], "host_selection_retry_max_attempts": 5}
    doc = doc_for([b.port for b in backends], retry,
                  common_http_protocol_options={"idle_timeout": "0.3s"},
                  circuit_breakers={"thresholds": [{"max_retries": 1000}]})  # retries limited by the policy only
    try:
        async with running_proxy(doc) as proxy:
            port = port_of(proxy)
            cluster = proxy.config.clusters["c"]
            warm, _ = await round_of(port, victim, 1.0)
            gc.collect()
            tracemalloc.start()
            try:
                first, kills1 = await round_of(port, victim, 1.5)
                gc.collect()
                before = tracemalloc.take_snapshot()
                second, kills2 = await round_of(port, victim, 1.5)
                gc.collect()
                after = tracemalloc.take_snapshot()
            finally:
                tracemalloc.stop()
            for statuses in (warm, first, second):
                assert set(statuses) == {200}, statuses
            assert kills1 >= 3 and kills2 >= 3
            assert sum(second.values()) > 100
            assert cluster.stats.upstream_rq_retry > 0
            growth = sum(d.size_diff for d in after.compare_to(before, "filename")
                         if "pilotfish/proxy" in str(d.traceback))
            assert growth < 64 * 1024, growth

            http = proxy.stats.http("ingress")
            async with asyncio.timeout(3):
                while http.downstream_cx_active or cluster.stats.upstream_cx_active:
                    await asyncio.sleep(0.05)
            assert http.downstream_rq_active == 0 and cluster.stats.upstream_rq_active == 0
            rm = cluster.resources[0]
            assert (rm.requests.count, rm.pending_requests.count, rm.connections.count, rm.retries.count) == (
                0, 0, 0, 0)
            assert all(h.active_rq == 0 and not h.pool.waiting for h in cluster.hosts)
    finally:
        for b in backends:
            if b.server is not None and b.server.is_serving():
                await b.stop()
