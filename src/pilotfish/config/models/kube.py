"""The Kubernetes kinds the mesh reads, and MeshConfig.

Only what the mesh reads is typed (ports, selectors, containers, addresses...); every other
field is kept as written (``OpenModel``), because these objects belong to Kubernetes, not to
us, and rejecting a field the API server accepts would be wrong. Objects whose content is not
under ``spec`` (Secret, ConfigMap, ServiceAccount, Endpoints, EndpointSlice) are modelled on
the document's other top-level fields.

The Gateway API kinds (gateway.networking.k8s.io Gateway, HTTPRoute, GRPCRoute) are read too,
for their listeners, parents and status conditions.

MeshConfig is not a Kubernetes object: it is the plain YAML istiod reads from the ``istio``
ConfigMap (or ``--meshConfig``); ``mesh_config_from_yaml`` applies Istio's defaults to it.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import Field

from ..base import ObjectMeta, OpenModel
from ..kind_info import KindInfo

# ---------------------------------------------------------------- shared pieces


class LabelSelectorRequirement(OpenModel):
    key: str = ""
    operator: str = ""
    values: list[str] | None = None


class LabelSelector(OpenModel):
    """metav1.LabelSelector: matchLabels AND every matchExpressions term."""

    match_labels: dict[str, str] | None = None
    match_expressions: list[LabelSelectorRequirement] | None = None


class ObjectReference(OpenModel):
    kind: str | None = None
    namespace: str | None = None
    name: str | None = None
    uid: str | None = None


# ---------------------------------------------------------------- core/v1 Service


class ServicePort(OpenModel):
    name: str | None = None
    port: int = 0
    target_port: int | str | None = None
    protocol: str | None = None  # TCP (the default), UDP, SCTP
    app_protocol: str | None = None
    node_port: int | None = None


class ServiceSpec(OpenModel):
    ports: list[ServicePort] | None = None
    selector: dict[str, str] | None = None
    type: str | None = None  # ClusterIP (the default), NodePort, LoadBalancer, ExternalName
    cluster_ip: str | None = Field(default=None, alias="clusterIP")
    cluster_ips: list[str] | None = Field(default=None, alias="clusterIPs")
    external_name: str | None = None
    external_ips: list[str] | None = Field(default=None, alias="externalIPs")


# ---------------------------------------------------------------- core/v1 Pod


class ContainerPort(OpenModel):
    name: str | None = None
    container_port: int = 0
    protocol: str | None = None
    host_port: int | None = None


class EnvVar(OpenModel):
    name: str = ""
    value: str | None = None


class SecurityContext(OpenModel):
    """Pod or container securityContext: the user the process runs as (1337 is the sidecar's)."""

    run_as_user: int | None = None
    run_as_group: int | None = None
    run_as_non_root: bool | None = None


class Container(OpenModel):
    name: str = ""
    image: str | None = None
    ports: list[ContainerPort] | None = None
    args: list[str] | None = None
    command: list[str] | None = None
    env: list[EnvVar] | None = None
    security_context: SecurityContext | None = None


class PodSpec(OpenModel):
    containers: list[Container] | None = None
    init_containers: list[Container] | None = None
    service_account_name: str | None = None
    node_name: str | None = None
    host_network: bool | None = None
    security_context: SecurityContext | None = None


class PodStatus(OpenModel):
    """Pod status as read from ``Resource.status`` with ``pod_status``."""

    phase: str | None = None
    pod_ip: str | None = Field(default=None, alias="podIP")
    pod_ips: list[dict[str, Any]] | None = Field(default=None, alias="podIPs")
    host_ip: str | None = Field(default=None, alias="hostIP")


def pod_status(status: Any) -> PodStatus:
    """A Pod's ``status`` (kept raw on the Resource) as a typed PodStatus; empty when absent."""
    if not isinstance(status, dict):
        return PodStatus()
    return PodStatus.model_validate(status, by_alias=True, by_name=False)


# ---------------------------------------------------------------- apps/v1 Deployment


class PodTemplateSpec(OpenModel):
    metadata: ObjectMeta | None = None
    spec: PodSpec | None = None


class DeploymentSpec(OpenModel):
    replicas: int | None = None
    selector: LabelSelector | None = None
    template: PodTemplateSpec | None = None


# ---------------------------------------------------------------- objects without spec


class ServiceAccountBody(OpenModel):
    secrets: list[ObjectReference] | None = None
    automount_service_account_token: bool | None = None


class SecretBody(OpenModel):
    """Secret ``data`` values are base64 text as in YAML; ``stringData`` values are plain."""

    type: str | None = None
    data: dict[str, str] | None = None
    string_data: dict[str, str] | None = None
    immutable: bool | None = None


class ConfigMapBody(OpenModel):
    data: dict[str, str] | None = None
    binary_data: dict[str, str] | None = None
    immutable: bool | None = None


class EndpointAddress(OpenModel):
    ip: str = ""
    hostname: str | None = None
    node_name: str | None = None
    target_ref: ObjectReference | None = None


class EndpointPort(OpenModel):
    name: str | None = None
    port: int | None = None
    protocol: str | None = None
    app_protocol: str | None = None


class EndpointSubset(OpenModel):
    addresses: list[EndpointAddress] | None = None
    not_ready_addresses: list[EndpointAddress] | None = None
    ports: list[EndpointPort] | None = None


class EndpointsBody(OpenModel):
    subsets: list[EndpointSubset] | None = None


class EndpointConditions(OpenModel):
    ready: bool | None = None
    serving: bool | None = None
    terminating: bool | None = None


class Endpoint(OpenModel):
    addresses: list[str] | None = None
    conditions: EndpointConditions | None = None
    hostname: str | None = None
    node_name: str | None = None
    zone: str | None = None
    target_ref: ObjectReference | None = None


class EndpointSliceBody(OpenModel):
    address_type: str | None = None  # IPv4, IPv6, FQDN
    endpoints: list[Endpoint] | None = None
    ports: list[EndpointPort] | None = None


class NamespaceSpec(OpenModel):
    finalizers: list[str] | None = None


class NodeSpec(OpenModel):
    pod_cidr: str | None = Field(default=None, alias="podCIDR")


# ---------------------------------------------------------------- Gateway API (read for status and hosts)


class ParentReference(OpenModel):
    group: str | None = None
    kind: str | None = None
    namespace: str | None = None
    name: str = ""
    section_name: str | None = None
    port: int | None = None


class GatewayListener(OpenModel):
    name: str = ""
    hostname: str | None = None
    port: int = 0
    protocol: str = ""


class KubernetesGatewaySpec(OpenModel):
    gateway_class_name: str | None = None
    listeners: list[GatewayListener] | None = None


class RouteSpec(OpenModel):
    """HTTPRoute / GRPCRoute: the parents and host names the mesh reads; rules kept as written."""

    parent_refs: list[ParentReference] | None = None
    hostnames: list[str] | None = None
    rules: list[dict[str, Any]] | None = None


_CORE = ""
_GATEWAY_API = "gateway.networking.k8s.io"

KINDS = [
    KindInfo(group=_CORE, kind="Namespace", versions=("v1",), model=NamespaceSpec, plural="namespaces", namespaced=False, istio=False),
    KindInfo(group=_CORE, kind="Node", versions=("v1",), model=NodeSpec, plural="nodes", namespaced=False, istio=False),
    KindInfo(group=_CORE, kind="Service", versions=("v1",), model=ServiceSpec, plural="services", istio=False),
    KindInfo(group=_CORE, kind="Pod", versions=("v1",), model=PodSpec, plural="pods", istio=False),
    KindInfo(group="apps", kind="Deployment", versions=("v1",), model=DeploymentSpec, plural="deployments", istio=False),
    KindInfo(group=_CORE, kind="ServiceAccount", versions=("v1",), model=ServiceAccountBody, plural="serviceaccounts", spec_key=None, istio=False),
    KindInfo(group=_CORE, kind="Secret", versions=("v1",), model=SecretBody, plural="secrets", spec_key=None, istio=False),
    KindInfo(group=_CORE, kind="ConfigMap", versions=("v1",), model=ConfigMapBody, plural="configmaps", spec_key=None, istio=False),
    KindInfo(group=_CORE, kind="Endpoints", versions=("v1",), model=EndpointsBody, plural="endpoints", spec_key=None, istio=False),
    KindInfo(group="discovery.k8s.io", kind="EndpointSlice", versions=("v1",), model=EndpointSliceBody, plural="endpointslices", spec_key=None, istio=False),
    KindInfo(group=_GATEWAY_API, kind="Gateway", versions=("v1", "v1beta1"), model=KubernetesGatewaySpec, plural="gateways", istio=False),
    KindInfo(group=_GATEWAY_API, kind="HTTPRoute", versions=("v1", "v1beta1"), model=RouteSpec, plural="httproutes", istio=False),
    KindInfo(group=_GATEWAY_API, kind="GRPCRoute", versions=("v1",), model=RouteSpec, plural="grpcroutes", istio=False),
]


# ---------------------------------------------------------------- MeshConfig (plain YAML, not an object)


class ProxyConfigDefaults(OpenModel):
    """MeshConfig.defaultConfig: the proxy settings every workload starts from."""

    discovery_address: str | None = None
    proxy_metadata: dict[str, str] | None = None
    image: dict[str, Any] | None = None
    tracing: dict[str, Any] | None = None


class ExtensionProvider(OpenModel):
    """One entry of extensionProviders: a name and exactly one provider block (kept as written)."""

    name: str = ""

    @property
    def provider_type(self) -> str:
        """The provider block's key: ``zipkin``, ``lightstep``, ``envoyFileAccessLog``..."""
        extra = self.model_extra or {}
        return next(iter(extra), "")

    @property
    def settings(self) -> dict[str, Any]:
        value = (self.model_extra or {}).get(self.provider_type)
        return value if isinstance(value, dict) else {}


class DefaultProviders(OpenModel):
    tracing: list[str] | None = None
    metrics: list[str] | None = None
    access_logging: list[str] | None = None


class OutboundTrafficPolicy(OpenModel):
    mode: str = "ALLOW_ANY"


class MeshConfig(OpenModel):
    """istio.mesh.v1alpha1.MeshConfig: the parts the mesh and its analyzers read."""

    root_namespace: str = "istio-system"
    trust_domain: str = "cluster.local"
    ingress_controller_mode: str = "STRICT"
    ingress_service: str = "istio-ingressgateway"
    ingress_class: str = "istio"
    enable_auto_mtls: bool = True
    access_log_file: str = ""
    default_config: ProxyConfigDefaults = Field(default_factory=ProxyConfigDefaults)
    extension_providers: list[ExtensionProvider] = Field(default_factory=list)
    default_providers: DefaultProviders | None = None
    outbound_traffic_policy: OutboundTrafficPolicy = Field(default_factory=OutboundTrafficPolicy)
    default_service_export_to: list[str] | None = None
    default_virtual_service_export_to: list[str] | None = None
    default_destination_rule_export_to: list[str] | None = None


class NetworkEndpoint(OpenModel):
    from_cidr: str | None = None
    from_registry: str | None = None


class NetworkGateway(OpenModel):
    registry_service_name: str | None = None
    address: str | None = None
    port: int | None = None
    locality: str | None = None


class Network(OpenModel):
    endpoints: list[NetworkEndpoint] | None = None
    gateways: list[NetworkGateway] | None = None


class MeshNetworks(OpenModel):
    """istio.mesh.v1alpha1.MeshNetworks: network name to endpoints and gateways."""

    networks: dict[str, Network] = Field(default_factory=dict)


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Merge as protobuf does when applying YAML onto defaults: messages merge, lists replace."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _yaml_mapping(text: str, what: str) -> dict[str, Any]:
    from ..errors import ConfigError

    try:
        data = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid {what} YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{what} must be a mapping, got {type(data).__name__}")
    return data


_DEFAULT_PROXY_CONFIG: dict[str, Any] = {"discoveryAddress": "istiod.istio-system.svc:15012"}


def mesh_config_from_yaml(text: str) -> MeshConfig:
    """MeshConfig from its YAML with Istio's defaults under it (mesh.ApplyMeshConfigDefaults)."""
    from pydantic import ValidationError

    from ..errors import ConfigError

    data = _merge({"defaultConfig": _DEFAULT_PROXY_CONFIG}, _yaml_mapping(text, "MeshConfig"))
    try:
        return MeshConfig.model_validate(data, by_alias=True, by_name=False)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"invalid MeshConfig: {where}: {err['msg']}") from None


def default_mesh_config() -> MeshConfig:
    return mesh_config_from_yaml("")


def load_mesh_config(path: str) -> MeshConfig:
    """Read a MeshConfig file (plain YAML, as given to istiod's --meshConfig)."""
    with open(path, encoding="utf-8") as fh:
        return mesh_config_from_yaml(fh.read())


def mesh_networks_from_yaml(text: str) -> MeshNetworks:
    from pydantic import ValidationError

    from ..errors import ConfigError

    try:
        return MeshNetworks.model_validate(_yaml_mapping(text, "MeshNetworks"), by_alias=True, by_name=False)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        raise ConfigError(f"invalid MeshNetworks: {'.'.join(str(p) for p in err['loc'])}: {err['msg']}") from None
