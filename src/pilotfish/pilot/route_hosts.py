"""Which names reach a service (virtual host domains) and which VirtualService owns a service's
routes, as a sidecar sees them (Istio's generateVirtualHostDomains and the VirtualService ↔
registry host binding of BuildSidecarVirtualHostWrapper)."""

from __future__ import annotations

from collections.abc import Iterable

from ..config.base import Resource
from ..config.host import Hostname
from ..registry.model import Port, Protocol, Service
from .proxy import Proxy
from .push_context import PushContext


def is_http_or_sniffed(port: Port) -> bool:
    """Ports that get HTTP routes: declared HTTP-like, or undeclared (Istio sniffs them)."""
    return port.protocol.is_http or port.protocol is Protocol.UNSUPPORTED


def proxy_domain(push: PushContext, proxy: Proxy) -> str:
    return proxy.dns_domain or f"{proxy.namespace}.svc.{push.domain_suffix}"


def alt_names(hostname: str, domain: str) -> list[str]:
    """The shorter names a Kubernetes service answers to from a proxy in ``domain``
    (``ns.svc.cluster.local``): ``name.ns`` and ``name.ns.svc``, and ``name`` in its own namespace."""
    caller_ns = domain.split(".svc.", 1)[0]
    i = hostname.find(".svc.")
    if i <= 0:
        return []  # not a Kubernetes service name: only its FQDN and addresses
    dot = hostname.find(".")
    if dot + 1 > i:
        return []
    name, ns = hostname[:dot], hostname[dot + 1:i]
    if ns == caller_ns:
        return [name, f"{name}.{ns}.svc", f"{name}.{ns}"]
    return [f"{name}.{ns}", f"{name}.{ns}.svc"]


def service_names(push: PushContext, proxy: Proxy, service: Service) -> list[str]:
    """FQDN, alternative names, then VIPs."""
    names = [service.hostname, *alt_names(service.hostname, proxy_domain(push, proxy))]
    names += [a for a in service.addresses if a and a not in ("0.0.0.0", "::")]
    return names


def with_port(name: str, port: int) -> str:
    return f"[{name}]:{port}" if ":" in name else f"{name}:{port}"


def bare(name: str) -> str:
    return f"[{name}]" if ":" in name else name


def unique_services(push: PushContext, proxy: Proxy) -> list[Service]:
    """The proxy's visible services, one per hostname (its own namespace's declaration first)."""
    out: dict[str, Service] = {}
    for s in push.services_for(proxy):
        if s.hostname not in out:
            out[s.hostname] = push.service(s.hostname, proxy.namespace) or s
    return list(out.values())


def bind_virtual_services(push: PushContext, vss: Iterable[Resource], services: Iterable[Service]) -> dict[str, Resource]:
    """hostname → the VirtualService whose routes serve it: an exact host beats a wildcard, a
    longer wildcard a shorter one, and the first (oldest, then by name) wins ties.

    Exact hosts are looked up in a dict and only wildcard hosts are scanned per service: with a
    thousand services and VirtualServices, comparing every pair was most of a sidecar's RDS time.
    """
    exact: dict[str, Resource] = {}
    wildcards: list[tuple[int, int, Hostname, Resource]] = []  # (-length, order, host, vs)
    for i, vs in enumerate(vss):
        for h in push.vs_hosts(vs):
            if h.is_wildcard:
                wildcards.append((-len(h), i, h, vs))
            else:
                exact.setdefault(str(h), vs)
    wildcards.sort(key=lambda w: (w[0], w[1]))  # longest first, then the first VirtualService
    out: dict[str, Resource] = {}
    for s in services:
        vs = exact.get(s.hostname)
        if vs is None:
            name = Hostname(s.hostname)
            for _, _, h, candidate in wildcards:
                if name.subset_of(h):
                    vs = candidate
                    break
        if vs is not None:
            out[s.hostname] = vs
    return out


def non_service_hosts(push: PushContext, vs: Resource, known: Iterable[str]) -> list[str]:
    """A VirtualService's hosts that name no registry service (``bookinfo.com``,
    ``*.example.com`` matching nothing): they get virtual hosts of their own. ``known``: the
    services' hostnames (pass a set when calling for many VirtualServices)."""
    names = known if isinstance(known, (set, frozenset)) else set(known)
    out = []
    for h in push.vs_hosts(vs):
        if h.is_wildcard:
            if not any(Hostname(n).subset_of(h) for n in names):
                out.append(str(h).lower())
        elif h not in names:
            out.append(str(h).lower())
    return out
