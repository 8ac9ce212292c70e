"""A small web workload for local-mesh tests: Python's http.server run by the pilotfish.io/run
annotation, serving ``web <version>`` from a directory named after its version."""

from __future__ import annotations

from pathlib import Path

WEB_SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 8000, targetPort: 9000}]
"""

GATEWAY = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: web}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]
"""


def web_deployment(version: str, replicas: int = 1, labels: str = "") -> str:
    """Deployment ``web-<version>``; ``labels`` adds pod labels (``key: value, …``)."""
    extra = f", {labels}" if labels else ""
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web-{version}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: web, version: {version}}}}}
  template:
    metadata:
      labels: {{app: web, version: {version}{extra}}}
      annotations: {{pilotfish.io/run: "{{python}} -m http.server --bind 127.0.0.1 --directory {version} {{port}}"}}
    spec:
      containers: [{{name: web, image: python:3.11-slim, ports: [{{containerPort: 9000}}]}}]
"""


def virtual_service(subset: str = "") -> str:
    """All of the gateway's traffic to web (its ``subset``, when given)."""
    to = f"{{host: web, subset: {subset}}}" if subset else "{host: web}"
    return f"""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: web}}
spec:
  hosts: ["*"]
  gateways: [web]
  http: [{{route: [{{destination: {to}}}]}}]
"""


def web_content(directory: Path, *versions: str) -> None:
    """What each version serves: ``<directory>/<version>/index.html``."""
    for v in versions:
        (directory / v).mkdir(exist_ok=True)
        (directory / v / "index.html").write_text(f"web {v}\n")


def documents(*docs: str) -> str:
    return "\n---\n".join(d.strip("\n") for d in docs) + "\n"
