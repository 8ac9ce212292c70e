"""/drain_listeners: stop accepting, finish what is in flight, report not ready."""

from __future__ import annotations

import asyncio

import pytest

from ..conftest import Backend, Reply, bootstrap, client, cluster, port_of, running_proxy
from .helpers import get


async def test_drain_listeners_keeps_in_flight_and_refuses_new(backend: Backend) -> None:
    doc = bootstrap([{"match": {"prefix": "/"}, "route": {"cluster": "a"}}], [cluster("a", backend.port)])
    async with running_proxy(doc) as proxy:
        port = port_of(proxy)
        backend.handler = lambda s: Reply(body=b"slow", delay=0.3)
        async with client(port) as c:
            c.send(b"GET /slow HTTP/1.1\r\nhost: x\r\n\r\n")
            await asyncio.sleep(0.1)  # the request is at the backend
            assert (await get(proxy.admin_port, "/drain_listeners")).status == 405
            assert (await get(proxy.admin_port, "/drain_listeners", "POST")).body == b"OK\n"
            r = await c.read_response()
            assert (r.status, r.body) == (200, b"slow")
            assert r.headers.get("connection") == "close"
        ready = await get(proxy.admin_port, "/ready")
        assert (ready.status, ready.body) == (503, b"DRAINING\n")
        assert (await get(proxy.admin_port, "/healthz")).status == 503
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", port)
        stats = (await get(proxy.admin_port, "/stats?filter=^server")).body.decode()
        assert "server.live: 0" in stats


async def test_stats_json_and_filter(backend: Backend) -> None:
    doc = bootstrap([{"match": {"prefix": "/"}, "route": {"cluster": "a"}}], [cluster("a", backend.port)])
    async with running_proxy(doc) as proxy:
        async with client(port_of(proxy)) as c:
            await c.request()
        import json

        body = json.loads((await get(proxy.admin_port, "/stats?format=json&filter=upstream_rq_total")).body)
        assert body == {"stats": [{"name": "cluster.a.upstream_rq_total", "value": 1}]}
        prom = (await get(proxy.admin_port, "/stats/prometheus?filter=cx_active")).body.decode()
        assert "envoy_cluster_upstream_cx_active" in prom and "upstream_rq_total" not in prom
        assert (await get(proxy.admin_port, "/stats?filter=(")).status == 400
