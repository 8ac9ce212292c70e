"""Telemetry analyzers: selectors, namespace defaults, empty access-log providers, Lightstep."""

from __future__ import annotations

from pilotfish.config.analysis import analyze
from pilotfish.config.analysis.testing import findings, load_yaml
from pilotfish.config.models.kube import mesh_config_from_yaml


def telemetry(name: str, ns: str, body: str = "{}") -> str:
    return f"""
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {{name: {name}, namespace: {ns}}}
spec: {body}
---"""


POD = """
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: ns, labels: {app: a, v: "1"}}
---"""


def run(text: str, name: str, **kw) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return findings(analyze(load_yaml(text), analyzers=[name], **kw))


def test_selectors() -> None:
    text = POD + "".join(
        [
            telemetry("one", "ns", "{selector: {matchLabels: {app: a}}}"),
            telemetry("two", "ns", "{selector: {matchLabels: {v: '1'}}}"),
            telemetry("none", "ns", "{selector: {matchLabels: {app: ghost}}}"),
        ]
    )
    assert run(text, "telemetry.SelectorAnalyzer") == [
        ("IST0101", "Telemetry ns/none"),
        ("IST0159", "Telemetry ns/one"),
        ("IST0159", "Telemetry ns/two"),
    ]


def test_namespace_defaults() -> None:
    text = telemetry("a", "ns") + telemetry("b", "ns") + telemetry("c", "ns", "{selector: {matchLabels: {app: a}}}")
    assert run(text, "telemetry.DefaultSelectorAnalyzer") == [("IST0160", "Telemetry ns/a"), ("IST0160", "Telemetry ns/b")]


def test_access_logging_without_providers() -> None:
    text = telemetry("empty", "ns", "{accessLogging: [{match: {mode: CLIENT}}]}") + telemetry("quiet", "ns", "{accessLogging: [{disabled: true}]}")
    assert run(text, "telemetry.ProviderAnalyzer") == [("IST0157", "Telemetry ns/empty")]
    mesh = mesh_config_from_yaml("defaultProviders: {accessLogging: [envoy]}")
    assert run(text, "telemetry.ProviderAnalyzer", mesh_config=mesh) == []


def test_lightstep_is_deprecated() -> None:
    mesh = mesh_config_from_yaml("extensionProviders: [{name: ls, lightstep: {service: ls.svc, port: 443, accessToken: t}}]")
    text = telemetry("t", "istio-system", "{tracing: [{providers: [{name: ls}]}]}")
    assert run(text, "telemetry.LightstepAnalyzer", mesh_config=mesh) == [("IST0002", "Telemetry istio-system/t")]
    assert run(text, "telemetry.LightstepAnalyzer") == []
