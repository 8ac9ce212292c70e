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
    assert v.valid and any("no_such_field" in w for w in v.warnings)


def test_envoy_filter_typed_config_types_resolve() -> None:
    value = {
        "name": "envoy.filters.http.lua",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua", "inlineCode": "x"},
    }
    assert envoy_filter({"applyTo": "HTTP_FILTER", "patch": {"operation": "INSERT_FIRST", "value": value}}).valid
    unknown = {"name": "f", "typed_config": {"@type": "type.googleapis.com/no.such.Type"}}
    errors = envoy_filter({"applyTo": "HTTP_FILTER", "patch": {"operation": "INSERT_FIRST", "value": unknown}}).errors
    assert any("referenced type unknown" in e for e in errors)


def test_envoy_filter_cel_rules() -> None:
    ref = {"kind": "Gateway", "group": "gateway.networking.k8s.io", "name": "gw"}
    errors = envoy_filter(workloadSelector={"labels": {"a": "b"}}, targetRefs=[ref]).errors
    assert 'spec: Invalid value: "object": only one of targetRefs or workloadSelector can be set' in errors
    wrong = {"applyTo": "HTTP_FILTER", "match": {"context": "SIDECAR_INBOUND", "waypoint": {}}, "patch": {"operation": "REMOVE"}}
    assert any("only support waypointMatch when context is WAYPOINT" in e for e in envoy_filter(wrong).errors)
