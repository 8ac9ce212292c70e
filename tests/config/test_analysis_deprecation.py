"""DeprecationAnalyzer: deprecated VirtualService and Sidecar fields."""

from __future__ import annotations

from pilotfish.config.analysis import analyze
from pilotfish.config.analysis.testing import findings, load_yaml

TEXT = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: old, namespace: foo}
spec:
  hosts: [reviews]
  http:
  - fault: {delay: {percent: 10, fixedDelay: 5s}}
    route: [{destination: {host: reviews}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: new, namespace: foo}
spec:
  hosts: [ratings]
  http:
  - fault: {delay: {percentage: {value: 10}, fixedDelay: 5s}}
    route: [{destination: {host: ratings}}]
"""


def test_delay_percent_is_deprecated() -> None:
    msgs = analyze(load_yaml(TEXT), analyzers=["deprecation.DeprecationAnalyzer"])
    assert findings(msgs) == [("IST0002", "VirtualService foo/old")]
    assert msgs[0].text == "Deprecated: HTTPRoute.fault.delay.percent is deprecated; use HTTPRoute.fault.delay.percentage"
