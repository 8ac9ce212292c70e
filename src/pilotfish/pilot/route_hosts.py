"""Which names reach a service (virtual host domains) and which VirtualService owns a service's
routes, as a sidecar sees them (Istio's generateVirtualHostDomains and the VirtualService ↔
registry host binding of BuildSidecarVirtualHostWrapper)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

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


def _rank(vs_hosts: Sequence[Hostname], hostname: str) -> tuple[int, int] | None:
    """How specifically a VirtualService's hosts name ``hostname``: exact first, then the
    longest wildcard; None when they do not."""
    best: tuple[int, int] | None = None
    for h in vs_hosts:
        if h == hostname:
            return (0, 0)
        if h.is_wildcard and Hostname(hostname).subset_of(h):
            rank = (1, -len(h))
            if best is None or rank < best:
                best = rank
    return best


def bind_virtual_services(push: PushContext, vss: Iterable[Resource], services: Iterable[Service]) -> dict[str, Resource]:
    """hostname → the VirtualService whose routes serve it: an exact host beats a wildcard, a
    longer wildcard a shorter one, and the first (oldest, then by name) wins ties."""
    ranked = [(vs, push.vs_hosts(vs)) for vs in vss]
    out: dict[str, Resource] = {}
    for s in services:
        best: tuple[tuple[int, int], int] | None = None
        for i, (vs, hosts) in enumerate(ranked):
            r = _rank(hosts, s.hostname)
            if r is not None and (best is None or (r, i) < best):
                best = (r, i)
        if best is not None:
            out[s.hostname] = ranked[best[1]][0]
    return out


def non_service_hosts(push: PushContext, vs: Resource, known: Iterable[str]) -> list[str]:
    """A VirtualService's hosts that name no registry service (``bookinfo.com``,
    ``*.example.com`` matching nothing): they get virtual hosts of their own."""
    names = set(known)
    out = []
    for h in push.vs_hosts(vs):
        if h.is_wildcard:
            if not any(Hostname(n).subset_of(h) for n in names):
                out.append(str(h).lower())
        elif h not in names:
            out.append(str(h).lower())
    return out
