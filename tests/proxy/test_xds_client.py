"""The ADS client against a small fake ADS server (grpc.aio on port 0) that records requests."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest
from envoy.config.cluster.v3 import cluster_pb2  # noqa: F401 - registers the message types
from envoy.config.endpoint.v3 import endpoint_pb2  # noqa: F401
from envoy.config.listener.v3 import listener_pb2  # noqa: F401
from envoy.config.route.v3 import route_pb2  # noqa: F401
from envoy.extensions.filters.http.router.v3 import router_pb2  # noqa: F401
from envoy.extensions.filters.network.http_connection_manager.v3 import (  # noqa: F401
    http_connection_manager_pb2,
)
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.protobuf import json_format, symbol_database

from pilotfish.proxy.xds.type_state import CLUSTER, ENDPOINT, LISTENER, ROUTE

from pilotfish.proxy.server import ProxyServer

from .conftest import HCM, ROUTER, Backend, Reply, client, running_proxy, sa

FULL_STATE = (LISTENER, CLUSTER)


class FakeAds(ads_pb2_grpc.AggregatedDiscoveryServiceServicer):
    def __init__(self) -> None:
        self.resources: dict[str, dict[str, Any]] = {t: {} for t in (LISTENER, ROUTE, CLUSTER, ENDPOINT)}
        self.versions: dict[str, int] = {t: 0 for t in self.resources}
        self.requests: list[discovery_pb2.DiscoveryRequest] = []
        self.sent: list[discovery_pb2.DiscoveryResponse] = []
        self._nonces = itertools.count(1)
        self._streams: list[tuple[asyncio.Queue, dict[str, frozenset[str]]]] = []
        self._changed = asyncio.Event()
        self.server: grpc.aio.Server | None = None
        self.port = 0

    async def start(self, port: int = 0) -> FakeAds:
        self.server = grpc.aio.server()
        ads_pb2_grpc.add_AggregatedDiscoveryServiceServicer_to_server(self, self.server)
        self.port = self.server.add_insecure_port(f"127.0.0.1:{port}")
        await self.server.start()
        return self

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(0)
            self.server = None

    # ---- what the test serves ---------------------------------------------------------------
    def set(self, type_url: str, *messages: Any, push: bool = True) -> str:
        """Replace the resources of a type (a new version); pushed to subscribed streams."""
        self.resources[type_url] = {_name(type_url, m): m for m in messages}
        self.versions[type_url] += 1
        if push:
            for queue, subs in self._streams:
                if type_url in subs:
                    queue.put_nowait(self._response(type_url, subs[type_url]))
        return str(self.versions[type_url])

    def _response(self, type_url: str, names: frozenset[str]) -> discovery_pb2.DiscoveryResponse:
        resp = discovery_pb2.DiscoveryResponse(type_url=type_url, version_info=str(self.versions[type_url]),
                                               nonce=str(next(self._nonces)))
        for name, msg in sorted(self.resources[type_url].items()):
            if type_url in FULL_STATE or name in names:
                resp.resources.add().Pack(msg)
        self.sent.append(resp)
        return resp

    # ---- waiting ----------------------------------------------------------------------------
    async def wait_for(self, pred: Callable[[discovery_pb2.DiscoveryRequest], bool],
                       timeout: float = 5.0) -> discovery_pb2.DiscoveryRequest:
        async with asyncio.timeout(timeout):
            while True:
                for r in self.requests:
                    if pred(r):
                        return r
                self._changed.clear()
                await self._changed.wait()

    async def wait_ack(self, type_url: str, version: str, timeout: float = 5.0) -> discovery_pb2.DiscoveryRequest:
        return await self.wait_for(lambda r: r.type_url == type_url and r.version_info == version
                                   and r.response_nonce != "" and not r.HasField("error_detail"), timeout)

    # ---- the service ------------------------------------------------------------------------
    async def StreamAggregatedResources(self, request_iterator: AsyncIterator[Any], context: Any
                                        ) -> AsyncIterator[discovery_pb2.DiscoveryResponse]:
        queue: asyncio.Queue = asyncio.Queue()
        subs: dict[str, frozenset[str]] = {}
        entry = (queue, subs)
        self._streams.append(entry)

        async def read() -> None:
            async for req in request_iterator:
                self.requests.append(req)
                self._changed.set()
                names = frozenset(req.resource_names)
                if req.type_url not in subs or subs[req.type_url] != names:
                    subs[req.type_url] = names
                    queue.put_nowait(self._response(req.type_url, names))
            queue.put_nowait(None)

        reader = asyncio.get_running_loop().create_task(read())
        try:
            while True:
                item = await queue.get()
                if item is None:
                    return
                yield item
        finally:
            reader.cancel()
            self._streams.remove(entry)


def _name(type_url: str, msg: Any) -> str:
    return msg.cluster_name if type_url == ENDPOINT else msg.name


def parse(type_url: str, doc: dict[str, Any]) -> Any:
    cls = symbol_database.Default().GetSymbol(type_url.rsplit("/", 1)[-1])
    return json_format.ParseDict(doc, cls())


# ---- resource builders ----------------------------------------------------------------------
def listener(name: str, route_name: str, **extra: Any) -> Any:
    return parse(LISTENER, {
        "name": name, "address": sa(0), **extra,
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {"@type": HCM, "stat_prefix": name, "http_filters": [ROUTER],
                             "rds": {"route_config_name": route_name,
                                     "config_source": {"ads": {}, "resource_api_version": "V3"}}},
        }]}],
    })


def route(name: str, cluster_name: str, **route_extra: Any) -> Any:
    return parse(ROUTE, {"name": name, "virtual_hosts": [{
        "name": "all", "domains": ["*"],
        "routes": [{"match": {"prefix": "/"}, "route": {"cluster": cluster_name, **route_extra}}]}]})


def eds_cluster(name: str, **extra: Any) -> Any:
    return parse(CLUSTER, {"name": name, "type": "EDS", "connect_timeout": "1s",
                           "eds_cluster_config": {"eds_config": {"ads": {}, "resource_api_version": "V3"}},
                           **extra})


def endpoints(name: str, *ports: int) -> Any:
    return parse(ENDPOINT, {"cluster_name": name, "endpoints": [{
        "locality": {"region": "r1", "zone": "z1"},
        "lb_endpoints": [{"endpoint": {"address": sa(p)}} for p in ports]}]})


def ads_bootstrap(ads_port: int, **dynamic: Any) -> dict[str, Any]:
    from .conftest import cluster

    return {
        "node": {"id": "sidecar~127.0.0.1~app.default~default.svc.cluster.local", "cluster": "app.default",
                 "locality": {"region": "r1", "zone": "z1"}, "metadata": {"NAMESPACE": "default"}},
        "admin": {"address": sa(0)},
        "dynamic_resources": {
            "ads_config": {"api_type": "GRPC", "transport_api_version": "V3",
                           "grpc_services": [{"envoy_grpc": {"cluster_name": "xds-grpc"}}]},
            "lds_config": {"ads": {}, "resource_api_version": "V3"},
            "cds_config": {"ads": {}, "resource_api_version": "V3"},
            **dynamic,
        },
        "static_resources": {"clusters": [cluster("xds-grpc", ads_port)]},
    }


# ---- the proxy under test ---------------------------------------------------------------------
@contextlib.asynccontextmanager
async def ads_proxy(ads: FakeAds, **dynamic: Any) -> AsyncIterator[ProxyServer]:
    async with running_proxy(ads_bootstrap(ads.port, **dynamic)) as proxy:
        yield proxy


def serve_basic(ads: FakeAds, backend_port: int) -> None:
    ads.set(CLUSTER, eds_cluster("web"), push=False)
    ads.set(ENDPOINT, endpoints("web", backend_port), push=False)
    ads.set(LISTENER, listener("in", "r1"), push=False)
    ads.set(ROUTE, route("r1", "web"), push=False)


@pytest.fixture
async def ads() -> AsyncIterator[FakeAds]:
    server = await FakeAds().start()
    yield server
    await server.stop()


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
            changed.filter_chains[0].filters[0].typed_config.Pack(_hcm(server_name="changed"))
            ads.set(LISTENER, changed)
            await ads.wait_ack(LISTENER, "2")
            assert await old.closed_by_peer()  # the old listener's idle connection drains
        assert proxy.listener_ports["in"] == port
        async with client(port) as new:
            assert (await new.request()).headers.get("server") == "changed"


def _hcm(**fields: Any) -> Any:
    hcm = http_connection_manager_pb2.HttpConnectionManager()
    listener("x", "r1").filter_chains[0].filters[0].typed_config.Unpack(hcm)
    for k, v in fields.items():
        setattr(hcm, k, v)
    return hcm
