"""One immutable snapshot of everything translation reads (Istio's PushContext): the config
resources, the service registry and the mesh config, with the indexes and visibility rules
(exportTo, Sidecar egress hosts, gateway binding, DestinationRule lookup) every generator shares.

Built once per push; every proxy's translation reads it and nothing writes it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

from ..config.base import Resource
from ..config.host import Hostname, resolve_short_name
from ..config.models.kube import MeshConfig, default_mesh_config
from ..config.selectors import labels_match
from ..registry.model import RegistrySnapshot, Service
from .proxy import Proxy

MESH_GATEWAY = "mesh"


@dataclass(frozen=True, eq=False)
class PushContext:
    resources: tuple[Resource, ...] = ()
    registry: RegistrySnapshot = field(default_factory=RegistrySnapshot)
    mesh: MeshConfig = field(default_factory=default_mesh_config)
    version: str = "0"
    domain_suffix: str = "cluster.local"

    # ---------------------------------------------------------------- indexes

    @cached_property
    def _by_kind(self) -> Mapping[str, list[Resource]]:
        index: dict[str, list[Resource]] = defaultdict(list)
        for r in self.resources:
            index[r.kind].append(r)
        for items in index.values():  # Istio orders by creation time, then name: ours is namespace/name
            items.sort(key=lambda r: (r.metadata.creation_timestamp or "", r.namespace, r.name))
        return index

    def of_kind(self, kind: str) -> list[Resource]:
        return self._by_kind.get(kind, [])

    @property
    def root_namespace(self) -> str:
        return self.mesh.root_namespace

    # ---------------------------------------------------------------- visibility

    @staticmethod
    def visible(export_to: Iterable[str] | None, owner_namespace: str, viewer_namespace: str,
                default: Iterable[str] | None = None) -> bool:
        """exportTo: "*" everyone, "." the owner's namespace, "~" no one, or namespaces by name."""
        targets = list(export_to or default or ["*"])
        for t in targets:
            if t == "*" or (t == "." and viewer_namespace == owner_namespace) or t == viewer_namespace:
                return True
        return False

    def service_visible(self, service: Service, namespace: str) -> bool:
        return self.visible(service.export_to, service.namespace, namespace)

    def config_visible(self, resource: Resource, namespace: str) -> bool:
        spec = resource.spec
        export_to = getattr(spec, "export_to", None)
        default = {"VirtualService": self.mesh.default_virtual_service_export_to,
                   "DestinationRule": self.mesh.default_destination_rule_export_to}.get(resource.kind)
        return self.visible(export_to, resource.namespace, namespace, default)

    # ---------------------------------------------------------------- sidecar scope

    def sidecar_for(self, proxy: Proxy) -> Resource | None:
        """The Sidecar that applies to ``proxy``: one in its namespace selecting it, else its
        namespace's without a selector, else the root namespace's without a selector."""
        if proxy.is_gateway:
            return None
        default = None
        for sc in self.of_kind("Sidecar"):
            if sc.namespace != proxy.namespace:
                continue
            sel = sc.spec.workload_selector
            if sel is not None and sel.labels:
                if labels_match(sel.labels, proxy.labels):
                    return sc
            elif default is None:
                default = sc
        if default is not None:
            return default
        for sc in self.of_kind("Sidecar"):
            if sc.namespace == self.root_namespace and not (sc.spec.workload_selector and sc.spec.workload_selector.labels):
                return sc
        return None

    def egress_hosts(self, proxy: Proxy) -> list[tuple[str, str]] | None:
        """The Sidecar's egress ``namespace/host`` pairs for ``proxy`` (None: no Sidecar, all
        visible). ``.`` becomes the proxy's namespace; ``~`` matches nothing."""
        sc = self.sidecar_for(proxy)
        if sc is None or not sc.spec.egress:
            return None
        pairs = []
        for listener in sc.spec.egress:
            for h in listener.hosts or ():
                ns, _, host = h.partition("/")
                pairs.append((sc.namespace if ns == "." else ns, host))
        return pairs

    @staticmethod
    def _egress_allows(pairs: list[tuple[str, str]], namespace: str, hostname: str) -> bool:
        for ns, host in pairs:
            if ns == "~":
                continue
            if ns not in ("*", namespace):
                continue
            if host == "*" or Hostname(hostname).subset_of(host) or Hostname(host).matches(hostname):
                return True
        return False

    # ---------------------------------------------------------------- services

    def services_for(self, proxy: Proxy) -> list[Service]:
        """The services ``proxy`` can reach: exported to its namespace and, for a sidecar with a
        Sidecar resource, named by its egress hosts. Sorted by hostname, namespace."""
        pairs = None if proxy.is_gateway else self.egress_hosts(proxy)
        out = [s for s in self.registry.services if self.service_visible(s, proxy.namespace)
               and (pairs is None or self._egress_allows(pairs, s.namespace, s.hostname))]
        return sorted(out, key=lambda s: (s.hostname, s.namespace))

    def service(self, hostname: str, namespace: str) -> Service | None:
        """The service a caller in ``namespace`` means by ``hostname`` (a FQDN): its own
        namespace's declaration first, then any visible one."""
        candidates = [s for s in self.registry.by_hostname(hostname) if self.service_visible(s, namespace)]
        for s in candidates:
            if s.namespace == namespace:
                return s
        return candidates[0] if candidates else None

    def resolve(self, host: str, namespace: str) -> Hostname:
        return resolve_short_name(host, namespace, self.domain_suffix)

    # ---------------------------------------------------------------- VirtualServices

    def virtual_services_for(self, proxy: Proxy, gateways: Iterable[str]) -> list[Resource]:
        """VirtualServices visible to ``proxy`` that bind to one of ``gateways`` (``mesh`` for
        sidecars; ``ns/name`` for gateways). A VirtualService without ``gateways`` binds to mesh;
        a short gateway name means one in the VirtualService's namespace. Delegates (VirtualServices
        other VirtualServices name in ``delegate``) are not bound by themselves."""
        wanted = set(gateways)
        delegates = self.delegate_names
        out = []
        for vs in self.of_kind("VirtualService"):
            if (vs.namespace, vs.name) in delegates or not self.config_visible(vs, proxy.namespace):
                continue
            if wanted & self.vs_gateways(vs):
                out.append(vs)
        return out

    def vs_gateways(self, vs: Resource) -> set[str]:
        names = vs.spec.gateways or [MESH_GATEWAY]
        out = set()
        for g in names:
            if g == MESH_GATEWAY:
                out.add(MESH_GATEWAY)
            elif "/" in g:
                out.add(g)
            else:
                out.add(f"{vs.namespace}/{g}")
        return out

    @cached_property
    def delegate_names(self) -> frozenset[tuple[str, str]]:
        names = set()
        for vs in self.of_kind("VirtualService"):
            for http in vs.spec.http or ():
                d = getattr(http, "delegate", None)
                if d is not None and d.name:
                    names.add((d.namespace or vs.namespace, d.name))
        return frozenset(names)

    def delegate(self, namespace: str, name: str) -> Resource | None:
        for vs in self.of_kind("VirtualService"):
            if vs.namespace == namespace and vs.name == name:
                return vs
        return None

    def vs_hosts(self, vs: Resource) -> list[Hostname]:
        return [self.resolve(h, vs.namespace) for h in vs.spec.hosts or ()]

    # ---------------------------------------------------------------- DestinationRules

    def destination_rule(self, proxy_namespace: str, service: Service) -> Resource | None:
        """Istio's lookup: the proxy's namespace, then the service's, then the root namespace;
        within each, an exact host before the most specific wildcard. Only rules visible to the
        proxy's namespace count."""
        for ns in dict.fromkeys((proxy_namespace, service.namespace, self.root_namespace)):
            best: Resource | None = None
            best_host: str | None = None
            for dr in self.of_kind("DestinationRule"):
                if dr.namespace != ns or not self.config_visible(dr, proxy_namespace):
                    continue
                if not labels_match_selector(dr, None):
                    continue
                host = self.resolve(dr.spec.host or "", dr.namespace)
                if not Hostname(service.hostname).subset_of(host):
                    continue
                if best_host is None or (not host.is_wildcard and Hostname(best_host).is_wildcard) or (
                        host.is_wildcard and Hostname(best_host).is_wildcard and len(host) > len(best_host)):
                    best, best_host = dr, host
            if best is not None:
                return best
        return None

    # ---------------------------------------------------------------- Gateways

    def gateways_for(self, proxy: Proxy) -> list[Resource]:
        """Gateway resources whose selector matches the gateway proxy's labels (any namespace,
        as Istio with PILOT_SCOPE_GATEWAY_TO_NAMESPACE off)."""
        if not proxy.is_gateway:
            return []
        return [g for g in self.of_kind("Gateway") if g.spec.selector and labels_match(g.spec.selector, proxy.labels)]


def labels_match_selector(resource: Resource, labels: Mapping[str, str] | None) -> bool:
    """A DestinationRule's workloadSelector applies only to selected workloads; without labels
    (a rule looked up for any caller) only rules without a selector count."""
    sel = getattr(resource.spec, "workload_selector", None)
    if sel is None or not sel.labels:
        return True
    return labels is not None and labels_match(sel.labels, labels)
