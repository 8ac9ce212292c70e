"""Clusters over sockets: STRICT_DNS resolution, LEAST_REQUEST and RANDOM policies, weights."""

from __future__ import annotations

import asyncio

from ..conftest import Backend, Client, Reply, bootstrap, client, cluster, port_of, running_proxy

ROUTE = [{"match": {"prefix": "/"}, "route": {"cluster": "a", "auto_host_rewrite": True}}]


async def test_strict_dns_resolves_and_rewrites_host(backend: Backend) -> None:
    c = cluster("a", backend.port, type="STRICT_DNS", dns_lookup_family="V4_ONLY", dns_refresh_rate="0.05s")
    c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]["address"] = "localhost"
    async with running_proxy(bootstrap(ROUTE, [c])) as proxy, client(port_of(proxy)) as cl:
        assert [h.address for h in proxy.config.clusters["a"].hosts] == ["127.0.0.1"]
        await asyncio.sleep(0.15)  # a few refreshes keep the same host (and its pool)
        for _ in range(3):
            assert (await cl.request()).status == 200
    assert backend.seen[0].headers["host"] == "localhost"
    assert backend.connections == 1


async def test_least_request_avoids_the_busy_host(backend: Backend, backend_b: Backend) -> None:
    backend.handler = lambda s: Reply(body=b"slow", delay=0.5 if s.path == "/block" else 0)
    doc = bootstrap([{"match": {"prefix": "/"}, "route": {"cluster": "ab"}}],
                    [cluster("ab", backend.port, backend_b.port, lb_policy="LEAST_REQUEST")])
    async with running_proxy(doc, seed=3) as proxy:
        blockers = []
        for _ in range(4):  # keep a few requests open on whichever hosts they land
            c = await Client(port_of(proxy)).connect()
            c.send(b"GET /block HTTP/1.1\r\nhost: x\r\n\r\n")
            blockers.append(c)
        await asyncio.sleep(0.05)
        hosts = proxy.config.clusters["ab"].hosts
        busy = max(hosts, key=lambda h: h.active_rq)
        async with client(port_of(proxy)) as c:
            bodies = [(await c.request(path="/fast")).body for _ in range(20)]
        idle_name = b"b" if busy.port == backend.port else b"a"
        if busy.active_rq > min(h.active_rq for h in hosts):
            assert sum(b.startswith(idle_name) for b in bodies) >= 10
        for c in blockers:
            await c.close()


async def test_random_policy_uses_all_hosts(backend: Backend, backend_b: Backend) -> None:
    doc = bootstrap([{"match": {"prefix": "/"}, "route": {"cluster": "ab"}}],
                    [cluster("ab", backend.port, backend_b.port, lb_policy="RANDOM", weights=[1, 1])])
    async with running_proxy(doc) as proxy, client(port_of(proxy)) as c:
        for _ in range(40):
            await c.request()
    assert len(backend.seen) > 8 and len(backend_b.seen) > 8
