"""Telemetry validation: Istio's verdicts, the CRD's CEL rules, the access-log filter syntax."""

from __future__ import annotations

from typing import Any

import pytest

from pilotfish.config.errors import Verdict
from pilotfish.config.loader import Document, to_resource
from pilotfish.config.validation import validate
from pilotfish.config.validation.telemetry_cel import CelSyntaxError, parse_cel


def check(spec: Any) -> Verdict:
    doc = {"apiVersion": "telemetry.istio.io/v1", "kind": "Telemetry", "metadata": {"name": "t", "namespace": "ns"}, "spec": spec}
    return validate(to_resource(Document(doc, "t.yaml", 1)))


def test_empty_and_typical_telemetry_are_valid() -> None:
    assert check({}).valid
    v = check({
        "selector": {"matchLabels": {"app": "a"}},
        "tracing": [{"providers": [{"name": "zipkin"}], "randomSamplingPercentage": 1, "customTags": {"cluster": {"literal": {"value": "c1"}}}}],
        "metrics": [{"overrides": [{"match": {"metric": "ALL_METRICS"}, "tagOverrides": {"x": {"operation": "UPSERT", "value": "request.host"}}}]}],
        "accessLogging": [{"providers": [{"name": "envoy"}, {"name": "otel"}], "filter": {"expression": "response.code >= 500"}}],
    })
    assert v.valid and not v.warnings, v


def test_multiple_tracing_and_providers_warn() -> None:
    v = check({"tracing": [{}, {"providers": [{"name": "a"}, {"name": "b"}]}]})
    assert v.valid
    assert "multiple tracing is not currently supported" in v.warnings
    assert "multiple providers is not currently supported" in v.warnings


@pytest.mark.parametrize("spec,message", [
    ({"metrics": [{"overrides": [{"tagOverrides": {"foo": {"operation": "UPSERT"}}}]}]}, "value must be set when operation is UPSERT"),
    ({"metrics": [{"overrides": [{"tagOverrides": {"foo": {}}}]}]}, "tagOverrides.value must be set when operation is UPSERT"),
    ({"metrics": [{"overrides": [{"tagOverrides": {"foo": {"operation": "REMOVE", "value": "x"}}}]}]}, "value must not be set when operation is REMOVE"),
    ({"metrics": [{"overrides": [{"match": {"metric": "REQUEST_COUNT", "customMetric": "x"}}]}]}, "oneOf"),
    ({"metrics": [{"reportingInterval": "0.1ms"}]}, "must be a valid duration greater than 1ms"),
    ({"tracing": [{"customTags": {"a": {"literal": {"value": "x"}, "header": {"name": "h"}}}}]}, "oneOf"),
    ({"accessLogging": [{"filter": {"expression": "response.code >="}}]}, "must be a valid CEL expression"),
    ({"accessLogging": [{"filter": {}}]}, "must be a valid CEL expression"),
    ({"targetRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway"}}, "spec.targetRef.name: Required value"),
])
def test_telemetry_errors(spec: dict, message: str) -> None:
    v = check(spec)
    assert not v.valid
    assert any(message in e for e in v.errors), v.errors


def test_remove_without_value_is_valid() -> None:
    assert check({"metrics": [{"overrides": [{"tagOverrides": {"foo": {"operation": "REMOVE"}}}]}]}).valid


@pytest.mark.parametrize("expr", [
    "true", "response.code >= 400 && request.headers['x'] != ''", "has(request.headers.foo)", "[1, 2].all(x, x > 0)",
    "a ? b : c", "{'a': 1}['a'] == 1", "r'raw\\' + b'x'", "google.protobuf.Int64Value{value: 3}", "x in [1, 2,]",
])
def test_cel_accepts_valid_expressions(expr: str) -> None:
    parse_cel(expr)


@pytest.mark.parametrize("expr", ["", "a >=", "(a", "a b", "if", "a.if", "1 +* 2", '"open', "{a}"])
def test_cel_rejects_bad_syntax(expr: str) -> None:
    with pytest.raises(CelSyntaxError):
        parse_cel(expr)
