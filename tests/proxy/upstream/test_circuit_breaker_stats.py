"""Cluster circuit breakers: thresholds compiled per priority onto ``cluster.resources``, the
overflow counters and ``circuit_breakers.*`` gauges in /stats, /stats/prometheus and /clusters."""

from __future__ import annotations

from typing import Any

import pytest

from pilotfish.proxy.compile.bootstrap_file import parse_bootstrap
from pilotfish.proxy.upstream.circuit_breaker import UNLIMITED
from pilotfish.proxy.compile import compile_bootstrap
from pilotfish.proxy.common.errors import ProxyConfigError

from ..conftest import Backend, admin_get, bootstrap, cluster, running_proxy

ROUTE = [{"match": {"prefix": "/"}, "route": {"cluster": "c"}}]
BREAKERS = {"thresholds": [
    {"max_connections": 2, "max_pending_requests": 1, "max_requests": 5, "max_retries": 1,
     "track_remaining": True},
    {"priority": "HIGH", "max_connections": 7, "max_connection_pools": 3},
]}


def compile_clusters(*clusters: dict[str, Any]) -> Any:
    loaded = parse_bootstrap(bootstrap(ROUTE, list(clusters)))
    return compile_bootstrap(loaded.message, warnings=loaded.warnings).runtime.clusters


def test_thresholds_per_priority_and_defaults() -> None:
    c = compile_clusters(cluster("c", 8080, circuit_breakers=BREAKERS))["c"]
    default, high = c.resources[0], c.resources[1]
    assert (default.connections.max, default.pending_requests.max, default.requests.max,
            default.retries.max, default.connection_pools.max) == (2, 1, 5, 1, UNLIMITED)
    assert default.track_remaining and not high.track_remaining
    assert (high.connections.max, high.connection_pools.max, high.requests.max, high.retries.max) == (7, 3, 1024, 3)
    plain = compile_clusters(cluster("c", 8080))["c"].resources.default
    assert (plain.connections.max, plain.pending_requests.max, plain.requests.max, plain.retries.max) == (
        1024, 1024, 1024, 3)


def test_retry_budget() -> None:
    cb = {"thresholds": [{"retry_budget": {"budget_percent": {"value": 50.0}, "min_retry_concurrency": 2}}]}
    rm = compile_clusters(cluster("c", 8080, circuit_breakers=cb))["c"].resources.default
    assert rm.retries.uses_budget and rm.retries.current_max() == 2
    for _ in range(10):
        assert rm.try_request()
    assert rm.retries.current_max() == 5  # 50% of the 10 active requests


@pytest.mark.parametrize(("cb", "path"), [
    ({"per_host_thresholds": [{"max_pending_requests": 3}]},
     "circuit_breakers.per_host_thresholds[0].max_pending_requests"),
    ({"thresholds": [{"retry_budget": {"budget_percent": {"value": 150.0}}}]},
     "circuit_breakers.thresholds[0].retry_budget.budget_percent"),
])
def test_unsupported_or_invalid_fields_name_the_path(cb: dict[str, Any], path: str) -> None:
    with pytest.raises(ProxyConfigError) as info:
        compile_clusters(cluster("c", 8080, circuit_breakers=cb))
    assert info.value.field_path.endswith(path), info.value.field_path


async def test_overflow_counters_and_gauges_in_admin(backend: Backend) -> None:
    doc = bootstrap(ROUTE, [cluster("c", backend.port, circuit_breakers=BREAKERS)])
    async with running_proxy(doc) as proxy:
        rm = proxy.config.clusters["c"].resources.default
        assert rm.try_connection() and rm.try_connection() and not rm.try_connection()
        assert rm.try_pending() and not rm.try_pending()
        assert rm.try_retry() and not rm.try_retry()
        assert rm.try_request()
        high = proxy.config.clusters["c"].resources[1]
        for _ in range(8):
            high.try_connection()
        stats = await admin_get(proxy, "/stats?filter=cluster.c.(upstream_.*overflow|circuit_breakers)")
        for line in ("cluster.c.upstream_cx_overflow: 2",  # summed over both priorities
                     "cluster.c.upstream_rq_pending_overflow: 1",
                     "cluster.c.upstream_rq_retry_overflow: 1",
                     "cluster.c.upstream_cx_pool_overflow: 0",
                     "cluster.c.circuit_breakers.default.cx_open: 1",
                     "cluster.c.circuit_breakers.default.rq_pending_open: 1",
                     "cluster.c.circuit_breakers.default.rq_open: 0",
                     "cluster.c.circuit_breakers.default.rq_retry_open: 1",
                     "cluster.c.circuit_breakers.default.remaining_cx: 0",
                     "cluster.c.circuit_breakers.default.remaining_pending: 0",
                     "cluster.c.circuit_breakers.default.remaining_rq: 4",
                     "cluster.c.circuit_breakers.default.remaining_retries: 0",
                     "cluster.c.circuit_breakers.high.cx_open: 1"):
            assert line in stats, line
        assert "circuit_breakers.high.remaining" not in stats  # track_remaining only on DEFAULT
        rm.connections.dec()
        rm.retries.dec()
        stats = await admin_get(proxy, "/stats?filter=circuit_breakers.default")
        assert "cluster.c.circuit_breakers.default.cx_open: 0" in stats
        assert "cluster.c.circuit_breakers.default.remaining_cx: 1" in stats
        assert "cluster.c.circuit_breakers.default.remaining_retries: 1" in stats
        prom = await admin_get(proxy, "/stats/prometheus")
        assert "# TYPE envoy_cluster_upstream_cx_overflow counter" in prom
        assert 'envoy_cluster_upstream_cx_overflow{envoy_cluster_name="c"} 2' in prom
        assert "# TYPE envoy_cluster_circuit_breakers_default_remaining_rq gauge" in prom
        assert 'envoy_cluster_circuit_breakers_default_remaining_rq{envoy_cluster_name="c"} 4' in prom
        clusters = await admin_get(proxy, "/clusters")
        for line in ("c::default_priority::max_connections::2", "c::default_priority::max_pending_requests::1",
                     "c::default_priority::max_requests::5", "c::default_priority::max_retries::1",
                     "c::high_priority::max_connections::7"):
            assert line in clusters.splitlines()
