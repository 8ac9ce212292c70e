"""Histograms as Envoy's: libcircllhist bins, quantiles, Prometheus buckets, merged workers."""

from __future__ import annotations

import json
import math
import re

from pilotfish.proxy.common import histogram
from pilotfish.proxy.common.stats import StatsStore, merge_snapshots, render_json, render_prometheus, render_text

from ..conftest import Backend, Reply, bootstrap, client, cluster, port_of, running_proxy


def _counts(*samples: int) -> list[int]:
    counts = histogram.new_counts()
    for ms in samples:
        histogram.record(counts, ms)
    return counts


def test_bins_are_circllhist_two_significant_digits() -> None:
    # One bin per integer below 100, then 100, 110, ..., 990, 1000, 1100, ...
    for a, b, same in ((0, 1, False), (1, 2, False), (99, 100, False), (100, 109, True), (109, 110, False),
                       (1000, 1099, True), (1099, 1100, False), (12345, 12999, True)):
        ca, cb = _counts(a), _counts(b)
        assert (ca.index(1) == cb.index(1)) is same, (a, b)


def test_request_path_table_matches_the_bisect() -> None:
    from bisect import bisect_right

    assert len(histogram.BIN) == histogram.FAST
    assert all(histogram.BIN[ms] == bisect_right(histogram.LOWER, ms) for ms in range(histogram.FAST))


def test_quantiles_interpolate_within_bins_as_circllhist() -> None:
    # Samples 1, 1, 5 ms: bin [1, 1.1) holds 2, bin [5, 5.1) holds 1.
    q = histogram.quantiles(_counts(1, 1, 5))
    expect = {0: 1.0, 0.25: 1 + 0.75 / 2 * 0.1, 0.5: 1 + 1.5 / 2 * 0.1, 0.75: 5 + 0.25 * 0.1, 1: 5.1}
    for quantile, value in expect.items():
        assert math.isclose(q[histogram.QUANTILES.index(quantile)], value)
    assert all(math.isnan(x) for x in histogram.quantiles(histogram.new_counts()))


def test_prometheus_buckets_count_bins_wholly_below_the_bound() -> None:
    counts = _counts(0, 1, 1, 5, 240, 250)
    by_bound = dict(zip(histogram.DEFAULT_BUCKETS, histogram.buckets(counts)))
    assert by_bound[0.5] == 1  # the zero bin
    assert by_bound[1] == 1  # [1, 1.1) ends above 1
    assert by_bound[5] == 3 and by_bound[10] == 4
    assert by_bound[250] == 5 and by_bound[500] == 6  # [240, 250) ends at 250; [250, 260) does not
    assert math.isclose(histogram.sample_sum(counts), 0 + 2 * 1.05 + 5.05 + 245 + 255)


def test_text_json_and_prometheus_renderings() -> None:
    store = StatsStore()
    c = store.cluster("a")
    for ms in (1, 1, 5):
        histogram.record(c.upstream_rq_time, ms)
    snap = store.snapshot()
    line = next(x for x in render_text(snap).splitlines() if x.startswith("cluster.a.upstream_rq_time: "))
    assert line == ("cluster.a.upstream_rq_time: P0(nan,1) P25(nan,1.0375) P50(nan,1.075) P75(nan,5.025) "
                    "P90(nan,5.07) P95(nan,5.085) P99(nan,5.0969999999999995) P99.5(nan,5.0985) P99.9(nan,5.0997) P100(nan,5.1)")
    unused = next(x for x in render_text(snap).splitlines() if x.startswith("cluster.a.upstream_cx_length_ms"))
    assert unused == "cluster.a.upstream_cx_length_ms: No recorded values"
    lines = render_text(snap).splitlines()
    first_hist = next(i for i, x in enumerate(lines) if x.startswith("cluster.a.upstream_cx_connect_ms"))
    assert all(": P0(" in x or "No recorded values" in x for x in lines[first_hist:])  # histograms last

    doc = json.loads(json.dumps(render_json(snap)))
    hist = doc["stats"][-1]["histograms"]
    assert hist["supported_quantiles"] == [0, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 100]
    rq = next(h for h in hist["computed_quantiles"] if h["name"] == "cluster.a.upstream_rq_time")
    assert rq["values"][0] == {"cumulative": 1, "interval": None}
    assert rq["values"][-1] == {"cumulative": 5.1, "interval": None}
    assert all("value" in s for s in doc["stats"][:-1])

    store.flush()  # a stats flush ends an interval
    histogram.record(c.upstream_rq_time, 7)
    store.flush()
    line = next(x for x in render_text(store.snapshot()).splitlines() if x.startswith("cluster.a.upstream_rq_time: "))
    assert line.startswith("cluster.a.upstream_rq_time: P0(7,1) ") and line.endswith(" P100(7.1,7.1)")

    prom = render_prometheus(store.snapshot())
    assert "# TYPE envoy_cluster_upstream_rq_time histogram" in prom
    assert 'envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="a",le="0.5"} 0' in prom
    assert 'envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="a",le="5"} 2' in prom
    assert 'envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="a",le="10"} 4' in prom
    assert 'envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="a",le="3600000"} 4' in prom
    assert 'envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="a",le="+Inf"} 4' in prom
    assert 'envoy_cluster_upstream_rq_time_count{envoy_cluster_name="a"} 4' in prom
    total = float(re.search(r'^envoy_cluster_upstream_rq_time_sum\{envoy_cluster_name="a"\} (\S+)$', prom, re.M)[1])
    assert math.isclose(total, 2 * 1.05 + 5.05 + 7.05)
    assert prom.index("# TYPE envoy_cluster_upstream_rq_time histogram") > prom.index("gauge")  # histograms last


def test_workers_histograms_are_summed() -> None:
    stores = [StatsStore(), StatsStore()]
    for store, samples in zip(stores, ((1, 2), (2, 300))):
        h = store.http("ingress")
        for ms in samples:
            histogram.record(h.downstream_rq_time, ms)
        store.flush()
    merged = merge_snapshots([json.loads(json.dumps(s.snapshot())) for s in stores])  # over the control socket
    prom = render_prometheus(merged)
    assert 'envoy_http_downstream_rq_time_count{envoy_http_conn_manager_prefix="ingress"} 4' in prom
    assert 'envoy_http_downstream_rq_time_bucket{envoy_http_conn_manager_prefix="ingress",le="5"} 3' in prom
    line = next(x for x in render_text(merged).splitlines() if x.startswith("http.ingress.downstream_rq_time: "))
    assert line.endswith(" P100(310,310)")  # both the interval and the total see all four samples


async def test_proxy_records_request_and_connection_times(backend: Backend) -> None:
    backend.handler = lambda s: Reply(body=b"ok", delay=0.06)
    doc = bootstrap([{"match": {"prefix": "/"}, "route": {"cluster": "a"}}], [cluster("a", backend.port)])
    async with running_proxy(doc) as proxy:
        async with client(port_of(proxy)) as c:
            for _ in range(3):
                assert (await c.request()).status == 200
        async with client(port_of(proxy)) as c:
            await c.request()
        async with client(proxy.admin_port) as c:
            prom = (await c.request(path="/stats/prometheus")).body.decode()
            text = (await c.request(path="/stats")).body.decode()
    assert 'envoy_cluster_upstream_rq_time_count{envoy_cluster_name="a"} 4' in prom
    assert 'envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="a",le="50"} 0' in prom  # >= 60 ms each
    assert 'envoy_http_downstream_rq_time_count{envoy_http_conn_manager_prefix="ingress"} 4' in prom
    assert 'envoy_http_downstream_rq_time_bucket{envoy_http_conn_manager_prefix="ingress",le="50"} 0' in prom
    # The first client's connection is closed: one downstream connection length, per HCM and listener.
    assert re.search(r'^envoy_http_downstream_cx_length_ms_count\{envoy_http_conn_manager_prefix="ingress"\} [12]$',
                     prom, re.M)
    assert re.search(r'^envoy_listener_downstream_cx_length_ms_count\{envoy_listener_address="[^"]+"\} [12]$',
                     prom, re.M)
    assert 'envoy_cluster_upstream_cx_connect_ms_count{envoy_cluster_name="a"} 1' in prom
    stats = dict(x.split(": ", 1) for x in text.splitlines())
    p100 = float(re.search(r"P100\(nan,([0-9.]+)\)", stats["cluster.a.upstream_rq_time"])[1])
    assert p100 >= 60
