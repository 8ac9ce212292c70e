"""VirtualService validation: a port of Istio's ValidateVirtualService.

Hosts are checked against the gateways the routes bind to (the mesh forbids ``*``; gateways
allow partial wildcards for SNI), delegate VirtualServices (no hosts) may carry HTTP routes
only, and every HTTP, TLS and TCP route is checked. Unreachable rules are warnings.
"""

from __future__ import annotations

from ..base import Resource
from ..errors import FieldError, Verdict, at
from ..host import Hostname
from ..models.virtualservice import L4MatchAttributes, TCPRoute, TLSMatchAttributes, TLSRoute, VirtualService
from .destination import validate_destination, validate_weight
from .domains import validate_wildcard_domain, validate_wildcard_domain_for_virtual_service_bound_to_gateway
from .metadata import validate_export_to, validate_reserved_annotations, validate_tag_labels
from .network import validate_ip, validate_ip_subnet, validate_port
from .virtualservice_http import validate_http_route
from .virtualservice_matches import gateway_name_errors, is_jwt_claim_route
from .virtualservice_rules import unreachable_rule_warnings

MESH_GATEWAY = "mesh"
ROUTE_SEMANTICS_ANNOTATION = "internal.istio.io/route-semantics"


def validate_virtual_service(resource: Resource) -> Verdict:
    meta_errors = validate_reserved_annotations(resource.namespace, resource.name, resource.annotations)
    if meta_errors:
        return Verdict(errors=meta_errors)
    vs: VirtualService = resource.spec
    gateway_semantics = resource.annotations.get(ROUTE_SEMANTICS_ANNOTATION) == "gateway"
    v = Verdict()
    hosts, gateways = vs.hosts or [], vs.gateways or []
    if not hosts:
        v.errors += at(("spec",), delegate_errors(vs))
    applies_to_gateway = False
    if gateways:
        errs, warnings = gateway_name_errors(gateways, gateway_semantics=gateway_semantics)
        v.errors += at(("spec", "gateways"), errs)
        v.warnings += at(("spec", "gateways"), warnings)
        applies_to_gateway = is_gateway_bound(vs)
    if not applies_to_gateway:
        v.errors += at(("spec", "http"), jwt_claim_route_errors(vs))
    v.errors += at(("spec", "hosts"), host_errors(vs, applies_to_gateway=applies_to_gateway))
    if not vs.http and not vs.tcp and not vs.tls:
        v.errors.append(FieldError("http, tcp or tls must be provided in virtual service", ("spec",)))
    for i, route in enumerate(vs.http or []):
        v.under(("spec", "http", i), lambda one, route=route: validate_http_route(
            one, route, delegate=not hosts, gateway_semantics=gateway_semantics))
    for i, tls in enumerate(vs.tls or []):
        v.under(("spec", "tls", i), lambda one, tls=tls: validate_tls_route(
            one, tls, vs, gateway_semantics=gateway_semantics))
    for i, tcp in enumerate(vs.tcp or []):
        v.errors += at(("spec", "tcp", i), tcp_route_errors(tcp, gateway_semantics=gateway_semantics))
    v.errors += at(("spec", "exportTo"), validate_export_to(resource.namespace, vs.export_to))
    v.warnings += unreachable_rule_warnings(vs.http)
    v.warnings += unreachable_rule_warnings(vs.tcp)
    v.warnings += unreachable_rule_warnings(vs.tls)
    return v


def delegate_errors(vs: VirtualService) -> list[str]:
    """A VirtualService without hosts is a delegate: HTTP routes only, bound to no gateway."""
    errs: list[str] = []
    if vs.gateways:
        errs.append("delegate virtual service must have no gateways specified")
    if vs.tls:
        errs.append("delegate virtual service must have no tls route specified")
    if vs.tcp:
        errs.append("delegate virtual service must have no tcp route specified")
    return errs


def is_gateway_bound(vs: VirtualService) -> bool:
    """Bound to gateways only: listing ``mesh`` among them makes it a mesh rule too."""
    return MESH_GATEWAY not in (vs.gateways or [])


def is_sni_host(vs: VirtualService) -> bool:
    return any(match.sni_hosts for tls in vs.tls or [] for match in tls.match)


def jwt_claim_route_errors(vs: VirtualService) -> list[str]:
    """Routing on JWT claims (``@request.auth.claims.*``) works at gateways only."""
    errs: list[str] = []
    gateways = "[" + " ".join(vs.gateways or []) + "]"
    for route in vs.http or []:
        for match in route.match or []:
            for headers in (match.headers, match.without_headers):
                for key in headers or {}:
                    if is_jwt_claim_route(key):
                        errs.append(f"JWT claim based routing (key: {key}) is only supported for gateway, found no gateways: {gateways}")
    return errs


def host_errors(vs: VirtualService, *, applies_to_gateway: bool) -> list[str]:
    errs: list[str] = []
    all_valid = True
    sni = is_sni_host(vs)
    hosts = vs.hosts or []
    for index, host in enumerate(hosts):
        if applies_to_gateway:
            problems = validate_wildcard_domain_for_virtual_service_bound_to_gateway(sni, host)
        else:
            problems = validate_wildcard_domain(host)
        if problems:
            if validate_ip(host):
                errs += at((index,), problems)
                all_valid = False
        elif not applies_to_gateway and host == "*":
            errs.append(FieldError("wildcard host * is not allowed for virtual services bound to the mesh gateway",
                                   (index,)))
            all_valid = False
    if all_valid:
        for i, first in enumerate(hosts):
            for second in hosts[i + 1 :]:
                if Hostname(first).matches(second):
                    errs.append(f"duplicate hosts in virtual service: {first} & {second}")
    return errs


# ---------------------------------------------------------------- TLS and TCP routes


def validate_tls_route(v: Verdict, tls: TLSRoute, vs: VirtualService, *, gateway_semantics: bool) -> None:
    if not tls.match:
        v.errors.append("TLS route must have at least one match condition")
    for match in tls.match:
        validate_tls_match(v, match, vs)
    if not tls.route:
        v.errors.append("TLS route is required")
    v.errors += route_destinations_errors(tls.route, gateway_semantics=gateway_semantics)


def validate_tls_match(v: Verdict, match: TLSMatchAttributes, vs: VirtualService) -> None:
    if not match.sni_hosts:
        v.errors.append("TLS match must have at least one SNI host")
    for sni in match.sni_hosts:
        validate_sni_host(v, sni, vs)
    v.errors += l4_match_errors(match)


def validate_sni_host(v: Verdict, sni: str, vs: VirtualService) -> None:
    """An SNI name must be a (wildcard) domain within one of the VirtualService hosts."""
    if is_gateway_bound(vs):
        problems = validate_wildcard_domain_for_virtual_service_bound_to_gateway(True, sni)
    else:
        problems = validate_wildcard_domain(sni)
    if problems:
        if not validate_ip(sni):
            v.warnings.append(f'using an IP address ("{sni}") goes against SNI spec and most clients do not support this')
            return
        v.errors += problems
        return
    hosts = vs.hosts or []
    if any(Hostname(sni).subset_of(h) for h in hosts):
        return
    v.errors.append(f'SNI host "{sni}" is not a compatible subset of any of the virtual service hosts: [{", ".join(hosts)}]')


def l4_match_errors(match: L4MatchAttributes | TLSMatchAttributes) -> list[str]:
    errs: list[str] = []
    for subnet in match.destination_subnets or []:
        errs += validate_ip_subnet(subnet)
    if match.port:
        errs += validate_port(match.port)
    errs += validate_tag_labels(match.source_labels)
    errs += gateway_name_errors(match.gateways or [], gateway_semantics=False)[0]
    return errs


def tcp_route_errors(tcp: TCPRoute, *, gateway_semantics: bool) -> list[str]:
    errs: list[str] = []
    for match in tcp.match or []:
        errs += l4_match_errors(match)
    if not tcp.route:
        errs.append("TCP route is required")
    errs += route_destinations_errors(tcp.route, gateway_semantics=gateway_semantics)
    return errs


def route_destinations_errors(routes: list | None, *, gateway_semantics: bool) -> list[str]:
    errs: list[str] = []
    total = 0
    for route in routes or []:
        if route.destination is None:
            errs.append("destination is required")
        if not gateway_semantics:
            errs += validate_destination(route.destination)
        errs += validate_weight(route.weight)
        total += route.weight or 0
    if routes and len(routes) > 1 and total == 0:
        errs.append("total destination weight = 0")
    return errs
