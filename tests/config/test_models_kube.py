"""Kubernetes kinds and MeshConfig: what the mesh reads is typed, everything else is kept."""

from __future__ import annotations

import pytest

from pilotfish.config.errors import ConfigError
from pilotfish.config.analysis.testing import load_yaml
from pilotfish.config.models.kube import (
    DeploymentSpec,
    MeshConfig,
    PodSpec,
    SecretBody,
    ServiceSpec,
    default_mesh_config,
    mesh_config_from_yaml,
    mesh_networks_from_yaml,
    pod_status,
)

SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default, labels: {app: reviews}}
spec:
  selector: {app: reviews}
  clusterIP: 10.0.0.7
  ipFamilies: [IPv4]
  ports:
  - {name: http, port: 9080, targetPort: 9080, appProtocol: http}
  - {name: grpc-admin, port: 9090, targetPort: admin, protocol: TCP}
"""


def test_service_ports_are_typed_and_unknown_fields_kept() -> None:
    (svc,) = load_yaml(SERVICE)
    spec = svc.spec
    assert isinstance(spec, ServiceSpec)
    assert [(p.name, p.port, p.target_port) for p in spec.ports] == [("http", 9080, 9080), ("grpc-admin", 9090, "admin")]
    assert spec.ports[0].app_protocol == "http"
    assert spec.selector == {"app": "reviews"}
    assert spec.cluster_ip == "10.0.0.7"
    assert spec.model_extra == {"ipFamilies": ["IPv4"]}
    assert spec.dump()["clusterIP"] == "10.0.0.7"


def test_pod_containers_and_status() -> None:
    (pod,) = load_yaml(
        """
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: ns, labels: {app: a}}
spec:
  serviceAccountName: sa
  nodeName: node-1
  securityContext: {runAsUser: 1337}
  containers:
  - name: app
    image: app:1
    args: [--port, "8080"]
    ports: [{containerPort: 8080, name: http}]
    resources: {limits: {cpu: "1"}}
status: {phase: Running, podIP: 10.1.2.3}
"""
    )
    spec = pod.spec
    assert isinstance(spec, PodSpec)
    assert spec.service_account_name == "sa" and spec.node_name == "node-1"
    assert spec.security_context.run_as_user == 1337
    assert spec.containers[0].ports[0].container_port == 8080
    assert spec.containers[0].model_extra == {"resources": {"limits": {"cpu": "1"}}}
    status = pod_status(pod.status)
    assert (status.phase, status.pod_ip) == ("Running", "10.1.2.3")
    assert pod_status(None).phase is None


def test_deployment_template() -> None:
    (dep,) = load_yaml(
        """
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec:
  replicas: 2
  selector: {matchLabels: {app: d}}
  template:
    metadata: {labels: {app: d}}
    spec: {containers: [{name: d, image: d:1}]}
"""
    )
    spec = dep.spec
    assert isinstance(spec, DeploymentSpec)
    assert spec.replicas == 2
    assert spec.selector.match_labels == {"app": "d"}
    assert spec.template.metadata.labels == {"app": "d"}
    assert spec.template.spec.containers[0].image == "d:1"


def test_kinds_without_spec_read_their_top_level_fields() -> None:
    secret, cm, eps, slice_ = load_yaml(
        """
apiVersion: v1
kind: Secret
metadata: {name: s}
type: kubernetes.io/tls
data: {tls.crt: Zm9v}
stringData: {extra: bar}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: istio-system}
data: {mesh: "rootNamespace: istio-system"}
---
apiVersion: v1
kind: Endpoints
metadata: {name: e}
subsets:
- addresses: [{ip: 10.0.0.1, nodeName: n1}]
  ports: [{name: http, port: 80}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: es}
addressType: IPv4
endpoints: [{addresses: [10.0.0.2], conditions: {ready: true}}]
ports: [{name: http, port: 80, protocol: TCP}]
"""
    )
    assert isinstance(secret.spec, SecretBody)
    assert secret.spec.type == "kubernetes.io/tls" and secret.spec.string_data == {"extra": "bar"}
    assert cm.spec.data == {"mesh": "rootNamespace: istio-system"}
    assert eps.spec.subsets[0].addresses[0].node_name == "n1"
    assert slice_.spec.address_type == "IPv4"
    assert slice_.spec.endpoints[0].conditions.ready is True


def test_namespace_is_cluster_scoped_and_untyped_fields_do_not_fail() -> None:
    (ns,) = load_yaml("apiVersion: v1\nkind: Namespace\nmetadata: {name: foo}\nspec: {finalizers: [kubernetes]}\n")
    assert ns.spec.finalizers == ["kubernetes"]


def test_a_wrong_type_for_a_typed_field_is_reported_with_its_path() -> None:
    with pytest.raises(ConfigError) as err:
        load_yaml("apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: eighty}]}\n")
    assert "spec.ports[0].port" in str(err.value)


def test_mesh_config_defaults_and_overrides() -> None:
    default = default_mesh_config()
    assert isinstance(default, MeshConfig)
    assert default.root_namespace == "istio-system"
    assert default.ingress_service == "istio-ingressgateway"
    assert default.outbound_traffic_policy.mode == "ALLOW_ANY"
    mesh = mesh_config_from_yaml(
        """
rootNamespace: mesh-root
defaultConfig:
  proxyMetadata: {ISTIO_META_DNS_CAPTURE: "true"}
extensionProviders:
- name: otel
  opentelemetry: {service: otel.svc, port: 4317}
outboundTrafficPolicy: {mode: REGISTRY_ONLY}
someFutureField: 1
"""
    )
    assert mesh.root_namespace == "mesh-root"
    assert mesh.default_config.proxy_metadata == {"ISTIO_META_DNS_CAPTURE": "true"}
    assert mesh.default_config.discovery_address == "istiod.istio-system.svc:15012"  # default kept under the override
    assert mesh.extension_providers[0].provider_type == "opentelemetry"
    assert mesh.extension_providers[0].settings == {"service": "otel.svc", "port": 4317}
    assert mesh.outbound_traffic_policy.mode == "REGISTRY_ONLY"


@pytest.mark.parametrize("text", ["[1, 2]", "rootNamespace: [a", "enableAutoMtls: {a: 1}"])
def test_bad_mesh_config_is_a_config_error(text: str) -> None:
    with pytest.raises(ConfigError):
        mesh_config_from_yaml(text)


def test_mesh_networks() -> None:
    nets = mesh_networks_from_yaml(
        "networks:\n  net1:\n    endpoints: [{fromRegistry: Kubernetes}, {fromCidr: 10.0.0.0/8}]\n"
        "    gateways: [{address: 1.2.3.4, port: 15443}]\n"
    )
    eps = nets.networks["net1"].endpoints
    assert eps[0].from_registry == "Kubernetes" and eps[1].from_cidr == "10.0.0.0/8"
    assert nets.networks["net1"].gateways[0].port == 15443
