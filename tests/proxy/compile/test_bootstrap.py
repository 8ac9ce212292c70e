"""Parsing and checking the bootstrap: every unsupported field is an error naming its path."""

from __future__ import annotations

import pytest

from pilotfish.proxy.compile.bootstrap_file import load_bootstrap, parse_bootstrap
from pilotfish.proxy.compile import compile_bootstrap
from pilotfish.proxy.common.errors import ProxyConfigError

from ..conftest import bootstrap, cluster

def route() -> list:
    return [{"match": {"prefix": "/"}, "route": {"cluster": "a"}}]


def compile_doc(doc: dict):
    loaded = parse_bootstrap(doc)
    return compile_bootstrap(loaded.message, warnings=loaded.warnings)


def error_of(doc: dict) -> ProxyConfigError:
    with pytest.raises(ProxyConfigError) as info:
        compile_doc(doc)
    return info.value


def test_valid_bootstrap_compiles() -> None:
    compiled = compile_doc(bootstrap(route(), [cluster("a", 8080)]))
    assert [lc.name for lc in compiled.runtime.listeners] == ["main"]
    assert compiled.runtime.clusters["a"].settings.endpoints[0].port == 8080


def test_yaml_and_json_files(tmp_path) -> None:
    import json

    import yaml
    doc = bootstrap(route(), [cluster("a", 8080)])
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(doc))
    (tmp_path / "b.json").write_text(json.dumps(doc))
    assert load_bootstrap(tmp_path / "b.yaml").message == load_bootstrap(tmp_path / "b.json").message
    with pytest.raises(ProxyConfigError, match="cannot read"):
        load_bootstrap(tmp_path / "missing.yaml")


def test_dynamic_resources_other_than_ads_v3_rejected() -> None:
    doc = bootstrap(route(), [cluster("a", 8080)])
    doc["dynamic_resources"] = {"ads_config": {"api_type": "GRPC"}}
    assert error_of(doc).field_path == "dynamic_resources.ads_config.transport_api_version"


def test_layered_runtime_warns_only_for_the_keys_it_ignores() -> None:
    doc = bootstrap(route(), [cluster("a", 8080)])
    doc["layered_runtime"] = {"layers": [{"name": "x", "static_layer": {
        "fault": {"http": {"abort": {"abort_percent": 5}}}, "re2": {"max_program_size": {"error_level": 10}}}}]}
    warned = [w.split(": ", 1)[0] for w in compile_doc(doc).runtime.warnings if w.startswith("layered_runtime")]
    assert warned == ["layered_runtime.layers[0].static_layer['re2.max_program_size.error_level']"]


@pytest.mark.parametrize(("mutate", "path"), [
    (lambda d: d["static_resources"]["clusters"][0].update(outlier_detection={"max_ejection_percent": 101}),
     "static_resources.clusters[0].outlier_detection"),
    (lambda d: d["static_resources"]["clusters"][0].update(type="EDS"), "static_resources.clusters[0].type"),
    (lambda d: d["static_resources"]["clusters"][0].update(lb_policy="LOAD_BALANCING_POLICY_CONFIG"), "static_resources.clusters[0].lb_policy"),
    (lambda d: d["static_resources"]["listeners"][0]["filter_chains"][0].update(filter_chain_match={"destination_port": 80}),
     "static_resources.listeners[0].filter_chains[0].filter_chain_match"),
    (lambda d: _hcm(d)["route_config"]["virtual_hosts"][0]["routes"][0]["route"].update(hedge_policy={"hedge_on_per_try_timeout": True}),
     "route_config.virtual_hosts[0].routes[0].route.hedge_policy"),
    (lambda d: _hcm(d)["route_config"]["virtual_hosts"][0]["routes"][0]["route"].update(cluster="missing"),
     "route_config.virtual_hosts[0].routes[0].route.cluster"),
    (lambda d: _hcm(d)["route_config"]["virtual_hosts"][0]["routes"][0]["match"].update(prefix=None, safe_regex={"regex": "(("}),
     "routes[0].match.safe_regex.regex"),
    (lambda d: _hcm(d)["http_filters"].insert(0, {"name": "lua", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua"}}),
     "http_filters[0].typed_config"),
    (lambda d: _hcm(d)["http_filters"].append(dict(_hcm(d)["http_filters"][0])), "http_filters"),
    (lambda d: _hcm(d).update(codec_type="HTTP2"), "typed_config.codec_type"),
])
def test_unsupported_config_names_the_field(mutate, path: str) -> None:
    doc = bootstrap(route(), [cluster("a", 8080)])
    mutate(doc)
    _drop_nones(doc)
    err = error_of(doc)
    assert path in err.field_path, (err.field_path, err.message)


@pytest.mark.parametrize(("mutate", "path"), [
    (lambda d: d["static_resources"]["listeners"][0].update(address={"pipe": {"path": "/tmp/l.sock"}}),
     "static_resources.listeners[0].address"),
    (lambda d: d["admin"].update(address={"pipe": {"path": "/tmp/admin.sock"}}), "admin.address"),
])
def test_unix_socket_addresses_outside_the_ads_cluster_are_errors(mutate, path: str) -> None:
    doc = bootstrap(route(), [cluster("a", 8080)])
    mutate(doc)
    assert error_of(doc).field_path == path


def test_listener_connection_limit_exemptions_are_accepted() -> None:
    """No global connection limit or overload manager exists: these ask for what already is."""
    doc = bootstrap(route(), [cluster("a", 8080)])
    doc["static_resources"]["listeners"][0].update(ignore_global_conn_limit=True, bypass_overload_manager=True)
    assert compile_doc(doc).runtime.warnings == []


def test_optional_unknown_filter_is_skipped() -> None:
    doc = bootstrap(route(), [cluster("a", 8080)])
    _hcm(doc)["http_filters"].insert(0, {"name": "lua", "is_optional": True, "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua"}})
    assert compile_doc(doc).runtime.listeners[0].hcm.filters == ("envoy.extensions.filters.http.router.v3.Router",)


def test_unknown_type_url() -> None:
    doc = bootstrap(route(), [cluster("a", 8080)])
    _hcm(doc)["http_filters"][0]["typed_config"]["@type"] = "type.googleapis.com/no.such.Type"
    with pytest.raises(ProxyConfigError, match="unknown @type"):
        parse_bootstrap(doc)


def _hcm(d: dict) -> dict:
    return d["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]


def _drop_nones(node) -> None:
    if isinstance(node, dict):
        for k in [k for k, v in node.items() if v is None]:
            del node[k]
        for v in node.values():
            _drop_nones(v)
    elif isinstance(node, list):
        for v in node:
            _drop_nones(v)
