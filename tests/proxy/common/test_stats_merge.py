"""Stats snapshots: plain data that several workers' admin can sum before rendering."""

from __future__ import annotations

import json

from pilotfish.proxy.common.stats import StatsStore, merge_snapshots, render_prometheus, render_text


def _store(rq: int, active: int) -> StatsStore:
    s = StatsStore()
    c = s.cluster("a")
    c.upstream_rq_total = rq
    c.upstream_cx_active = active
    c.rq_code[200] = rq
    s.server["live"] = 1
    return s


def test_snapshots_sum_counters_and_gauges() -> None:
    snaps = [json.loads(json.dumps(_store(3, 1).snapshot())), _store(4, 2).snapshot()]  # JSON-safe
    merged = merge_snapshots(snaps)
    text = render_text(merged)
    assert "cluster.a.upstream_rq_total: 7" in text
    assert "cluster.a.upstream_cx_active: 3" in text
    assert "cluster.a.upstream_rq_2xx: 7" in text
    assert "server.live: 1" in text
    prom = render_prometheus(merged)
    assert 'envoy_cluster_upstream_rq_total{envoy_cluster_name="a"} 7' in prom
    assert 'envoy_cluster_upstream_rq_xx{envoy_response_code_class="2",envoy_cluster_name="a"} 7' in prom
    # Envoy's order: every counter family before the gauges.
    assert prom.index("# TYPE envoy_cluster_upstream_rq_total counter") < prom.index("# TYPE envoy_cluster_upstream_cx_active gauge")
