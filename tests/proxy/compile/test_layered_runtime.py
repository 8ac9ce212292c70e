"""layered_runtime: Envoy's static/disk/admin layers, the values features read from them (fault
filter keys, route and mirror runtime fractions, weighted cluster runtime keys), the keys that
are refused because Envoy would change traffic with them, and overload_manager (test_overload.py
has the rest)."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.extensions.filters.http.fault.v3 import fault_pb2
from google.protobuf import json_format

from pilotfish.proxy.compile import layered_runtime
from pilotfish.proxy.compile.bootstrap_file import parse_bootstrap
from pilotfish.proxy.compile import compile_bootstrap
from pilotfish.proxy.compile.resilience import compile_fault
from pilotfish.proxy.common.errors import ProxyConfigError
from pilotfish.proxy.common.fractional import Fraction

from ..conftest import Backend, bootstrap, client, cluster, port_of, running_proxy, until

FAULT = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"


def runtime_of(layers: list[dict[str, Any]], node_cluster: str = "") -> layered_runtime.Runtime:
    msg = json_format.ParseDict({"node": {"cluster": node_cluster}, "layered_runtime": {"layers": layers}},
                                bootstrap_pb2.Bootstrap())
    return layered_runtime.load(msg)


def with_runtime(doc: dict[str, Any], static: dict[str, Any]) -> dict[str, Any]:
    doc["layered_runtime"] = {"layers": [{"name": "static", "static_layer": static}, {"name": "admin",
                                                                                      "admin_layer": {}}]}
    return doc


# ---- the layers -------------------------------------------------------------------------------------
def test_static_layer_flattens_and_parses_values_as_envoy() -> None:
    rt = runtime_of([{"name": "s", "static_layer": {
        "fault": {"http": {"abort": {"abort_percent": 20, "http_status": "429"}}},
        "a.b": "text", "flag": True, "big": 150, "frac": {"numerator": 5, "denominator": "TEN_THOUSAND"},
        "neg": -3}}])
    assert rt.integer("fault.http.abort.abort_percent", 0) == 20
    assert rt.integer("fault.http.abort.http_status", 503) == 429
    assert rt.integer("a.b", 7) == 7 and rt.integer("neg", 7) == 7 and rt.integer("missing", 7) == 7
    assert rt.fraction("fault.http.abort.abort_percent", (0, 100)) == (20, 100)
    assert rt.fraction("big", (0, 100)) == (100, 100)  # above 100: always, as Envoy's featureEnabled
    assert rt.fraction("frac", (0, 100)) == (5, 10_000)
    assert rt.fraction("a.b", (3, 100)) == (3, 100)  # not a number: the default


def test_disk_layer_maps_directories_to_keys(tmp_path: Path) -> None:
    root = tmp_path / "current" / "envoy" / "svc"
    (root / "fault" / "http" / "abort").mkdir(parents=True)
    (root / "fault" / "http" / "abort" / "abort_percent").write_text("# a comment line\n42\n")
    (root / "upstream.name").write_text("x\n")
    rt = runtime_of([{"name": "d", "disk_layer": {"symlink_root": str(tmp_path / "current"),
                                                  "subdirectory": "envoy", "append_service_cluster": True}}],
                    node_cluster="svc")
    assert rt.integer("fault.http.abort.abort_percent", 0) == 42
    assert rt.entries["upstream.name"].raw == "x"
    missing = runtime_of([{"name": "d", "disk_layer": {"symlink_root": str(tmp_path / "nowhere")}}])
    assert missing.entries == {}  # Envoy counts a load error and runs with the layer empty


def test_later_layers_override_earlier(tmp_path: Path) -> None:
    (tmp_path / "k").write_text("2")
    rt = runtime_of([{"name": "s", "static_layer": {"k": 1, "only": 5}},
                     {"name": "d", "disk_layer": {"symlink_root": str(tmp_path)}}, {"name": "a", "admin_layer": {}}])
    assert rt.integer("k", 0) == 2 and rt.integer("only", 0) == 5


def test_rtds_layer_is_refused() -> None:
    d = bootstrap([{"match": {"prefix": "/"}, "route": {"cluster": "a"}}], [cluster("a", 8080)])
    d["layered_runtime"] = {"layers": [{"name": "r", "rtds_layer": {"name": "rtds"}}]}
    with pytest.raises(ProxyConfigError) as info:
        parse_bootstrap(d)
    assert info.value.field_path == "layered_runtime.layers[0].rtds_layer"


def test_keys_that_would_change_envoys_traffic_are_refused_the_rest_warned() -> None:
    d = with_runtime(bootstrap([{"match": {"prefix": "/"}, "route": {"cluster": "a"}}], [cluster("a", 8080)]), {
        "circuit_breakers.a.default.max_connections": 1,
        "overload": {"global_downstream_max_connections": 50000},
        "envoy.resource_limits.listener.main.connection_limit": 10,
        "envoy.resource_limits.listener.other.connection_limit": 10,
        "envoy.reloadable_features.some_flag": False,
    })
    with pytest.raises(ProxyConfigError) as info:
        parse_bootstrap(d)
    assert [e.field_path for e in info.value.errors] == [
        "layered_runtime.layers[0].static_layer['circuit_breakers.a.default.max_connections']",
    ]  # (the connection limits are honoured: test_overload.py)
    d["layered_runtime"]["layers"][0]["static_layer"] = {
        "overload.global_downstream_max_connections": 2147483647,
        "envoy.resource_limits.listener.other.connection_limit": 10, "envoy.reloadable_features.x": False}
    warned = {w.split(": ", 1)[0] for w in parse_bootstrap(d).warnings}
    assert warned == {f"layered_runtime.layers[0].static_layer[{k!r}]" for k in (
        "envoy.resource_limits.listener.other.connection_limit", "envoy.reloadable_features.x")}


# ---- the fault filter reads its keys --------------------------------------------------------------
def _fault(doc: dict[str, Any]) -> fault_pb2.HTTPFault:
    return json_format.ParseDict(doc, fault_pb2.HTTPFault())


CONFIGURED = {"abort": {"http_status": 503, "percentage": {"numerator": 0}},
              "delay": {"fixed_delay": "3s", "percentage": {"numerator": 0}}}


def test_fault_defaults_keys_replace_the_configured_values() -> None:
    rt = runtime_of([{"name": "s", "static_layer": {"fault.http": {
        "abort": {"abort_percent": 100, "http_status": 429},
        "delay": {"fixed_delay_percent": 50, "fixed_duration_ms": 200}, "max_active_faults": 4}}}])
    p = compile_fault(_fault(CONFIGURED), "f", runtime=rt)
    assert p.abort.percentage == Fraction(100) and p.abort.http_status == 429
    assert p.delay.percentage == Fraction(50) and p.delay.fixed == 0.2
    assert p.max_active_faults == 4 and not p.never
    assert compile_fault(_fault(CONFIGURED), "f").never  # without runtime nothing fires


def test_fault_custom_runtime_key_names() -> None:
    rt = runtime_of([{"name": "s", "static_layer": {"my.abort": 100, "fault.http.abort.abort_percent": 0}}])
    p = compile_fault(_fault({**CONFIGURED, "abort_percent_runtime": "my.abort"}), "f", runtime=rt)
    assert p.abort.percentage == Fraction(100)


def test_fault_keys_of_a_downstream_cluster() -> None:
    """A request naming its downstream cluster reads fault.http.<cluster>.* (and the configured
    percentage, not the generic key, when that cluster has none), as Envoy's fault filter."""
    rt = runtime_of([{"name": "s", "static_layer": {
        "fault.http.abort.abort_percent": 100, "fault.http.canary.abort.abort_percent": 0,
        "fault.http.web.abort.http_status": 418, "fault.http.web.abort.abort_percent": 100}}])
    p = compile_fault(_fault(CONFIGURED), "f", runtime=rt)
    rng = random.Random(1)
    assert p.decide([], "c", rng).http_status == 503
    canary = [(b"x-envoy-downstream-service-cluster", b"canary")]
    assert p.for_request(canary).decide(canary, "c", rng).http_status is None
    web = [(b"x-envoy-downstream-service-cluster", b"web")]
    assert p.for_request(web).decide(web, "c", rng).http_status == 418
    other = [(b"x-envoy-downstream-service-cluster", b"other")]
    assert p.for_request(other).decide(other, "c", rng).http_status is None  # configured 0%


def test_header_controlled_fault_with_runtime_percentage() -> None:
    rt = runtime_of([{"name": "s", "static_layer": {"fault.http.abort.abort_percent": 0}}])
    p = compile_fault(_fault({"abort": {"header_abort": {}, "percentage": {"numerator": 100}}}), "f", runtime=rt)
    headers = [(b"x-envoy-fault-abort-request", b"500")]
    assert p.decide(headers, "c", random.Random(1)).http_status is None


async def test_static_layer_enables_a_fault_end_to_end(backend: Backend) -> None:
    fault = [{"name": "envoy.filters.http.fault", "typed_config": {"@type": FAULT, **CONFIGURED}}]
    doc = with_runtime(bootstrap([{"match": {"prefix": "/"}, "route": {"cluster": "c"}}], [cluster("c", backend.port)],
                                 http_filters=fault), {"fault": {"http": {"abort": {"abort_percent": "100"}}}})
    async with running_proxy(doc) as proxy, client(port_of(proxy)) as c:
        r = await c.request()
        assert r.status == 503 and r.body == b"fault filter abort"
    assert backend.seen == []


# ---- routes ------------------------------------------------------------------------------------
async def test_route_runtime_fraction_reads_its_key(backend: Backend, backend_b: Backend) -> None:
    routes = [{"match": {"prefix": "/", "runtime_fraction": {"default_value": {"numerator": 100},
                                                             "runtime_key": "routing.canary"}},
               "route": {"cluster": "b"}},
              {"match": {"prefix": "/"}, "route": {"cluster": "a"}}]
    clusters = [cluster("a", backend.port), cluster("b", backend_b.port)]
    for value, expected in ((0, {"a": 20}), (100, {"b": 20}), (None, {"b": 20})):
        doc = bootstrap(routes, clusters)
        if value is not None:
            with_runtime(doc, {"routing.canary": value})
        async with running_proxy(doc) as proxy, client(port_of(proxy)) as c:
            words = Counter([(await c.request()).body.split(b" ")[0].decode() for _ in range(20)])
        assert dict(words) == {backend.name if k == "a" else backend_b.name: n for k, n in expected.items()}


async def test_route_runtime_fraction_splits_traffic(backend: Backend, backend_b: Backend) -> None:
    routes = [{"match": {"prefix": "/", "runtime_fraction": {"default_value": {"numerator": 0},
                                                             "runtime_key": "routing.canary"}},
               "route": {"cluster": "b"}},
              {"match": {"prefix": "/"}, "route": {"cluster": "a"}}]
    doc = with_runtime(bootstrap(routes, [cluster("a", backend.port), cluster("b", backend_b.port)]),
                       {"routing.canary": 50})
    async with running_proxy(doc) as proxy, client(port_of(proxy)) as c:
        words = Counter([(await c.request()).body.split(b" ")[0] for _ in range(200)])
    assert 60 < words[backend_b.name.encode()] < 140 and sum(words.values()) == 200


async def test_weighted_clusters_runtime_key_prefix(backend: Backend, backend_b: Backend) -> None:
    routes = [{"match": {"prefix": "/"}, "route": {"weighted_clusters": {
        "runtime_key_prefix": "routing.split",
        "clusters": [{"name": "a", "weight": 50}, {"name": "b", "weight": 50}]}}}]
    doc = with_runtime(bootstrap(routes, [cluster("a", backend.port), cluster("b", backend_b.port)]),
                       {"routing.split.a": 0})
    async with running_proxy(doc) as proxy, client(port_of(proxy)) as c:
        words = Counter([(await c.request()).body.split(b" ")[0] for _ in range(20)])
    assert words == Counter({backend_b.name.encode(): 20})


async def test_mirror_runtime_key(backend: Backend, backend_b: Backend) -> None:
    routes = [{"match": {"prefix": "/"}, "route": {"cluster": "a", "request_mirror_policies": [{
        "cluster": "b", "runtime_fraction": {"default_value": {"numerator": 100}, "runtime_key": "mirror.b"}}]}}]
    clusters = [cluster("a", backend.port), cluster("b", backend_b.port)]
    doc = with_runtime(bootstrap(routes, clusters), {"mirror.b": 0})
    async with running_proxy(doc) as proxy, client(port_of(proxy)) as c:
        for _ in range(5):
            assert (await c.request()).status == 200
    assert backend_b.seen == []
    async with running_proxy(bootstrap(routes, clusters)) as proxy, client(port_of(proxy)) as c:
        assert (await c.request()).status == 200
        await until(lambda: len(backend_b.seen) == 1)


# ---- overload_manager ----------------------------------------------------------------------------
MONITOR = {"name": "envoy.resource_monitors.fixed_heap", "typed_config": {
    "@type": "type.googleapis.com/envoy.extensions.resource_monitors.fixed_heap.v3.FixedHeapConfig",
    "max_heap_size_bytes": 2147483648}}


def test_overload_actions_envoy_has_and_the_proxy_cannot_run_are_refused() -> None:
    d = bootstrap([{"match": {"prefix": "/"}, "route": {"cluster": "a"}}], [cluster("a", 8080)])
    trigger = [{"name": "envoy.resource_monitors.fixed_heap", "threshold": {"value": 0.95}}]
    d["overload_manager"] = {"refresh_interval": "0.25s", "resource_monitors": [MONITOR], "actions": [
        {"name": "envoy.overload_actions.shrink_heap", "triggers": trigger},
        {"name": "envoy.overload_actions.stop_accepting_connections", "triggers": trigger}]}
    with pytest.raises(ProxyConfigError) as info:
        parse_bootstrap(d)
    assert [e.field_path for e in info.value.errors] == ["overload_manager.actions[1].name"]
    del d["overload_manager"]["actions"][1]
    loaded = parse_bootstrap(d)  # shrink_heap runs (test_overload.py): no warning
    assert not [w for w in loaded.warnings if w.startswith("overload_manager")]
    assert compile_bootstrap(loaded.message, warnings=loaded.warnings).overload is not None


def test_values_parse_as_envoys_create_entry(tmp_path: Path) -> None:
    (tmp_path / "floored").write_text("37.9\n")
    (tmp_path / "fraction").write_text("numerator: 3\ndenominator: MILLION\n")
    (tmp_path / "word").write_text("hello\n")
    rt = runtime_of([{"name": "d", "disk_layer": {"symlink_root": str(tmp_path)}},
                     {"name": "s", "static_layer": {"half": "12.5", "flag": True}}])
    assert rt.integer("floored", 0) == 37 and rt.integer("half", 0) == 12  # doubles floor into integers
    assert rt.fraction("fraction", (0, 100)) == (3, 1_000_000)
    assert rt.integer("word", 9) == 9 and rt.integer("flag", 9) == 9


@pytest.mark.parametrize("layers,path", [
    ([{"name": "a", "static_layer": {}}, {"name": "a", "admin_layer": {}}], "layered_runtime.layers[1].name"),
    ([{"name": "a", "admin_layer": {}}, {"name": "b", "admin_layer": {}}], "layered_runtime.layers[1]"),
    ([{"name": "a"}], "layered_runtime.layers[0]"),
])
def test_layers_envoy_refuses(layers: list[dict[str, Any]], path: str) -> None:
    with pytest.raises(ProxyConfigError) as info:
        runtime_of(layers)
    assert info.value.field_path == path


def test_a_runtime_abort_status_outside_http_statuses_is_refused() -> None:
    rt = runtime_of([{"name": "s", "static_layer": {"fault.http.abort.http_status": 700}}])
    with pytest.raises(ProxyConfigError) as info:
        compile_fault(_fault(CONFIGURED), "f", runtime=rt)
    assert info.value.field_path == "layered_runtime.layers[0].static_layer['fault.http.abort.http_status']"
