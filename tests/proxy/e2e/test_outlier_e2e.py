"""Outlier detection on live clusters over loopback: ejection through the cluster's report API,
traffic moving away, max_ejection_percent, return after base_ejection_time × ejections, panic,
priority failover, and detector state across xDS updates."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pilotfish.proxy.upstream.cluster import LOCAL_ORIGIN_CONNECT_FAILED, LOCAL_ORIGIN_CONNECT_SUCCESS, Cluster, Host

from ..conftest import Backend, Reply, admin_get, bootstrap, client, cluster, first_words, port_of, running_proxy, sa, until

ROUTE = [{"match": {"prefix": "/"}, "route": {"cluster": "c"}}]


def od(**fields: Any) -> dict[str, Any]:
    base = {"consecutive_5xx": 3, "interval": "0.1s", "base_ejection_time": "0.4s", "max_ejection_percent": 100}
    return {**base, **fields}


def host_of(c: Cluster, backend: Backend) -> Host:
    return next(h for h in c.hosts if h.port == backend.port)


def eject(c: Cluster, host: Host, n: int = 3) -> None:
    for _ in range(n):
        c.report_http_status(host, 503)


@pytest.fixture
async def backend_c() -> Any:
    b = await Backend("c").start()
    yield b
    await b.stop()


async def test_consecutive_5xx_eject_and_traffic_moves_then_returns(backend: Backend, backend_b: Backend) -> None:
    backend.handler = lambda s: Reply(503, body=b"a bad")
    doc = bootstrap(ROUTE, [cluster("c", backend.port, backend_b.port, outlier_detection=od())])
    async with running_proxy(doc) as proxy:
        c = proxy.config.clusters["c"]
        a = host_of(c, backend)
        eject(c, a, 2)
        c.report_http_status(a, 200)  # a success resets the run
        eject(c, a, 2)
        assert a.healthy
        c.report_http_status(a, 503)
        assert not a.healthy
        assert await first_words(port_of(proxy), 8) == {"b": 8}
        clusters = await admin_get(proxy, "/clusters")
        assert f"c::127.0.0.1:{backend.port}::health_flags::/failed_outlier_check" in clusters
        assert f"c::127.0.0.1:{backend_b.port}::health_flags::healthy" in clusters
        assert "c::outlier::success_rate_average::-1" in clusters
        stats = await admin_get(proxy, "/stats")
        for line in ("cluster.c.outlier_detection.ejections_active: 1",
                     "cluster.c.outlier_detection.ejections_enforced_consecutive_5xx: 1",
                     "cluster.c.outlier_detection.ejections_detected_consecutive_5xx: 1",
                     "cluster.c.outlier_detection.ejections_enforced_total: 1",
                     "cluster.c.membership_healthy: 1"):
            assert line in stats
        prom = await admin_get(proxy, "/stats/prometheus")
        assert 'envoy_cluster_outlier_detection_ejections_active{envoy_cluster_name="c"} 1' in prom
        assert "# TYPE envoy_cluster_outlier_detection_ejections_enforced_total counter" in prom
        backend.handler = lambda s: Reply(body=b"a ok")
        await until(lambda: a.healthy)  # base_ejection_time later, on an interval tick
        assert set(await first_words(port_of(proxy), 8)) == {"a", "b"}
        assert "cluster.c.outlier_detection.ejections_active: 0" in await admin_get(proxy, "/stats")


async def test_local_origin_failures_count_as_gateway_errors(backend: Backend, backend_b: Backend) -> None:
    doc = bootstrap(ROUTE, [cluster("c", backend.port, backend_b.port,
                                    outlier_detection=od(consecutive_5xx=2))])
    async with running_proxy(doc) as proxy:
        c = proxy.config.clusters["c"]
        a = host_of(c, backend)
        c.report_local_origin(a, LOCAL_ORIGIN_CONNECT_SUCCESS)  # no effect without split errors
        c.report_local_origin(a, LOCAL_ORIGIN_CONNECT_FAILED)
        assert a.healthy
        c.report_local_origin(a, LOCAL_ORIGIN_CONNECT_FAILED)
        assert not a.healthy


async def test_max_ejection_percent_is_honoured(backend: Backend, backend_b: Backend, backend_c: Backend) -> None:
    doc = bootstrap(ROUTE, [cluster("c", backend.port, backend_b.port, backend_c.port,
                                    outlier_detection=od(max_ejection_percent=34, base_ejection_time="30s"))])
    async with running_proxy(doc) as proxy:
        c = proxy.config.clusters["c"]
        a, b = host_of(c, backend), host_of(c, backend_b)
        eject(c, a)
        eject(c, b)  # a second ejection would make 2/3 = 67% > 34%
        assert not a.healthy and b.healthy
        assert await first_words(port_of(proxy), 10) == {"b": 5, "c": 5}
        stats = await admin_get(proxy, "/stats?filter=outlier")
        assert "cluster.c.outlier_detection.ejections_active: 1" in stats
        assert "cluster.c.outlier_detection.ejections_overflow: 1" in stats


async def test_ejection_time_grows_with_the_number_of_ejections(backend: Backend, backend_b: Backend) -> None:
    doc = bootstrap(ROUTE, [cluster("c", backend.port, backend_b.port, outlier_detection=od())])
    async with running_proxy(doc) as proxy:
        loop = asyncio.get_running_loop()
        c = proxy.config.clusters["c"]
        a = host_of(c, backend)
        durations = []
        for _ in range(2):
            eject(c, a)
            assert not a.healthy
            start = loop.time()
            await until(lambda: a.healthy)
            durations.append(loop.time() - start)
        first, second = durations
        assert 0.39 <= first < 0.75  # base_ejection_time 0.4 s, checked every 0.1 s
        assert 0.79 <= second < 1.2  # the second ejection in a row: 2 × base


@pytest.mark.parametrize(("panic_threshold", "expected"), [
    (None, {"a", "b", "c"}),  # 1 of 3 healthy is below the 50% default: panic, every host serves
    (0, {"c"}),  # panic disabled: only the healthy host serves
])
async def test_panic_when_too_many_are_ejected(backend: Backend, backend_b: Backend, backend_c: Backend,
                                               panic_threshold: int | None, expected: set[str]) -> None:
    extra: dict[str, Any] = {}
    if panic_threshold is not None:
        extra["common_lb_config"] = {"healthy_panic_threshold": {"value": panic_threshold}}
    doc = bootstrap(ROUTE, [cluster("c", backend.port, backend_b.port, backend_c.port,
                                    outlier_detection=od(base_ejection_time="30s"), **extra)])
    async with running_proxy(doc) as proxy:
        c = proxy.config.clusters["c"]
        eject(c, host_of(c, backend))
        eject(c, host_of(c, backend_b))
        assert set(await first_words(port_of(proxy), 12)) == expected


async def test_ejecting_the_p0_host_fails_over_to_p1(backend: Backend, backend_b: Backend) -> None:
    doc = bootstrap(ROUTE, [{
        "name": "c", "type": "STATIC", "connect_timeout": "1s", "outlier_detection": od(),
        "load_assignment": {"cluster_name": "c", "endpoints": [
            {"locality": {"zone": "z1"}, "priority": 0, "lb_endpoints": [{"endpoint": {"address": sa(backend.port)}}]},
            {"locality": {"zone": "z2"}, "priority": 1, "lb_endpoints": [{"endpoint": {"address": sa(backend_b.port)}}]},
        ]}}])
    async with running_proxy(doc) as proxy:
        c = proxy.config.clusters["c"]
        port = port_of(proxy)
        assert await first_words(port, 6) == {"a": 6}
        a = host_of(c, backend)
        eject(c, a)
        assert await first_words(port, 6) == {"b": 6}
        await until(lambda: a.healthy)
        assert await first_words(port, 6) == {"a": 6}


async def test_detector_state_survives_eds_updates_and_stops_with_the_cluster(
        backend: Backend, backend_b: Backend) -> None:
    from pilotfish.xds.testing import FakeAds
    from pilotfish.xds.type_urls import CLUSTER, ENDPOINT, LISTENER, ROUTE as RDS

    from ..process.ads import ads_proxy, eds_cluster, endpoints, listener, route

    ads = await FakeAds().start()
    try:
        ads.set(CLUSTER, eds_cluster("web", outlier_detection=od(base_ejection_time="30s")), push=False)
        ads.set(ENDPOINT, endpoints("web", backend.port, backend_b.port), push=False)
        ads.set(LISTENER, listener("in", "r1"), push=False)
        ads.set(RDS, route("r1", "web"), push=False)
        async with ads_proxy(ads) as proxy:
            web = proxy.config.clusters["web"]
            a = host_of(web, backend)
            eject(web, a)
            weighted = endpoints("web", backend.port, backend_b.port)
            weighted.endpoints[0].lb_endpoints[1].load_balancing_weight.value = 2
            ads.set(ENDPOINT, weighted)  # an EDS update that keeps both hosts
            await ads.wait_ack(ENDPOINT, "2")
            assert proxy.config.clusters["web"] is web and not a.healthy
            assert web.outlier is not None and web.outlier.stats.ejections_active == 1
            async with client(proxy.listener_ports["in"]) as cl:
                assert {(await cl.request()).body for _ in range(4)} == {b"b /"}
            # A changed Cluster message is a new cluster (as Envoy): fresh detector, old timer gone.
            ads.set(CLUSTER, eds_cluster("web", outlier_detection=od(base_ejection_time="20s")))
            await ads.wait_ack(CLUSTER, "2")
            new = proxy.config.clusters["web"]
            assert new is not web and all(h.healthy for h in new.hosts)
            assert web._outlier_timer is not None and web._outlier_timer.cancelled()
    finally:
        await ads.stop()
