"""One immutable snapshot of everything translation reads (Istio's PushContext): the config
resources, the service registry and the mesh config, with the indexes and visibility rules
(exportTo, Sidecar egress hosts, gateway binding, DestinationRule lookup) every generator shares.

Built once per push; every proxy's translation reads it and nothing writes it. The indexes
(resources by kind, services by hostname, Sidecars, DestinationRules and VirtualServices by
namespace, host and gateway) are built on first use, and answers that depend only on a
namespace (not on the whole proxy) are remembered: at a thousand services every proxy asks the
same questions thousands of times, and a push asks them again for every proxy. The memo tables
only ever gain entries equal to what the lookup would compute, so readers never see a change.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

from ..config.base import Resource
from ..config.host import Hostname, resolve_short_name
from ..config.models.kube import MeshConfig, default_mesh_config
from ..config.selectors import labels_match
from ..registry.model import Endpoint, RegistrySnapshot, Service
from .proxy import Proxy

MESH_GATEWAY = "mesh"

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class _RuleHost:
    """A DestinationRule without a workload selector and the host it names, resolved once."""

    rule: Resource
    host: Hostname
    order: int  # its place in of_kind("DestinationRule")


def _memo(table: dict[object, tuple[object, _T]], key: object, owner: object, compute: Callable[[], _T]) -> _T:
    """``table[key]``, computed once; ``owner`` is the object the key names by ``id()``, checked
    by identity so that a key is never taken for another object's."""
    hit = table.get(key)
    if hit is not None and hit[0] is owner:
        return hit[1]
    value = compute()
    table[key] = (owner, value)
    return value


@dataclass(frozen=True, eq=False)
class PushContext:
    resources: tuple[Resource, ...] = ()
    registry: RegistrySnapshot = field(default_factory=RegistrySnapshot)
    mesh: MeshConfig = field(default_factory=default_mesh_config)
    version: str = "0"
    domain_suffix: str = "cluster.local"
    # When the push follows one that differed only in VirtualServices edited in place (same
    # hosts, gateways and exportTo): the earlier push's route configurations (its ``generated``
    # entries, by key) and the edited VirtualServices as (before, after). RDS then patches the
    # earlier configurations instead of translating a thousand virtual hosts again. The owner
    # empties ``prior_routes`` once the push is sent.
    prior_routes: dict[object, Any] | None = field(default=None, compare=False, repr=False)
    edited: tuple[tuple[Resource, Resource], ...] = ()

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

    @cached_property
    def _endpoints_by_address(self) -> Mapping[str, list[tuple[Service, Endpoint]]]:
        index: dict[str, list[tuple[Service, Endpoint]]] = {}
        registry = self.registry
        for service in sorted(registry.services, key=lambda s: (s.hostname, s.namespace)):
            for ep in registry.endpoints_of(service):
                index.setdefault(ep.address, []).append((service, ep))
        return index

    def endpoints_at(self, addresses: Iterable[str]) -> list[tuple[Service, Endpoint]]:
        """(service, endpoint) for every endpoint at one of ``addresses`` (a proxy's own), by
        service hostname then namespace: what the proxy's inbound side serves."""
        found = [pair for a in dict.fromkeys(addresses) for pair in self._endpoints_by_address.get(a, ())]
        return sorted(found, key=lambda pair: (pair[0].hostname, pair[0].namespace))  # (stable: per-address order kept)

    def proxy_endpoints(self, proxy: Proxy) -> list[tuple[Service, Endpoint]]:
        """The endpoints a proxy's workload serves: those at its addresses, and where several pods
        share an address (hostNetwork pods; the local mesh without loopback aliases) only its own
        pod's, as Istio finds a proxy's service targets through its pod."""
        found = self.endpoints_at(proxy.ip_addresses)
        pod = proxy.id.rpartition(".")[0]
        mine = [pair for pair in found if pair[1].workload_name == pod and pair[1].namespace == proxy.namespace]
        return mine if pod and mine else found

    @cached_property
    def generated(self) -> dict[object, Any]:
        """Translation results shared by every proxy that would compute the same thing (an EDS
        assignment per cluster and namespace): generators fill it, and never change an entry."""
        return {}

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
        export_to = getattr(resource.spec, "export_to", None)
        return self.visible(export_to, resource.namespace, namespace, self._default_export_to.get(resource.kind))

    @cached_property
    def _default_export_to(self) -> Mapping[str, list[str] | None]:
        return {"VirtualService": self.mesh.default_virtual_service_export_to,
                "DestinationRule": self.mesh.default_destination_rule_export_to}

    # ---------------------------------------------------------------- sidecar scope

    def sidecar_for(self, proxy: Proxy) -> Resource | None:
        """The Sidecar that applies to ``proxy``: one in its namespace selecting it, else its
        namespace's without a selector, else the root namespace's without a selector."""
        if proxy.is_gateway:
            return None
        default = None
        for sc in self._sidecars_by_namespace.get(proxy.namespace, ()):
            sel = sc.spec.workload_selector
            if sel is not None and sel.labels:
                if labels_match(sel.labels, proxy.labels):
                    return sc
            elif default is None:
                default = sc
        if default is not None:
            return default
        for sc in self._sidecars_by_namespace.get(self.root_namespace, ()):
            if not (sc.spec.workload_selector and sc.spec.workload_selector.labels):
                return sc
        return None

    @cached_property
    def _sidecars_by_namespace(self) -> Mapping[str, list[Resource]]:
        index: dict[str, list[Resource]] = defaultdict(list)
        for sc in self.of_kind("Sidecar"):
            index[sc.namespace].append(sc)
        return index

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
        sidecar = None if proxy.is_gateway else self.sidecar_for(proxy)
        key = (proxy.namespace, proxy.is_gateway, id(sidecar))
        return list(_memo(self._services_for, key, sidecar, lambda: self._compute_services_for(proxy)))

    def _compute_services_for(self, proxy: Proxy) -> list[Service]:
        pairs = None if proxy.is_gateway else self.egress_hosts(proxy)
        out = [s for s in self.registry.services if self.service_visible(s, proxy.namespace)
               and (pairs is None or self._egress_allows(pairs, s.namespace, s.hostname))]
        return sorted(out, key=lambda s: (s.hostname, s.namespace))

    @cached_property
    def _services_for(self) -> dict[object, tuple[object, list[Service]]]:
        return {}

    def service(self, hostname: str, namespace: str) -> Service | None:
        """The service a caller in ``namespace`` means by ``hostname`` (a FQDN): its own
        namespace's declaration first, then any visible one."""
        candidates = [s for s in self._services_by_host.get(hostname, ()) if self.service_visible(s, namespace)]
        for s in candidates:
            if s.namespace == namespace:
                return s
        return candidates[0] if candidates else None

    @cached_property
    def _services_by_host(self) -> Mapping[str, list[Service]]:
        """The registry's services by hostname, in registry order (as ``by_hostname`` lists them)."""
        index: dict[str, list[Service]] = defaultdict(list)
        for s in self.registry.services:
            index[s.hostname].append(s)
        return index

    def resolve(self, host: str, namespace: str) -> Hostname:
        return resolve_short_name(host, namespace, self.domain_suffix)

    # ---------------------------------------------------------------- VirtualServices

    def virtual_services_for(self, proxy: Proxy, gateways: Iterable[str]) -> list[Resource]:
        """VirtualServices visible to ``proxy`` that bind to one of ``gateways`` (``mesh`` for
        sidecars; ``ns/name`` for gateways). A VirtualService without ``gateways`` binds to mesh;
        a short gateway name means one in the VirtualService's namespace. Delegates (VirtualServices
        other VirtualServices name in ``delegate``) are not bound by themselves."""
        wanted = frozenset(gateways)
        key = (proxy.namespace, wanted)
        hit = self._virtual_services_for.get(key)
        if hit is None:
            orders: set[int] = set()
            for g in wanted:
                orders.update(self._vs_by_gateway.get(g, ()))
            vss = self.of_kind("VirtualService")
            hit = self._virtual_services_for[key] = [
                vss[i] for i in sorted(orders) if self.config_visible(vss[i], proxy.namespace)]
        return list(hit)

    @cached_property
    def _virtual_services_for(self) -> dict[tuple[str, frozenset[str]], list[Resource]]:
        return {}

    @cached_property
    def _vs_by_gateway(self) -> Mapping[str, list[int]]:
        """Gateway name -> the places (in of_kind order) of the VirtualServices bound to it,
        delegates left out."""
        index: dict[str, list[int]] = defaultdict(list)
        delegates = self.delegate_names
        for i, vs in enumerate(self.of_kind("VirtualService")):
            if (vs.namespace, vs.name) in delegates:
                continue
            for g in self.vs_gateways(vs):
                index[g].append(i)
        return index

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
        return self._vs_by_name.get((namespace, name))

    @cached_property
    def _vs_by_name(self) -> Mapping[tuple[str, str], Resource]:
        index: dict[tuple[str, str], Resource] = {}
        for vs in self.of_kind("VirtualService"):
            index.setdefault((vs.namespace, vs.name), vs)
        return index

    def vs_hosts(self, vs: Resource) -> list[Hostname]:
        return list(_memo(self._vs_hosts, id(vs), vs,
                          lambda: [self.resolve(h, vs.namespace) for h in vs.spec.hosts or ()]))

    @cached_property
    def _vs_hosts(self) -> dict[object, tuple[object, list[Hostname]]]:
        return {}

    # ---------------------------------------------------------------- DestinationRules

    def destination_rule(self, proxy_namespace: str, service: Service) -> Resource | None:
        """Istio's lookup: the proxy's namespace, then the service's, then the root namespace;
        within each, an exact host before the most specific wildcard (the first in order among
        equals). Only rules visible to the proxy's namespace count."""
        key = (proxy_namespace, service.hostname, service.namespace)
        if key in self._destination_rules:
            return self._destination_rules[key]
        found = None
        for ns in dict.fromkeys((proxy_namespace, service.namespace, self.root_namespace)):
            found = self._destination_rule_in(ns, proxy_namespace, service.hostname)
            if found is not None:
                break
        self._destination_rules[key] = found
        return found

    def _destination_rule_in(self, namespace: str, viewer: str, hostname: str) -> Resource | None:
        exact, wildcards = self._rules_by_namespace.get(namespace, ({}, []))
        if not hostname.startswith("*"):
            for rh in exact.get(hostname, ()):
                if self.config_visible(rh.rule, viewer):
                    return rh.rule
        best: _RuleHost | None = None
        for rh in wildcards:  # longest host first, then in order
            if best is not None and len(rh.host) < len(best.host):
                break
            if Hostname(hostname).subset_of(rh.host) and self.config_visible(rh.rule, viewer):
                if best is None or rh.order < best.order:
                    best = rh
        return best.rule if best is not None else None

    @cached_property
    def _destination_rules(self) -> dict[tuple[str, str, str], Resource | None]:
        return {}

    @cached_property
    def _rules_by_namespace(self) -> Mapping[str, tuple[dict[str, list[_RuleHost]], list[_RuleHost]]]:
        """Namespace -> (exact host -> rules in order, wildcard rules longest host first): the
        rules without a workload selector, the only ones a lookup for any caller considers."""
        index: dict[str, tuple[dict[str, list[_RuleHost]], list[_RuleHost]]] = {}
        for i, dr in enumerate(self.of_kind("DestinationRule")):
            if not labels_match_selector(dr, None):
                continue
            rh = _RuleHost(dr, self.resolve(dr.spec.host or "", dr.namespace), i)
            exact, wildcards = index.setdefault(dr.namespace, ({}, []))
            if rh.host.is_wildcard:
                wildcards.append(rh)
            else:
                exact.setdefault(str(rh.host), []).append(rh)
        for _, wildcards in index.values():
            wildcards.sort(key=lambda rh: (-len(rh.host), rh.order))
        return index

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
