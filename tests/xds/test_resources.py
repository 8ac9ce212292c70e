"""Accepted resources as immutable snapshots, and decoding a response resource by resource."""

from __future__ import annotations

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.route.v3 import route_pb2
from google.protobuf import any_pb2

from pilotfish.xds.errors import ResourceRejected
from pilotfish.xds.resources import Resources, decode, decode_each
from pilotfish.xds.type_urls import CLUSTER, ROUTE


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


def _reject_alt_stat_name_x(msg: object, path: str) -> list[str]:
    """A checker: rejects a cluster whose alt_stat_name is "x", warns about one named "b"."""
    if getattr(msg, "alt_stat_name", "") == "x":
        raise ResourceRejected(f"{path}.alt_stat_name: not supported")
    return [f"{path}: warned"] if getattr(msg, "name", "") == "b" else []


def _packed(*msgs: object) -> list:
    out = []
    for m in msgs:
        a = any_pb2.Any()
        a.Pack(m)  # type: ignore[arg-type]
        out.append(a)
    return out


def test_decode_each_rejects_resources_one_by_one() -> None:
    items = _packed(cluster_pb2.Cluster(name="a"), cluster_pb2.Cluster(name="dup"),
                    cluster_pb2.Cluster(name="dup", alt_stat_name="x"), cluster_pb2.Cluster(name="b"),
                    cluster_pb2.Cluster(name="c", alt_stat_name="x"))
    items.append(any_pb2.Any(type_url=CLUSTER, value=b"\xff\xff"))
    items.append(any_pb2.Any(type_url=ROUTE, value=b""))
    warnings: list[str] = []
    d = decode_each(CLUSTER, items, lambda n: True, _reject_alt_stat_name_x, warnings)
    assert sorted(d.messages) == ["a", "b"] and d.unnamed
    assert set(d.rejected) == {"dup", "c", "resources[5]", "resources[6]"}
    assert "duplicate Cluster 'dup'" in d.rejected["dup"]
    assert d.rejected["c"] == "Cluster[c].alt_stat_name: not supported"  # the checker's words
    assert d.names == {"a", "b", "c", "dup"} and warnings == ["Cluster[b]: warned"]
    routes = decode_each(ROUTE, _packed(_route("r1", "c"), _route("other", "c")), {"r1"}.__contains__,
                         _reject_alt_stat_name_x, [])
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


def test_decode_rejects_the_whole_response_at_the_first_bad_resource() -> None:
    items = _packed(cluster_pb2.Cluster(name="a"), cluster_pb2.Cluster(name="c", alt_stat_name="x"))
    assert list(decode(CLUSTER, items[:1], lambda n: True, _reject_alt_stat_name_x, [])) == ["a"]
    with pytest.raises(ResourceRejected, match=r"Cluster\[c\]"):
        decode(CLUSTER, items, lambda n: True, _reject_alt_stat_name_x, [])
    with pytest.raises(ResourceRejected, match="duplicate"):
        decode(CLUSTER, _packed(cluster_pb2.Cluster(name="a"), cluster_pb2.Cluster(name="a")),
               lambda n: True, _reject_alt_stat_name_x, [])
