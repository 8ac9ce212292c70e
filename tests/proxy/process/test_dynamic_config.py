"""A NACK rejects resources, not whole responses (Envoy's listener and cluster managers).

Over a real gRPC ADS server: the resources of a response that compile are applied, each bad one
is rejected (a new one does not exist, an existing one keeps its previous version), the NACK's
error_detail names each rejected resource, and the next good response is ACKed.
"""

from __future__ import annotations

import json
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2

from pilotfish.proxy.common.errors import ProxyConfigError
from pilotfish.proxy.process import dynamic_config
from pilotfish.proxy.process.dynamic_config import _culprit
from pilotfish.xds.resources import Resources
from pilotfish.xds.testing import FakeAds, parse
from pilotfish.xds.type_urls import CLUSTER, ENDPOINT, LISTENER, ROUTE

from ..conftest import Backend, admin_get, client
from .ads import (
    ads_proxy,
    bad_listener,
    bad_route,
    eds_cluster,
    endpoints,
    hcm,
    listener,
    route,
    serve_basic,
    uncompilable_listener,
)


async def test_good_listener_applied_bad_one_rejected_then_next_good_acks(ads: FakeAds, backend: Backend) -> None:
    serve_basic(ads, backend.port)
    async with ads_proxy(ads) as proxy:
        await ads.wait_ack(ROUTE, "1")
        ads.set(LISTENER, listener("in", "r1"), listener("good", "r1"), bad_listener("bad"))
        nack = await ads.wait_nack(LISTENER, ads.sent[-1].nonce)
        assert nack.version_info == "1"  # the last version accepted whole
        detail = nack.error_detail.message
        assert "Listener 'bad' rejected" in detail and "Listener[bad].listener_filters" in detail
        assert "'good'" not in detail and "'in'" not in detail
        assert "bad" not in proxy.listener_ports
        dump = json.loads(await admin_get(proxy, "/config_dump"))
        lds = next(c for c in dump["configs"] if c["@type"].endswith("ListenersConfigDump"))
        bad = next(d for d in lds["dynamic_listeners"] if d["name"] == "bad")
        assert set(bad) == {"name", "error_state"} and "listener_filters" in bad["error_state"]["details"]
        async with client(proxy.listener_ports["good"]) as c:
            assert (await c.request(path="/g")).body == b"a /g"
        async with client(proxy.listener_ports["in"]) as c:
            assert (await c.request()).status == 200
        ads.set(LISTENER, listener("in", "r1"), listener("good", "r1"))
        await ads.wait_ack(LISTENER, "3")
        assert set(proxy.listener_ports) == {"in", "good"}


async def test_rejected_update_of_an_existing_listener_keeps_the_old_one(ads: FakeAds, backend: Backend) -> None:
    serve_basic(ads, backend.port)
    async with ads_proxy(ads) as proxy:
        port = proxy.listener_ports["in"]
        await ads.wait_ack(ROUTE, "1")
        changed = listener("other", "r1")
        changed.filter_chains[0].filters[0].typed_config.Pack(hcm(server_name="other"))
        ads.set(LISTENER, uncompilable_listener("in"), changed)  # fails compiling, not decoding
        nack = await ads.wait_nack(LISTENER, ads.sent[-1].nonce)
        assert "Listener 'in' rejected" in nack.error_detail.message
        assert proxy.listener_ports["in"] == port  # the previous "in" is still bound and serving
        async with client(port) as c:
            r = await c.request()
        assert r.status == 200 and r.headers.get("server") == "envoy"
        async with client(proxy.listener_ports["other"]) as c:
            assert (await c.request()).headers.get("server") == "other"
        dump = json.loads(await admin_get(proxy, "/config_dump"))
        lds = next(c for c in dump["configs"] if c["@type"].endswith("ListenersConfigDump"))
        versions = {d["name"]: d["active_state"]["version_info"] for d in lds["dynamic_listeners"]}
        assert versions == {"in": "1", "other": "2"}
        err = next(d for d in lds["dynamic_listeners"] if d["name"] == "in")["error_state"]
        assert err["version_info"] == "2" and "only HTTP/1.1 is supported" in err["details"]
        assert err["failed_configuration"]["name"] == "in" and "last_update_attempt" in err
        ads.set(LISTENER, listener("in", "r1"), changed)  # the next good one clears it
        await ads.wait_ack(LISTENER, "3")
        dump = json.loads(await admin_get(proxy, "/config_dump"))
        lds = next(c for c in dump["configs"] if c["@type"].endswith("ListenersConfigDump"))
        assert not any("error_state" in d for d in lds["dynamic_listeners"])


async def test_duplicate_and_undecodable_resources_are_rejected_and_nothing_removed(
        ads: FakeAds, backend: Backend) -> None:
    serve_basic(ads, backend.port)
    ads.set(LISTENER, listener("in", "r1"), listener("kept", "r1"), push=False)
    async with ads_proxy(ads) as proxy:
        await ads.wait_ack(ROUTE, "1")
        resp = ads.push_raw(LISTENER, [listener("in", "r1"), listener("in", "r2"), b"\xff\xff\xff",
                                        listener("new", "r1")])
        nack = await ads.wait_nack(LISTENER, resp.nonce)
        detail = nack.error_detail.message
        assert "duplicate Listener 'in'" in detail and "resources[2]" in detail
        # "kept" is absent from the response, but the undecodable resource could have been it
        assert {"in", "kept", "new"} <= set(proxy.listener_ports)
        for name in ("in", "kept", "new"):
            async with client(proxy.listener_ports[name]) as c:
                assert (await c.request()).status == 200
        ads.set(LISTENER, listener("in", "r1"))  # a good response: ACKed, and removes as usual
        await ads.wait_ack(LISTENER, str(ads.versions[LISTENER]))
        assert set(proxy.listener_ports) == {"in"}


async def test_routes_are_accepted_one_by_one(ads: FakeAds, backend: Backend) -> None:
    serve_basic(ads, backend.port)
    ads.set(LISTENER, listener("in", "r1"), listener("two", "r2"), push=False)
    ads.set(ROUTE, route("r1", "web"), route("r2", "web"), push=False)
    async with ads_proxy(ads) as proxy:
        await ads.wait_ack(ROUTE, "2")
        ads.set(ROUTE, route("r1", "web", prefix_rewrite="/new/"), bad_route("r2"))
        nack = await ads.wait_nack(ROUTE, ads.sent[-1].nonce)
        assert nack.version_info == "2"
        assert "RouteConfiguration 'r2' rejected" in nack.error_detail.message
        assert "'r1'" not in nack.error_detail.message
        async with client(proxy.listener_ports["in"]) as c:
            assert (await c.request(path="/x")).body == b"a /new/x"  # r1's new version serves
        async with client(proxy.listener_ports["two"]) as c:
            assert (await c.request(path="/x")).body == b"a /x"  # r2's previous version serves
        ads.set(ROUTE, route("r1", "web"), route("r2", "web", prefix_rewrite="/two/"))
        await ads.wait_ack(ROUTE, "4")
        async with client(proxy.listener_ports["two"]) as c:
            assert (await c.request(path="/x")).body == b"a /two/x"


async def test_clusters_and_endpoints_are_accepted_one_by_one(
        ads: FakeAds, backend: Backend, backend_b: Backend) -> None:
    serve_basic(ads, backend.port)
    async with ads_proxy(ads) as proxy:
        await ads.wait_ack(ROUTE, "1")
        web = proxy.config.clusters["web"]
        bad = eds_cluster("web", lb_policy="LOAD_BALANCING_POLICY_CONFIG")  # unsupported
        bad_new = parse(CLUSTER, {"name": "broken", "type": "STATIC", "connect_timeout": "1s",
                                  "lb_policy": "LOAD_BALANCING_POLICY_CONFIG"})
        ads.set(CLUSTER, bad, eds_cluster("web-b"), bad_new)
        nack = await ads.wait_nack(CLUSTER, ads.sent[-1].nonce)
        assert "Cluster 'web' rejected" in nack.error_detail.message
        assert "Cluster 'broken' rejected" in nack.error_detail.message
        await ads.wait_for(lambda r: r.type_url == ENDPOINT and list(r.resource_names) == ["web", "web-b"])
        assert proxy.config.clusters["web"] is web and "broken" not in proxy.config.clusters
        # EDS: a bad assignment keeps the previous one, a good one in the same response applies
        bad_cla = endpoints("web", backend_b.port)
        bad_cla.endpoints[0].lb_endpoints[0].load_balancing_weight.value = 0  # must be at least 1
        ads.set(ENDPOINT, bad_cla, endpoints("web-b", backend_b.port))
        nack = await ads.wait_nack(ENDPOINT, ads.sent[-1].nonce)
        assert "ClusterLoadAssignment 'web' rejected" in nack.error_detail.message
        assert "'web-b'" not in nack.error_detail.message
        assert [h.port for h in web.hosts] == [backend.port]
        assert [h.port for h in proxy.config.clusters["web-b"].hosts] == [backend_b.port]
        ads.set(ROUTE, route("r1", "web-b"))
        await ads.wait_ack(ROUTE, "2")
        async with client(proxy.listener_ports["in"]) as c:
            assert (await c.request()).body == b"b /"


async def test_many_bad_listeners_cost_one_extra_pass(ads: FakeAds, backend: Backend, monkeypatch: Any) -> None:

    calls = []
    real = dynamic_config.compile_snapshot

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(dynamic_config, "compile_snapshot", counting)
    serve_basic(ads, backend.port)
    async with ads_proxy(ads) as proxy:
        await ads.wait_ack(ROUTE, "1")
        calls.clear()
        ads.set(LISTENER, listener("in", "r1"), *(uncompilable_listener(f"bad{i}") for i in range(6)),
                listener("good", "r1"))
        nack = await ads.wait_nack(LISTENER, ads.sent[-1].nonce)
        assert nack.error_detail.message.startswith("6 of the response's resources rejected")
        assert len(calls) == 2  # the whole compile that failed, then the one without the six
        assert set(proxy.listener_ports) == {"in", "good"}


async def test_listener_that_cannot_bind_is_rejected_alone(ads: FakeAds, backend: Backend) -> None:
    serve_basic(ads, backend.port)
    async with ads_proxy(ads) as proxy:
        await ads.wait_ack(ROUTE, "1")
        clash = listener("clash", "r1")
        clash.address.socket_address.port_value = backend.port  # taken by the backend
        clash.enable_reuse_port.value = False
        ads.set(LISTENER, listener("in", "r1"), clash, listener("good", "r1"))
        nack = await ads.wait_nack(LISTENER, ads.sent[-1].nonce)
        assert "Listener 'clash' rejected: Listener[clash].address: cannot bind" in nack.error_detail.message
        assert set(proxy.listener_ports) == {"in", "good"}
        async with client(proxy.listener_ports["good"]) as c:
            assert (await c.request()).status == 200


def test_culprit_is_an_added_or_changed_resource_named_by_the_error() -> None:
    old = Resources().with_response(CLUSTER, "1", {"a": cluster_pb2.Cluster(name="a")}, now=1.0).clusters
    same = {"a": cluster_pb2.Cluster(name="a"), "b.x": cluster_pb2.Cluster(name="b.x")}
    err = ProxyConfigError("bad", "Cluster[b.x].lb_policy")
    assert _culprit("Cluster", err, same, old) == "b.x"
    assert _culprit("Cluster", ProxyConfigError("bad", "Cluster[a].lb_policy"), same, old) is None  # unchanged
    assert _culprit("Cluster", ProxyConfigError("bad", "RouteConfiguration[r].x"), same, old) is None
