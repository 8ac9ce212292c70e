"""Telemetry and extension models: YAML names, enums and schema limits."""

from __future__ import annotations

from typing import Any

import pytest

from pilotfish.config.errors import ConfigError
from pilotfish.config.loader import Document, to_resource
from pilotfish.config.models.extensions import PluginPhase, TrafficExtension, WasmPlugin
from pilotfish.config.models.telemetry import IstioMetric, TagOperation, Telemetry, WorkloadMode


def load(api_version: str, kind: str, spec: Any) -> Any:
    doc = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "t", "namespace": "ns"}, "spec": spec}
    return to_resource(Document(doc, "t.yaml", 1)).spec


FULL = {
    "tracing": [{"providers": [{"name": "otel"}], "randomSamplingPercentage": 10.5, "match": {"mode": "SERVER"},
                 "customTags": {"env": {"environment": {"name": "POD", "defaultValue": "x"}}}}],
    "metrics": [{"providers": [{"name": "prometheus"}], "reportingInterval": "10s",
                 "overrides": [{"match": {"metric": "REQUEST_COUNT", "mode": "CLIENT"}, "disabled": True,
                                "tagOverrides": {"request_host": {"operation": "REMOVE"}}}]}],
    "accessLogging": [{"providers": [{"name": "envoy"}], "filter": {"expression": "response.code >= 400"}}],
}


@pytest.mark.parametrize("version", ["v1", "v1alpha1"])
def test_telemetry_reads_every_section(version: str) -> None:
    spec = load(f"telemetry.istio.io/{version}", "Telemetry", FULL)
    assert isinstance(spec, Telemetry)
    assert spec.tracing[0].custom_tags["env"].environment.name == "POD"
    assert spec.tracing[0].match.mode is WorkloadMode.SERVER
    override = spec.metrics[0].overrides[0]
    assert override.match.metric is IstioMetric.REQUEST_COUNT
    assert override.tag_overrides["request_host"].operation is TagOperation.REMOVE
    assert spec.metrics[0].reporting_interval.nanos == 10_000_000_000
    assert spec.access_logging[0].filter.expression == "response.code >= 400"


@pytest.mark.parametrize("spec,field", [
    ({"tracing": [{"randomSamplingPercentage": 101}]}, "spec.tracing[0].randomSamplingPercentage"),
    ({"metrics": [{"providers": [{"name": ""}]}]}, "spec.metrics[0].providers[0].name"),
    ({"metrics": [{"overrides": [{"match": {"metric": "REQUESTS"}}]}]}, "spec.metrics[0].overrides[0].match.metric"),
])
def test_telemetry_schema_errors_name_the_field(spec: dict, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        load("telemetry.istio.io/v1", "Telemetry", spec)
    assert info.value.field_path == field


def test_wasm_plugin_fields() -> None:
    spec = load("extensions.istio.io/v1alpha1", "WasmPlugin", {
        "url": "oci://ghcr.io/x/y:1", "phase": "AUTHZ", "priority": 10, "pluginConfig": {"nested": {"a": [1, 2]}},
        "match": [{"mode": "SERVER", "ports": [{"number": 8080}]}], "vmConfig": {"env": [{"name": "A", "valueFrom": "HOST"}]},
    })
    assert isinstance(spec, WasmPlugin)
    assert spec.phase is PluginPhase.AUTHZ
    assert spec.plugin_config == {"nested": {"a": [1, 2]}}
    assert spec.match[0].ports[0].number == 8080


@pytest.mark.parametrize("spec,field", [
    ({}, "spec.url"),
    ({"url": "http://x", "sha256": "abc"}, "spec.sha256"),
    ({"url": "http://x", "match": [{"ports": [{}]}]}, "spec.match[0].ports[0].number"),
    ({"url": "http://x", "phase": "UNSPECIFIED"}, "spec.phase"),
])
def test_wasm_plugin_schema_errors_name_the_field(spec: dict, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        load("extensions.istio.io/v1alpha1", "WasmPlugin", spec)
    assert info.value.field_path == field


def test_traffic_extension_lua() -> None:
    spec = load("extensions.istio.io/v1alpha1", "TrafficExtension", {"phase": "UNSPECIFIED", "lua": {"inlineCode": "function envoy_on_request(h) end"}})
    assert isinstance(spec, TrafficExtension)
    assert spec.lua.inline_code.startswith("function")
