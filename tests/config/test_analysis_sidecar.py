"""Sidecar analyzers: selectors that match nothing, overlaps, namespace defaults, ambient workloads."""

from __future__ import annotations

from pilotfish.config.analysis import analyze
from pilotfish.config.analysis.testing import findings, load_yaml


def sidecar(name: str, ns: str, labels: str = "") -> str:
    selector = f"  workloadSelector: {{labels: {{{labels}}}}}\n" if labels else ""
    return f"""
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {{name: {name}, namespace: {ns}}}
spec:
{selector}  egress: [{{hosts: ["./*"]}}]
---"""


PODS = """
apiVersion: v1
kind: Pod
metadata: {name: app-1, namespace: ns, labels: {app: a, tier: web}}
---
apiVersion: v1
kind: Namespace
metadata: {name: amb, labels: {istio.io/dataplane-mode: ambient}}
---
apiVersion: v1
kind: Pod
metadata: {name: z, namespace: amb, labels: {app: z}, annotations: {ambient.istio.io/redirection: enabled}}
---"""


def run(text: str, name: str = "sidecar.SelectorAnalyzer") -> list[tuple[str, str]]:
    return findings(analyze(load_yaml(text), analyzers=[name]))


def test_selector_must_match_a_pod_in_its_namespace() -> None:
    text = PODS + sidecar("ok", "ns", "app: a") + sidecar("none", "ns", "app: b") + sidecar("elsewhere", "other", "app: a")
    assert run(text) == [("IST0101", "Sidecar ns/none"), ("IST0101", "Sidecar other/elsewhere")]


def test_two_sidecars_selecting_one_pod() -> None:
    text = PODS + sidecar("s1", "ns", "app: a") + sidecar("s2", "ns", "tier: web")
    assert run(text) == [("IST0110", "Sidecar ns/s1"), ("IST0110", "Sidecar ns/s2")]


def test_two_namespace_wide_sidecars() -> None:
    text = sidecar("d1", "ns") + sidecar("d2", "ns") + sidecar("d3", "other")
    expected = [("IST0111", "Sidecar ns/d1"), ("IST0111", "Sidecar ns/d2")]
    assert run(text) == expected
    assert run(text, "sidecar.DefaultSelectorAnalyzer") == expected


def test_sidecars_have_no_effect_in_ambient() -> None:
    text = PODS + sidecar("wide", "amb") + sidecar("pod", "amb", "app: z")
    assert run(text) == [("IST0167", "Sidecar amb/pod"), ("IST0167", "Sidecar amb/wide")]
