"""Istio's standard metrics and metadata exchange between two proxies (client and server sidecar)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from pilotfish.proxy.compile.bootstrap_file import parse_bootstrap
from pilotfish.proxy.common.errors import ProxyConfigError
from pilotfish.proxy.common.istio_metrics import (
    BUCKETS,
    LABELS,
    IstioMetrics,
    IstioStatsRecorder,
    own_workload,
    service_of_cluster,
    text_lines,
)
from pilotfish.proxy.filters.peer_metadata import METADATA_HEADER, PeerCache, PeerInfo, decode_peer
from pilotfish.proxy.testing import ManualLoop

from ..conftest import Backend, Reply, bootstrap, client, cluster, port_of, running_proxy
from ..process.helpers import get

TYPED_STRUCT = "type.googleapis.com/udpa.type.v1.TypedStruct"


def stats_filter(**value: Any) -> dict[str, Any]:
    return {"name": "istio.stats", "typed_config": {
        "@type": TYPED_STRUCT, "type_url": "type.googleapis.com/stats.PluginConfig", "value": value}}


def mx_filter(inbound: bool) -> dict[str, Any]:
    side = "downstream" if inbound else "upstream"
    return {"name": "istio.metadata_exchange", "typed_config": {
        "@type": TYPED_STRUCT, "type_url": "type.googleapis.com/io.istio.http.peer_metadata.Config",
        "value": {f"{side}_discovery": [{"istio_headers": {}}, {"workload_discovery": {}}],
                  f"{side}_propagation": [{"istio_headers": {}}]}}}


def node_metadata(workload: str, app: str, version: str) -> dict[str, Any]:
    return {"NAME": f"{workload}-7d9f-abcde", "NAMESPACE": "default", "WORKLOAD_NAME": workload,
            "CLUSTER_ID": "Kubernetes", "MESH_ID": "cluster.local", "ISTIO_VERSION": "1.24.0",
            "LABELS": {"app": app, "version": version}}


def sidecar(routes_cluster: str, port: int, direction: str, metadata: dict[str, Any],
            filters: list[dict[str, Any]]) -> dict[str, Any]:
    doc = bootstrap([{"match": {"prefix": "/"}, "route": {"cluster": routes_cluster}}],
                    [cluster(routes_cluster, port)], http_filters=filters)
    doc["static_resources"]["listeners"][0]["traffic_direction"] = direction
    doc["node"]["metadata"] = metadata
    return doc


def series(text: str, metric: str) -> list[dict[str, str]]:
    """Label dicts (plus ``value``) of every sample of ``metric`` in Prometheus text."""
    out = []
    for line in text.splitlines():
        m = re.match(rf"^{metric}\{{(.*)\}} (\S+)$", line)
        if m:
            labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(1)))
            labels["value"] = m.group(2)
            out.append(labels)
    return out


async def test_two_sidecars_learn_each_other_and_report_standard_metrics(backend: Backend) -> None:
    server_doc = sidecar("inbound|9080||", backend.port, "INBOUND", node_metadata("reviews-v1", "reviews", "v1"),
                         [mx_filter(inbound=True), stats_filter(disable_host_header_fallback=True)])
    async with running_proxy(server_doc) as server:
        client_doc = sidecar("outbound|9080||reviews.default.svc.cluster.local", port_of(server), "OUTBOUND",
                             node_metadata("productpage-v1", "productpage", "v1"),
                             [mx_filter(inbound=False), stats_filter()])
        async with running_proxy(client_doc) as outbound:
            async with client(port_of(outbound)) as c:
                for _ in range(3):
                    r = await c.request(path="/reviews/0", host="reviews:9080")
                    assert r.status == 200
                    assert "x-envoy-peer-metadata" not in r.headers  # the client sidecar removed it
                    assert "x-envoy-peer-metadata-id" not in r.headers
                backend.handler = lambda s: Reply(status=503)
                assert (await c.request(host="reviews:9080")).status == 503
            assert all("x-envoy-peer-metadata" not in s.headers for s in backend.seen)  # server sidecar removed it
            src = (await get(outbound.admin_port, "/stats/prometheus")).body.decode()
            dst = (await get(server.admin_port, "/stats/prometheus")).body.decode()

    assert "# TYPE istio_requests_total counter" in src
    assert "# TYPE istio_request_duration_milliseconds histogram" in src
    [ok] = [s for s in series(src, "istio_requests_total") if s["response_code"] == "200"]
    assert list(ok)[:-1] == list(LABELS)  # Istio's label order
    assert ok == {
        "reporter": "source", "source_workload": "productpage-v1", "source_canonical_service": "productpage",
        "source_canonical_revision": "v1", "source_workload_namespace": "default", "source_principal": "unknown",
        "source_app": "productpage", "source_version": "v1", "source_cluster": "Kubernetes",
        "destination_workload": "reviews-v1", "destination_workload_namespace": "default",
        "destination_principal": "unknown", "destination_app": "reviews", "destination_version": "v1",
        "destination_service": "reviews.default.svc.cluster.local", "destination_canonical_service": "reviews",
        "destination_canonical_revision": "v1", "destination_service_name": "reviews",
        "destination_service_namespace": "default", "destination_cluster": "Kubernetes",
        "request_protocol": "http", "response_code": "200", "grpc_response_status": "", "response_flags": "-",
        "connection_security_policy": "unknown", "value": "3"}
    [failed] = [s for s in series(src, "istio_requests_total") if s["response_code"] == "503"]
    assert failed["value"] == "1" and failed["destination_workload"] == "reviews-v1"

    [inbound] = [s for s in series(dst, "istio_requests_total") if s["response_code"] == "200"]
    assert inbound["reporter"] == "destination"
    assert inbound["source_workload"] == "productpage-v1" and inbound["source_app"] == "productpage"
    assert inbound["destination_workload"] == "reviews-v1" and inbound["destination_service_namespace"] == "default"
    # No Host fallback on the inbound side and no service in the cluster name: the canonical service.
    assert inbound["destination_service"] == "reviews" and inbound["destination_service_name"] == "reviews"
    assert inbound["connection_security_policy"] == "none"

    buckets = [s for s in series(src, "istio_request_duration_milliseconds_bucket") if s["response_code"] == "200"]
    assert [b["le"] for b in buckets] == [f"{b:.32g}" for b in BUCKETS] + ["+Inf"]
    assert buckets[-1]["value"] == "3"
    counts = [int(b["value"]) for b in buckets]
    assert counts == sorted(counts)  # cumulative
    [size] = [s for s in series(src, "istio_response_bytes_sum") if s["response_code"] == "200"]
    assert size["value"] == str(3 * len(b"a /reviews/0"))
    assert 'istio_build{component="proxy",tag="1.24.0"} 1' in src


async def test_unknown_peer_and_host_header_fallback(backend: Backend) -> None:
    doc = sidecar("backend", backend.port, "OUTBOUND", node_metadata("productpage-v1", "productpage", "v1"),
                  [stats_filter()])
    async with running_proxy(doc) as proxy:
        async with client(port_of(proxy)) as c:
            await c.request(host="ratings:9080")
        text = (await get(proxy.admin_port, "/stats/prometheus")).body.decode()
        plain = (await get(proxy.admin_port, "/stats?filter=istio_requests_total")).body.decode()
    [s] = series(text, "istio_requests_total")
    assert s["destination_workload"] == "unknown" and s["destination_canonical_revision"] == "latest"
    assert s["destination_service"] == "ratings:9080" and s["destination_service_name"] == "ratings:9080"
    assert plain.startswith("istiocustom.istio_requests_total.reporter.source.source_workload.productpage-v1.")
    assert plain.strip().endswith(": 1")


async def test_no_istio_metrics_without_the_filter(backend: Backend) -> None:
    doc = bootstrap([{"match": {"prefix": "/"}, "route": {"cluster": "a"}}], [cluster("a", backend.port)])
    async with running_proxy(doc) as proxy:
        async with client(port_of(proxy)) as c:
            await c.request()
        text = (await get(proxy.admin_port, "/stats/prometheus")).body.decode()
    assert "istio_" not in text
    assert 'envoy_cluster_upstream_rq_total{envoy_cluster_name="a"} 1' in text


async def test_metric_overrides_drop_and_remove_tags(backend: Backend) -> None:
    doc = sidecar("backend", backend.port, "OUTBOUND", node_metadata("p", "p", "v1"), [stats_filter(metrics=[
        {"name": "request_bytes", "drop": True},
        {"tags_to_remove": ["source_principal", "destination_principal"]},
        {"dimensions": {"x": "request.host"}},  # an expression: ignored with a warning
    ])])
    loaded = parse_bootstrap(doc)
    assert any("dimensions" in w and "ignored" in w for w in loaded.warnings)
    async with running_proxy(doc) as proxy:
        async with client(port_of(proxy)) as c:
            await c.request()
        text = (await get(proxy.admin_port, "/stats/prometheus")).body.decode()
    assert "istio_request_bytes" not in text and "istio_response_bytes_count" in text
    [s] = series(text, "istio_requests_total")
    assert "source_principal" not in s and "destination_principal" not in s


def test_direct_plugin_config_type_and_bad_values() -> None:
    doc = sidecar("a", 1, "OUTBOUND", {}, [{"name": "istio.stats", "typed_config": {
        "@type": "type.googleapis.com/stats.PluginConfig", "disable_host_header_fallback": True}}])
    parse_bootstrap(doc)
    bad = sidecar("a", 1, "OUTBOUND", {}, [stats_filter(no_such_field=1)])
    with pytest.raises(ProxyConfigError) as err:
        parse_bootstrap(bad)
    assert err.value.field_path.endswith("http_filters[0].typed_config.value")


# ---- pure pieces -----------------------------------------------------------------------------
def test_peer_metadata_round_trip_and_cache() -> None:
    me = PeerInfo(name="reviews-v1-abc", namespace="default", workload="reviews-v1", cluster="Kubernetes",
                  app="reviews", version="v1", canonical_name="reviews", canonical_revision="v1")
    value = me.header_value()
    back = decode_peer(value)
    assert back is not None
    assert (back.workload, back.namespace, back.app, back.version, back.canonical_name, back.cluster) == (
        "reviews-v1", "default", "reviews", "v1", "reviews", "Kubernetes")
    assert decode_peer(value.rstrip(b"=")) is not None  # Istio decodes without padding
    assert decode_peer(b"%%% not base64") is None or decode_peer(b"%%% not base64").workload == ""
    cache = PeerCache()
    assert cache.get(value) is cache.get(value)
    assert METADATA_HEADER == b"x-envoy-peer-metadata"


def test_own_workload_defaults_like_the_injector() -> None:
    me = own_workload({"WORKLOAD_NAME": "details-v1", "LABELS": {"app": "details"}})
    assert (me.canonical_name, me.canonical_revision) == ("details", "latest")
    me = own_workload({"LABELS": {"service.istio.io/canonical-name": "c", "version": "v2"}})
    assert (me.canonical_name, me.canonical_revision) == ("c", "v2")


def test_service_from_cluster_names() -> None:
    assert service_of_cluster("outbound|9080|v1|reviews.default.svc.cluster.local") == (
        "reviews.default.svc.cluster.local", "reviews")
    assert service_of_cluster("inbound|9080||") == ("", "")
    assert service_of_cluster("PassthroughCluster") == ("", "PassthroughCluster")
    assert service_of_cluster("backend") == ("", "")


class _Conn:
    def __init__(self, now: float) -> None:
        self.loop = ManualLoop(now)


class _Cluster:
    name = "outbound|80||a.ns.svc.cluster.local"


class _Stream:
    def __init__(self, status: int, ms: float, rx: int, tx: int, flags: int = 0) -> None:
        self.cluster = _Cluster()
        self.authority = b"a"
        self.status = status
        self.flags = flags
        self.peer = None
        self.conn = _Conn(100.0 + ms / 1000)
        self.start = 100.0
        self.rx = rx
        self.tx = tx


def test_recorder_buckets_and_cells() -> None:
    r = IstioStatsRecorder(own_workload({}), "source")
    r.record(_Stream(200, 1.0, 0, 1))  # 1 ms lands in le="1", 0 bytes in le="0.5"
    r.record(_Stream(200, 7.0, 10, 100000001))  # beyond the last bucket: +Inf only
    r.record(_Stream(503, 0.2, 0, 0, flags=1))
    rows = {row[0][LABELS.index("response_code")]: row for row in r.rows()}
    ok = rows["200"]
    assert ok[1] == 2
    assert ok[2][BUCKETS.index(1)] == 1 and ok[2][BUCKETS.index(10)] == 1 and ok[3] == 8
    assert ok[4][0] == 1 and ok[4][BUCKETS.index(10)] == 1
    assert ok[6][BUCKETS.index(1)] == 1 and ok[6][len(BUCKETS)] == 1
    assert rows["503"][0][LABELS.index("response_flags")] == "UH"
    assert len(r.cells) == 2 and not r.pending


def test_recorders_of_replaced_configs_count_into_one_series() -> None:
    """An LDS update makes a new recorder; /stats and /stats/prometheus still show one series
    per label set, summed (a duplicate series is invalid Prometheus exposition)."""
    metrics = IstioMetrics()
    for key in ("listener-v1", "listener-v2"):
        r = metrics.recorders[(key,)] = IstioStatsRecorder(own_workload({}), "source")
        r.record(_Stream(200, 1.0, 0, 1))
    (row,) = metrics.rows()
    assert row[1] == 2
    assert [line for line in text_lines(metrics.rows(), set()) if "requests_total" in line][0].endswith(": 2")
