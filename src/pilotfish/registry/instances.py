"""Workload instances: Pods, WorkloadEntries and connected workloads in one shape.

Istio's WorkloadInstance: an address, labels, identity and locality, plus a map of named
ports (a Pod's containerPorts, a WorkloadEntry's ``ports``) that services resolve their
target ports against. Services of either registry select instances by labels in their own
namespace; this module only turns each source object into an ``Instance``.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..config.base import Resource
from ..config.models.kube import PodSpec, pod_status
from ..config.models.workload import WorkloadEntry, WorkloadGroup
from ..config.selectors import labels_match
from .model import Endpoint, Locality, Workload

DEFAULT_NAMESPACE = "default"

# Locality labels, in Istio's order of precedence.
LOCALITY_LABELS = ("topology.istio.io/locality", "istio-locality")
REGION_LABELS = ("topology.kubernetes.io/region", "failure-domain.beta.kubernetes.io/region")
ZONE_LABELS = ("topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone")
SUBZONE_LABEL = "topology.istio.io/subzone"
NETWORK_LABEL = "topology.istio.io/network"

POD, WORKLOAD_ENTRY, CONNECTED = "Pod", "WorkloadEntry", "Connected"


@dataclass(frozen=True, slots=True)
class Instance:
    """One running instance of a workload, whatever declared it."""

    kind: str  # POD, WORKLOAD_ENTRY or CONNECTED
    name: str
    namespace: str
    address: str
    labels: Mapping[str, str] = field(default_factory=dict)
    ports: Mapping[str, int] = field(default_factory=dict)  # named instance ports
    service_account: str = ""
    locality: Locality = Locality()
    weight: int = 1
    network: str = ""
    healthy: bool = True
    node_name: str = ""

    @property
    def is_ip(self) -> bool:
        """False for a hostname address: only DNS ServiceEntries may use such an instance."""
        return is_ip(self.address)

    def workload(self) -> Workload:
        return Workload(
            name=self.name, namespace=self.namespace, address=self.address, labels=self.labels,
            service_account=self.service_account, locality=self.locality,
        )

    def endpoint(self, ports: Mapping[str, int]) -> Endpoint:
        """This instance behind a service whose port names map to ``ports`` here."""
        return Endpoint(
            address=self.address, ports=dict(ports), labels=self.labels, namespace=self.namespace,
            service_account=self.service_account, locality=self.locality, weight=self.weight,
            healthy=self.healthy, workload_name=self.name, network=self.network,
        )


@functools.lru_cache(maxsize=65536)  # the same addresses are asked about for every cluster and push
def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def namespace_of(resource: Resource) -> str:
    """A namespaced object without a namespace lives in ``default``, as kubectl would put it."""
    return resource.namespace or DEFAULT_NAMESPACE


def select(instances: Iterable[Instance], namespace: str, selector: Mapping[str, str]) -> list[Instance]:
    """Instances in ``namespace`` whose labels include every selector label (an empty selector
    selects nothing here: a Service without a selector has its endpoints managed by hand)."""
    if not selector:
        return []
    return [i for i in instances if i.namespace == namespace and labels_match(selector, i.labels)]


def sanitize_locality(text: str) -> str:
    """Kubernetes labels cannot hold ``/``, so a locality label writes ``region.zone.subzone``."""
    return text if "/" in text else text.replace(".", "/")


def locality_from_labels(labels: Mapping[str, str]) -> Locality | None:
    """An explicit locality label, else the topology labels; None when neither is present."""
    for key in LOCALITY_LABELS:
        if labels.get(key):
            return Locality.parse(sanitize_locality(labels[key]))
    region = next((labels[k] for k in REGION_LABELS if labels.get(k)), "")
    zone = next((labels[k] for k in ZONE_LABELS if labels.get(k)), "")
    subzone = labels.get(SUBZONE_LABEL, "")
    if region or zone or subzone:
        return Locality(region, zone, subzone)
    return None


# ---------------------------------------------------------------- Pods


def _pod_ready(status: Any) -> bool:
    """The Ready condition when the status has one; else a Running phase; a pod written without
    any status (local mode) counts as ready."""
    if not isinstance(status, dict):
        return True
    for condition in status.get("conditions") or ():
        if isinstance(condition, dict) and condition.get("type") == "Ready":
            return str(condition.get("status")) == "True"
    phase = status.get("phase")
    return phase in (None, "Running")


def pod_instance(resource: Resource, node_localities: Mapping[str, Locality]) -> Instance | None:
    """A Pod with an IP that has not finished; None otherwise (it can serve nothing)."""
    spec = resource.spec
    if not isinstance(spec, PodSpec) or not resource.name:
        return None
    status = pod_status(resource.status)
    if status.phase in ("Succeeded", "Failed"):
        return None
    address = status.pod_ip or ""
    if not address and status.pod_ips:
        first = status.pod_ips[0]
        address = str(first.get("ip") or "") if isinstance(first, dict) else ""
    if not is_ip(address):
        return None
    ports: dict[str, int] = {}
    for container in spec.containers or ():
        for cport in container.ports or ():
            if cport.name and cport.container_port > 0:
                ports.setdefault(cport.name, cport.container_port)
    node = spec.node_name or ""
    locality = locality_from_labels(resource.labels) or node_localities.get(node) or Locality()
    terminating = bool((resource.metadata.model_extra or {}).get("deletionTimestamp"))
    return Instance(
        kind=POD, name=resource.name, namespace=namespace_of(resource), address=address,
        labels=dict(resource.labels), ports=ports,
        service_account=spec.service_account_name or "default",  # Kubernetes' admission default
        locality=locality, healthy=_pod_ready(resource.status) and not terminating, node_name=node,
        network=resource.labels.get(NETWORK_LABEL, ""),
    )


def node_locality(resource: Resource) -> Locality | None:
    """A Node's locality from its topology labels (what a pod on it inherits)."""
    return locality_from_labels(resource.labels)


# ---------------------------------------------------------------- WorkloadEntries


def _weight(value: int | None) -> int:
    return value if value else 1


def entry_instance(entry: WorkloadEntry, *, name: str, namespace: str, meta_labels: Mapping[str, str] | None = None) -> Instance | None:
    """A WorkloadEntry (or a ServiceEntry's inline endpoint) as an instance.

    Labels are the spec's with the object's own metadata labels over them; the locality is
    the ``locality`` field, else a locality label. An empty address is skipped."""
    address = entry.address or ""
    if address.startswith("unix://") or not address:
        # Unix domain sockets are outside what the proxy can dial.
        return None
    labels = {**(entry.labels or {}), **(meta_labels or {})}
    locality = Locality.parse(entry.locality) if entry.locality else (locality_from_labels(labels) or Locality())
    return Instance(
        kind=WORKLOAD_ENTRY, name=name, namespace=namespace, address=address, labels=labels,
        ports=dict(entry.ports or {}), service_account=entry.service_account or "", locality=locality,
        weight=_weight(entry.weight), network=entry.network or labels.get(NETWORK_LABEL, ""),
    )


def workload_entry_instance(resource: Resource) -> Instance | None:
    if not isinstance(resource.spec, WorkloadEntry) or not resource.name:
        return None
    return entry_instance(resource.spec, name=resource.name, namespace=namespace_of(resource), meta_labels=resource.labels)


# ---------------------------------------------------------------- connected workloads


def _group_applies(group: Resource, workload: Workload) -> bool:
    """A connected workload belongs to a WorkloadGroup of its namespace when it is named after
    the group or carries every label the group stamps on its members."""
    if namespace_of(group) != (workload.namespace or DEFAULT_NAMESPACE) or not isinstance(group.spec, WorkloadGroup):
        return False
    if workload.name == group.name or workload.name.startswith(group.name + "-"):
        return True
    meta = group.spec.metadata.labels if group.spec.metadata else None
    return bool(meta) and labels_match(meta, workload.labels)


def connected_instance(workload: Workload, groups: Iterable[Resource]) -> Instance | None:
    """A workload that registered by connecting, completed from its WorkloadGroup's template
    (ports, identity, network, weight) as Istio's auto-registration does."""
    if not is_ip(workload.address):
        return None
    labels: dict[str, str] = {}
    ports: dict[str, int] = {}
    sa, network, weight, locality = workload.service_account, "", 1, workload.locality
    for group in groups:
        if not _group_applies(group, workload):
            continue
        spec = group.spec
        if not isinstance(spec, WorkloadGroup):
            continue
        template = spec.template or WorkloadEntry()
        group_labels = (spec.metadata.labels if spec.metadata else None) or {}
        labels = {**group_labels, **(template.labels or {})}
        ports = dict(template.ports or {})
        sa = sa or template.service_account or ""
        network = template.network or ""
        weight = _weight(template.weight)
        if locality == Locality() and template.locality:
            locality = Locality.parse(template.locality)
        break
    return Instance(
        kind=CONNECTED, name=workload.name, namespace=workload.namespace or DEFAULT_NAMESPACE,
        address=workload.address, labels={**labels, **workload.labels}, ports=ports, service_account=sa,
        locality=locality, weight=weight, network=network,
    )
