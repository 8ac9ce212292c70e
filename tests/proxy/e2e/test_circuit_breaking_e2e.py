"""Circuit breakers on live traffic: max_requests, max_pending_requests with max_connections,
max_retries; overflow is 503 UO with x-envoy-overloaded, and every slot is given back."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ..conftest import Backend, Reply, Seen, client, port_of, running_proxy
from .helpers import doc_for


def breakers(**limits: int) -> dict:
    return {"thresholds": [limits]}


async def get(port: int) -> tuple[int, dict[str, str], bytes]:
    async with client(port) as c:
        r = await c.request()
        return r.status, r.headers, r.body


async def test_max_requests_overflow_503_uo(backend: Backend, tmp_path: Path) -> None:
    backend.handler = lambda s: Reply(delay=0.3, body=b"slow")
    log = tmp_path / "access.log"
    doc = doc_for([backend.port], log=log, circuit_breakers=breakers(max_requests=1))
    async with running_proxy(doc) as proxy:
        port = port_of(proxy)
        first = asyncio.create_task(get(port))
        await asyncio.sleep(0.1)
        status, headers, body = await get(port)
        assert status == 503 and headers["x-envoy-overloaded"] == "true"
        assert body.endswith(b"reset reason: overflow")
        assert (await first)[0] == 200
        rm = proxy.config.clusters["c"].resources[0]
        assert rm.rq_pending_overflow == 1 and rm.requests.count == 0
        assert "cluster.c.upstream_rq_pending_overflow: 1" in proxy.stats.text()
    assert " 503 UO " in log.read_text()


async def test_pending_requests_wait_for_a_connection_then_overflow(backend: Backend) -> None:
    backend.handler = lambda s: Reply(delay=0.2, body=b"ok")
    doc = doc_for([backend.port], circuit_breakers=breakers(max_connections=1, max_pending_requests=1))
    async with running_proxy(doc) as proxy:
        port = port_of(proxy)
        tasks = []
        for _ in range(2):  # the first connects and is busy; the second waits for its connection
            tasks.append(asyncio.create_task(get(port)))
            await asyncio.sleep(0.05)
        rm = proxy.config.clusters["c"].resources[0]
        assert (rm.pending_requests.count, rm.requests.count, rm.connections.count) == (1, 2, 1)
        third = await get(port)  # no room to wait
        assert third[0] == 503 and third[1]["x-envoy-overloaded"] == "true"
        assert [t[0] for t in await asyncio.gather(*tasks)] == [200, 200]
        assert backend.connections == 1  # the waiting request reused the one connection
        assert rm.cx_overflow >= 1 and rm.rq_pending_overflow == 1
        assert (rm.pending_requests.count, rm.requests.count, rm.connections.count) == (0, 0, 1)


async def test_max_retries_budget_overflow(backend: Backend, tmp_path: Path) -> None:
    def handler(s: Seen) -> Reply:
        return Reply(503, body=b"first") if len(backend.seen) <= 2 else Reply(delay=0.3, body=b"retried")

    backend.handler = handler
    log = tmp_path / "access.log"
    doc = doc_for([backend.port], {"retry_on": "5xx", "num_retries": 3,
                                   "retry_back_off": {"base_interval": "0.001s"}},
                  log=log, circuit_breakers=breakers(max_retries=1))
    async with running_proxy(doc) as proxy:
        port = port_of(proxy)
        results = await asyncio.gather(get(port), get(port))
        assert sorted((s, b) for s, _, b in results) == [(200, b"retried"), (503, b"first")]
        rm = proxy.config.clusters["c"].resources[0]
        assert rm.rq_retry_overflow == 1 and rm.retries.count == 0
        assert "cluster.c.upstream_rq_retry_overflow: 1" in proxy.stats.text()
    assert " 503 UO " in log.read_text()


async def test_max_connections_overflow_counted(backend: Backend) -> None:
    backend.handler = lambda s: Reply(delay=0.1, body=b"ok")
    doc = doc_for([backend.port], circuit_breakers=breakers(max_connections=1))
    async with running_proxy(doc) as proxy:
        port = port_of(proxy)
        statuses = [s for s, _, _ in await asyncio.gather(*(get(port) for _ in range(4)))]
        assert statuses == [200] * 4
        assert backend.connections == 1
        assert "cluster.c.upstream_cx_overflow: " in proxy.stats.text()
        assert proxy.config.clusters["c"].resources[0].cx_overflow >= 1
