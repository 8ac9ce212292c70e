"""Workload analyzers: Service port names, Deployments behind several Services, UID 1337, MeshNetworks."""

from __future__ import annotations

import pytest

from pilotfish.config.analysis import analyze
from pilotfish.config.analysis.testing import findings, load_yaml
from pilotfish.config.analysis.workloads import port_protocol
from pilotfish.config.models.kube import mesh_networks_from_yaml


@pytest.mark.parametrize(
    ("port", "name", "protocol", "app", "expected"),
    [
        (80, "http-web", None, None, "http"),
        (80, "web", None, "grpc", "grpc"),
        (80, "grpc-web-x", None, None, "grpc-web"),
        (3306, "db", None, None, "tcp"),
        (80, "web", None, None, ""),
        (53, "dns", "UDP", None, "udp"),
        (80, "x", None, "kubernetes.io/h2c", "http2"),
    ],
)
def test_port_protocol(port: int, name: str, protocol: str | None, app: str | None, expected: str) -> None:
    assert port_protocol(port, name, protocol, app) == expected


def test_port_names_without_a_protocol() -> None:
    text = """
apiVersion: v1
kind: Service
metadata: {name: web, namespace: ns}
spec: {ports: [{name: web, port: 8080, targetPort: 80}, {name: http, port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: ext, namespace: ns}
spec: {type: ExternalName, externalName: example.com, ports: [{name: tcp, port: 443}]}
---
apiVersion: v1
kind: Service
metadata: {name: istiod, namespace: istio-system, labels: {istio: pilot}}
spec: {ports: [{name: weird, port: 1}]}
"""
    msgs = analyze(load_yaml(text), analyzers=["service.PortNameAnalyzer"])
    assert findings(msgs) == [("IST0118", "Service ns/web"), ("IST0150", "Service ns/ext")]
    assert "Port name web (port: 8080, targetPort: 80)" in next(m.text for m in msgs if m.code == "IST0118")


DEPLOY = """
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio-injection: enabled}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: cart, namespace: shop}
spec:
  template:
    metadata: {labels: {app: cart}}
    spec:
      securityContext: {runAsUser: 1337}
      containers: [{name: cart, image: cart}]
---
apiVersion: v1
kind: Service
metadata: {name: a, namespace: shop}
spec: {selector: {app: cart}, ports: [{name: http, port: 80, targetPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: b, namespace: shop}
spec: {selector: {app: cart}, ports: [{name: udp, port: 80, protocol: UDP}, {name: http, port: 81, targetPort: 8080}]}
"""


def test_deployment_behind_conflicting_services() -> None:
    assert findings(analyze(load_yaml(DEPLOY), analyzers=["deployment.ServiceAssociationAnalyzer"])) == [
        ("IST0116", "Deployment shop/cart"),
        ("IST0137", "Deployment shop/cart"),
    ]


def test_application_running_as_the_sidecar_user() -> None:
    assert findings(analyze(load_yaml(DEPLOY), analyzers=["deployment.ApplicationUIDAnalyzer"])) == [("IST0144", "Deployment shop/cart")]


def test_unknown_mesh_networks_registry() -> None:
    nets = mesh_networks_from_yaml("networks:\n  n1:\n    endpoints: [{fromRegistry: Kubernetes}, {fromRegistry: cluster-2}]\n")
    msgs = analyze([], mesh_networks=nets, analyzers=["multicluster.MeshNetworksAnalyzer"])
    assert findings(msgs) == [("IST0126", "MeshNetworks istio-system/meshnetworks")]
    secret = load_yaml(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: remote, namespace: istio-system, labels: {istio/multiCluster: 'true'}}\n"
        "data: {cluster-2: Zm9v}\n"
    )
    assert analyze(secret, mesh_networks=nets, analyzers=["meshnetworks.MeshNetworksAnalyzer"]) == []
