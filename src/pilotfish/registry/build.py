"""One registry snapshot from every source: Kubernetes objects, ServiceEntries with their
WorkloadEntries and WorkloadGroups, and workloads that registered by connecting.

Like Istio's aggregate registry, a (hostname, namespace) pair names one service: when a
Kubernetes Service and a ServiceEntry both declare it, the Kubernetes Service wins, and
between two ServiceEntries the first one read wins. Objects that cannot be read (no name,
a bad address) are skipped; validation reports them earlier.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TypeVar

from ..config.base import Resource
from ..config.host import DEFAULT_DOMAIN_SUFFIX
from .instances import Instance, connected_instance, namespace_of, node_locality, pod_instance, workload_entry_instance
from .kube import KubeEndpointSources, kube_endpoints, kube_service
from .model import Endpoint, Locality, RegistrySnapshot, Service, Workload
from .serviceentry import by_namespace, entry_services

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_R = TypeVar("_R")


def _safely(convert: Callable[[_T], _R], item: _T, what: str) -> _R | None:
    """Convert one object; a malformed one is logged and skipped, never fatal to the snapshot."""
    try:
        return convert(item)
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        log.debug("registry: skipping %s: %s", what, exc)
        return None


def _unique(instances: Iterable[Instance | None], taken: set[tuple[str, str]]) -> list[Instance]:
    """Instances whose (namespace, address) nothing earlier described: a pod's own sidecar
    connects too, and the Pod already says everything about it."""
    out: list[Instance] = []
    for inst in instances:
        if inst is None or (inst.namespace, inst.address) in taken:
            continue
        taken.add((inst.namespace, inst.address))
        out.append(inst)
    return out


def build_registry(
    resources: Iterable[Resource], *, domain_suffix: str = DEFAULT_DOMAIN_SUFFIX, connected: Iterable[Workload] = ()
) -> RegistrySnapshot:
    """Every service and endpoint the resources and connected workloads describe."""
    items = list(resources)
    of = {kind: [r for r in items if r.kind == kind] for kind in ("Node", "Pod", "WorkloadEntry", "WorkloadGroup", "Service", "ServiceEntry")}

    nodes: dict[str, Locality] = {}
    for r in of["Node"]:
        loc = _safely(node_locality, r, r.ref)
        if loc is not None and r.name:
            nodes[r.name] = loc

    # Pods and WorkloadEntries are objects of their own even at one address (hostNetwork pods,
    # two WorkloadEntries for two ports of one VM); a connected workload adds an instance only
    # where no object describes its address already.
    pods = [i for i in (_safely(lambda r: pod_instance(r, nodes), r, r.ref) for r in of["Pod"]) if i is not None]
    entries = [i for i in (_safely(workload_entry_instance, r, r.ref) for r in of["WorkloadEntry"]) if i is not None]
    taken = {(i.namespace, i.address) for i in pods + entries}
    groups = of["WorkloadGroup"]
    joined = _unique((_safely(lambda w: connected_instance(w, groups), w, f"workload {w.name}") for w in connected), taken)

    services: dict[tuple[str, str], Service] = {}
    endpoints: dict[tuple[str, str], tuple[Endpoint, ...]] = {}

    sources = KubeEndpointSources.index(items, pods, entries + joined, nodes)
    for r in of["Service"]:
        ks = _safely(lambda r: kube_service(r, domain_suffix), r, r.ref)
        if ks is None:
            continue
        key = (ks.service.hostname, ks.service.namespace)
        if key in services:
            continue
        eps = _safely(lambda ks: kube_endpoints(ks, sources), ks, r.ref)
        services[key] = ks.service
        endpoints[key] = eps or ()

    instances = by_namespace(entries + pods + joined)
    for r in of["ServiceEntry"]:
        found = _safely(lambda r: entry_services(r, instances.get(namespace_of(r), ())), r, r.ref) or []
        for es in found:
            key = (es.service.hostname, es.service.namespace)
            if key in services:
                continue
            services[key] = es.service
            endpoints[key] = es.endpoints

    ordered = tuple(sorted(services.values(), key=lambda s: (s.hostname, s.namespace)))
    workloads = tuple(sorted((i.workload() for i in pods + entries + joined), key=lambda w: (w.namespace, w.name, w.address)))
    return RegistrySnapshot(services=ordered, endpoints={k: endpoints[k] for k in sorted(endpoints)}, workloads=workloads)
