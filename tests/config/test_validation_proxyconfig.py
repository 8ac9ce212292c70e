"""ProxyConfig validation."""

from __future__ import annotations

from typing import Any

from pilotfish.config.errors import Verdict
from pilotfish.config.loader import Document, to_resource
from pilotfish.config.validation import validate


def check(kind: str, spec: Any, api_version: str = "networking.istio.io/v1") -> Verdict:
    doc = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "x", "namespace": "ns"}, "spec": spec}
    return validate(to_resource(Document(doc, "test.yaml", 1)))


def test_proxy_config() -> None:
    assert check("ProxyConfig", {}, "networking.istio.io/v1beta1").valid
    v = check("ProxyConfig", {"selector": {"matchLabels": {}}}, "networking.istio.io/v1beta1")
    assert v.valid and v.warnings == ["workload selector specified without labels"]
    errors = check("ProxyConfig", {"selector": {"matchLabels": {"": "x"}}}, "networking.istio.io/v1beta1").errors
    assert 'empty key is not supported in selector: "=x"' in errors
