"""k8sgateway.SelectorAnalyzer: label selectors on Gateway API gateway pods have no effect."""

from __future__ import annotations

from pilotfish.config.analysis import analyze
from pilotfish.config.analysis.testing import findings, load_yaml

TEXT = """
apiVersion: v1
kind: Pod
metadata: {name: gw-pod, namespace: default, labels: {gateway.networking.k8s.io/gateway-name: gw}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: by-selector, namespace: default}
spec: {selector: {matchLabels: {gateway.networking.k8s.io/gateway-name: gw}}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: by-target, namespace: default}
spec: {targetRef: {group: gateway.networking.k8s.io, kind: Gateway, name: gw}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: other-ns, namespace: elsewhere}
spec: {selector: {matchLabels: {gateway.networking.k8s.io/gateway-name: gw}}}
"""


def test_selector_on_kubernetes_gateway_pods_is_ineffective() -> None:
    msgs = analyze(load_yaml(TEXT), analyzers=["k8sgateway.SelectorAnalyzer"])
    assert findings(msgs) == [("IST0166", "AuthorizationPolicy default/by-selector")]
    assert "Ineffective selector on Kubernetes Gateway gw" in msgs[0].text
