"""The ADS server over loopback gRPC: the project's ADS client for the whole exchange, raw
``grpc.aio`` streams for the protocol's corners (NACK, stale nonces, name changes)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import grpc
import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

from pilotfish.xds.client import AdsClient
from pilotfish.xds.resources import Resources
from pilotfish.xds.server import AdsServer
from pilotfish.xds.settings import AdsSettings
from pilotfish.xds.type_urls import CLUSTER, ENDPOINT, LISTENER, ORDER, ROUTE, resource_name

Request = discovery_pb2.DiscoveryRequest
Response = discovery_pb2.DiscoveryResponse


# ---- a generator, a config target, a raw stream ------------------------------------------------
class Config:
    """The generator: fixed resources per type; a name filter as the control plane's."""

    def __init__(self) -> None:
        self.resources: dict[str, dict[str, Any]] = {t: {} for t in ORDER}
        self.calls: list[tuple[str, str, frozenset[str]]] = []
        self.fail: Exception | None = None

    def set(self, type_url: str, *messages: Any) -> None:
        self.resources[type_url] = {resource_name(type_url, m): m for m in messages}

    def generate(self, node: Any, type_url: str, names: frozenset[str]) -> Mapping[str, Any]:
        self.calls.append((node.id, type_url, names))
        if self.fail is not None:
            raise self.fail
        have = self.resources.get(type_url, {})
        return dict(have) if not names else {n: m for n, m in have.items() if n in names}


class Target:
    """The client's config: endpoints for every cluster, a route named after every listener."""

    def __init__(self) -> None:
        self.resources = Resources()
        self.updates: list[tuple[str, str, list[str]]] = []

    def wanted(self, type_url: str) -> frozenset[str]:
        if type_url == ENDPOINT:
            return frozenset(self.resources.clusters)
        if type_url == ROUTE:
            return frozenset(self.resources.listeners)
        return frozenset()

    def is_warm(self, type_url: str) -> bool:
        return all(n in self.resources.of(type_url) for n in self.wanted(type_url))

    async def update(self, type_url: str, version: str, messages: Mapping[str, Any]) -> None:
        self.updates.append((type_url, version, sorted(messages)))
        self.resources = self.resources.with_response(type_url, version, messages, 0.0)

    def versions(self, version: str) -> list[str]:
        return [t for t, v, _ in self.updates if v == version]


class Raw:
    """A bare ADS stream: the test writes every request and reads every response."""

    def __init__(self, port: int, node_id: str = "sidecar~10.0.0.1~a.default~default.svc.cluster.local") -> None:
        self.node = base_pb2.Node(id=node_id)
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        self.queue: asyncio.Queue[Request | None] = asyncio.Queue()
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(self.channel)
        self.call = stub.StreamAggregatedResources(self._requests())
        self.first = True

    async def _requests(self) -> AsyncIterator[Request]:
        while (req := await self.queue.get()) is not None:
            yield req

    def send(self, type_url: str, names: tuple[str, ...] = (), nonce: str = "", version: str = "",
             error: str | None = None) -> None:
        req = Request(type_url=type_url, resource_names=names, response_nonce=nonce, version_info=version)
        if self.first:
            req.node.CopyFrom(self.node)
            self.first = False
        if error is not None:
            req.error_detail.code = 3
            req.error_detail.message = error
        self.queue.put_nowait(req)

    async def recv(self, timeout: float = 5.0) -> Response:
        resp = await asyncio.wait_for(self.call.read(), timeout)
        assert isinstance(resp, Response), resp
        return resp

    async def close(self) -> None:
        self.queue.put_nowait(None)
        self.call.cancel()
        await self.channel.close()


def names_in(resp: Response) -> list[str]:
    out = []
    for any_msg in resp.resources:
        cls = {CLUSTER: cluster_pb2.Cluster, ENDPOINT: endpoint_pb2.ClusterLoadAssignment,
               LISTENER: listener_pb2.Listener, ROUTE: route_pb2.RouteConfiguration}[resp.type_url]
        msg = cls()
        assert any_msg.Unpack(msg)
        out.append(resource_name(resp.type_url, msg))
    return out


def cluster(name: str) -> Any:
    c = cluster_pb2.Cluster(name=name, type=cluster_pb2.Cluster.EDS)
    c.connect_timeout.seconds = 1
    return c


def cla(name: str, *ips: str) -> Any:
    out = endpoint_pb2.ClusterLoadAssignment(cluster_name=name)
    lb = out.endpoints.add()
    for ip in ips:
        ep = lb.lb_endpoints.add()
        ep.endpoint.address.socket_address.address = ip
        ep.endpoint.address.socket_address.port_value = 9080
    return out


async def eventually(pred: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait for a condition that another task makes true."""
    async with asyncio.timeout(timeout):
        while not pred():
            await asyncio.sleep(0.005)


def bookinfo() -> Config:
    config = Config()
    config.set(CLUSTER, cluster("outbound|9080||reviews.default.svc.cluster.local"))
    config.set(ENDPOINT, cla("outbound|9080||reviews.default.svc.cluster.local", "10.0.0.7"))
    config.set(LISTENER, listener_pb2.Listener(name="0.0.0.0_9080"))
    config.set(ROUTE, route_pb2.RouteConfiguration(name="0.0.0.0_9080"))
    return config


@pytest.fixture
async def served() -> AsyncIterator[tuple[AdsServer, Config]]:
    config = bookinfo()
    server = AdsServer(config, version="v1")
    await server.start()
    try:
        yield server, config
    finally:
        await server.stop()


def client_for(server: AdsServer, target: Target, node_id: str = "sidecar~10.0.0.1~a.default~default.svc.cluster.local"
               ) -> AdsClient:
    settings = AdsSettings(f"127.0.0.1:{server.port}", "", (), lds=True, cds=True, initial_fetch_timeout=0,
                           node_on_first_message_only=False)
    return AdsClient(settings, base_pb2.Node(id=node_id), target, random.Random(1))


def metric(server: AdsServer, line_start: str) -> str:
    lines = [line for line in server.stats.render().splitlines() if line.startswith(line_start + " ")]
    assert len(lines) == 1, (line_start, server.stats.render())
    return lines[0].rsplit(" ", 1)[1]


# ---- with the project's ADS client ---------------------------------------------------------------
async def test_a_new_proxy_gets_its_whole_config_in_warming_order_and_acks_it(served: tuple[AdsServer, Config]) -> None:
    server, _ = served
    target = Target()
    client = client_for(server, target)
    client.start()
    try:
        await asyncio.wait_for(client.ready.wait(), 5)
        assert [t for t, _, _ in target.updates] == [CLUSTER, ENDPOINT, LISTENER, ROUTE]
        assert set(target.resources.endpoints) == {"outbound|9080||reviews.default.svc.cluster.local"}
        await eventually(lambda: all(t.acked_version == "v1" for t in server.connections()[0].types.values())
                         and len(server.connections()[0].types) == 4)
        [conn] = server.connections()
        assert conn.node_id == "sidecar~10.0.0.1~a.default~default.svc.cluster.local"
        eds = conn.types[ENDPOINT]
        assert eds.names == ("outbound|9080||reviews.default.svc.cluster.local",) and not eds.wildcard
        assert conn.types[CLUSTER].wildcard and all(t.sync == "SYNCED" for t in conn.types.values())
        assert metric(server, "pilot_xds") == "1"
        assert metric(server, 'pilot_xds_pushes{type="cds"}') == "1"
    finally:
        await client.stop()
    await eventually(lambda: not server.connections())
    assert metric(server, "pilot_xds") == "0"


async def test_a_push_sends_only_the_types_that_changed_and_records_convergence(
        served: tuple[AdsServer, Config]) -> None:
    server, config = served
    target = Target()
    client = client_for(server, target)
    client.start()
    try:
        await asyncio.wait_for(client.ready.wait(), 5)
        config.set(ENDPOINT, cla("outbound|9080||reviews.default.svc.cluster.local", "10.0.0.7", "10.0.0.8"))
        server.push("v2")
        await server.flush()
        await eventually(lambda: server.connections()[0].types[ENDPOINT].acked_version == "v2")
        assert target.versions("v2") == [ENDPOINT]
        lbs = target.resources.endpoints["outbound|9080||reviews.default.svc.cluster.local"].message
        assert len(lbs.endpoints[0].lb_endpoints) == 2
        assert metric(server, "pilot_proxy_convergence_time_count") == "1"
        assert metric(server, 'pilot_xds_pushes{type="eds"}') == "2"
        assert metric(server, 'pilot_xds_pushes{type="cds"}') == "1"

        server.push("v3")  # nothing changed: nothing sent
        await server.flush()
        config.set(LISTENER, listener_pb2.Listener(name="0.0.0.0_9080"), listener_pb2.Listener(name="0.0.0.0_8080"))
        server.push("v4")
        await eventually(lambda: server.connections()[0].types[ROUTE].acked_version == "v4")
        assert target.versions("v3") == []
        assert target.versions("v4") == [LISTENER, ROUTE]  # the new listener's route, answered empty
        assert set(target.resources.routes) == {"0.0.0.0_9080", "0.0.0.0_8080"}
        assert server.connections()[0].types[LISTENER].resources == ("0.0.0.0_8080", "0.0.0.0_9080")
    finally:
        await client.stop()


async def test_affects_limits_a_push_to_the_proxies_it_selects(served: tuple[AdsServer, Config]) -> None:
    server, config = served
    ta, tb = Target(), Target()
    a = client_for(server, ta, "sidecar~10.0.0.1~a.default~default.svc.cluster.local")
    b = client_for(server, tb, "sidecar~10.0.0.2~b.prod~prod.svc.cluster.local")
    a.start()
    b.start()
    try:
        await asyncio.wait_for(asyncio.gather(a.ready.wait(), b.ready.wait()), 5)
        config.set(CLUSTER, cluster("outbound|9080||reviews.default.svc.cluster.local"), cluster("extra"))
        config.set(ENDPOINT, cla("outbound|9080||reviews.default.svc.cluster.local", "10.0.0.7"), cla("extra"))
        server.push("v2", affects=lambda node: ".prod~" in node.id)
        await server.flush()
        await eventually(lambda: tb.versions("v2") == [CLUSTER, ENDPOINT])
        assert ta.versions("v2") == [] and set(tb.resources.clusters) == {
            "outbound|9080||reviews.default.svc.cluster.local", "extra"}
        assert sorted(c.node_id for c in server.connections()) == [
            "sidecar~10.0.0.1~a.default~default.svc.cluster.local", "sidecar~10.0.0.2~b.prod~prod.svc.cluster.local"]
    finally:
        await a.stop()
        await b.stop()


# ---- the protocol's corners on raw streams -------------------------------------------------------
async def test_every_rds_and_eds_name_asked_for_is_answered(served: tuple[AdsServer, Config]) -> None:
    server, _ = served
    raw = Raw(server.port)
    try:
        raw.send(ROUTE, ("0.0.0.0_9080", "missing"))
        resp = await raw.recv()
        assert resp.version_info == "v1" and sorted(names_in(resp)) == ["0.0.0.0_9080", "missing"]
        raw.send(ENDPOINT, ("nowhere",))
        resp = await raw.recv()
        empty = endpoint_pb2.ClusterLoadAssignment()
        assert resp.resources[0].Unpack(empty) and empty == endpoint_pb2.ClusterLoadAssignment(cluster_name="nowhere")
    finally:
        await raw.close()


async def test_a_nacked_version_is_not_sent_again_until_something_changes(served: tuple[AdsServer, Config]) -> None:
    server, config = served
    raw = Raw(server.port)
    try:
        raw.send(CLUSTER)
        first = await raw.recv()
        raw.send(CLUSTER, nonce=first.nonce, version="", error="Cluster[x]: unsupported field")
        raw.send(ROUTE, ("0.0.0.0_9080",))  # answered only once the NACK before it was handled
        assert (await raw.recv()).type_url == ROUTE
        [conn] = server.connections()
        assert conn.types[CLUSTER].nack_version == "v1" and conn.types[CLUSTER].sync == "NACKED"
        assert conn.types[CLUSTER].nack_error == "Cluster[x]: unsupported field"
        assert metric(server, 'pilot_total_xds_rejects{type="cds"}') == "1"
        assert 'pilot_xds_cds_reject{node="sidecar~10.0.0.1~a.default~default.svc.cluster.local",' \
               'err="Cluster[x]: unsupported field"} 1' in server.stats.render()

        server.push("v2")  # the same clusters: the rejected state is not re-sent
        await server.flush()
        config.set(CLUSTER, cluster("fixed"))
        server.push("v3")
        again = await raw.recv()
        assert again.type_url == CLUSTER and again.version_info == "v3" and names_in(again) == ["fixed"]
        assert again.nonce != first.nonce
        raw.send(CLUSTER, nonce=again.nonce, version="v3")
        raw.send(ROUTE, ("0.0.0.0_9080", "other"))
        await raw.recv()
        assert server.connections()[0].types[CLUSTER].sync == "SYNCED"
        assert "pilot_xds_cds_reject" not in server.stats.render()
    finally:
        await raw.close()


async def test_a_request_with_a_stale_nonce_is_ignored(served: tuple[AdsServer, Config]) -> None:
    server, config = served
    raw = Raw(server.port)
    try:
        raw.send(LISTENER, ("0.0.0.0_9080",))
        old = await raw.recv()
        config.set(LISTENER, listener_pb2.Listener(name="0.0.0.0_9080", stat_prefix="new"))
        server.push("v2")
        new = await raw.recv()
        assert new.version_info == "v2" and new.nonce != old.nonce
        raw.send(LISTENER, ("0.0.0.0_9080", "other"), nonce=old.nonce, version="v1")  # stale: no answer
        raw.send(ROUTE, ("0.0.0.0_9080",))
        assert (await raw.recv()).type_url == ROUTE
        lds = server.connections()[0].types[LISTENER]
        assert lds.acked_nonce == "" and lds.names == ("0.0.0.0_9080",) and lds.sync == "STALE"
        assert metric(server, 'pilot_xds_expired_nonce{type="lds"}') == "1"
        raw.send(LISTENER, ("0.0.0.0_9080",), nonce=new.nonce, version="v2")
        raw.send(ROUTE, ("0.0.0.0_9080", "x"))
        await raw.recv()
        assert server.connections()[0].types[LISTENER].acked_version == "v2"
    finally:
        await raw.close()


async def test_changing_the_names_is_answered_with_the_new_set(served: tuple[AdsServer, Config]) -> None:
    server, config = served
    config.set(LISTENER, listener_pb2.Listener(name="a:80"), listener_pb2.Listener(name="b:80"),
               listener_pb2.Listener(name="c:80"))
    raw = Raw(server.port)
    try:
        raw.send(LISTENER, ("a:80",))  # grpc's named LDS subscription
        first = await raw.recv()
        assert names_in(first) == ["a:80"]
        raw.send(LISTENER, ("a:80", "b:80"), nonce=first.nonce, version=first.version_info)
        second = await raw.recv()
        assert sorted(names_in(second)) == ["a:80", "b:80"] and second.nonce != first.nonce
        raw.send(LISTENER, (), nonce=second.nonce, version=second.version_info)  # the wildcard
        third = await raw.recv()
        assert sorted(names_in(third)) == ["a:80", "b:80", "c:80"]
        assert server.connections()[0].types[LISTENER].acked_version == "v1"
    finally:
        await raw.close()


async def test_a_resubscription_with_an_empty_nonce_is_answered_even_if_unchanged(
        served: tuple[AdsServer, Config]) -> None:
    server, _ = served
    raw = Raw(server.port)
    try:
        raw.send(CLUSTER)
        first = await raw.recv()
        raw.send(CLUSTER, version="v1")
        second = await raw.recv()
        assert names_in(second) == names_in(first) and second.nonce != first.nonce
    finally:
        await raw.close()


async def test_a_stream_without_a_node_id_is_refused() -> None:
    server = AdsServer(bookinfo())
    port = await server.start()
    raw = Raw(port, node_id="")
    try:
        raw.send(CLUSTER)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await raw.recv()
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert server.connections() == []
    finally:
        await raw.close()
        await server.stop()


async def test_a_node_the_generator_refuses_ends_the_stream_and_a_failing_push_keeps_the_last_config() -> None:
    config = bookinfo()
    disconnected: list[str] = []
    server = AdsServer(config, on_disconnect=lambda node: disconnected.append(node.id))
    port = await server.start()
    raw = Raw(port)
    try:
        raw.send(CLUSTER)
        await raw.recv()
        config.fail = RuntimeError("translation bug")
        server.push("v2")
        await server.flush()
        config.fail = None
        config.set(CLUSTER, cluster("later"))
        server.push("v3")
        assert names_in(await raw.recv()) == ["later"]  # the stream survived the failed push
        config.fail = ValueError("node id refused")
        raw.send(ROUTE, ("r",))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await raw.recv()
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "node id refused" in (err.value.details() or "")
        await eventually(lambda: not server.connections())
        assert disconnected == ["sidecar~10.0.0.1~a.default~default.svc.cluster.local"]
    finally:
        await raw.close()
        await server.stop()


async def test_a_proxy_that_reconnected_before_its_old_stream_ended_is_not_disconnected() -> None:
    """A restarted proxy (same node id) may connect before its old stream is seen to end: only
    the end of the node's last stream is a disconnection."""
    disconnected: list[str] = []
    server = AdsServer(bookinfo(), on_disconnect=lambda node: disconnected.append(node.id))
    port = await server.start()
    old, new = Raw(port), Raw(port)
    try:
        old.send(CLUSTER)
        await old.recv()
        new.send(CLUSTER)
        await new.recv()
        await old.close()
        await eventually(lambda: len(server.connections()) == 1)
        assert disconnected == []
        await new.close()
        await eventually(lambda: not server.connections())
        assert disconnected == ["sidecar~10.0.0.1~a.default~default.svc.cluster.local"]
    finally:
        await server.stop()


async def test_delta_xds_is_unimplemented(served: tuple[AdsServer, Config]) -> None:
    server, _ = served
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)

        async def one() -> AsyncIterator[discovery_pb2.DeltaDiscoveryRequest]:
            yield discovery_pb2.DeltaDiscoveryRequest(type_url=CLUSTER)

        call = stub.DeltaAggregatedResources(one())
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call.read()
        assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED


# ---- grpcio's proxyless xDS client: an independent client ---------------------------------------
GRPC_CLIENT = """
import sys, grpc
with grpc.insecure_channel("xds:///echo.default:8080") as channel:
    print(channel.unary_unary("/test.Echo/Call")(b"ping", timeout=10).decode())
"""


class Proxyless:
    """What a proxyless gRPC client needs for ``xds:///echo.default:8080``: an API listener whose
    HttpConnectionManager takes its routes over RDS, a cluster over EDS, one weighted locality."""

    def __init__(self, backend_port: int) -> None:
        from envoy.extensions.filters.http.router.v3 import router_pb2
        from envoy.extensions.filters.network.http_connection_manager.v3 import (
            http_connection_manager_pb2 as hcm_pb2,
        )

        hcm = hcm_pb2.HttpConnectionManager(stat_prefix="echo")
        hcm.rds.route_config_name = "echo-routes"
        hcm.rds.config_source.ads.SetInParent()
        router = hcm.http_filters.add(name="envoy.filters.http.router")
        router.typed_config.Pack(router_pb2.Router())
        listener = listener_pb2.Listener(name="echo.default:8080")
        listener.api_listener.api_listener.Pack(hcm)
        routes = route_pb2.RouteConfiguration(name="echo-routes")
        vhost = routes.virtual_hosts.add(name="echo", domains=["*"])
        route = vhost.routes.add()
        route.match.prefix = ""
        route.route.cluster = "outbound|8080||echo.default.svc.cluster.local"
        c = cluster("outbound|8080||echo.default.svc.cluster.local")
        c.eds_cluster_config.eds_config.ads.SetInParent()
        endpoints = cla("outbound|8080||echo.default.svc.cluster.local", "127.0.0.1")
        endpoints.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value = backend_port
        endpoints.endpoints[0].load_balancing_weight.value = 1
        endpoints.endpoints[0].locality.region = "r1"
        self.config = Config()
        self.config.set(LISTENER, listener)
        self.config.set(ROUTE, routes)
        self.config.set(CLUSTER, c)
        self.config.set(ENDPOINT, endpoints)

    def generate(self, node: Any, type_url: str, names: frozenset[str]) -> Mapping[str, Any]:
        return self.config.generate(node, type_url, names)


async def test_grpcio_proxyless_client_routes_a_call_with_our_config() -> None:
    import json
    import os
    import sys

    async def echo(request: bytes, context: Any) -> bytes:
        return b"pong:" + request

    backend = grpc.aio.server()
    backend.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "test.Echo", {"Call": grpc.unary_unary_rpc_method_handler(echo)}),))
    backend_port = backend.add_insecure_port("127.0.0.1:0")
    await backend.start()
    gen = Proxyless(backend_port)
    server = AdsServer(gen, version="v1")
    port = await server.start()
    node_id = "sidecar~127.0.0.1~client.default~default.svc.cluster.local"
    bootstrap = {"xds_servers": [{"server_uri": f"127.0.0.1:{port}", "channel_creds": [{"type": "insecure"}],
                                  "server_features": ["xds_v3"]}],
                 "node": {"id": node_id, "locality": {"region": "r1", "zone": "z1"},
                          "metadata": {"NAMESPACE": "default", "GENERATOR": "grpc"}}}
    env = dict(os.environ, GRPC_XDS_BOOTSTRAP_CONFIG=json.dumps(bootstrap))
    env.pop("GRPC_XDS_BOOTSTRAP", None)
    try:
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c", GRPC_CLIENT, env=env,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, err.decode()[-2000:]
        assert out.decode().strip() == "pong:ping"
        asked = {(t, n) for _, t, names in gen.config.calls for n in names}
        assert (LISTENER, "echo.default:8080") in asked and (ROUTE, "echo-routes") in asked
        assert (ENDPOINT, "outbound|8080||echo.default.svc.cluster.local") in asked
    finally:
        await server.stop()
        await backend.stop(None)
