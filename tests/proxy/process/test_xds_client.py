"""The proxy's ADS client against pilotfish.xds.testing's fake ADS server (grpc.aio on port 0)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest

from pilotfish.xds.testing import FakeAds
from pilotfish.xds.type_urls import CLUSTER, ENDPOINT, LISTENER, ROUTE

from ..conftest import Backend, Reply, client
from .ads import ads_proxy, eds_cluster, endpoints, hcm, listener, route, serve_basic


def _index(ads: FakeAds, pred: Callable[[Any], bool]) -> int:
    return next(i for i, r in enumerate(ads.requests) if pred(r))


async def test_warms_in_envoy_order_and_acks_version_and_nonce(ads: FakeAds, backend: Backend) -> None:
    serve_basic(ads, backend.port)
    async with ads_proxy(ads) as proxy:
        async with client(proxy.listener_ports["in"]) as c:
            r = await c.request(path="/x")
        assert r.status == 200 and r.body == b"a /x"
        first = ads.requests[0]
        assert first.type_url == CLUSTER and first.version_info == "" and first.response_nonce == ""
        assert first.node.id.startswith("sidecar~") and first.node.locality.zone == "z1"
        assert first.node.metadata["NAMESPACE"] == "default"
        for t in (CLUSTER, ENDPOINT, LISTENER, ROUTE):
            sent = next(s for s in ads.sent if s.type_url == t)
            ack = await ads.wait_ack(t, "1")
            assert ack.response_nonce == sent.nonce
        eds_req = _index(ads, lambda r: r.type_url == ENDPOINT)
        assert list(ads.requests[eds_req].resource_names) == ["web"]
        eds_ack = _index(ads, lambda r: r.type_url == ENDPOINT and r.response_nonce)
        lds_req = _index(ads, lambda r: r.type_url == LISTENER)
        rds_req = _index(ads, lambda r: r.type_url == ROUTE)
        cds_ack = _index(ads, lambda r: r.type_url == CLUSTER and r.response_nonce)
        assert cds_ack < eds_req < eds_ack < lds_req < rds_req  # CDS, EDS, then LDS, RDS
        assert list(ads.requests[rds_req].resource_names) == ["r1"]
        assert all(r.HasField("node") == (i == 0 or r.response_nonce == "")
                   for i, r in enumerate(ads.requests))  # node on each type's first request


async def test_bad_route_is_nacked_and_old_config_keeps_serving(ads: FakeAds, backend: Backend) -> None:
    serve_basic(ads, backend.port)
    async with ads_proxy(ads) as proxy:
        port = proxy.listener_ports["in"]
        await ads.wait_ack(ROUTE, "1")
        bad = route("r1", "web")
        bad.virtual_hosts[0].routes[0].match.ClearField("prefix")
        bad.virtual_hosts[0].routes[0].match.safe_regex.regex = "("
        ads.set(ROUTE, bad)
        nonce = ads.sent[-1].nonce
        nack = await ads.wait_for(lambda r: r.type_url == ROUTE and r.HasField("error_detail"))
        assert nack.response_nonce == nonce and nack.version_info == "1"
        assert "RouteConfiguration[r1].virtual_hosts[0].routes[0].match.safe_regex" in nack.error_detail.message
        async with client(port) as c:
            assert (await c.request(path="/still")).status == 200
        # an unsupported field is a NACK naming it, too
        ads.set(LISTENER, listener("in", "r1"), listener("other", "r1", listener_filters=[{"name": "x"}]))
        nack = await ads.wait_for(lambda r: r.type_url == LISTENER and r.HasField("error_detail"))
        assert "Listener[other].listener_filters" in nack.error_detail.message
        assert nack.version_info == "1" and "other" not in proxy.listener_ports
        # the next good version is accepted
        ads.set(ROUTE, route("r1", "web", prefix_rewrite="/v2/"))
        await ads.wait_ack(ROUTE, "3")
        async with client(port) as c:
            assert (await c.request(path="/p")).body == b"a /v2/p"


async def test_route_change_applies_to_new_requests_and_spares_in_flight(
        ads: FakeAds, backend: Backend, backend_b: Backend) -> None:
    backend.handler = lambda s: Reply(body=b"slow a", delay=0.6) if s.path == "/slow" else Reply(body=b"a")
    serve_basic(ads, backend.port)
    async with ads_proxy(ads) as proxy:
        port = proxy.listener_ports["in"]
        async with client(port) as slow, client(port) as kept:
            assert (await kept.request()).body == b"a"  # a keep-alive connection opened before the change
            slow.send(b"GET /slow HTTP/1.1\r\nhost: x\r\n\r\n")
            await asyncio.sleep(0.1)
            ads.set(CLUSTER, eds_cluster("web"), eds_cluster("web-b"))
            ads.set(ENDPOINT, endpoints("web", backend.port), endpoints("web-b", backend_b.port))
            await ads.wait_ack(ENDPOINT, "2")
            ads.set(ROUTE, route("r1", "web-b"))
            await ads.wait_ack(ROUTE, "2")
            assert (await kept.request(path="/new")).body == b"b /new"
            async with client(port) as fresh:
                assert (await fresh.request(path="/new")).body == b"b /new"
            r = await slow.read_response()
            assert r.status == 200 and r.body == b"slow a"


async def test_removed_listener_stops_accepting_and_drains(ads: FakeAds, backend: Backend) -> None:
    serve_basic(ads, backend.port)
    ads.set(LISTENER, listener("in", "r1"), listener("gone", "r1"), push=False)
    async with ads_proxy(ads) as proxy:
        port = proxy.listener_ports["gone"]
        async with client(port) as idle:
            assert (await idle.request()).status == 200
            ads.set(LISTENER, listener("in", "r1"))
            await ads.wait_ack(LISTENER, "3")
            assert await idle.closed_by_peer()  # idle keep-alive connections are closed
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", port)
        assert "gone" not in proxy.listener_ports
        async with client(proxy.listener_ports["in"]) as c:
            assert (await c.request()).status == 200


async def test_eds_change_moves_traffic_and_keeps_the_cluster(
        ads: FakeAds, backend: Backend, backend_b: Backend) -> None:
    serve_basic(ads, backend.port)
    async with ads_proxy(ads) as proxy:
        web = proxy.config.clusters["web"]
        async with client(proxy.listener_ports["in"]) as c:
            assert (await c.request()).body == b"a /"
            ads.set(ENDPOINT, endpoints("web", backend_b.port))
            await ads.wait_ack(ENDPOINT, "2")
            assert (await c.request()).body == b"b /"
            ads.set(ENDPOINT, endpoints("web", backend.port, backend_b.port))
            await ads.wait_ack(ENDPOINT, "3")
            kept_host = next(h for h in web.hosts if h.port == backend_b.port)
            assert {(await c.request()).body for _ in range(4)} == {b"a /", b"b /"}
        assert proxy.config.clusters["web"] is web  # same Cluster object: pools survive
        ads.set(ENDPOINT, endpoints("web", backend_b.port))
        await ads.wait_ack(ENDPOINT, "4")
        assert web.hosts == (kept_host,)


async def test_reconnects_after_server_restart_and_keeps_serving(ads: FakeAds, backend: Backend) -> None:
    serve_basic(ads, backend.port)
    async with ads_proxy(ads) as proxy:
        port = proxy.listener_ports["in"]
        await ads.wait_ack(ROUTE, "1")
        ads_port = ads.port
        await ads.stop()
        async with client(port) as c:
            for _ in range(3):
                assert (await c.request()).status == 200
                await asyncio.sleep(0.1)
        again = FakeAds()
        serve_basic(again, backend.port)
        again.set(ROUTE, route("r1", "web", prefix_rewrite="/after/"), push=False)  # version 2 there
        await again.start(ads_port)
        try:
            first = await again.wait_for(lambda r: r.type_url == CLUSTER, timeout=10)
            assert first.version_info == "1" and first.response_nonce == "" and first.node.id
            await again.wait_ack(ROUTE, "2", timeout=10)
            async with client(port) as c:
                assert (await c.request(path="/x")).body == b"a /after/x"
        finally:
            await again.stop()


async def test_config_dump_shows_dynamic_resources(ads: FakeAds, backend: Backend) -> None:
    serve_basic(ads, backend.port)
    async with ads_proxy(ads) as proxy:
        await ads.wait_ack(ROUTE, "1")
        async with client(proxy.admin_port) as c:
            r = await c.request(path="/config_dump?include_eds")  # EDS only when asked, as Envoy
        configs = {d["@type"].rsplit(".", 1)[-1]: d for d in json.loads(r.body)["configs"]}
        lst = configs["ListenersConfigDump"]
        assert lst["version_info"] == "1"
        assert lst["dynamic_listeners"][0]["name"] == "in"
        assert lst["dynamic_listeners"][0]["active_state"]["version_info"] == "1"
        assert lst["dynamic_listeners"][0]["active_state"]["listener"]["name"] == "in"
        clusters = configs["ClustersConfigDump"]
        assert [c["cluster"]["name"] for c in clusters["dynamic_active_clusters"]] == ["web"]
        assert clusters["static_clusters"][0]["cluster"]["name"] == "xds-grpc"
        assert configs["RoutesConfigDump"]["dynamic_route_configs"][0]["route_config"]["name"] == "r1"
        eds = configs["EndpointsConfigDump"]["dynamic_endpoint_configs"][0]
        assert eds["version_info"] == "1" and eds["endpoint_config"]["cluster_name"] == "web"


async def test_listener_waits_for_its_route(ads: FakeAds, backend: Backend) -> None:
    serve_basic(ads, backend.port)
    async with ads_proxy(ads) as proxy:
        ads.set(LISTENER, listener("in", "r1"), listener("late", "r2"))
        await ads.wait_ack(LISTENER, "2")
        await ads.wait_for(lambda r: r.type_url == ROUTE and list(r.resource_names) == ["r1", "r2"])
        assert "late" not in proxy.listener_ports  # warming: no route yet
        ads.set(ROUTE, route("r1", "web"), route("r2", "web"))
        await ads.wait_ack(ROUTE, "2")
        async with client(proxy.listener_ports["late"]) as c:
            assert (await c.request()).status == 200


async def test_changed_listener_keeps_its_port_and_drains_old_connections(
        ads: FakeAds, backend: Backend) -> None:
    serve_basic(ads, backend.port)
    async with ads_proxy(ads) as proxy:
        port = proxy.listener_ports["in"]
        async with client(port) as old:
            assert (await old.request()).headers.get("server") == "envoy"
            changed = listener("in", "r1")
            changed.filter_chains[0].filters[0].typed_config.Pack(hcm(server_name="changed"))
            ads.set(LISTENER, changed)
            await ads.wait_ack(LISTENER, "2")
            assert await old.closed_by_peer()  # the old listener's idle connection drains
        assert proxy.listener_ports["in"] == port
        async with client(port) as new:
            assert (await new.request()).headers.get("server") == "changed"
