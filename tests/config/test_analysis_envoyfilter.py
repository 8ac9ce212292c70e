"""EnvoyFilter analyzer: ignored ADD/REMOVE/REPLACE patches, relative operations without priority."""

from __future__ import annotations

from pilotfish.config.analysis import analyze
from pilotfish.config.analysis.testing import findings, load_yaml


def ef(name: str, patches: str, priority: str = "") -> str:
    return f"""
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {{name: {name}, namespace: ns}}
spec:
  {priority}
  configPatches:
{patches}
---"""


def patch(apply_to: str, operation: str, version: str = "", name: str = "f") -> str:
    proxy = f", proxy: {{proxyVersion: '{version}'}}" if version else ""
    return f"  - applyTo: {apply_to}\n    match: {{context: SIDECAR_INBOUND{proxy}}}\n    patch: {{operation: {operation}, value: {{name: {name}}}}}\n"


def run(text: str) -> list[tuple[str, str]]:
    return findings(analyze(load_yaml(text), analyzers=["envoyfilter.EnvoyPatchAnalyzer"]))


def test_operations_ignored_for_the_target() -> None:
    text = ef("add", patch("HTTP_ROUTE", "ADD")) + ef("remove", patch("ROUTE_CONFIGURATION", "REMOVE")) + ef("replace", patch("CLUSTER", "REPLACE"))
    assert run(text) == [("IST0152", "EnvoyFilter ns/replace"), ("IST0153", "EnvoyFilter ns/add"), ("IST0154", "EnvoyFilter ns/remove")]


def test_relative_operations_need_a_priority() -> None:
    text = (
        ef("relative", patch("HTTP_FILTER", "INSERT_BEFORE"))
        + ef("prioritized", patch("HTTP_FILTER", "INSERT_BEFORE"), "priority: 10")
        + ef("absolute", patch("HTTP_FILTER", "INSERT_FIRST"))
        + ef("vhost", patch("VIRTUAL_HOST", "REPLACE"), "priority: 1")
    )
    assert run(text) == [("IST0151", "EnvoyFilter ns/relative")]


def test_proxy_version_patch_of_the_same_filter() -> None:
    text = ef("versioned", patch("HTTP_FILTER", "REPLACE", version="^1\\\\.11.*") + patch("HTTP_FILTER", "REPLACE"))
    assert run(text) == [("IST0151", "EnvoyFilter ns/versioned"), ("IST0155", "EnvoyFilter ns/versioned")]
