"""Envoy's tag extraction for /stats/prometheus: the default TagNames and a bootstrap's stats_tags.

``data/istio-stats-config.json`` is the ``stats_config`` of Istio's bootstrap golden
``pkg/bootstrap/testdata/default_golden.json`` (istio/istio at 86c9f01f, Apache License 2.0,
Copyright Istio Authors): ``use_all_default_tags: false`` and Istio's tags, ``cluster_name``
being ``^cluster(\\.(.+);)`` for the ``;``-delimited ``alt_stat_name`` Istio gives its clusters.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from envoy.config.bootstrap.v3 import bootstrap_pb2
from google.protobuf import json_format

from pilotfish.proxy.common.errors import ProxyConfigError
from pilotfish.proxy.common.stats import StatsStore
from pilotfish.proxy.common.stats_tags import default_producer
from pilotfish.proxy.compile.stats_config import compile_stats_tags

from ..conftest import Backend, admin_get, bootstrap, client, cluster, running_proxy

ISTIO_STATS = json.loads((Path(__file__).parent.parent / "data" / "istio-stats-config.json").read_text())


def _bootstrap(stats_config: dict[str, Any]) -> Any:
    return json_format.ParseDict({"stats_config": stats_config}, bootstrap_pb2.Bootstrap())


@pytest.mark.parametrize("stat, name, tags", [
    ("cluster.web.upstream_rq_200", "cluster.upstream_rq",
     [("envoy.response_code", "200"), ("envoy.cluster_name", "web")]),
    ("cluster.web.upstream_rq_5xx", "cluster.upstream_rq_xx",
     [("envoy.response_code_class", "5"), ("envoy.cluster_name", "web")]),
    # the regex extractors come before the token patterns, so the route's tag comes first
    ("http.in.rds.a.b.update_success", "http.rds.update_success",
     [("envoy.rds_route_config", "a.b"), ("envoy.http_conn_manager_prefix", "in")]),
    ("listener.127.0.0.1_8080.downstream_cx_total", "listener.downstream_cx_total",
     [("envoy.listener_address", "127.0.0.1_8080")]),
    ("listener.[__1]_80.downstream_cx_total", "listener.downstream_cx_total",
     [("envoy.listener_address", "[__1]_80")]),
    ("listener.admin.downstream_cx_total", "listener.admin.downstream_cx_total", []),  # not a tag value
    ("listener.0.0.0.0_80.http.in.downstream_rq_total", "listener.http.downstream_rq_total",
     [("envoy.http_conn_manager_prefix", "in"), ("envoy.listener_address", "0.0.0.0_80")]),
    ("cluster.c.grpc.svc.Method.success", "cluster.grpc.success",
     [("envoy.grpc_bridge_method", "Method"), ("envoy.grpc_bridge_service", "svc"), ("envoy.cluster_name", "c")]),
    ("cluster_manager.cds.update_success", "cluster_manager.cds.update_success", []),
    ("vhost.v.vcluster.other.upstream_rq_2xx", "vhost.vcluster.upstream_rq_xx",
     [("envoy.response_code_class", "2"), ("envoy.virtual_cluster", "other"), ("envoy.virtual_host", "v")]),
])
def test_default_tags_are_envoys(stat: str, name: str, tags: list[tuple[str, str]]) -> None:
    assert default_producer().produce(stat) == (name, tuple(tags))


def test_istio_tags_on_istio_cluster_and_listener_names() -> None:
    tags = compile_stats_tags(_bootstrap(ISTIO_STATS["stats_config"]))
    svc = "outbound|9080||reviews.default.svc.cluster.local"
    assert tags.produce(f"cluster.{svc};.upstream_rq_total") == ("cluster.upstream_rq_total", (("cluster_name", svc),))
    assert tags.produce("cluster.xds-grpc;.upstream_rq_503") == (
        "cluster.upstream_rq", (("cluster_name", "xds-grpc"), ("response_code", "503")))
    assert tags.produce("cluster.xds-grpc;.upstream_rq_5xx") == (
        "cluster.upstream_rq", (("cluster_name", "xds-grpc"), ("response_code_class", "5xx")))
    # ECMAScript's [:digit:] inside brackets, as Envoy's std::regex reads it
    assert tags.produce("listener.0.0.0.0_15090.downstream_cx_total") == (
        "listener.downstream_cx_total", (("listener_address", "0.0.0.0_15090"),))
    assert tags.produce("http.outbound_0.0.0.0_9080;.downstream_rq_total") == (
        "http.downstream_rq_total", (("http_conn_manager_prefix", "outbound_0.0.0.0_9080"),))
    # no default tags: a name Istio's tags do not cover stays whole
    assert tags.produce("cluster.web.upstream_rq_total") == ("cluster.web.upstream_rq_total", ())


def test_prometheus_lines_of_an_istio_bootstrap() -> None:
    store = StatsStore()
    store.tags = compile_stats_tags(_bootstrap(ISTIO_STATS["stats_config"]))
    svc = "outbound|9080||reviews.default.svc.cluster.local"
    c = store.cluster(f"{svc};")
    c.upstream_rq_total = 3
    c.rq_code[200] = 2
    c.rq_code[503] = 1
    store.cluster("xds-grpc;").upstream_cx_total = 1
    store.listener("0.0.0.0_15090").downstream_cx_total = 4
    store.http("outbound_0.0.0.0_9080;").downstream_rq_total = 3
    prom = store.prometheus()
    for line in (f'envoy_cluster_upstream_rq_total{{cluster_name="{svc}"}} 3',
                 'envoy_cluster_upstream_cx_total{cluster_name="xds-grpc"} 1',
                 f'envoy_cluster_upstream_rq{{cluster_name="{svc}",response_code="200"}} 2',
                 f'envoy_cluster_upstream_rq{{cluster_name="{svc}",response_code="503"}} 1',
                 f'envoy_cluster_upstream_rq{{cluster_name="{svc}",response_code_class="2xx"}} 2',
                 'envoy_listener_downstream_cx_total{listener_address="0.0.0.0_15090"} 4',
                 'envoy_http_downstream_rq_total{http_conn_manager_prefix="outbound_0.0.0.0_9080"} 3'):
        assert line in prom.splitlines(), line
    assert ";" not in prom.replace("; version", "")
    assert prom.count("# TYPE envoy_cluster_upstream_rq counter") == 1
    for metric in re.findall(r"^(\w+)\{", prom, re.MULTILINE):  # every name is a valid Prometheus name
        assert re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", metric)


def test_fixed_value_and_named_default_and_defaults_off() -> None:
    tags = compile_stats_tags(_bootstrap({"use_all_default_tags": False, "stats_tags": [
        {"tag_name": "envoy.cluster_name"}, {"tag_name": "mesh", "fixed_value": "m1"}]}))
    # a fixed tag names no first token, so (as in Envoy) it is tried before the prefixed ones
    assert tags.produce("cluster.web.upstream_rq_200") == (
        "cluster.upstream_rq_200", (("mesh", "m1"), ("envoy.cluster_name", "web")))


@pytest.mark.parametrize("spec, path", [
    ({"tag_name": "x", "regex": "(unclosed"}, "stats_config.stats_tags[0].regex"),
    ({"tag_name": "no_such_default"}, "stats_config.stats_tags[0].regex"),
    ({"regex": "^a"}, "stats_config.stats_tags[0].tag_name"),
])
def test_bad_stats_tags_name_the_field(spec: dict[str, Any], path: str) -> None:
    with pytest.raises(ProxyConfigError) as info:
        compile_stats_tags(_bootstrap({"stats_tags": [spec]}))
    assert info.value.field_path == path


async def test_istio_stats_tags_end_to_end(backend: Backend) -> None:
    route = [{"match": {"prefix": "/"}, "route": {"cluster": "outbound|80||web.default.svc.cluster.local"}}]
    doc = bootstrap(route, [cluster("outbound|80||web.default.svc.cluster.local", backend.port,
                                    alt_stat_name="outbound|80||web.default.svc.cluster.local;")])
    doc["stats_config"] = ISTIO_STATS["stats_config"]
    async with running_proxy(doc) as proxy:
        async with client(proxy.listener_ports["main"]) as c:
            assert (await c.request()).status == 200
        prom = await admin_get(proxy, "/stats/prometheus")
        name = "outbound|80||web.default.svc.cluster.local"
        assert f'envoy_cluster_upstream_rq_total{{cluster_name="{name}"}} 1' in prom
        assert f'envoy_cluster_upstream_rq{{cluster_name="{name}",response_code="200"}} 1' in prom
        assert re.search(r'^envoy_listener_downstream_cx_total\{listener_address="127\.0\.0\.1_\d+"\} 1$', prom, re.MULTILINE)
        text = await admin_get(proxy, "/stats")  # /stats keeps Envoy's full names
        assert f"cluster.{name};.upstream_rq_total: 1" in text
