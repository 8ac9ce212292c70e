"""ConditionAnalyzer: negative status conditions, including Gateway API objects."""

from __future__ import annotations

from pilotfish.config.analysis import analyze
from pilotfish.config.analysis.testing import findings, load_yaml

TEXT = """
apiVersion: v1
kind: Service
metadata: {name: svc, namespace: default}
status:
  conditions:
  - {type: istio.io/WaypointBound, status: "False", reason: NoWaypoint, message: not ready}
  - {type: argocd.argoproj.io/Synced, status: "False", reason: OutOfSync, message: ignored}
---
apiVersion: v1
kind: Service
metadata: {name: healthy, namespace: default}
status: {conditions: [{type: istio.io/WaypointBound, status: "True"}]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: partial, namespace: default}
status: {conditions: [{type: WaypointAccepted, status: "True", reason: PartiallyInvalid, message: bad ref}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: route, namespace: default}
spec: {parentRefs: [{name: gw}]}
status:
  parents:
  - parentRef: {name: gw}
    conditions: [{type: Accepted, status: "False", reason: NotAllowed, message: nope}]
"""


def test_negative_conditions_are_reported_with_their_reason() -> None:
    msgs = analyze(load_yaml(TEXT), analyzers=["conditions.ConditionAnalyzer"])
    assert findings(msgs) == [
        ("IST0171", "AuthorizationPolicy default/partial"),
        ("IST0171", "HTTPRoute default/route"),
        ("IST0171", "Service default/svc"),
    ]
    svc = next(m for m in msgs if m.resource.name == "svc")
    assert svc.text == "A condition with a negative status is present: type=istio.io/WaypointBound, reason=NoWaypoint, message=not ready."
