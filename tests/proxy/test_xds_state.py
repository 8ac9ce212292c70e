"""ACK/NACK bookkeeping, back-off and resource snapshots: pure objects, no gRPC, no clock."""

from __future__ import annotations

import random

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.route.v3 import route_pb2

from pilotfish.proxy.bootstrap import parse_bootstrap
from pilotfish.proxy.errors import ProxyConfigError
from pilotfish.proxy.backoff import JitteredExponentialBackOff
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
