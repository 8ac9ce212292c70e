"""Kubernetes Services and where their traffic goes (Istio's kube service registry).

A Service becomes ``<name>.<namespace>.svc.<suffix>`` with its cluster IPs as addresses
(none for a headless Service, which clients reach at the address they dialled). Its
endpoints come from its EndpointSlices when any exist, as in a cluster; else from a legacy
Endpoints object; else from the Pods its selector matches, the way the EndpointSlice
controller would fill the slices. WorkloadEntries and connected workloads that the selector
matches join them, as Istio's kube registry adds them to a Service's endpoints.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from ..config.base import Resource
from ..config.models.kube import EndpointsBody, EndpointSliceBody, ServiceSpec
from .instances import POD, Instance, is_ip, namespace_of, select
from .model import Endpoint, Locality, Port, Resolution, Service
from .protocol import from_kube_port

EXPORT_TO_ANNOTATION = "networking.istio.io/exportTo"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
SOURCE = "kubernetes"


@dataclass(frozen=True, slots=True)
class KubeService:
    """A Service plus what its endpoints are derived from."""

    service: Service
    selector: Mapping[str, str] = field(default_factory=dict)
    target_ports: Mapping[str, int | str | None] = field(default_factory=dict)  # by service port name
    external_name: str = ""


def hostname(name: str, namespace: str, domain_suffix: str) -> str:
    return f"{name}.{namespace}.svc.{domain_suffix}"


def _addresses(spec: ServiceSpec) -> tuple[str, ...] | None:
    """The cluster IPs; None for a headless Service."""
    if spec.cluster_ip == "None":
        return None
    candidates = list(spec.cluster_ips or ()) if len(spec.cluster_ips or ()) > 1 else [spec.cluster_ip or ""]
    return tuple(a for a in candidates if is_ip(a))


def _export_to(annotations: Mapping[str, str]) -> frozenset[str] | None:
    text = annotations.get(EXPORT_TO_ANNOTATION, "")
    names = frozenset(n.strip() for n in text.split(",") if n.strip())
    return names or None


def kube_service(resource: Resource, domain_suffix: str) -> KubeService | None:
    """A Service object in the registry's shape; None when it cannot be one."""
    spec = resource.spec
    if not isinstance(spec, ServiceSpec) or not resource.name:
        return None
    namespace = namespace_of(resource)
    ports: list[Port] = []
    targets: dict[str, int | str | None] = {}
    for p in spec.ports or ():
        if not 0 < p.port < 65536 or any(q.number == p.port for q in ports):
            continue
        name = p.name or ""
        ports.append(Port(name=name, number=p.port, protocol=from_kube_port(p.port, p.name, p.protocol, p.app_protocol)))
        targets[name] = p.target_port
    external_name = (spec.external_name or "") if spec.type == "ExternalName" else ""
    addresses = _addresses(spec)
    if external_name:
        # Reached by resolving the external name: a DNS service outside the mesh.
        resolution, addresses = Resolution.DNS, ()
    elif addresses is None:
        resolution, addresses = Resolution.PASSTHROUGH, ()
    else:
        resolution = Resolution.CLIENT_SIDE_LB
    service = Service(
        hostname=hostname(resource.name, namespace, domain_suffix), namespace=namespace, ports=tuple(ports),
        addresses=addresses, labels=dict(resource.labels), mesh_external=bool(external_name), resolution=resolution,
        name=resource.name, source=SOURCE,
    )
    export_to = _export_to(resource.annotations)
    if export_to:
        service = replace(service, export_to=export_to)
    return KubeService(service=service, selector=dict(spec.selector or {}), target_ports=targets, external_name=external_name)


# ---------------------------------------------------------------- target ports


def _pod_ports(ks: KubeService, pod: Instance) -> dict[str, int]:
    """Service port name -> the pod's port: a numeric targetPort, a named one looked up in the
    pod's containerPorts, else the service port. A name the pod does not declare is left out
    (Kubernetes leaves that pod out of that port)."""
    out: dict[str, int] = {}
    for port in ks.service.ports:
        target = ks.target_ports.get(port.name)
        if isinstance(target, str):
            if target.isdigit():
                out[port.name] = int(target)
            elif target in pod.ports:
                out[port.name] = pod.ports[target]
        else:
            out[port.name] = target if target else port.number
    return out


def _workload_ports(ks: KubeService, instance: Instance) -> dict[str, int]:
    """Service port name -> a WorkloadEntry's (or connected workload's) port, Istio's rule: a
    named targetPort must be in the entry's ports; with a numeric one, the entry's port of the
    service port's name wins; without one, the service port."""
    out: dict[str, int] = {}
    for port in ks.service.ports:
        target = ks.target_ports.get(port.name)
        if isinstance(target, str) and not target.isdigit():
            if instance.ports.get(target):
                out[port.name] = instance.ports[target]
        elif target:
            out[port.name] = instance.ports.get(port.name) or int(target)
        else:
            out[port.name] = port.number
    return out


# ---------------------------------------------------------------- endpoint sources


def _locate(address: str, namespace: str, target_pod: str, pods: Mapping[tuple[str, str], Instance], pods_by_ip: Mapping[tuple[str, str], Instance]) -> Instance | None:
    if target_pod:
        found = pods.get((namespace, target_pod))
        if found is not None:
            return found
    return pods_by_ip.get((namespace, address))


@dataclass(slots=True)
class _Seen:
    """Endpoints being gathered for one Service, keyed by address and pod: slices may repeat an
    address (one per port, say) and are merged, while pods sharing an address (hostNetwork pods)
    stay endpoints of their own."""

    by_key: dict[tuple[str, str], Endpoint] = field(default_factory=dict)

    def add(self, endpoint: Endpoint) -> None:
        key = (endpoint.address, endpoint.workload_name)
        existing = self.by_key.get(key)
        if existing is None:
            self.by_key[key] = endpoint
            return
        merged = {**endpoint.ports, **existing.ports}
        if merged != dict(existing.ports):
            self.by_key[key] = _replace_ports(existing, merged)

    def has_address(self, address: str) -> bool:
        return any(a == address for a, _ in self.by_key)


def _replace_ports(endpoint: Endpoint, ports: Mapping[str, int]) -> Endpoint:
    return replace(endpoint, ports=dict(ports))


def _address_endpoint(address: str, ports: Mapping[str, int], healthy: bool, namespace: str, pod: Instance | None, locality: Locality) -> Endpoint:
    if pod is not None:
        return Endpoint(
            address=address, ports=dict(ports), labels=pod.labels, namespace=pod.namespace,
            service_account=pod.service_account, locality=pod.locality if pod.locality != Locality() else locality,
            healthy=healthy, workload_name=pod.name, network=pod.network,
        )
    return Endpoint(address=address, ports=dict(ports), namespace=namespace, locality=locality, healthy=healthy)


@dataclass(frozen=True, slots=True)
class KubeEndpointSources:
    """Everything Kubernetes Services draw endpoints from, indexed once per snapshot."""

    slices: Mapping[tuple[str, str], tuple[Resource, ...]]  # (namespace, service name) -> slices
    legacy: Mapping[tuple[str, str], Resource]  # (namespace, service name) -> Endpoints
    pods: Mapping[str, tuple[Instance, ...]]  # by namespace
    others: Mapping[str, tuple[Instance, ...]]  # WorkloadEntries and connected workloads, by namespace
    node_localities: Mapping[str, Locality]
    pods_by_name: Mapping[tuple[str, str], Instance]  # (namespace, name)
    pods_by_ip: Mapping[tuple[str, str], Instance]  # (namespace, address)

    @staticmethod
    def index(resources: Iterable[Resource], pods: Iterable[Instance], others: Iterable[Instance], node_localities: Mapping[str, Locality]) -> KubeEndpointSources:
        slices: dict[tuple[str, str], list[Resource]] = {}
        legacy: dict[tuple[str, str], Resource] = {}
        for r in resources:
            if r.kind == "EndpointSlice" and isinstance(r.spec, EndpointSliceBody):
                owner = r.labels.get(SERVICE_NAME_LABEL)
                if owner:
                    slices.setdefault((namespace_of(r), owner), []).append(r)
            elif r.kind == "Endpoints" and isinstance(r.spec, EndpointsBody) and r.name:
                legacy.setdefault((namespace_of(r), r.name), r)
        pod_list = list(pods)
        return KubeEndpointSources(
            slices={k: tuple(sorted(v, key=lambda s: s.name)) for k, v in slices.items()}, legacy=legacy,
            pods=_by_namespace(pod_list), others=_by_namespace(others), node_localities=dict(node_localities),
            pods_by_name={(p.namespace, p.name): p for p in pod_list},
            pods_by_ip={(p.namespace, p.address): p for p in pod_list},
        )


def _by_namespace(instances: Iterable[Instance]) -> dict[str, tuple[Instance, ...]]:
    out: dict[str, list[Instance]] = {}
    for i in instances:
        out.setdefault(i.namespace, []).append(i)
    return {ns: tuple(items) for ns, items in out.items()}


def _from_slices(slices: Iterable[Resource], namespace: str, src: KubeEndpointSources, pods: Mapping[tuple[str, str], Instance], pods_by_ip: Mapping[tuple[str, str], Instance], seen: _Seen) -> None:
    for r in slices:
        body = r.spec
        if not isinstance(body, EndpointSliceBody) or body.address_type == "FQDN":
            continue  # Istio ignores FQDN slices
        ports = {p.name or "": p.port for p in body.ports or () if p.port}
        for ep in body.endpoints or ():
            address = next(iter(ep.addresses or ()), "")
            if not is_ip(address):
                continue
            ready = ep.conditions.ready if ep.conditions and ep.conditions.ready is not None else True
            target = (ep.target_ref.name or "") if ep.target_ref and ep.target_ref.kind == "Pod" else ""
            pod = _locate(address, namespace, target, pods, pods_by_ip)
            locality = src.node_localities.get(ep.node_name or "") or Locality(zone=ep.zone or "")
            seen.add(_address_endpoint(address, ports, ready, namespace, pod, locality))


def _from_legacy(body: EndpointsBody, namespace: str, pods: Mapping[tuple[str, str], Instance], pods_by_ip: Mapping[tuple[str, str], Instance], seen: _Seen) -> None:
    for subset in body.subsets or ():
        ports = {p.name or "": p.port for p in subset.ports or () if p.port}
        for ready, addresses in ((True, subset.addresses), (False, subset.not_ready_addresses)):
            for a in addresses or ():
                if not is_ip(a.ip):
                    continue
                target = (a.target_ref.name or "") if a.target_ref and a.target_ref.kind == "Pod" else ""
                pod = _locate(a.ip, namespace, target, pods, pods_by_ip)
                seen.add(_address_endpoint(a.ip, ports, ready, namespace, pod, Locality()))


def kube_endpoints(ks: KubeService, src: KubeEndpointSources) -> tuple[Endpoint, ...]:
    """The Service's endpoints, sorted by address."""
    service = ks.service
    if ks.external_name:
        return (Endpoint(address=ks.external_name, ports={p.name: p.number for p in service.ports}, namespace=service.namespace),)
    ns = service.namespace
    seen = _Seen()
    pods, pods_by_ip = src.pods_by_name, src.pods_by_ip
    slices = src.slices.get((ns, service.name))
    legacy = src.legacy.get((ns, service.name))
    if slices:
        _from_slices(slices, ns, src, pods, pods_by_ip, seen)
    elif legacy is not None and isinstance(legacy.spec, EndpointsBody):
        _from_legacy(legacy.spec, ns, pods, pods_by_ip, seen)
    else:
        for pod in select(src.pods.get(ns, ()), ns, ks.selector):
            ports = _pod_ports(ks, pod)
            if ports or not service.ports:
                seen.add(pod.endpoint(ports))
    if service.resolution is Resolution.CLIENT_SIDE_LB:
        for other in select(src.others.get(ns, ()), ns, ks.selector):
            if other.kind == POD or not other.is_ip:
                continue
            ports = _workload_ports(ks, other)
            if ports and not seen.has_address(other.address):
                seen.add(other.endpoint(ports))
    return tuple(sorted(seen.by_key.values(), key=lambda e: (address_key(e.address), e.workload_name)))


def address_key(address: str) -> tuple[int, int, str]:
    """Sort IPv4 before IPv6, numerically, and names after both."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return (2, 0, address)
    return (0 if ip.version == 4 else 1, int(ip), address)
