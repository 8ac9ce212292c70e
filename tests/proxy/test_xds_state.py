"""ACK/NACK bookkeeping, back-off and resource snapshots: pure objects, no gRPC, no clock."""

from __future__ import annotations

import random

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.route.v3 import route_pb2

from pilotfish.proxy.compile.bootstrap_file import parse_bootstrap
from pilotfish.proxy.common.errors import ProxyConfigError
from pilotfish.proxy.common.backoff import JitteredExponentialBackOff
from pilotfish.proxy.xds.resources import Resources, eds_names
from pilotfish.proxy.xds.settings import ads_settings
from pilotfish.proxy.xds.type_state import CLUSTER, ENDPOINT, ROUTE, TypeState

from .conftest import cluster


def test_first_request_carries_node_and_no_version() -> None:
    st = TypeState(CLUSTER, wildcard=True)
    spec = st.subscribe()
    assert (spec.names, spec.version, spec.nonce, spec.with_node) == ((), "", "", True)
    assert not st.subscribe().with_node  # the node goes once per type and stream


def test_ack_and_nack() -> None:
    st = TypeState(ROUTE)
    st.set_names({"r1"})
    st.subscribe()
    st.on_response("1", "n1")
    ack = st.ack("1")
    assert (ack.version, ack.nonce, ack.error, ack.names) == ("1", "n1", None, ("r1",))
    st.on_response("2", "n2")
    nack = st.nack("2", "bad")
    assert (nack.version, nack.nonce, nack.error) == ("1", "n2", "bad")  # previous accepted version
    assert st.version == "1" and st.rejected == ("2", "bad")
    st.on_response("3", "n3")
    assert st.ack("3").version == "3" and st.rejected is None


def test_subscription_changes_only_when_names_change() -> None:
    st = TypeState(ENDPOINT)
    assert st.set_names({"a"}) is None  # not started: the first subscribe sends them
    st.subscribe()
    st.on_response("1", "n1")
    st.ack("1")
    assert st.set_names({"a"}) is None
    spec = st.set_names({"a", "b"})
    assert spec is not None and spec.names == ("a", "b") and spec.nonce == "n1" and spec.version == "1"


def test_reconnect_resends_last_accepted_version_without_nonce() -> None:
    st = TypeState(CLUSTER, wildcard=True)
    st.subscribe()
    st.on_response("7", "n7")
    st.ack("7")
    st.reset_stream()
    spec = st.subscribe()
    assert (spec.version, spec.nonce, spec.with_node) == ("7", "", True)


def test_backoff_is_jittered_exponential_and_capped() -> None:
    b = JitteredExponentialBackOff(500, 4000, random.Random(1))
    delays = [b.next_backoff() for _ in range(10)]
    assert all(0 <= d < 4.0 for d in delays)
    assert delays[0] < 0.5 and delays[1] < 1.0
    b.reset()
    assert b.next_backoff() < 0.5


def _route(name: str, cluster_name: str) -> route_pb2.RouteConfiguration:
    rc = route_pb2.RouteConfiguration(name=name)
    vh = rc.virtual_hosts.add(name="all", domains=["*"])
    r = vh.routes.add()
    r.match.prefix = "/"
    r.route.cluster = cluster_name
    return rc


def test_listeners_and_clusters_are_whole_sets_routes_merge() -> None:
    c1, c2 = cluster_pb2.Cluster(name="c1"), cluster_pb2.Cluster(name="c2")
    res = Resources().with_response(CLUSTER, "1", {"c1": c1, "c2": c2}, now=1.0)
    res = res.with_response(CLUSTER, "2", {"c2": c2}, now=2.0)
    assert list(res.clusters) == ["c2"]
    assert res.clusters["c2"].version == "1"  # unchanged resources keep their version and time
    res = res.with_response(ROUTE, "1", {"a": _route("a", "c2")}, now=3.0)
    res = res.with_response(ROUTE, "2", {"b": _route("b", "c2")}, now=4.0)
    assert set(res.routes) == {"a", "b"} and res.versions[ROUTE] == "2"
    assert set(res.keep_only({"b"}, set()).routes) == {"b"}


def test_eds_names_use_service_name() -> None:
    c = cluster_pb2.Cluster(name="c", type=cluster_pb2.Cluster.EDS)
    c.eds_cluster_config.service_name = "svc"
    assert eds_names([c, cluster_pb2.Cluster(name="static")]) == {"svc"}


def _ads_doc(**dynamic: object) -> dict:
    doc = {"node": {"id": "n"}, "static_resources": {"clusters": [cluster("xds-grpc", 15010)]},
           "dynamic_resources": {
               "ads_config": {"api_type": "GRPC", "transport_api_version": "V3",
                              "grpc_services": [{"envoy_grpc": {"cluster_name": "xds-grpc"}}]},
               "lds_config": {"ads": {}}, "cds_config": {"ads": {}}, **dynamic}}
    return doc


def test_ads_settings_from_envoy_grpc_cluster() -> None:
    s = ads_settings(parse_bootstrap(_ads_doc()).message)
    assert s is not None and s.target == "127.0.0.1:15010" and s.lds and s.cds
    assert s.initial_fetch_timeout == 15.0


def test_ads_settings_from_google_grpc() -> None:
    doc = _ads_doc()
    doc["dynamic_resources"]["ads_config"]["grpc_services"] = [{"google_grpc": {
        "target_uri": "localhost:15012", "stat_prefix": "ads"}}]
    s = ads_settings(parse_bootstrap(doc).message)
    assert s is not None and s.target == "localhost:15012"


@pytest.mark.parametrize(("mutate", "path"), [
    (lambda d: d["dynamic_resources"]["ads_config"].update(api_type="REST"),
     "dynamic_resources.ads_config.api_type"),
    (lambda d: d["dynamic_resources"].update(lds_config={"api_config_source": {"api_type": "GRPC"}}),
     "dynamic_resources.lds_config.api_config_source"),
    (lambda d: d["dynamic_resources"]["ads_config"]["grpc_services"][0]["envoy_grpc"].update(cluster_name="nope"),
     "dynamic_resources.ads_config.grpc_services[0].envoy_grpc.cluster_name"),
    (lambda d: d["dynamic_resources"].pop("ads_config"), "dynamic_resources.ads_config"),
])
def test_non_ads_forms_are_errors(mutate: object, path: str) -> None:
    doc = _ads_doc()
    mutate(doc)  # type: ignore[operator]
    with pytest.raises(ProxyConfigError) as info:
        parse_bootstrap(doc)
    assert info.value.field_path == path


def test_rds_without_ads_is_an_error() -> None:
    from pilotfish.proxy.compile import compile_bootstrap

    from .conftest import bootstrap
    doc = bootstrap([], [cluster("a", 1)])
    hcm = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    del hcm["route_config"]
    hcm["rds"] = {"route_config_name": "r", "config_source": {"ads": {}}}
    with pytest.raises(ProxyConfigError, match="ads_config"):
        compile_bootstrap(parse_bootstrap(doc).message)


# ---- per-resource acceptance and xDS stats: pure parts --------------------------------------
def _packed(*msgs: object) -> list:
    from google.protobuf import any_pb2

    out = []
    for m in msgs:
        a = any_pb2.Any()
        a.Pack(m)  # type: ignore[arg-type]
        out.append(a)
    return out


def test_decode_each_rejects_resources_one_by_one() -> None:
    from google.protobuf import any_pb2

    from pilotfish.proxy.xds.resources import decode_each

    items = _packed(cluster_pb2.Cluster(name="a"), cluster_pb2.Cluster(name="dup"),
                    cluster_pb2.Cluster(name="dup", alt_stat_name="x"), cluster_pb2.Cluster(name="b"))
    items.append(any_pb2.Any(type_url=CLUSTER, value=b"\xff\xff"))
    items.append(any_pb2.Any(type_url=ROUTE, value=b""))
    d = decode_each(CLUSTER, items, lambda n: True, [])
    assert sorted(d.messages) == ["a", "b"] and d.unnamed
    assert set(d.rejected) == {"dup", "resources[4]", "resources[5]"}
    assert "duplicate Cluster 'dup'" in d.rejected["dup"]
    assert d.names == {"a", "b", "dup"}
    routes = decode_each(ROUTE, _packed(_route("r1", "c"), _route("other", "c")), {"r1"}.__contains__, [])
    assert list(routes.messages) == ["r1"] and not routes.rejected and not routes.unnamed


def test_with_partial_keeps_the_previous_version_of_rejected_resources() -> None:
    a1, b1 = cluster_pb2.Cluster(name="a"), cluster_pb2.Cluster(name="b")
    res = Resources().with_response(CLUSTER, "1", {"a": a1, "b": b1}, now=1.0)
    a2 = cluster_pb2.Cluster(name="a", alt_stat_name="2")
    part = res.with_partial(CLUSTER, "2", {"a": a2}, keep={"b", "new"}, now=2.0)
    assert part.clusters["a"].message == a2 and part.clusters["b"] is res.clusters["b"]
    assert "new" not in part.clusters
    assert set(res.with_partial(CLUSTER, "2", {}, keep=(), now=2.0).clusters) == set()
    assert set(res.with_partial(CLUSTER, "2", {}, keep=(), now=2.0, keep_absent=True).clusters) == {"a", "b"}


def test_culprit_is_an_added_or_changed_resource_named_by_the_error() -> None:
    from pilotfish.proxy.xds.dynamic_config import _culprit

    old = Resources().with_response(CLUSTER, "1", {"a": cluster_pb2.Cluster(name="a")}, now=1.0).clusters
    same = {"a": cluster_pb2.Cluster(name="a"), "b.x": cluster_pb2.Cluster(name="b.x")}
    err = ProxyConfigError("bad", "Cluster[b.x].lb_policy")
    assert _culprit("Cluster", err, same, old) == "b.x"
    assert _culprit("Cluster", ProxyConfigError("bad", "Cluster[a].lb_policy"), same, old) is None  # unchanged
    assert _culprit("Cluster", ProxyConfigError("bad", "RouteConfiguration[r].x"), same, old) is None


def test_version_hash_is_envoys_xxhash64() -> None:
    from pilotfish.proxy.xds.subscription_stats import version_hash

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
