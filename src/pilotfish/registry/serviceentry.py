"""ServiceEntries: services declared by hand (Istio's serviceentry registry).

Each host of a ServiceEntry is one service in the entry's namespace. Its endpoints are the
entry's inline ``endpoints``, or the workloads its ``workloadSelector`` picks in that
namespace (WorkloadEntries, Pods, connected workloads); a DNS entry with neither is
reached through its own host name. An instance's port for a service port is, in Istio's
order: the instance's port of that name, the port's ``targetPort``, the port number.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from ..config.base import Resource
from ..config.models.serviceentry import Location
from ..config.models.serviceentry import Resolution as EntryResolution
from ..config.models.serviceentry import ServiceEntry, ServicePort
from ..config.selectors import labels_match
from .instances import Instance, entry_instance, is_ip, namespace_of
from .model import Endpoint, Port, Resolution, Service
from .protocol import parse

SOURCE = "serviceentry"

_RESOLUTIONS = {
    EntryResolution.NONE: Resolution.PASSTHROUGH,
    EntryResolution.STATIC: Resolution.CLIENT_SIDE_LB,
    EntryResolution.DNS: Resolution.DNS,
    EntryResolution.DNS_ROUND_ROBIN: Resolution.DNS_ROUND_ROBIN,
    # DYNAMIC_DNS needs Envoy's dynamic forward proxy, which the proxy does not implement;
    # resolving the host like DNS is the nearest behaviour it supports.
    EntryResolution.DYNAMIC_DNS: Resolution.DNS,
}
_DNS = (Resolution.DNS, Resolution.DNS_ROUND_ROBIN)


@dataclass(frozen=True, slots=True)
class EntryService:
    """One host of a ServiceEntry and its endpoints in Istio's order."""

    service: Service
    endpoints: tuple[Endpoint, ...]


def _address(text: str) -> str | None:
    """An IP, or a CIDR range (a /32 or /128 is just its IP); None when it is neither."""
    if is_ip(text):
        return text
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else text


def resolution_of(entry: ServiceEntry) -> Resolution:
    """Unset means NONE, the field's zero value: clients go where they dialled."""
    return _RESOLUTIONS[entry.resolution or EntryResolution.NONE]


def _ports(entry: ServiceEntry) -> tuple[list[Port], list[ServicePort]]:
    ports: list[Port] = []
    specs: list[ServicePort] = []
    for p in entry.ports or ():
        if not p.number or any(q.number == p.number for q in ports):
            continue
        ports.append(Port(name=p.name or "", number=p.number, protocol=parse(p.protocol)))
        specs.append(p)
    return ports, specs


def instance_ports(instance: Instance, specs: Iterable[ServicePort]) -> dict[str, int]:
    """Service port name -> instance port: the instance's named port, the targetPort, the number."""
    out: dict[str, int] = {}
    for p in specs:
        name = p.name or ""
        out[name] = instance.ports.get(name) or p.target_port or p.number or 0
    return out


def _selected(entry: ServiceEntry, namespace: str, instances: Iterable[Instance], dns: bool) -> list[Instance]:
    """Instances the workloadSelector picks, in Istio's order (kind, then name). Hostname
    addresses suit only a DNS entry."""
    selector = entry.workload_selector.labels if entry.workload_selector else None
    candidates = instances.select(selector) if isinstance(instances, Instances) else instances
    picked = [
        i for i in candidates
        if i.namespace == namespace and labels_match(selector, i.labels) and (dns or i.is_ip)
    ]
    return sorted(picked, key=lambda i: (i.kind, i.name))


class Instances(list[Instance]):
    """One namespace's instances, indexed by label: a selector's candidates are those carrying
    its rarest label (a thousand ServiceEntries over ten thousand instances compared every pair)."""

    def __init__(self, items: Iterable[Instance] = ()) -> None:
        super().__init__(items)
        self.by_label: dict[tuple[str, str], list[Instance]] = {}
        for inst in self:
            for pair in inst.labels.items():
                self.by_label.setdefault(pair, []).append(inst)

    def select(self, selector: Mapping[str, str] | None) -> list[Instance]:
        if not selector:
            return list(self)
        return min((self.by_label.get(pair, []) for pair in selector.items()), key=len)


def entry_services(resource: Resource, instances: Iterable[Instance]) -> list[EntryService]:
    """Every host of the ServiceEntry as a service with its endpoints; [] when it has none."""
    entry = resource.spec
    if not isinstance(entry, ServiceEntry) or not resource.name:
        return []
    namespace = namespace_of(resource)
    resolution = resolution_of(entry)
    dns = resolution in _DNS
    ports, specs = _ports(entry)
    addresses = tuple(a for a in (_address(t) for t in entry.addresses or ()) if a is not None)
    export_to = frozenset(entry.export_to or ()) or None
    members: list[Instance] = []
    if entry.workload_selector is not None:
        members = _selected(entry, namespace, instances, dns)
    else:
        for index, we in enumerate(entry.endpoints or ()):
            inst = entry_instance(we, name=f"{resource.name}-{index}", namespace=namespace)
            if inst is not None and (dns or inst.is_ip):
                members.append(inst)
    shared = tuple(m.endpoint(instance_ports(m, specs)) for m in members)
    out: list[EntryService] = []
    seen_hosts: set[str] = set()
    for host in entry.hosts or ():
        if not host or host in seen_hosts:
            continue
        seen_hosts.add(host)
        service = Service(
            hostname=host, namespace=namespace, ports=tuple(ports), addresses=addresses,
            labels=dict(resource.labels), mesh_external=(entry.location or Location.MESH_EXTERNAL) is Location.MESH_EXTERNAL,
            resolution=resolution, name=resource.name, source=SOURCE,
        )
        if export_to:
            service = replace(service, export_to=export_to)
        endpoints = shared
        if dns and not entry.endpoints and entry.workload_selector is None and not host.startswith("*"):
            # Nothing names the instances: resolve the host itself.
            endpoints = (Endpoint(
                address=host, ports={p.name or "": p.target_port or p.number or 0 for p in specs},
                namespace=namespace, workload_name=resource.name,
            ),)
        out.append(EntryService(service=service, endpoints=endpoints))
    return out


def by_namespace(instances: Iterable[Instance]) -> Mapping[str, Instances]:
    """Instances grouped by namespace, so each ServiceEntry scans only its own."""
    grouped: dict[str, list[Instance]] = {}
    for i in instances:
        grouped.setdefault(i.namespace, []).append(i)
    return {ns: Instances(items) for ns, items in grouped.items()}
