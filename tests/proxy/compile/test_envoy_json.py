"""Envoy's config loader leniency (protobuf's JSON parser with case-insensitive enums and legacy
syntax, as MessageUtil::loadFromJson uses it), and every bad field of a bootstrap listed at once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from envoy.config.route.v3 import route_pb2

from pilotfish.proxy.compile import envoy_json
from pilotfish.proxy.compile.bootstrap_file import load_bootstrap, parse_bootstrap
from pilotfish.proxy.compile import compile_bootstrap
from pilotfish.proxy.common.errors import ProxyConfigError

from ..conftest import bootstrap, cluster

HCM_PATH = "static_resources.listeners[0].filter_chains[0].filters[0].typed_config"


def doc() -> dict[str, Any]:
    return bootstrap([{"match": {"prefix": "/"}, "route": {"cluster": "a"}}], [cluster("a", 8080)])


def hcm(d: dict[str, Any]) -> dict[str, Any]:
    return d["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]


def compiled(d: dict[str, Any]) -> Any:
    loaded = parse_bootstrap(d)
    return loaded, compile_bootstrap(loaded.message, warnings=loaded.warnings).runtime


def errors_of(d: dict[str, Any]) -> list[ProxyConfigError]:
    with pytest.raises(ProxyConfigError) as info:
        compiled(d)
    return info.value.errors


@pytest.mark.parametrize("value", ["round_robin", "Round_Robin", "LEAST_REQUEST", "least_request", 1])
def test_enum_names_in_any_case(value: Any) -> None:
    d = doc()
    d["static_resources"]["clusters"][0]["lb_policy"] = value
    hcm(d)["codec_type"] = "auto"
    loaded, _ = compiled(d)
    expected = 1 if str(value).upper() == "LEAST_REQUEST" or value == 1 else 0
    assert loaded.message.static_resources.clusters[0].lb_policy == expected


def test_unknown_enum_name_is_still_an_error() -> None:
    d = doc()
    d["static_resources"]["clusters"][0]["lb_policy"] = "round-robin"
    (err,) = errors_of(d)
    assert err.field_path == "static_resources.clusters[0].lb_policy" and "round-robin" in err.message


def test_a_single_value_where_a_list_is_expected() -> None:
    text = """
static_resources:
  listeners:
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains:
      filters:
        name: hcm
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: x
          route_config:
            virtual_hosts: {name: v, domains: "*", routes: {match: {prefix: /}, route: {cluster: a}}}
          http_filters:
            name: router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
  clusters:
    name: a
    load_assignment:
      cluster_name: a
      endpoints:
        lb_endpoints:
          endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 8080}}}
"""
    loaded, runtime = compiled(yaml.safe_load(text))
    vh = loaded.message.static_resources.listeners[0]
    assert len(vh.filter_chains) == 1 and len(runtime.clusters) == 1
    table = runtime.listeners[0].hcm.route_table
    assert table.default is not None and len(table.default.routes) == 1


def test_nested_lists_flatten_and_null_elements_are_defaults() -> None:
    d = doc()
    vh = hcm(d)["route_config"]["virtual_hosts"][0]
    vh["domains"] = [["a.example", ["b.example"]], "*"]
    loaded, _ = compiled(d)
    assert list(_hcm_msg(loaded).route_config.virtual_hosts[0].domains) == ["a.example", "b.example", "*"]
    rc = route_pb2.RouteConfiguration()
    assert envoy_json.parse({"virtual_hosts": [None, {"name": "v"}]}, rc) == []
    assert [v.name for v in rc.virtual_hosts] == ["", "v"]


def _hcm_msg(loaded: Any) -> Any:
    from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2

    m = http_connection_manager_pb2.HttpConnectionManager()
    loaded.message.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.Unpack(m)
    return m


def test_durations_and_wrappers_in_object_form() -> None:
    d = doc()
    c = d["static_resources"]["clusters"][0]
    c["connect_timeout"] = {"seconds": 2, "nanos": 500000000}
    c["max_requests_per_connection"] = {"value": 7}
    hcm(d)["stream_idle_timeout"] = {"seconds": "30"}
    hcm(d)["use_remote_address"] = {"value": "true"}
    hcm(d)["route_config"]["virtual_hosts"][0]["routes"][0]["route"]["timeout"] = {"nanos": 250000000}
    _, runtime = compiled(d)
    settings = runtime.clusters["a"].settings
    assert settings.pool.connect_timeout == 2.5 and settings.pool.max_requests_per_connection == 7
    h = runtime.listeners[0].hcm
    assert h.stream_idle_timeout == 30.0 and h.use_remote_address is True
    assert h.route_table.default.routes[0].action.timeout == 0.25


@pytest.mark.parametrize("text,expected", [("true", True), ("yes", True), ("1", True), ("False", False),
                                           ("n", False)])
def test_booleans_written_as_strings(text: str, expected: bool) -> None:
    d = doc()
    hcm(d)["strip_any_host_port"] = text
    _, runtime = compiled(d)
    assert runtime.listeners[0].hcm.strip_any_host_port is expected


def test_a_field_written_twice_takes_the_last() -> None:
    d = doc()
    d["static_resources"]["clusters"][0].update({"lb_policy": "ROUND_ROBIN", "lbPolicy": "RANDOM"})
    loaded, _ = compiled(d)
    assert loaded.message.static_resources.clusters[0].lb_policy == 3


def test_a_bad_duration_object_names_its_path() -> None:
    d = doc()
    d["static_resources"]["clusters"][0]["connect_timeout"] = {"seconds": 1, "minutes": 2}
    (err,) = errors_of(d)
    assert err.field_path == "static_resources.clusters[0].connect_timeout.minutes"


def test_three_bad_fields_are_three_errors_in_one_run() -> None:
    """A parse error, a field outside the subset and a compile-time error: all reported."""
    d = doc()
    d["static_resources"]["clusters"][0]["connect_timeout"] = "5x"  # not a duration
    d["static_resources"]["listeners"][0]["filter_chains"][0]["transport_socket"] = {"name": "tls"}
    hcm(d)["route_config"]["virtual_hosts"][0]["routes"][0]["route"]["cluster"] = "missing"
    errors = errors_of(d)
    assert [e.field_path for e in errors] == [
        "static_resources.clusters[0].connect_timeout",
        "static_resources.listeners[0].filter_chains[0].transport_socket",
        f"{HCM_PATH}.route_config.virtual_hosts[0].routes[0].route.cluster",
    ]
    assert "unknown cluster 'missing'" in errors[2].message


def test_unknown_fields_everywhere_are_listed_together() -> None:
    d = doc()
    d["static_resources"]["clusters"][0]["bogus"] = 1
    hcm(d)["also_bogus"] = True
    d["not_a_field"] = {}
    paths = {e.field_path for e in errors_of(d)}
    assert paths == {"static_resources.clusters[0].bogus", f"{HCM_PATH}.also_bogus", "not_a_field"}


def test_compile_errors_of_several_clusters_and_listeners_in_one_run() -> None:
    d = doc()
    d["static_resources"]["clusters"].append({**cluster("b", 8081), "lb_policy": "LOAD_BALANCING_POLICY_CONFIG"})
    d["static_resources"]["clusters"].append({**cluster("c", 8082), "type": "LOGICAL_DNS"})
    d["static_resources"]["clusters"][2]["load_assignment"]["endpoints"][0]["lb_endpoints"] *= 2
    hcm(d)["stat_prefix"] = ""
    errors = errors_of(d)
    assert [e.field_path for e in errors] == [
        "static_resources.clusters[1].lb_policy", "static_resources.clusters[2].load_assignment",
        f"{HCM_PATH}.stat_prefix"]
    assert str(errors_of(d)[0]) == errors[0].field_path + ": " + errors[0].message


def test_one_error_is_raised_as_itself() -> None:
    d = doc()
    hcm(d)["stat_prefix"] = ""
    (err,) = errors_of(d)
    assert str(err) == f"{HCM_PATH}.stat_prefix: stat_prefix is required"


def test_every_bad_route_and_per_filter_config_is_listed() -> None:
    d = doc()
    vh = hcm(d)["route_config"]["virtual_hosts"][0]
    vh["routes"] = [{"match": {"prefix": "/a"}, "route": {"cluster": "nope1"}},
                    {"match": {"prefix": "/b"}, "route": {"cluster": "a"}},
                    {"match": {"prefix": "/c"}, "direct_response": {"status": 99}}]
    vh["typed_per_filter_config"] = {"envoy.filters.http.fault": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault",
        "abort": {"http_status": "x"}}}
    paths = [e.field_path for e in errors_of(d)]
    vpath = f"{HCM_PATH}.route_config.virtual_hosts[0]"
    assert paths == [f"{vpath}.typed_per_filter_config['envoy.filters.http.fault'].abort.http_status",
                     f"{vpath}.routes[0].route.cluster", f"{vpath}.routes[2].direct_response.status"]


def test_an_unquoted_date_is_a_string_as_in_envoys_yaml(tmp_path: Path) -> None:
    d = doc()
    d["static_resources"]["clusters"][0]["alt_stat_name"] = "PLACEHOLDER"
    path = tmp_path / "envoy.yaml"
    path.write_text(yaml.safe_dump(d).replace("PLACEHOLDER", "2024-01-31"))
    loaded = load_bootstrap(path)
    assert loaded.message.static_resources.clusters[0].alt_stat_name == "2024-01-31"


def test_pilotfish_proxy_lists_every_error_and_exits(tmp_path: Path) -> None:
    d = doc()
    d["static_resources"]["clusters"][0]["connect_timeout"] = "5x"
    d["static_resources"]["listeners"][0]["filter_chains"][0]["transport_socket"] = {"name": "tls"}
    hcm(d)["route_config"]["virtual_hosts"][0]["routes"][0]["route"]["cluster"] = "missing"
    path = tmp_path / "envoy.yaml"
    path.write_text(yaml.safe_dump(d))
    proc = subprocess.run([sys.executable, "-c", "from pilotfish.cli.main import main; main()", "proxy",
                           "--bootstrap", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert [line.split(": ")[2] for line in lines] == [
        "static_resources.clusters[0].connect_timeout",
        "static_resources.listeners[0].filter_chains[0].transport_socket",
        f"{HCM_PATH}.route_config.virtual_hosts[0].routes[0].route.cluster"]
    assert all(line.startswith(f"error: {path}: ") for line in lines)


def test_well_known_types_in_object_form_parse_as_their_canonical_form() -> None:
    from google.protobuf import field_mask_pb2, json_format, struct_pb2, timestamp_pb2

    errors: list[ProxyConfigError] = []
    mask = envoy_json._message_value(field_mask_pb2.FieldMask.DESCRIPTOR, {"paths": ["a_b.c_d", "e"]}, "m", errors)
    assert list(json_format.ParseDict(mask, field_mask_pb2.FieldMask()).paths) == ["a_b.c_d", "e"]
    ts = envoy_json._message_value(timestamp_pb2.Timestamp.DESCRIPTOR, {"seconds": 86400, "nanos": 5}, "t", errors)
    assert json_format.ParseDict(ts, timestamp_pb2.Timestamp()).seconds == 86400
    values = envoy_json._message_value(struct_pb2.ListValue.DESCRIPTOR, {"values": [1, "x"]}, "l", errors)
    assert values == [1, "x"] and errors == []


def test_every_bad_section_of_one_cluster_is_listed() -> None:
    d = doc()
    check = {"timeout": "1s", "interval": "1s", "unhealthy_threshold": 1, "healthy_threshold": 1,
             "http_health_check": {"path": "/h"}}
    d["static_resources"]["clusters"][0].update({
        "circuit_breakers": {"per_host_thresholds": [{"max_requests": 1}]},
        "outlier_detection": {"enforcing_consecutive_5xx": 150},
        "health_checks": [check, check],
    })
    assert [e.field_path for e in errors_of(d)] == [
        "static_resources.clusters[0].circuit_breakers.per_host_thresholds[0].max_requests",
        "static_resources.clusters[0].outlier_detection.enforcing_consecutive_5xx",
        "static_resources.clusters[0].health_checks[1]"]
