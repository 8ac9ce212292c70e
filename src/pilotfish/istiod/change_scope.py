"""What a config change can alter, so a push does no more than it must: the xDS types a kind
feeds, which proxies a VirtualService change reaches, and whether an edit left a
VirtualService's hosts alone (so its earlier route configurations can be patched)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..pilot.proxy import InterceptionMode, Proxy
from ..pilot.push_context import PushContext
from ..xds.type_urls import CLUSTER, ENDPOINT, LISTENER, ROUTE

#: The xDS types a change of each config kind can alter; kinds not listed (the registry's
#: Service, ServiceEntry, WorkloadEntry, Pod..., Sidecar, and any other) may alter all of them.
_TYPES_OF_KIND = {
    "VirtualService": {LISTENER, ROUTE},  # routes; REDIRECT-mode TCP/TLS listeners follow its tcp/tls routes
    "DestinationRule": {CLUSTER, ENDPOINT, ROUTE},  # cluster policy, subsets, hash policies
    "Gateway": {LISTENER, ROUTE},
}
_ALL_TYPES = {CLUSTER, ENDPOINT, LISTENER, ROUTE}
#: The kinds the service registry is built from (registry/build.py reads these).
REGISTRY_KINDS = frozenset({"Service", "ServiceEntry", "WorkloadEntry", "WorkloadGroup", "Pod", "Node",
                            "EndpointSlice", "Endpoints"})


def types_for(kinds: set[str]) -> set[str]:
    out: set[str] = set()
    for kind in kinds:
        out |= _TYPES_OF_KIND.get(kind, _ALL_TYPES)
    return out


def reaching(push: PushContext, changed: list[Any], proxy_for: Callable[[Any], Proxy]) -> Callable[[Any], bool]:
    """Which proxies (by xDS node) a change of VirtualServices (``changed``: their old and new
    versions) can alter: a sidecar only when one of them is exported to its namespace and names
    a host it can reach; gateways always (their hosts come from Gateways)."""
    changed = [r for r in changed if r.kind == "VirtualService"]
    if any(not vs.spec.hosts or (vs.namespace, vs.name) in push.delegate_names for vs in changed):
        return lambda node: True  # a delegate: its parents' routes change, wherever they are
    hosts = {str(h) for vs in changed for h in push.vs_hosts(vs)}
    known = {s.hostname for s in push.registry.services}
    odd = any(h.startswith("*") or h not in known for h in hosts)  # wildcards, hosts outside the registry
    verdicts: dict[tuple[str, int, InterceptionMode], bool] = {}

    def affects(node: Any) -> bool:
        proxy = proxy_for(node)
        if proxy.is_gateway:
            return True
        key = (proxy.namespace, id(push.sidecar_for(proxy)), proxy.interception_mode)
        if key not in verdicts:
            verdicts[key] = any(push.config_visible(vs, proxy.namespace) for vs in changed) and _reaches(
                push.services_for(proxy), hosts, odd, proxy.interception_mode is InterceptionMode.NONE)
        return verdicts[key]
    return affects


def touches_listeners(changed: list[Any]) -> bool:
    """Listeners read only a VirtualService's tcp and tls routes."""
    return any(vs.spec.tcp or vs.spec.tls for vs in changed)


def _reaches(services: list[Any], hosts: set[str], odd: bool, http_proxy: bool) -> bool:
    """Whether a sidecar seeing ``services`` has a route configuration a VirtualService for
    ``hosts`` can change: one of its services is named; or (``odd``: a host outside the registry
    or a wildcard) the sidecar has the port-80 or HTTP-proxy configuration such hosts go into."""
    if any(s.hostname in hosts for s in services):
        return True
    return odd and (http_proxy or any(s.port(80) is not None for s in services))


def edited_in_place(changed: list[Any]) -> tuple[tuple[Any, Any], ...]:
    """(before, after) of each VirtualService changed in place: edited, not added or removed,
    with the same hosts, gateways and exportTo and no delegation, so that only the routes of
    the virtual hosts it owns change (routes.py patches those). Empty when any change is not."""
    versions: dict[tuple[str, str], list[Any]] = {}
    for r in changed:
        versions.setdefault((r.namespace, r.name), []).append(r)
    pairs = []
    for found in versions.values():
        if len(found) != 2:
            return ()
        before, after = found
        for vs in (before, after):
            if vs.kind != "VirtualService" or not vs.spec.hosts or any(h.delegate is not None for h in vs.spec.http or ()):
                return ()
        if (before.spec.hosts, before.spec.gateways, before.spec.export_to) != (
                after.spec.hosts, after.spec.gateways, after.spec.export_to):
            return ()
        pairs.append((before, after))
    return tuple(pairs)
