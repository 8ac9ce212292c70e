"""Cluster types and load balancing over loopback: weights, consistent hashing by header and
cookie, priority failover on EDS health, endpoint updates, ORIGINAL_DST, LOGICAL_DNS."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from envoy.config.endpoint.v3 import endpoint_pb2
from google.protobuf import json_format

from pilotfish.proxy.compile.bootstrap_file import parse_bootstrap
from pilotfish.proxy.upstream.cluster import Cluster
from pilotfish.proxy.compile import compile_bootstrap
from pilotfish.proxy.compile.clusters import install_load_assignment
from pilotfish.proxy.common.errors import ProxyConfigError

from ..conftest import Backend, _BackendConn, bootstrap, client, cluster, port_of, running_proxy, sa


def route(cluster_name: str = "c", **action: Any) -> list[dict[str, Any]]:
    return [{"match": {"prefix": "/"}, "route": {"cluster": cluster_name, **action}}]


def endpoint(port: int, health: str | None = None, **extra: Any) -> dict[str, Any]:
    ep: dict[str, Any] = {"endpoint": {"address": sa(port)}, **extra}
    if health:
        ep["health_status"] = health
    return ep


def assignment_cluster(name: str, localities: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": "STATIC", "connect_timeout": "1s",
            "load_assignment": {"cluster_name": name, "endpoints": localities}, **extra}


def who(body: bytes) -> str:
    return body.split(b" ")[0].decode()


async def bodies(port: int, n: int, headers: dict[str, str] | None = None, path: str = "/") -> Counter[str]:
    async with client(port) as c:
        return Counter([who((await c.request(path=path, headers=headers)).body) for _ in range(n)])


async def test_endpoint_weights_round_robin(backend: Backend, backend_b: Backend) -> None:
    doc = bootstrap(route(), [cluster("c", backend.port, backend_b.port, weights=[3, 1])])
    async with running_proxy(doc) as proxy:
        assert await bodies(port_of(proxy), 40) == {"a": 30, "b": 10}


async def test_ring_hash_sticks_by_header(backend: Backend, backend_b: Backend) -> None:
    doc = bootstrap(route(hash_policy=[{"header": {"header_name": "x-user"}}]),
                    [cluster("c", backend.port, backend_b.port, lb_policy="RING_HASH")])
    async with running_proxy(doc) as proxy:
        port = port_of(proxy)
        seen = {}
        for user in range(12):
            picks = await bodies(port, 4, {"x-user": f"user-{user}"})
            assert len(picks) == 1  # every request of one user lands on one backend
            seen[user] = next(iter(picks))
        assert set(seen.values()) == {"a", "b"}  # and users spread over both


async def test_maglev_with_source_ip_and_query_parameter(backend: Backend, backend_b: Backend) -> None:
    policies = [{"query_parameter": {"name": "u"}, "terminal": True},
                {"connection_properties": {"source_ip": True}}]
    doc = bootstrap(route(hash_policy=policies),
                    [cluster("c", backend.port, backend_b.port, lb_policy="MAGLEV",
                             maglev_lb_config={"table_size": 251})])
    async with running_proxy(doc) as proxy:
        port = port_of(proxy)
        assert len(await bodies(port, 6)) == 1  # one client address: one backend
        spread = set()
        for u in range(12):
            picks = await bodies(port, 3, path=f"/?u={u}")
            assert len(picks) == 1
            spread |= set(picks)
        assert spread == {"a", "b"}


async def test_cookie_with_ttl_is_set_then_followed(backend: Backend, backend_b: Backend) -> None:
    doc = bootstrap(route(hash_policy=[{"cookie": {"name": "lb", "ttl": "60s", "path": "/"}}]),
                    [cluster("c", backend.port, backend_b.port, lb_policy="RING_HASH")])
    async with running_proxy(doc) as proxy:
        port = port_of(proxy)
        cookies = set()
        for _ in range(8):  # new connections: new client ports, so new cookies
            async with client(port) as c:
                r = await c.request()
                set_cookie = r.headers["set-cookie"]
                assert set_cookie.endswith("; Max-Age=60; Path=/; HttpOnly")
                value = set_cookie.split(";")[0]
                cookies.add(value)
                first = who(r.body)
                for _ in range(3):
                    again = await c.request(headers={"cookie": value})
                    assert who(again.body) == first and "set-cookie" not in again.headers
        assert len(cookies) == 8


async def test_priority_failover_on_eds_health(backend: Backend, backend_b: Backend) -> None:
    doc = bootstrap(route(), [assignment_cluster("c", [
        {"priority": 0, "lb_endpoints": [endpoint(backend.port, "UNHEALTHY")]},
        {"priority": 1, "lb_endpoints": [endpoint(backend_b.port)]},
    ])])
    async with running_proxy(doc) as proxy:
        assert await bodies(port_of(proxy), 10) == {"b": 10}
        c: Cluster = proxy.config.clusters["c"]
        c.hosts[0].eds_health = 1  # HEALTHY again (as an EDS update or health checker would)
        c.health_changed()
        assert await bodies(port_of(proxy), 10) == {"a": 10}


async def test_priority_spill_70_30(backend: Backend, backend_b: Backend) -> None:
    """Two of four P0 endpoints healthy: P0 takes 140 * 2 / 4 = 70% of requests, P1 the rest."""
    twin = await Backend("a").start()
    try:
        doc = bootstrap(route(), [assignment_cluster("c", [
            {"priority": 0, "lb_endpoints": [endpoint(backend.port), endpoint(twin.port),
                                              endpoint(1, "UNHEALTHY"), endpoint(2, "TIMEOUT")]},
            {"priority": 1, "lb_endpoints": [endpoint(backend_b.port)]},
        ])])
        async with running_proxy(doc, seed=5) as proxy:
            c: Cluster = proxy.config.clusters["c"]
            assert [len(lvl.healthy) for lvl in c.levels] == [2, 1]
            picks = await bodies(port_of(proxy), 400)
            assert 245 < picks["a"] < 315 and picks["a"] + picks["b"] == 400
    finally:
        await twin.stop()


async def test_update_load_assignment_swaps_endpoints(backend: Backend, backend_b: Backend) -> None:
    doc = bootstrap(route(), [cluster("c", backend.port)])
    async with running_proxy(doc) as proxy:
        port = port_of(proxy)
        c: Cluster = proxy.config.clusters["c"]
        assert await bodies(port, 3) == {"a": 3}
        kept = c.hosts[0]
        cla = json_format.ParseDict({"cluster_name": "c", "endpoints": [
            {"lb_endpoints": [endpoint(backend.port, "DRAINING"), endpoint(backend_b.port)]}]},
            endpoint_pb2.ClusterLoadAssignment())
        assert install_load_assignment(c, cla) == []
        assert c.hosts[0] is kept and kept.excluded
        assert await bodies(port, 4) == {"b": 4}
        bad = json_format.ParseDict({"cluster_name": "c", "policy": {"drop_overloads": [{"category": "x"}]}},
                                    endpoint_pb2.ClusterLoadAssignment())
        with pytest.raises(ProxyConfigError) as err:
            install_load_assignment(c, bad)
        assert err.value.field_path == "ClusterLoadAssignment[c].policy.drop_overloads"
        assert await bodies(port, 2) == {"b": 2}  # a rejected update changes nothing


async def test_locality_weighted_lb(backend: Backend, backend_b: Backend) -> None:
    doc = bootstrap(route(), [assignment_cluster("c", [
        {"locality": {"zone": "z1"}, "load_balancing_weight": 3, "lb_endpoints": [endpoint(backend.port)]},
        {"locality": {"zone": "z2"}, "load_balancing_weight": 1,
         "lb_endpoints": [endpoint(backend_b.port), endpoint(backend_b.port, endpoint={"address": sa(backend_b.port, "127.0.0.3")})]},
    ], common_lb_config={"locality_weighted_lb_config": {}})])
    async with running_proxy(doc) as proxy:
        picks = await bodies(port_of(proxy), 400)
        assert 270 < picks["a"] < 330


async def test_original_dst_from_header_and_cleanup(backend: Backend, backend_b: Backend) -> None:
    od = {"name": "od", "type": "ORIGINAL_DST", "lb_policy": "CLUSTER_PROVIDED", "connect_timeout": "1s",
          "cleanup_interval": "0.1s", "original_dst_lb_config": {"use_http_header": True}}
    async with running_proxy(bootstrap(route("od"), [od])) as proxy:
        port = port_of(proxy)
        for b, name in ((backend, "a"), (backend_b, "b")):
            hdr = {"x-envoy-original-dst-host": f"127.0.0.1:{b.port}"}
            assert await bodies(port, 2, hdr) == {name: 2}
        c: Cluster = proxy.config.clusters["od"]
        assert sorted(h.port for h in c.hosts) == sorted([backend.port, backend_b.port])
        async with client(port) as cl:
            assert (await cl.request()).status == 503  # no header, nothing redirected the socket
            assert (await cl.request(headers={"x-envoy-original-dst-host": "bogus"})).status == 503
        for _ in range(100):  # unused hosts go once their idle connections are gone
            for h in c.hosts:
                if h.pool is not None:
                    h.pool.close()
            if not c.hosts:
                break
            await asyncio.sleep(0.05)
        assert c.hosts == ()


async def test_logical_dns_new_connections_follow_the_latest_address(
        backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()
    other = Backend("other")
    other.server = await loop.create_server(lambda: _BackendConn(other), "127.0.0.2", backend.port)
    answer = ["127.0.0.1"]

    async def lookup(self: Cluster, name: str, port: int) -> list[str]:
        assert name == "backend.test"
        return list(answer)

    monkeypatch.setattr(Cluster, "_lookup", lookup)
    c = {"name": "c", "type": "LOGICAL_DNS", "connect_timeout": "1s", "dns_refresh_rate": "0.05s",
         "load_assignment": {"cluster_name": "c", "endpoints": [{"lb_endpoints": [
             {"endpoint": {"address": {"socket_address": {"address": "backend.test", "port_value": backend.port}}}}]}]}}
    try:
        async with running_proxy(bootstrap(route(auto_host_rewrite=True), [c])) as proxy:
            port = port_of(proxy)
            async with client(port) as cl:
                assert who((await cl.request()).body) == "a"
                answer[0] = "127.0.0.2"
                await asyncio.sleep(0.2)
                host = proxy.config.clusters["c"].hosts[0]
                assert host.address == "127.0.0.2"
                assert who((await cl.request()).body) == "a"  # the pooled connection stays
                for conn in host.pool.idle:  # the idle connection goes: the next one is new
                    conn.close()
                await asyncio.sleep(0.05)
                assert who((await cl.request()).body) == "other"
            assert backend.seen[0].headers["host"] == "backend.test"
    finally:
        await other.stop()


@pytest.mark.parametrize(("mutate", "path"), [
    (lambda c, r: c.update(type="ORIGINAL_DST"), "clusters[0].lb_policy"),
    (lambda c, r: c.update(lb_policy="CLUSTER_PROVIDED"), "clusters[0].lb_policy"),
    (lambda c, r: c.update(lb_policy="MAGLEV", maglev_lb_config={"table_size": 8}), "clusters[0].maglev_lb_config.table_size"),
    (lambda c, r: c.update(ring_hash_lb_config={"minimum_ring_size": 10, "maximum_ring_size": 5}),
     "clusters[0].ring_hash_lb_config"),
    (lambda c, r: c.update(ring_hash_lb_config={"hash_function": "MURMUR_HASH_2"}), "clusters[0].ring_hash_lb_config.hash_function"),
    (lambda c, r: c.update(type="LOGICAL_DNS", load_assignment={"endpoints": [{"lb_endpoints": [endpoint(1), endpoint(2)]}]}),
     "clusters[0].load_assignment"),
    (lambda c, r: c["load_assignment"].update(policy={"drop_overloads": [{"category": "x"}]}),
     "clusters[0].load_assignment.policy.drop_overloads"),
    (lambda c, r: c.update(common_lb_config={"consistent_hashing_lb_config": {"hash_balance_factor": 150}}),
     "common_lb_config.consistent_hashing_lb_config.hash_balance_factor"),
    (lambda c, r: r[0]["route"].update(hash_policy=[{"filter_state": {"key": "k"}}]), "route.hash_policy[0].filter_state"),
])
def test_unsupported_settings_name_the_field(mutate: Any, path: str) -> None:
    doc = bootstrap(route(), [cluster("c", 1)])
    c = doc["static_resources"]["clusters"][0]
    hcm = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    mutate(c, hcm["route_config"]["virtual_hosts"][0]["routes"])
    with pytest.raises(ProxyConfigError) as err:
        loaded = parse_bootstrap(doc)
        compile_bootstrap(loaded.message)
    assert path in err.value.field_path
