"""The ADS client alone (no proxy): a config target that records, against pilotfish.xds.testing."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2

from pilotfish.xds.client import AdsClient
from pilotfish.xds.errors import RejectedResources, ResourceRejected
from pilotfish.xds.resources import Resources, ResponseResources
from pilotfish.xds.settings import AdsSettings
from pilotfish.xds.testing import FakeAds
from pilotfish.xds.type_urls import CLUSTER, ENDPOINT, LISTENER, ROUTE


class Target:
    """Wants endpoints for every accepted cluster and route "r" once a listener is accepted;
    rejects resources named "bad*" one by one, and a whole CDS response when ``reject_all``."""

    def __init__(self) -> None:
        self.resources = Resources()
        self.updates: list[tuple[str, str, list[str], dict[str, str]]] = []
        self.reject_all = False

    def wanted(self, type_url: str) -> frozenset[str]:
        if type_url == ENDPOINT:
            return frozenset(self.resources.clusters)
        if type_url == ROUTE:
            return frozenset({"r"}) if self.resources.listeners else frozenset()
        return frozenset()

    def is_warm(self, type_url: str) -> bool:
        return all(n in self.resources.of(type_url) for n in self.wanted(type_url))

    async def update(self, type_url: str, version: str, messages: Mapping[str, Any]) -> None:
        assert isinstance(messages, ResponseResources)
        self.updates.append((type_url, version, sorted(messages), dict(messages.rejected)))
        if self.reject_all and type_url == CLUSTER:
            raise ResourceRejected("nothing today")
        rejected = dict(messages.rejected)
        rejected.update({n: "bad name" for n in messages if n.startswith("bad")})
        good = {n: m for n, m in messages.items() if n not in rejected}
        self.resources = self.resources.with_partial(type_url, version, good, rejected, 0.0)
        if rejected:
            raise RejectedResources("Cluster", rejected)


class Sink:
    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def subscribe(self, type_url: str) -> None:
        self.events.append(("subscribe", type_url))

    def connected(self, up: bool) -> None:
        self.events.append(("connected", up))

    def response(self, type_url: str, version: str, names: Iterable[str], rejected: Iterable[str],
                 whole: bool, empty: bool) -> None:
        self.events.append(("response", type_url, version, sorted(rejected), whole))

    def stream_failed(self, subscriptions: Iterable[tuple[str, Iterable[str]]]) -> None:
        self.events.append(("failed",))

    def initial_fetch_timeout(self, subscriptions: Iterable[tuple[str, Iterable[str]]]) -> None:
        self.events.append(("timeout", [t for t, _ in subscriptions]))


def no_unset_connect_timeout(msg: Any, path: str) -> Sequence[str]:
    """A checker: a cluster must say its connect_timeout; a listener gets a warning."""
    if isinstance(msg, cluster_pb2.Cluster) and not msg.HasField("connect_timeout"):
        raise ResourceRejected(f"{path}.connect_timeout: required here")
    return [f"{path}: looked at"] if isinstance(msg, listener_pb2.Listener) else []


def cluster(name: str) -> Any:
    c = cluster_pb2.Cluster(name=name, type=cluster_pb2.Cluster.EDS)
    c.connect_timeout.seconds = 1
    return c


@pytest.fixture
async def ads() -> AsyncIterator[FakeAds]:
    async with FakeAds() as server:
        yield server


def client_for(ads: FakeAds, target: Target, sink: Sink | None = None, timeout: float = 5.0) -> AdsClient:
    settings = AdsSettings(ads.target, "", (), lds=True, cds=True, initial_fetch_timeout=timeout,
                           node_on_first_message_only=False)
    return AdsClient(settings, base_pb2.Node(id="n1"), target, random.Random(1),
                     check=no_unset_connect_timeout, stats=sink)


async def test_warms_in_envoy_order_then_is_ready(ads: FakeAds) -> None:
    ads.set(CLUSTER, cluster("c"), push=False)
    ads.set(ENDPOINT, endpoint_pb2.ClusterLoadAssignment(cluster_name="c"), push=False)
    ads.set(LISTENER, listener_pb2.Listener(name="l"), push=False)
    ads.set(ROUTE, route_pb2.RouteConfiguration(name="r"), push=False)
    target, sink = Target(), Sink()
    client = client_for(ads, target, sink)
    client.start()
    try:
        await asyncio.wait_for(client.ready.wait(), 5)
        assert [u[0] for u in target.updates] == [CLUSTER, ENDPOINT, LISTENER, ROUTE]
        for t in (CLUSTER, ENDPOINT, LISTENER, ROUTE):
            await ads.wait_ack(t, "1")
        assert ads.requests[0].node.id == "n1" and ads.requests[0].type_url == CLUSTER
        assert ("connected", True) in sink.events and client.accepted == 4
    finally:
        await client.stop()


async def test_checker_and_target_rejections_are_nacks_naming_them(ads: FakeAds) -> None:
    unchecked = cluster_pb2.Cluster(name="plain")  # no connect_timeout: the checker refuses it
    ads.set(CLUSTER, cluster("c"), cluster("bad1"), unchecked, push=False)
    target, sink = Target(), Sink()
    client = client_for(ads, target, sink)
    client.start()
    try:
        nack = await ads.wait_for(lambda r: r.type_url == CLUSTER and r.HasField("error_detail"))
        assert nack.response_nonce == ads.sent[0].nonce and nack.version_info == "" and "'bad1' rejected: bad name" in nack.error_detail.message
        assert "Cluster[plain].connect_timeout: required here" in nack.error_detail.message
        assert target.updates[0][3] == {"plain": "Cluster[plain].connect_timeout: required here"}
        assert set(target.resources.clusters) == {"c"}  # the rest was applied
        assert ("response", CLUSTER, "1", ["bad1", "plain"], True) in sink.events
        target.reject_all = True
        ads.set(CLUSTER, cluster("c"), cluster("d"))
        nack = await ads.wait_nack(CLUSTER, ads.sent[-1].nonce)
        assert nack.error_detail.message == "nothing today" and nack.version_info == ""
        target.reject_all = False
        ads.set(CLUSTER, cluster("c"), cluster("d"))
        await ads.wait_ack(CLUSTER, "3")
        assert client.rejected == 2
    finally:
        await client.stop()


async def test_a_silent_server_leaves_the_client_waiting_until_the_initial_fetch_timeout() -> None:
    async with FakeAds(silent=True) as ads:
        target, sink = Target(), Sink()
        client = client_for(ads, target, sink, timeout=0.3)
        client.start()
        try:
            await ads.wait_for(lambda r: r.type_url == CLUSTER)
            assert not client.ready.is_set()
            await asyncio.wait_for(client.ready.wait(), 3)
            assert ("timeout", [CLUSTER]) in sink.events
            await ads.wait_for(lambda r: r.type_url == LISTENER)  # LDS starts after the timeout
        finally:
            await client.stop()


async def test_reconnects_and_resends_the_accepted_version(ads: FakeAds) -> None:
    ads.set(CLUSTER, push=False)
    target = Target()
    client = client_for(ads, target, Sink())
    client.start()
    try:
        await ads.wait_ack(CLUSTER, "1")
        port = ads.port
        await ads.stop()
        again = await FakeAds().start(port)
        try:
            first = await again.wait_for(lambda r: r.type_url == CLUSTER, timeout=10)
            assert first.version_info == "1" and first.response_nonce == ""
        finally:
            await again.stop()
    finally:
        await client.stop()
