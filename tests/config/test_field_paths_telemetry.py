"""Telemetry, WasmPlugin, TrafficExtension and ProxyConfig messages name their field from the root."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pilotfish.cli.main import cli
from pilotfish.config.errors import FieldPath, Verdict, field_path
from pilotfish.config.loader import Document, to_resource
from pilotfish.config.validation import validate

TELEMETRY_API, EXTENSIONS_API = "telemetry.istio.io/v1", "extensions.istio.io/v1alpha1"


def resource(api: str, kind: str, spec: str) -> str:
    """A resource named ``x`` whose ``spec`` body starts on line 5."""
    return f"apiVersion: {api}\nkind: {kind}\nmetadata: {{name: x}}\nspec:\n{spec}"


TELEMETRY = resource(TELEMETRY_API, "Telemetry", """\
  tracing:
  - providers: [{name: a}, {name: b}]
  - {}
  metrics:
  - overrides:
    - tagOverrides:
        foo: {}
        "": {operation: REMOVE}
  accessLogging:
  - filter:
      expression: "response.code >="
""")
TELEMETRY_CRD = resource(TELEMETRY_API, "Telemetry", """\
  metrics:
  - overrides:
    - match: {metric: REQUEST_COUNT}
      tagOverrides:
        foo: {operation: UPSERT}
""")
WASM = resource(EXTENSIONS_API, "TrafficExtension", """\
  phase: AUTHN
  wasm:
    url: "http://x?%zz#%zz"
""")
WASM_CRD = resource(EXTENSIONS_API, "WasmPlugin", """\
  url: http://x
  vmConfig:
    env:
    - {name: A}
    - {name: A}
""")
PROXY_CONFIG = resource("networking.istio.io/v1beta1", "ProxyConfig", """\
  concurrency: 2
  selector:
    matchLabels: {app: "a*"}
""")


@pytest.mark.parametrize("text,header,lines", [
    (TELEMETRY, "11: Telemetry x", [
        "  error: spec.metrics[0].overrides[0].tagOverrides.foo.value: tagOverrides.value must be set when operation is UPSERT",
        "  error: spec.accessLogging[0].filter.expression: must be a valid CEL expression, "
        "Syntax error: mismatched input '<EOF>' expecting IDENTIFIER (line 15)",
        "  warning: spec.metrics[0].overrides[0].tagOverrides: tagOverrides.name may not be empty (line 10)",
        "  warning: spec.tracing: multiple tracing is not currently supported (line 5)",
        "  warning: spec.tracing[0].providers: multiple providers is not currently supported (line 6)"]),
    (TELEMETRY_CRD, "9: Telemetry x", [  # (the CRD's message names its field itself)
        '  error: spec.metrics[0].overrides[0].tagOverrides.foo: Invalid value: "object": value must be set when operation is UPSERT']),
    (WASM, "7: TrafficExtension x", ["  error: spec.wasm.url: failed to strict parse url: invalid URL escape '%zz'"]),
    (WASM_CRD, "9: WasmPlugin x", ['  error: spec.vmConfig.env[1]: Duplicate value: map[string]interface {}{"name":"A"}']),
    (PROXY_CONFIG, "6: ProxyConfig x", [
        '  error: spec.selector: wildcard is not supported in selector: "app=a*"',
        '  error: spec.selector.matchLabels.app: Invalid value: "string": wildcard not allowed in label value match']),
])
def test_cli_names_the_field_and_its_line(tmp_path: Path, text: str, header: str, lines: list[str]) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(text)
    result = CliRunner().invoke(cli, ["validate", "-f", str(path)])
    assert result.exit_code == 1
    assert result.output.splitlines()[:len(lines) + 1] == [f"{path}:{header}: invalid", *lines]


def check(kind: str, spec: dict[str, Any]) -> Verdict:
    api = {"Telemetry": TELEMETRY_API, "ProxyConfig": "networking.istio.io/v1beta1"}.get(kind, EXTENSIONS_API)
    doc = {"apiVersion": api, "kind": kind, "metadata": {"name": "x", "namespace": "ns"}, "spec": spec}
    return validate(to_resource(Document(doc, "x.yaml", 1)))


def paths(messages: list[str]) -> list[FieldPath]:
    return [field_path(m) for m in messages]


@pytest.mark.parametrize("kind,spec,errors", [
    ("Telemetry", {  # the CRD's rules
        "tracing": [{}, {"customTags": {"t": {"literal": {"value": "v"}, "header": {"name": "h"}}}}],
        "metrics": [{"reportingInterval": "0.1ms", "overrides": [{}, {
            "match": {"metric": "REQUEST_COUNT", "customMetric": "c"}, "tagOverrides": {"a": {"operation": "REMOVE", "value": "v"}}}]}],
        "selector": {"matchLabels": {"app": "a*"}}}, [
        ("spec", "selector"),
        ("spec", "tracing", 1, "customTags", "t"),
        ("spec", "metrics", 0, "reportingInterval"),
        ("spec", "metrics", 0, "overrides", 1, "match"),
        ("spec", "metrics", 0, "overrides", 1, "tagOverrides", "a")]),
    ("Telemetry", {  # Istio's webhook
        "tracing": [{"customTags": {"": {"literal": {"value": "v"}}}}],
        "metrics": [{"overrides": [{"tagOverrides": {"a": {"operation": "UPSERT", "value": "v"}, "b": {}}}]}],
        "accessLogging": [{}, {"filter": {}}],
        "targetRefs": [{"kind": "Pod", "name": "s"}]}, [
        ("spec", "targetRefs", 0),
        ("spec", "metrics", 0, "overrides", 0, "tagOverrides", "b", "value"),
        ("spec", "tracing", 0, "customTags"),
        ("spec", "accessLogging", 1, "filter", "expression")]),
    ("WasmPlugin", {"url": "ftp://x", "vmConfig": {"env": [{"name": "A", "valueFrom": "HOST", "value": "v"}]},
                    "match": [{}, {"ports": [{"number": 80}, {"number": 80}]}]}, [
        ("spec", "url"), ("spec", "vmConfig", "env", 0), ("spec", "match", 1, "ports", 1)]),
    ("WasmPlugin", {"url": "http://x?%zz#%zz"}, [("spec", "url")]),
    ("TrafficExtension", {"wasm": {"url": "ftp://x", "vmConfig": {"env": [{"name": "A"}, {"name": "A"}]}}}, [
        ("spec", "wasm", "url"), ("spec", "wasm", "vmConfig", "env", 1)]),
    ("TrafficExtension", {}, [("spec",)]),
])
def test_every_error_has_its_field(kind: str, spec: dict[str, Any], errors: list[FieldPath]) -> None:
    v = check(kind, spec)
    assert paths(v.errors) == errors, v.errors


def test_warnings_have_their_field() -> None:
    v = check("Telemetry", {"tracing": [{"providers": [{"name": "a"}, {"name": "b"}]}, {}],
                            "metrics": [{"overrides": [{"tagOverrides": {"": {"operation": "REMOVE"}}}]}],
                            "selector": {}})
    assert paths(v.warnings) == [("spec", "selector"), ("spec", "metrics", 0, "overrides", 0, "tagOverrides"),
                                 ("spec", "tracing"), ("spec", "tracing", 0, "providers")]
    assert paths(check("ProxyConfig", {"selector": {}}).warnings) == [("spec", "selector")]
