"""Envoy's xDS stats through the admin endpoint, and one stats scope per cluster across updates."""

from __future__ import annotations

import asyncio
import re
from collections import Counter

from pilotfish.proxy.process.xds_stats import version_hash
from pilotfish.xds.testing import FakeAds
from pilotfish.xds.type_urls import CLUSTER, ENDPOINT, LISTENER, ROUTE

from ..conftest import Backend, admin_get, client, until
from .ads import (
    ads_proxy,
    bad_listener,
    bad_route,
    eds_cluster,
    endpoints,
    listener,
    route,
    serve_basic,
    uncompilable_listener,
)


def stats_of(text: str) -> dict[str, int]:
    return {k: int(v) for k, v in (line.split(": ", 1) for line in text.splitlines() if ": " in line)
            if v.lstrip("-").isdigit()}  # (histogram lines are summaries)


def sent(ads: FakeAds, type_url: str) -> int:
    return sum(1 for r in ads.sent if r.type_url == type_url)


async def test_subscription_and_control_plane_stats(ads: FakeAds, backend: Backend) -> None:
    serve_basic(ads, backend.port)
    async with ads_proxy(ads) as proxy:
        await ads.wait_ack(ROUTE, "1")
        s = stats_of(await admin_get(proxy, "/stats"))
        assert s["control_plane.connected_state"] == 1
        assert s["control_plane.rate_limit_enforced"] == 0 and s["control_plane.pending_requests"] == 0
        for prefix in ("cluster_manager.cds", "listener_manager.lds", "http.in.rds.r1", "cluster.web"):
            assert s[f"{prefix}.update_attempt"] == 1, prefix
            assert s[f"{prefix}.update_success"] == 1, prefix
            assert s[f"{prefix}.update_rejected"] == 0 and s[f"{prefix}.update_failure"] == 0
            assert s[f"{prefix}.init_fetch_timeout"] == 0
            assert s[f"{prefix}.version"] == version_hash("1")
            assert s[f"{prefix}.update_time"] > 1_600_000_000_000  # ms since the epoch
        assert "cluster.xds-grpc.update_attempt" not in s  # a static cluster has no subscription

        # one NACKed response of each kind: update_rejected, the version stays
        ads.set(ROUTE, bad_route("r1"))
        await ads.wait_nack(ROUTE, ads.sent[-1].nonce)
        ads.set(LISTENER, listener("in", "r1"), bad_listener("bad"))  # applied in part: still rejected
        await ads.wait_nack(LISTENER, ads.sent[-1].nonce)
        ads.set(CLUSTER, eds_cluster("web"))  # unchanged: accepted again
        await ads.wait_ack(CLUSTER, "2")
        s = stats_of(await admin_get(proxy, "/stats"))
        assert (s["http.in.rds.r1.update_attempt"], s["http.in.rds.r1.update_rejected"]) == (2, 1)
        assert s["http.in.rds.r1.version"] == version_hash("1")
        assert (s["listener_manager.lds.update_attempt"], s["listener_manager.lds.update_rejected"]) == (2, 1)
        assert s["listener_manager.lds.update_success"] == 1
        assert s["cluster_manager.cds.update_success"] == 2
        assert s["cluster_manager.cds.version"] == version_hash("2")
        # one count per response, none per request (each response got an ACK or NACK request)
        for t, prefix in ((CLUSTER, "cluster_manager.cds"), (LISTENER, "listener_manager.lds"),
                          (ROUTE, "http.in.rds.r1"), (ENDPOINT, "cluster.web")):
            assert s[f"{prefix}.update_attempt"] == sent(ads, t), prefix
        assert len(ads.requests) > sum(sent(ads, t) for t in (CLUSTER, LISTENER, ROUTE, ENDPOINT))

        prom = await admin_get(proxy, "/stats/prometheus")
        assert "envoy_control_plane_connected_state{} 1" in prom
        assert "envoy_cluster_manager_cds_update_success{} 2" in prom
        assert "envoy_listener_manager_lds_update_rejected{} 1" in prom
        # Envoy's regex extractors (the route) come before its token patterns (the prefix)
        assert ('envoy_http_rds_update_rejected{envoy_rds_route_config="r1",'
                'envoy_http_conn_manager_prefix="in"} 1') in prom
        assert 'envoy_cluster_update_success{envoy_cluster_name="web"} 1' in prom
        assert "# TYPE envoy_cluster_manager_cds_version gauge" in prom
        assert "# TYPE envoy_cluster_manager_cds_update_attempt counter" in prom

        await ads.stop()  # the stream fails: disconnected, one update_failure per subscription
        await until(lambda: proxy.stats.control_plane().connected_state == 0)
        s = stats_of(await admin_get(proxy, "/stats"))
        assert s["control_plane.connected_state"] == 0
        assert s["cluster_manager.cds.update_failure"] >= 1 and s["listener_manager.lds.update_failure"] >= 1
        assert s["http.in.rds.r1.update_failure"] >= 1 and s["cluster.web.update_failure"] >= 1


async def test_eds_empty_and_init_fetch_timeout(ads: FakeAds, backend: Backend) -> None:
    serve_basic(ads, backend.port)
    ads.set(LISTENER, push=False)  # no listeners: an empty (accepted) LDS response
    ads.set(CLUSTER, eds_cluster("web"), eds_cluster("never"), push=False)  # "never" gets no endpoints
    cds = {"ads": {}, "resource_api_version": "V3", "initial_fetch_timeout": "0.3s"}
    async with ads_proxy(ads, cds_config=cds) as proxy:
        await ads.wait_ack(LISTENER, "2")
        await until(lambda: proxy.xds.ready.is_set())
        s = stats_of(await admin_get(proxy, "/stats"))
        assert s["listener_manager.lds.update_empty"] == 1 and s["listener_manager.lds.update_success"] == 1
        assert s["cluster.never.init_fetch_timeout"] == 1 and s["cluster.never.update_success"] == 0
        assert s["cluster.web.init_fetch_timeout"] == 0
        assert s["cluster_manager.cds.init_fetch_timeout"] == 0


def series(prom: str) -> list[str]:
    return [line.rsplit(" ", 1)[0] for line in prom.splitlines() if line and not line.startswith("#")]


async def test_cluster_update_keeps_one_scope_and_counters_continue(
        ads: FakeAds, backend: Backend, backend_b: Backend) -> None:
    serve_basic(ads, backend.port)
    async with ads_proxy(ads) as proxy:
        port = proxy.listener_ports["in"]
        await ads.wait_ack(ROUTE, "1")
        total = 0
        for i, timeout in enumerate(("2s", "3s"), start=2):
            async with client(port) as c:
                for _ in range(3):
                    assert (await c.request()).status == 200
            total += 3
            old = proxy.config.clusters["web"]
            ads.set(CLUSTER, eds_cluster("web", connect_timeout=timeout))  # replaces the cluster
            await ads.wait_ack(CLUSTER, str(i))
            await until(lambda: proxy.config.clusters["web"] is not old)
        async with client(port) as c:
            for _ in range(2):
                assert (await c.request()).status == 200
        total += 2
        prom = await admin_get(proxy, "/stats/prometheus")
        dup = [k for k, n in Counter(series(prom)).items() if n > 1]
        assert dup == []
        assert f'envoy_cluster_upstream_rq_total{{envoy_cluster_name="web"}} {total}' in prom
        assert 'envoy_cluster_membership_total{envoy_cluster_name="web"} 1' in prom
        text = await admin_get(proxy, "/stats")
        assert len(re.findall(r"^cluster\.web\.upstream_rq_total:", text, re.M)) == 1
        assert len(re.findall(r"^listener\.127\.0\.0\.1_0\.downstream_cx_total:", text, re.M)) == 1

        # a removed cluster's stats go once its drain period is over
        proxy.drain_time = 0.2
        ads.set(CLUSTER, eds_cluster("web"), eds_cluster("gone"), push=False)
        ads.set(ENDPOINT, endpoints("web", backend.port), endpoints("gone", backend_b.port))
        ads.set(CLUSTER, eds_cluster("web"), eds_cluster("gone"))
        await until(lambda: "gone" in proxy.config.clusters)
        assert "cluster.gone.upstream_rq_total" in await admin_get(proxy, "/stats")
        ads.set(CLUSTER, eds_cluster("web"))
        await until(lambda: "gone" not in proxy.config.clusters)
        await asyncio.sleep(0.4)
        text = await admin_get(proxy, "/stats")
        assert "cluster.gone." not in text and "cluster.web.upstream_rq_total" in text


async def test_removed_listener_and_route_stats_go_after_drain(ads: FakeAds, backend: Backend) -> None:
    serve_basic(ads, backend.port)
    ads.set(LISTENER, listener("in", "r1"), listener("two", "r2"), push=False)
    ads.set(ROUTE, route("r1", "web"), route("r2", "web"), push=False)
    async with ads_proxy(ads) as proxy:
        await ads.wait_ack(ROUTE, "2")
        proxy.drain_time = 0.2
        assert "http.two.rds.r2.update_success: 1" in await admin_get(proxy, "/stats")
        ads.set(LISTENER, listener("in", "r1"))
        await ads.wait_ack(LISTENER, "3")
        await asyncio.sleep(0.4)
        text = await admin_get(proxy, "/stats")
        assert "http.two." not in text  # the connection manager's stats and its RDS stats
        assert "http.in.rds.r1.update_success" in text and "http.in.downstream_rq_total" in text


# ---- pure parts ------------------------------------------------------------------------------
def test_version_hash_is_envoys_xxhash64() -> None:
    assert version_hash("") == 0xEF46DB3751D8E999  # XXH64 of no input, seed 0
    assert version_hash("1") == version_hash("1") != version_hash("2")


def test_one_scope_per_name_and_pruning() -> None:
    from pilotfish.proxy.common.stats import StatsStore

    s = StatsStore()
    a = s.cluster("a")
    a.upstream_rq_total = 3
    assert s.cluster("a") is a and s.listener("0.0.0.0_80") is s.listener("0.0.0.0_80")
    sub = s.subscription("cluster.a")
    sub.update_success = 1
    s.subscription("http.in.rds.r1").update_attempt = 2
    s.subscription("cluster_manager.cds").version = 7
    s.control_plane().connected_state = 1
    text = s.text()
    assert text.count("cluster.a.upstream_rq_total: 3") == 1 and "cluster.a.update_success: 1" in text
    prom = s.prometheus()
    assert 'envoy_http_rds_update_attempt{envoy_rds_route_config="r1",envoy_http_conn_manager_prefix="in"} 2' in prom
    assert "envoy_cluster_manager_cds_version{} 7" in prom and "envoy_control_plane_connected_state{} 1" in prom
    assert 'envoy_cluster_update_success{envoy_cluster_name="a"} 1' in prom
    s.prune_scopes({"cluster.b"})
    text = s.text()
    assert "cluster.a." not in text and "http.in.rds" not in text and "listener." not in text
    assert "cluster_manager.cds.version: 7" in text and "control_plane.connected_state: 1" in text
    assert s.cluster("a") is not a and s.cluster("a").upstream_rq_total == 0


def test_merged_workers_do_not_add_up_versions() -> None:
    from pilotfish.proxy.common.stats import StatsStore, merge_snapshots, render_text

    stores = [StatsStore(), StatsStore()]
    for st in stores:
        sub = st.subscription("listener_manager.lds")
        sub.version, sub.update_success = 99, 1
        st.control_plane().connected_state = 1
    text = render_text(merge_snapshots([st.snapshot() for st in stores]))
    assert "listener_manager.lds.version: 99" in text and "listener_manager.lds.update_success: 2" in text
    assert "control_plane.connected_state: 1" in text


def static_cds_cluster(name: str, port: int, **extra: object) -> object:
    from envoy.config.cluster.v3 import cluster_pb2
    from google.protobuf import json_format

    from ..conftest import cluster

    return json_format.ParseDict(cluster(name, port, **extra), cluster_pb2.Cluster())


async def test_replaced_static_cds_cluster_and_listener_keep_one_scope(ads: FakeAds, backend: Backend) -> None:
    """A CDS cluster with circuit breakers and outlier detection (stats of their own beside the
    cluster's), and the listener, each replaced twice with other settings: one series per name,
    the counters continuing, in /stats and /stats/prometheus."""
    stat = "web_stats"  # (alt_stat_name)
    ads.set(CLUSTER, static_cds_cluster("web", backend.port, alt_stat_name=stat), push=False)
    ads.set(LISTENER, listener("in", "r1"), push=False)
    ads.set(ROUTE, route("r1", "web"), push=False)
    async with ads_proxy(ads) as proxy:
        port = proxy.listener_ports["in"]
        await ads.wait_ack(ROUTE, "1")
        total = 0
        for i, (limit, idle) in enumerate(((100, "30s"), (200, "60s")), start=2):
            async with client(port) as c:
                assert (await c.request()).status == 200
            total += 1
            old, old_listener = proxy.config.clusters["web"], proxy.config.listeners[0]
            ads.set(CLUSTER, static_cds_cluster(
                "web", backend.port, alt_stat_name=stat,
                circuit_breakers={"thresholds": [{"max_connections": limit}]},
                outlier_detection={"consecutive_5xx": i}))
            ads.set(LISTENER, listener("in", "r1", listener_filters_timeout=idle))
            await ads.wait_ack(CLUSTER, str(i))
            await ads.wait_ack(LISTENER, str(i))
            await until(lambda old=old, old_listener=old_listener: proxy.config.clusters["web"] is not old
                        and proxy.config.listeners[0] is not old_listener)
            port = proxy.listener_ports["in"]
        async with client(port) as c:
            assert (await c.request()).status == 200
        total += 1
        prom = await admin_get(proxy, "/stats/prometheus")
        dup = [k for k, n in Counter(series(prom)).items() if n > 1]
        assert dup == []
        assert f'envoy_cluster_upstream_rq_total{{envoy_cluster_name="{stat}"}} {total}' in prom
        text = await admin_get(proxy, "/stats")
        dup = [k for k, n in Counter(line.split(": ")[0] for line in text.splitlines()).items() if n > 1]
        assert dup == []
        assert f"cluster.{stat}.upstream_rq_total: {total}" in text
        assert len(re.findall(rf"^cluster\.{re.escape(stat)}\.circuit_breakers\.default\.cx_open:", text, re.MULTILINE)) == 1
        assert re.search(r"^http\.in\.downstream_rq_total: 3$", text, re.MULTILINE)


async def test_rejected_listener_leaves_no_scope(ads: FakeAds, backend: Backend) -> None:
    serve_basic(ads, backend.port)
    async with ads_proxy(ads) as proxy:
        await ads.wait_ack(ROUTE, "1")
        ads.set(LISTENER, listener("in", "r1"), uncompilable_listener("nope"))
        await ads.wait_for(lambda r: r.type_url == LISTENER and r.HasField("error_detail"))
        text = await admin_get(proxy, "/stats")
        assert "http.nope." not in text
