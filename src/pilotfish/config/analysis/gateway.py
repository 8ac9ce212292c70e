"""Gateway analyzers: workloads and Service ports behind a Gateway, its credentials, conflicts.

Ported from istio/istio pkg/config/analysis/analyzers/gateway.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from typing import Any

from ..errors import FieldPath
from .context import GATEWAY, POD, SECRET, SERVICE, Entry, Snapshot, selector_matches, selector_string, short_or_full_name
from .credentials import secret_is_valid
from .framework import Message, analyzer, new_message


def _servers(gw: Any) -> list[Any]:
    return list(getattr(gw, "servers", None) or [])


def _selector(gw: Any) -> dict[str, str]:
    return dict(getattr(gw, "selector", None) or {})


def _selector_path(selector: Mapping[str, str]) -> FieldPath:
    """The selector's first label, as Istio points at it (``util.GatewaySelector``)."""
    return ("spec", "selector", min(selector)) if selector else ("spec", "selector")


def _port_number(server: Any) -> int | None:
    port = getattr(server, "port", None)
    return None if port is None else getattr(port, "number", None)


# ---------------------------------------------------------------- IngressGatewayPortAnalyzer


def _services_by_pod(snap: Snapshot) -> dict[tuple[str, str], list[Entry]]:
    out: dict[tuple[str, str], list[Entry]] = defaultdict(list)
    for svc in snap.each(SERVICE):
        for pod in snap.pods_by_namespace.get(svc.namespace, ()):
            if selector_matches(svc.spec.selector, pod.labels):
                out[(pod.namespace, pod.name)].append(svc)
    return out


def _tcp(protocol: str | None) -> bool:
    # Kubernetes fills in TCP when a Service port names no protocol.
    return (protocol or "TCP") == "TCP"


@analyzer("gateway.IngressGatewayPortAnalyzer", "Checks a gateway's ports against the gateway's Kubernetes service ports",
          inputs=(GATEWAY, POD, SERVICE))
def ingress_gateway_port(snap: Snapshot) -> Iterator[Message]:
    by_pod = _services_by_pod(snap)
    for entry in snap.each(GATEWAY):
        selector = _selector(entry.spec)
        pods = snap.pods_matching(selector)
        if not pods:
            yield new_message("ReferencedResourceNotFound", entry, "selector", selector_string(selector), path=_selector_path(selector))
            continue
        # A server port may name the Service port (translated to its target port) or the target port itself.
        ports: set[int] = set()
        for pod in pods:
            for svc in by_pod.get((pod.namespace, pod.name), ()):
                for port in svc.spec.ports or ():
                    if not _tcp(port.protocol):
                        continue
                    ports.add(port.port)
                    if isinstance(port.target_port, int) and port.target_port:
                        ports.add(port.target_port)
        for server in _servers(entry.spec):
            number = _port_number(server)
            if number is not None and number not in ports:
                yield new_message("GatewayPortNotDefinedOnService", entry, number, selector_string(selector), path=_selector_path(selector))


# ---------------------------------------------------------------- SecretAnalyzer


def gateway_workload_namespace(snap: Snapshot, selector: Mapping[str, str]) -> str | None:
    """Namespace of the first pod the gateway selects (its workload), None when it selects none."""
    pods = snap.pods_matching(selector)
    return pods[0].namespace if pods else None


@analyzer("gateway.SecretAnalyzer", "Checks a gateway's referenced secrets for correctness", inputs=(GATEWAY, POD, SECRET))
def secrets(snap: Snapshot) -> Iterator[Message]:
    for entry in snap.each(GATEWAY):
        selector = _selector(entry.spec)
        gw_ns = gateway_workload_namespace(snap, selector)
        if gw_ns is None:
            yield new_message("ReferencedResourceNotFound", entry, "selector", selector_string(selector), path=_selector_path(selector))
            continue
        for i, server in enumerate(_servers(entry.spec)):
            tls = getattr(server, "tls", None)
            name = getattr(tls, "credential_name", None) if tls is not None else None
            if not name:
                continue
            ns, secret_name = short_or_full_name(gw_ns, name)
            secret = snap.find(SECRET, ns, secret_name)
            at = ("spec", "servers", i, "tls", "credentialName")
            if secret is None:
                yield new_message("ReferencedResourceNotFound", entry, "credentialName", name, path=at)
            elif not secret_is_valid(secret.spec, snap.now):
                yield new_message("InvalidGatewayCredential", entry, entry.name, gw_ns, path=at)


# ---------------------------------------------------------------- ConflictingGatewayAnalyzer

# selector string -> port -> gateway full name -> {host: bind}
_GatewayMap = dict[str, dict[str, dict[str, dict[str, str]]]]


def _gateway_map(snap: Snapshot) -> _GatewayMap:
    out: _GatewayMap = defaultdict(lambda: defaultdict(dict))
    for entry in snap.each(GATEWAY):
        sel = selector_string(_selector(entry.spec))
        for server in _servers(entry.spec):
            bind = getattr(server, "bind", None) or ""
            out[sel][str(_port_number(server) or 0)][entry.full_name] = {h: bind for h in server.hosts or []}
    return out


def _parse_selector(text: str) -> dict[str, str]:
    pairs = (part.split("=") for part in text.split(","))
    return {kv[0]: kv[1] for kv in pairs if len(kv) == 2}


def _same_workload(snap: Snapshot, sel: str, other: str) -> bool:
    """Whether two gateway selectors pick the same workload: equal, or nested and sharing a pod."""
    if sel == other:
        return True
    if sel not in other and other not in sel:
        return False
    mine, theirs = _parse_selector(sel), _parse_selector(other)
    return any(selector_matches(mine, p.labels) and selector_matches(theirs, p.labels) for p in snap.each(POD))


def _duplicate_hosts(server: Any, known: dict[str, str]) -> bool:
    """A host the other gateway already serves on the same bind address (model.CheckDuplicates)."""
    bind = getattr(server, "bind", None) or ""
    return any(h in known and known[h] == bind for h in server.hosts or [])


@analyzer("gateway.ConflictingGatewayAnalyzer", "Checks a gateway's selector, port number and hosts", inputs=(GATEWAY, POD))
def conflicting_gateways(snap: Snapshot) -> Iterator[Message]:
    gw_map = _gateway_map(snap)
    for entry in snap.each(GATEWAY):
        sel = selector_string(_selector(entry.spec))
        same = [other for other in gw_map if _same_workload(snap, sel, other)]
        if sel and not same:
            yield new_message("ReferencedResourceNotFound", entry, "selector", sel, path=_selector_path(_selector(entry.spec)))
            continue
        for i, server in enumerate(_servers(entry.spec)):
            port = str(_port_number(server) or 0)
            conflicts = sorted(
                name
                for other in same
                for name, known in gw_map[other].get(port, {}).items()
                if name != entry.full_name and _duplicate_hosts(server, known)
            )
            if conflicts:
                yield new_message("ConflictingGateways", entry, ",".join(conflicts), sel, port, ",".join(server.hosts or []),
                                  path=("spec", "servers", i, "hosts"))


# ---------------------------------------------------------------- CertificateAnalyzer


def _same_certificate(a: Any, b: Any) -> bool:
    a_cred, b_cred = getattr(a, "credential_name", None) or "", getattr(b, "credential_name", None) or ""
    if a_cred and b_cred:
        return a_cred == b_cred
    if not a_cred and not b_cred:
        a_cert, b_cert = getattr(a, "server_certificate", None) or "", getattr(b, "server_certificate", None) or ""
        if a_cert and b_cert and a_cert == b_cert:
            a_key, b_key = getattr(a, "private_key", None) or "", getattr(b, "private_key", None) or ""
            return bool(a_key and b_key) and a_key == b_key
    return False


def _selector_subset(x: Mapping[str, str], y: Mapping[str, str]) -> bool:
    return all(k in y and y[k] == v for k, v in x.items())


# PILOT_SCOPE_GATEWAY_TO_NAMESPACE defaults to false: gateways of any namespace may share a workload.
SCOPE_GATEWAY_TO_NAMESPACE = False


@analyzer("gateway.CertificateAnalyzer", "Checks a gateway certificate", inputs=(GATEWAY,))
def duplicate_certificates(snap: Snapshot) -> Iterator[Message]:
    gateways = snap.each(GATEWAY)
    for entry in gateways:
        selector = _selector(entry.spec)
        for other in gateways:
            if other is entry or (SCOPE_GATEWAY_TO_NAMESPACE and other.namespace != entry.namespace):
                continue
            if selector and not _selector_subset(selector, _selector(other.spec)):
                continue
            for i, mine in enumerate(_servers(entry.spec)):
                for theirs in _servers(other.spec):
                    tls_a, tls_b = getattr(mine, "tls", None), getattr(theirs, "tls", None)
                    if tls_a is None or tls_b is None:
                        continue
                    if _same_certificate(tls_a, tls_b):
                        yield new_message("GatewayDuplicateCertificate", entry, [entry.full_name, other.full_name],
                                          path=("spec", "servers", i, "tls"))


ANALYZERS = [ingress_gateway_port, secrets, conflicting_gateways, duplicate_certificates]
