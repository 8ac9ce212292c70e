"""Analyzers of the Kubernetes workloads in the mesh: Service port names, Deployments behind
several Services, applications running as the sidecar's user, unknown MeshNetworks registries.

Ported from istio/istio pkg/config/analysis/analyzers/service, deployment and multicluster.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from typing import Any

from ..models.kube import Container, PodSpec
from .context import DEPLOYMENT, MESH_NETWORKS, NAMESPACE, POD, SECRET, SERVICE, Entry, Snapshot, selector_matches
from .framework import Message, ResourceRef, analyzer, new_message
from .messages import message_type
from .security import ISTIO_PROXY, SIDECAR_INJECT
from .sidecar import INJECTION_LABEL

# pkg/config/protocol: the protocols a port name (or appProtocol) may announce.
KNOWN_PROTOCOLS = frozenset({"tcp", "udp", "grpc", "grpc-web", "http", "http_proxy", "http2", "https", "tls", "mongo", "redis", "mysql", "hbone"})
# Ports treated as TCP when their name announces nothing (pkg/config/kube wellKnownPorts).
WELL_KNOWN_TCP_PORTS = frozenset({25, 53, 3306, 27017})
SIDECAR_UID = 1337
ISTIO_OPERATOR = "istio-operator"
MULTICLUSTER_SECRET_LABEL = "istio/multiCluster"
KNOWN_REGISTRIES = ("Mock", "Kubernetes", "External")
WAYPOINT_MANAGED = ("gateway.istio.io/managed", "istio.io-mesh-controller")


def port_protocol(port: int, name: str, protocol: str | None, app_protocol: str | None) -> str:
    """The protocol Istio derives for a Service port ("" when it cannot tell): kube.ConvertProtocol."""
    if protocol == "UDP":
        return "udp"
    text = name
    if app_protocol is not None:
        text = app_protocol
        special = {"kubernetes.io/h2c": "http2", "kubernetes.io/ws": "http", "kubernetes.io/wss": "https"}
        if text in special:
            return special[text]
    if text.lower().startswith("grpc-web"):
        return "grpc-web"
    prefix = text.split("-", 1)[0].lower()
    if prefix in KNOWN_PROTOCOLS:
        return prefix
    return "tcp" if port in WELL_KNOWN_TCP_PORTS else ""


def is_control_plane(entry: Entry) -> bool:
    return "istio" in entry.labels or entry.labels.get("release") == "istio"


def _target_port_text(value: int | str | None) -> str:
    return "0" if value is None else str(value)


@analyzer("service.PortNameAnalyzer", "Checks the port names associated with each service", inputs=(SERVICE,))
def port_names(snap: Snapshot) -> Iterator[Message]:
    for entry in snap.each(SERVICE):
        if is_control_plane(entry):
            continue
        spec = entry.spec
        external = spec.type == "ExternalName"
        for i, port in enumerate(spec.ports or []):
            at = ("spec", "ports", i, "port")  # Istio's util.PortInPorts
            name = port.name or ""
            if port_protocol(port.port, name, port.protocol, port.app_protocol) and not (name == "tcp" and external):
                continue
            if external:
                yield new_message("ExternalNameServiceTypeInvalidPortName", entry, path=at)
            else:
                yield new_message("PortNameIsNotUnderNamingConvention", entry, name, port.port, _target_port_text(port.target_port), path=at)


# ---------------------------------------------------------------- deployments


def _template(entry: Entry) -> tuple[Mapping[str, str], Mapping[str, str], PodSpec]:
    template = entry.spec.template
    meta = template.metadata if template is not None and template.metadata is not None else None
    spec = template.spec if template is not None and template.spec is not None else PodSpec()
    return (meta.labels or {}) if meta else {}, (meta.annotations or {}) if meta else {}, spec


def deployment_in_mesh(snap: Snapshot, entry: Entry) -> bool:
    labels, annotations, spec = _template(entry)
    for c in spec.containers or []:
        if c.name == ISTIO_PROXY:
            if c.image:
                return True
            break
    for meta in (labels, annotations):
        if SIDECAR_INJECT in meta:
            return meta[SIDECAR_INJECT] == "true"
    ns = snap.namespace(entry.namespace)
    return ns is not None and ns.labels.get(INJECTION_LABEL) == "enabled"


def _matching_services(snap: Snapshot, entry: Entry) -> list[Entry]:
    labels, _, _ = _template(entry)
    return [
        svc for svc in snap.each(SERVICE)
        if svc.spec.selector and svc.namespace == entry.namespace and selector_matches(svc.spec.selector, labels)
    ]


@analyzer(
    "deployment.MultiServiceAnalyzer",
    "Checks association between services and pods",
    inputs=(SERVICE, DEPLOYMENT, NAMESPACE),
    aliases=("deployment.ServiceAssociationAnalyzer",),
)
def service_association(snap: Snapshot) -> Iterator[Message]:
    for entry in snap.each(DEPLOYMENT):
        if entry.labels.get(WAYPOINT_MANAGED[0]) == WAYPOINT_MANAGED[1] or not deployment_in_mesh(snap, entry):
            continue
        services = _matching_services(snap, entry)
        protocols: dict[int, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
        targets: dict[str, dict[int, str]] = defaultdict(dict)
        for svc in services:
            for port in svc.spec.ports or []:
                protocols[port.port][port.protocol or "TCP"].append(svc.full_name)
                target = _target_port_text(port.target_port)
                targets[str(port.port) if target in ("0", "") else target][port.port] = svc.full_name
        for number, by_protocol in protocols.items():
            if len(by_protocol) > 1:
                names = sorted(n for names in by_protocol.values() for n in names)
                yield new_message("DeploymentAssociatedToMultipleServices", entry, entry.name, number, names)
        for target, by_port in targets.items():
            if len(by_port) > 1:
                yield new_message("DeploymentConflictingPorts", entry, entry.name, sorted(by_port.values()), target, sorted(by_port))


def _runs_as_sidecar_user(spec: PodSpec) -> bool:
    if spec.security_context is not None and spec.security_context.run_as_user == SIDECAR_UID:
        return True
    return any(_container_uid(c) == SIDECAR_UID for c in spec.containers or [] if c.name not in (ISTIO_PROXY, ISTIO_OPERATOR))


def _container_uid(c: Container) -> int | None:
    return c.security_context.run_as_user if c.security_context is not None else None


@analyzer(
    "applicationUID.Analyzer", "Checks invalid application UID", inputs=(POD, DEPLOYMENT), aliases=("deployment.ApplicationUIDAnalyzer",)
)
def application_uid(snap: Snapshot) -> Iterator[Message]:
    for entry in [*snap.each(POD), *snap.each(DEPLOYMENT)]:
        if is_control_plane(entry):
            continue
        spec: Any = entry.spec if entry.gvk == POD else _template(entry)[2]
        if _runs_as_sidecar_user(spec):
            yield new_message("InvalidApplicationUID", entry)


# ---------------------------------------------------------------- mesh networks


@analyzer(
    "meshnetworks.MeshNetworksAnalyzer",
    "Check the validity of MeshNetworks in the cluster",
    inputs=(MESH_NETWORKS, SECRET),
    aliases=("multicluster.MeshNetworksAnalyzer",),
)
def mesh_networks(snap: Snapshot) -> Iterator[Message]:
    registries = set(KNOWN_REGISTRIES)
    for secret in snap.each(SECRET):
        if secret.labels.get(MULTICLUSTER_SECRET_LABEL) == "true":
            registries.update((secret.spec.data or {}).keys())
    mtype = message_type("UnknownMeshNetworksServiceRegistry")
    ref = ResourceRef("MeshNetworks", "meshnetworks", snap.mesh_config.root_namespace)
    for network, spec in snap.mesh_networks.networks.items():
        for endpoint in spec.endpoints or []:
            if endpoint.from_registry is not None and endpoint.from_registry not in registries:
                yield Message(mtype, mtype.render(endpoint.from_registry, network), ref)


ANALYZERS = [service_association, application_uid, port_names, mesh_networks]
