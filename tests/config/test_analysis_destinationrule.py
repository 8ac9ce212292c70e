"""DestinationRule analyzers: TLS without CA certificates, unknown hosts, subsets selecting no pod."""

from __future__ import annotations

from pilotfish.config.analysis import analyze
from pilotfish.config.analysis.testing import findings, load_yaml


def dr(name: str, body: str) -> str:
    return f"""
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: {name}, namespace: default}}
spec:
{body}
---"""


def run(text: str, name: str) -> list[tuple[str, str]]:
    return findings(analyze(load_yaml(text), analyzers=[name]))


def test_tls_without_ca_certificates() -> None:
    text = (
        dr("simple", "  host: db\n  trafficPolicy: {tls: {mode: SIMPLE}}")
        + dr("with-ca", "  host: db\n  trafficPolicy: {tls: {mode: MUTUAL, caCertificates: /ca.pem}}")
        + dr("istio", "  host: db\n  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}")
        + dr("port", "  host: db\n  trafficPolicy: {portLevelSettings: [{port: {number: 5432}, tls: {mode: SIMPLE}}]}")
        + dr(
            "selected",
            "  host: db\n  workloadSelector: {matchLabels: {app: x}}\n  trafficPolicy: {tls: {mode: SIMPLE, credentialName: creds}}",
        )
    )
    msgs = analyze(load_yaml(text), analyzers=["destinationrule.CaCertificateAnalyzer"])
    assert findings(msgs) == [("IST0128", "DestinationRule default/simple"), ("IST0129", "DestinationRule default/port")]
    port_msg = next(m for m in msgs if m.code == "IST0129")
    assert port_msg.text.endswith("for host: db at port number:5432")


def test_unknown_host_and_subsets_without_pods() -> None:
    text = """
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec: {selector: {app: web}, ports: [{name: http, port: 80}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: default, labels: {app: web, version: v1}}
spec: {nodeName: node-a}
---
apiVersion: v1
kind: Node
metadata: {name: node-a, labels: {topology.kubernetes.io/zone: z1}}
---""" + dr("fake", "  host: ghost.default.svc.cluster.local") + dr(
        "web",
        "  host: web\n  subsets:\n  - {name: v1, labels: {version: v1}}\n  - {name: v2, labels: {version: v2}}\n"
        "  - {name: zonal, labels: {topology.kubernetes.io/zone: z1}}",
    )
    assert run(text, "destinationrule.PodNotSelectedAnalyzer") == [
        ("IST0173", "DestinationRule default/web"),
        ("IST0174", "DestinationRule default/fake"),
    ]
