"""The registry of kinds the mesh understands, collected from the models modules.

A table built from an explicit list of modules (each declares ``KINDS``), above the models
in the layering: the models import only ``kind_info``, never this registry. Lookups take an
apiVersion so a resource with an unserved version is refused the way the API server would
refuse it.
"""

from __future__ import annotations

from .base import Resource
from .kind_info import KindInfo
from .models import (
    destinationrule,
    envoyfilter,
    extensions,
    gateway,
    kube,
    proxyconfig,
    security,
    serviceentry,
    sidecar,
    telemetry,
    virtualservice,
    workload,
)

# In this order: all_kinds() (and so the CRDs and analyzers that walk it) follows it.
_DECLARING_MODULES = (
    virtualservice,
    destinationrule,
    gateway,
    serviceentry,
    sidecar,
    workload,
    proxyconfig,
    envoyfilter,
    security,
    telemetry,
    extensions,
    kube,
)

REGISTRY: dict[tuple[str, str], KindInfo] = {
    (info.group, info.kind): info for module in _DECLARING_MODULES for info in module.KINDS
}


def lookup(api_version: str, kind: str) -> KindInfo | None:
    """The kind's info when ``api_version`` names one of its served versions, else None."""
    group, _, version = api_version.rpartition("/")
    info = REGISTRY.get((group, kind))
    if info is None or version not in info.versions:
        return None
    return info


def by_kind(kind: str) -> list[KindInfo]:
    return [info for (_, k), info in REGISTRY.items() if k == kind]


def all_kinds() -> list[KindInfo]:
    return list(REGISTRY.values())


def with_default_namespace(resource: Resource, namespace: str = "default") -> Resource:
    """A namespaced object written without a namespace, placed in ``namespace`` (as kubectl apply
    and istioctl analyze place it); cluster-scoped objects, and those that name one, unchanged."""
    info = lookup(resource.api_version, resource.kind)
    if resource.namespace or not namespace or (info is not None and not info.namespaced):
        return resource
    meta = resource.metadata.model_copy(update={"namespace": namespace})
    raw = dict(resource.raw)
    raw["metadata"] = {**(raw.get("metadata") or {}), "namespace": namespace}
    return resource.model_copy(update={"metadata": meta, "raw": raw})
