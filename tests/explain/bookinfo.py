"""Bookinfo-like Istio YAML for explain's tests (ServiceEntries and WorkloadEntries, so no
Kubernetes objects are needed), written into a temporary config directory, and the command run
in process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from pilotfish.cli.main import cli

CLIENT = "sidecar~10.0.0.5~client-1.default~default.svc.cluster.local"
GATEWAY = "router~10.0.0.9~ingress-1.istio-system~istio-system.svc.cluster.local"

REVIEWS = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews.default.svc.cluster.local]
  addresses: [10.0.0.2]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: reviews}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v1, namespace: default}
spec: {address: 10.1.0.11, labels: {app: reviews, version: v1}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v2, namespace: default}
spec: {address: 10.1.0.12, labels: {app: reviews, version: v2}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v3, namespace: default}
spec: {address: 10.1.0.13, labels: {app: reviews, version: v3}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews.default.svc.cluster.local
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  - {name: v3, labels: {version: v3}}
"""

REVIEWS_VS = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - route:
    - {destination: {host: reviews, subset: v1}, weight: 80}
    - {destination: {host: reviews, subset: v3}, weight: 20}
"""


def gateway_yaml(port: int, backend_port: int = 9080) -> str:
    """A gateway on ``port`` for two hosts; a VirtualService binds only bookinfo.example.com."""
    return f"""
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: bookinfo-gw, namespace: default}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: {port}, name: http, protocol: HTTP}}
    hosts: [bookinfo.example.com, unbound.example.com]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: productpage, namespace: default}}
spec:
  hosts: [productpage.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 9080, name: http, protocol: HTTP}}]
  workloadSelector: {{labels: {{app: productpage}}}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: productpage-v1, namespace: default}}
spec: {{address: 127.0.0.1, ports: {{http: {backend_port}}}, labels: {{app: productpage, version: v1}}}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: bookinfo, namespace: default}}
spec:
  hosts: [bookinfo.example.com]
  gateways: [bookinfo-gw]
  http:
  - match: [{{uri: {{prefix: /api}}}}]
    route: [{{destination: {{host: productpage, port: {{number: 9080}}}}}}]
  - match: [{{uri: {{exact: /productpage}}}}]
    route: [{{destination: {{host: productpage, port: {{number: 9080}}}}}}]
"""


def config_dir(root: Path, *texts: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i, text in enumerate(texts):
        (root / f"{i:02d}.yaml").write_text(text)
    return root


def run(*args: str) -> tuple[int, str]:
    """``pilotfish x explain ARGS`` in process: (exit code, stdout)."""
    result = CliRunner().invoke(cli, ["x", "explain", *args], catch_exceptions=False)
    return result.exit_code, result.output


def explain_json(*args: str) -> dict[str, Any]:
    code, out = run(*args, "-o", "json")
    assert code == 0, out
    return json.loads(out)  # type: ignore[no-any-return]
