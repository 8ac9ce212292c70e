"""EnvoyFilter validation."""

from __future__ import annotations

from typing import Any

from pilotfish.config.errors import Verdict
from pilotfish.config.loader import Document, to_resource
from pilotfish.config.validation import validate
from pilotfish.config.validation.envoyfilter import ENVOY_FILTER_WARNING


def check(kind: str, spec: Any, api_version: str = "networking.istio.io/v1") -> Verdict:
    doc = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "x", "namespace": "ns"}, "spec": spec}
    return validate(to_resource(Document(doc, "test.yaml", 1)))


def envoy_filter(*patches: dict[str, Any], **spec: Any) -> Verdict:
    return check("EnvoyFilter", {"configPatches": list(patches), **spec}, "networking.istio.io/v1alpha3")


def test_every_envoy_filter_warns() -> None:
    v = envoy_filter({"applyTo": "CLUSTER", "patch": {"operation": "REMOVE"}})
    assert v.valid and v.warnings[0] == ENVOY_FILTER_WARNING


def test_envoy_filter_patch_must_be_complete() -> None:
    assert "Envoy filter: missing applyTo" in envoy_filter({"patch": {"operation": "REMOVE"}}).errors
    assert "Envoy filter: missing patch" in envoy_filter({"applyTo": "CLUSTER"}).errors
    assert "Envoy filter: missing patch operation" in envoy_filter({"applyTo": "CLUSTER", "patch": {}}).errors
    assert "Envoy filter: missing patch value for non-remove operation" in envoy_filter({"applyTo": "CLUSTER", "patch": {"operation": "MERGE"}}).errors


def test_envoy_filter_match_must_fit_apply_to() -> None:
    patch = {"applyTo": "CLUSTER", "match": {"listener": {"portNumber": 80}}, "patch": {"operation": "REMOVE"}}
    assert "Envoy filter: applyTo for cluster class objects cannot have non cluster match" in envoy_filter(patch).errors
    sub = {"filterChain": {"filter": {"name": "envoy.filters.network.tcp_proxy", "subFilter": {"name": "x"}}}}
    patch = {"applyTo": "HTTP_FILTER", "match": {"listener": sub}, "patch": {"operation": "REMOVE"}}
    assert any(e.startswith("Envoy filter: subfilter match requires filter match with") for e in envoy_filter(patch).errors)


def test_envoy_filter_proxy_version_is_re2() -> None:
    patch = {"applyTo": "CLUSTER", "match": {"proxy": {"proxyVersion": "(?=1)"}}, "patch": {"operation": "REMOVE"}}
    assert any(e.startswith("Envoy filter: invalid regex for proxy version") for e in envoy_filter(patch).errors)


def test_envoy_filter_value_is_parsed_as_envoy_config() -> None:
    good = {"applyTo": "CLUSTER", "patch": {"operation": "ADD", "value": {"name": "c", "connect_timeout": "1s"}}}
    assert envoy_filter(good).valid
    bad = {"applyTo": "CLUSTER", "patch": {"operation": "ADD", "value": {"name": 5, "connect_timeout": "soon"}}}
    assert not envoy_filter(bad).valid
    unknown = {"applyTo": "CLUSTER", "patch": {"operation": "MERGE", "value": {"no_such_field": 1}}}
    v = envoy_filter(unknown)
    assert v.valid and 'unknown field "no_such_field"' in v.warnings  # protojson's words, one line


def http_filter(name: str, /, **config: Any) -> dict[str, Any]:
    value = {"name": "f", "typed_config": {"@type": f"type.googleapis.com/{name}", **config}}
    return {"applyTo": "HTTP_FILTER", "patch": {"operation": "INSERT_FIRST", "value": value}}


def network_filter(name: str, /, **config: Any) -> dict[str, Any]:
    value = {"name": "f", "typed_config": {"@type": f"type.googleapis.com/{name}", **config}}
    return {"applyTo": "NETWORK_FILTER", "patch": {"operation": "INSERT_FIRST", "value": value}}


def test_envoy_filter_accepts_istio_extension_types() -> None:
    # Istio's own Envoy extensions resolve in istiod though xds-protos has no descriptor for them.
    alpn = http_filter("istio.envoy.config.filter.http.alpn.v2alpha1.FilterConfig", alpn_override=[{"alpn_override": ["h2"]}])
    rewrite = network_filter("istio.envoy.config.filter.network.tcp_cluster_rewrite.v2alpha1.TcpClusterRewrite", cluster_pattern="x")
    stats = http_filter("stats.PluginConfig", disable_host_header_fallback=True)
    for patch in (alpn, rewrite, stats):
        v = envoy_filter(patch)
        assert v.valid, v.errors
        assert v.warnings == [ENVOY_FILTER_WARNING]


def test_envoy_filter_accepts_contrib_types() -> None:
    for patch in (
        network_filter("envoy.extensions.filters.network.mysql_proxy.v3.MySQLProxy", stat_prefix="mysql"),
        network_filter("envoy.tcp.metadataexchange.config.MetadataExchange", protocol="istio-peer-exchange"),
        network_filter("envoy.extensions.filters.network.kafka_broker.v3.KafkaBroker", stat_prefix="kafka"),
    ):
        assert envoy_filter(patch).valid


def test_envoy_filter_refuses_v2_types_with_istios_hint() -> None:
    # Istio's envoyfilter_test.go "deprecated config": ext_authz.v2 no longer resolves.
    url = "type.googleapis.com/envoy.config.filter.network.ext_authz.v2.ExtAuthz"
    errors = envoy_filter(network_filter(url.rpartition("/")[2])).errors
    assert errors == [
        "referenced type unknown (hint: try using the v3 XDS API): Envoy filter: could not resolve Any message type: " + url
    ]


def test_envoy_filter_refuses_unknown_types() -> None:
    for name in ("no.such.Type", "envoy.extensions.filters.http.no_such_filter.v3.Config"):
        errors = envoy_filter(http_filter(name)).errors
        assert errors == [f"referenced type unknown: Envoy filter: could not resolve Any message type: type.googleapis.com/{name}"]
    # A type xds-protos ships but Istio's registry does not (a v2 API message) is refused too.
    errors = envoy_filter(http_filter("envoy.config.filter.http.fault.v2.HTTPFault")).errors
    assert errors and errors[0].startswith("referenced type unknown (hint: try using the v3 XDS API)")


def test_envoy_filter_resolves_nested_types_only_where_they_are_any() -> None:
    # A TypedStruct's value is a Struct: an @type inside it is data, not a type to resolve.
    typed_struct = http_filter("udpa.type.v1.TypedStruct", type_url="x", value={"config": {"@type": "no.such.Type"}})
    assert envoy_filter(typed_struct).valid
    # An unresolvable Any nested inside a known message is found.
    lua = http_filter(
        "envoy.extensions.filters.http.composite.v3.ExecuteFilterAction",
        typed_config={"name": "inner", "typed_config": {"@type": "type.googleapis.com/envoy.config.filter.http.lua.v2.Lua"}},
    )
    errors = envoy_filter(lua).errors
    assert errors == [
        "referenced type unknown (hint: try using the v3 XDS API): Envoy filter: could not resolve Any message type: "
        "type.googleapis.com/envoy.config.filter.http.lua.v2.Lua"
    ]


def test_envoy_filter_checks_known_v3_types_field_by_field() -> None:
    lua = http_filter("envoy.extensions.filters.http.lua.v3.Lua", inline_code="function envoy_on_request(h) end")
    assert envoy_filter(lua).valid
    wrong_type = http_filter("envoy.extensions.filters.http.lua.v3.Lua", inline_code=["not", "a", "string"])
    assert not envoy_filter(wrong_type).valid
    unknown_field = envoy_filter(http_filter("envoy.extensions.filters.http.lua.v3.Lua", no_such_field=1))
    assert unknown_field.valid and 'unknown field "no_such_field"' in unknown_field.warnings


def test_envoy_filter_skips_waypoint_patches_as_istio_does() -> None:
    patch = {"applyTo": "HTTP_FILTER", "match": {"context": "WAYPOINT", "waypoint": {}}, "patch": {"operation": "MERGE"}}
    assert envoy_filter(patch).valid


def test_envoy_filter_long_proxy_version_is_a_warning() -> None:
    patch = {"applyTo": "CLUSTER", "match": {"proxy": {"proxyVersion": "1" * 1025}}, "patch": {"operation": "REMOVE"}}
    v = envoy_filter(patch)
    assert v.valid
    assert "Envoy filter: proxyVersion match exceeds 1024 characters and will be ignored" in v.warnings


def test_envoy_filter_cel_rules() -> None:
    ref = {"kind": "Gateway", "group": "gateway.networking.k8s.io", "name": "gw"}
    errors = envoy_filter(workloadSelector={"labels": {"a": "b"}}, targetRefs=[ref]).errors
    assert 'spec: Invalid value: "object": only one of targetRefs or workloadSelector can be set' in errors
    wrong = {"applyTo": "HTTP_FILTER", "match": {"context": "SIDECAR_INBOUND", "waypoint": {}}, "patch": {"operation": "REMOVE"}}
    assert any("only support waypointMatch when context is WAYPOINT" in e for e in envoy_filter(wrong).errors)
