"""WasmPlugin and TrafficExtension validation: URL rules, sha256, VM env, ports, attachment."""

from __future__ import annotations

from typing import Any

import pytest

from pilotfish.config.errors import Verdict
from pilotfish.config.loader import Document, to_resource
from pilotfish.config.validation import validate


def check(spec: Any, kind: str = "WasmPlugin") -> Verdict:
    doc = {"apiVersion": "extensions.istio.io/v1alpha1", "kind": kind, "metadata": {"name": "w", "namespace": "ns"}, "spec": spec}
    return validate(to_resource(Document(doc, "t.yaml", 1)))


@pytest.mark.parametrize("url", ["http://test.com/test", "oci://ghcr.io/a/b:1", "file:///opt/f.wasm", "test.com/test", "test", "https://h:8443/x"])
def test_supported_urls(url: str) -> None:
    assert check({"url": url}).valid


@pytest.mark.parametrize("url", ["ftp://test.com/test", "fake://example.com", "#%blah$#@"])
def test_unsupported_urls(url: str) -> None:
    v = check({"url": url})
    assert not v.valid
    assert "url must have schema one of [http, https, file, oci]" in v.errors[0]


def test_good_plugin() -> None:
    v = check({
        "url": "oci://x/y", "sha256": "01ba4719c80b6fe911b091a7c05124b64eeece964e09c058ef8f9805daca546b",
        "selector": {"matchLabels": {"istio": "ingressgateway"}}, "phase": "AUTHN", "priority": 10,
        "vmConfig": {"env": [{"name": "A", "valueFrom": "HOST"}, {"name": "B", "value": "b"}]},
        "match": [{"mode": "CLIENT", "ports": [{"number": 80}, {"number": 443}]}],
    })
    assert v.valid and not v.warnings, v


@pytest.mark.parametrize("spec,message", [
    ({"url": "http://x", "vmConfig": {"env": [{"name": "A", "valueFrom": "HOST", "value": "v"}]}}, "value may only be set when valueFrom is INLINE"),
    ({"url": "http://x", "vmConfig": {"env": [{"name": "A"}, {"name": "A"}]}}, "Duplicate value"),
    ({"url": "http://x", "match": [{"ports": [{"number": 80}, {"number": 80}]}]}, "Duplicate value"),
    ({"url": "http://x", "targetRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "g", "namespace": "o"}},
     "cross namespace referencing is not currently supported"),
    ({"url": "http://x", "targetRef": {"group": "wrong-group", "kind": "Gateway", "name": "g"}}, "targetRef must be to one of"),
    ({"url": "http://x", "selector": {"matchLabels": {"a": "b"}}, "targetRef": {"kind": "Service", "name": "s"}}, "only one of targetRefs or selector"),
])
def test_wasm_plugin_errors(spec: dict, message: str) -> None:
    v = check(spec)
    assert any(message in e for e in v.errors), v.errors


def test_traffic_extension_needs_exactly_one_filter() -> None:
    assert check({"lua": {"inlineCode": "x"}}, "TrafficExtension").valid
    assert check({"wasm": {"url": "oci://a/b"}, "targetRefs": [{"group": "", "kind": "Service", "name": "s"}]}, "TrafficExtension").valid
    assert "exactly one of wasm or lua must be set" in check({}, "TrafficExtension").errors[0]
    both = check({"lua": {"inlineCode": "x"}, "wasm": {"url": "oci://a/b"}}, "TrafficExtension")
    assert "exactly one of wasm or lua must be set" in both.errors[0]
    assert "url must have schema" in check({"wasm": {"url": "ftp://a"}}, "TrafficExtension").errors[0]
