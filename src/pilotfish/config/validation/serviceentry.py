"""ServiceEntry validation: Istio's ValidateServiceEntry plus the CRD's CEL rules."""

from __future__ import annotations

from ..base import Resource
from ..errors import FieldError, Verdict, at
from ..models.serviceentry import Location, Resolution, ServiceEntry
from .attachment import crd_networking_selector_errors, validate_alpha_workload_selector
from .domains import validate_fqdn, validate_wildcard_domain
from .metadata import metadata_errors, validate_export_to
from .network import HTTP_PROTOCOLS, TCP_PROTOCOLS, TLS_PROTOCOLS, parse_protocol, validate_ip, validate_ip_subnet, validate_port, validate_port_name, validate_protocol
from .workload import crd_workload_entry_errors, label_errors, validate_workload_entry

# Opting a ServiceEntry out of automatic VIP allocation (PILOT_ENABLE_IP_AUTOALLOCATE is on by default).
AUTOALLOCATE_LABEL = "networking.istio.io/enable-autoallocate-ip"
USE_WAYPOINT_LABEL = "istio.io/use-waypoint"


def auto_allocates_ip(resource: Resource, spec: ServiceEntry) -> bool:
    """Istio's ShouldV2AutoAllocateIP: no user addresses, resolution not NONE, not opted out."""
    if (spec.resolution or Resolution.NONE) == Resolution.NONE:
        return False
    if resource.labels.get(AUTOALLOCATE_LABEL, "").lower() == "false":
        return False
    return not spec.addresses


def crd_service_entry_errors(spec: ServiceEntry) -> list[str]:
    """The CRD's CEL rules (empty lists count as unset, as in the protobuf the webhook sees),
    paths from the root: the field each text names."""
    errs: list[str] = []
    obj = 'spec: Invalid value: "object": '
    resolution = spec.resolution or Resolution.NONE
    if spec.workload_selector is not None and spec.endpoints:
        errs.append(obj + "only one of WorkloadSelector or Endpoints can be set")
    if any("/" in a for a in spec.addresses or []) and resolution not in (Resolution.STATIC, Resolution.NONE):
        errs.append(obj + "CIDR addresses are allowed only for NONE/STATIC resolution types")
    if resolution == Resolution.NONE and spec.endpoints:
        errs.append(obj + "NONE mode cannot set endpoints")
    if resolution == Resolution.DNS_ROUND_ROBIN and len(spec.endpoints or []) > 1:
        errs.append(obj + "DNS_ROUND_ROBIN mode cannot have multiple endpoints")
    errs = at(("spec",), errs)
    if spec.hosts is None:
        errs.append(FieldError("spec.hosts: Required value", ("spec", "hosts")))
    elif not spec.hosts:
        errs.append(FieldError("spec.hosts: Invalid value: 0: spec.hosts in body should have at least 1 items", ("spec", "hosts")))
    hosts = spec.hosts or []
    errs += [FieldError(f'spec.hosts[{i}]: Invalid value: "string": hostname cannot be wildcard', ("spec", "hosts", i))
             for i, h in enumerate(hosts) if h == "*"]
    errs += _crd_port_errors(spec)
    for i, endpoint in enumerate(spec.endpoints or []):
        errs += crd_workload_entry_errors(("spec", "endpoints", i), endpoint)
    return errs + crd_networking_selector_errors(("spec", "workloadSelector"), spec.workload_selector)


def _crd_port_errors(spec: ServiceEntry) -> list[str]:
    errs: list[str] = []
    names, numbers = set(), [p.number for p in spec.ports or []]
    for i, port in enumerate(spec.ports or []):
        path, at_port = f"spec.ports[{i}]", ("spec", "ports", i)
        errs += [FieldError(f"{path}.{name}: Required value", (*at_port, name))
                 for name in ("number", "name") if getattr(port, name) is None]
        if port.name in names:
            errs.append(FieldError(f'{path}: Duplicate value: map[string]interface {{}}{{"name":"{port.name}"}}', at_port))
        names.add(port.name)
        for field, value in (("number", port.number), ("targetPort", port.target_port)):
            if value is not None and not 0 < value <= 65535:
                errs.append(FieldError(f'{path}.{field}: Invalid value: "integer": port must be between 1-65535', (*at_port, field)))
    if len(set(numbers)) != len(numbers):
        errs.append(FieldError('spec.ports: Invalid value: "array": port number cannot be duplicated', ("spec", "ports")))
    return errs


def validate_service_entry(resource: Resource) -> Verdict:
    """Istio's ValidateServiceEntry."""
    errs = metadata_errors(resource, spec_required=True)
    if errs:
        return Verdict(errors=errs)
    spec: ServiceEntry = resource.spec
    selector_errs, warning = validate_alpha_workload_selector(spec.workload_selector)
    if selector_errs:
        return Verdict(errors=at(("spec", "workloadSelector", "labels"), selector_errs))
    v = Verdict()
    if warning:
        v.warnings.append(FieldError(f"service entry: {warning}, will be applied to all services in namespace",
                                     ("spec", "workloadSelector")))
    if spec.workload_selector is not None and spec.endpoints is not None:
        v.errors.append(FieldError("only one of WorkloadSelector or Endpoints is allowed in Service Entry",
                                   ("spec", "endpoints")))
    _check_hosts_and_addresses(spec, v)
    service_ports = _check_ports(resource, spec, v)
    _check_resolution(resource, spec, service_ports, v)
    resolution = spec.resolution or Resolution.NONE
    if resolution != Resolution.NONE and len(spec.hosts or []) > 1:
        for port in spec.ports or []:
            protocol = parse_protocol(port.protocol)
            if protocol not in HTTP_PROTOCOLS and protocol not in TLS_PROTOCOLS:
                v.errors.append(FieldError("multiple hosts provided with non-HTTP, non-TLS ports", ("spec", "hosts")))
                break
    v.errors += at(("spec", "exportTo"), validate_export_to(resource.namespace, spec.export_to, service_entry=True))
    v.errors += crd_service_entry_errors(spec)
    return v


def _check_hosts_and_addresses(spec: ServiceEntry, v: Verdict) -> None:
    if not spec.hosts:
        v.errors.append(FieldError("service entry must have at least one host", ("spec", "hosts")))
    for i, host in enumerate(spec.hosts or []):
        if host == "*":
            v.errors.append(FieldError(f"invalid host {host}", ("spec", "hosts", i)))
            continue
        v.errors += at(("spec", "hosts", i), validate_wildcard_domain(host))
        if "*" in host and len(host) != 1 and not host.startswith("*."):
            v.warnings.append(FieldError(f'partial wildcard "{host}" not allowed', ("spec", "hosts", i)))
    cidr = False
    for i, address in enumerate(spec.addresses or []):
        cidr = cidr or "/" in address
        v.errors += at(("spec", "addresses", i), validate_ip_subnet(address))
    if cidr and (spec.resolution or Resolution.NONE) not in (Resolution.NONE, Resolution.STATIC):
        v.errors.append(FieldError("CIDR addresses are allowed only for NONE/STATIC resolution types",
                                   ("spec", "addresses")))


def _check_ports(resource: Resource, spec: ServiceEntry, v: Verdict) -> set[str]:
    auto_allocation = auto_allocates_ip(resource, spec)
    names: set[str] = set()
    numbers: set[int] = set()
    for i, port in enumerate(spec.ports or []):
        at_port = ("spec", "ports", i)
        name, number = port.name or "", port.number or 0
        if name in names:
            v.errors.append(FieldError(f'service entry port name "{name}" already defined', (*at_port, "name")))
        names.add(name)
        if number in numbers:
            v.errors.append(FieldError(f"service entry port {number} already defined", (*at_port, "number")))
        numbers.add(number)
        if port.target_port:
            v.errors += at((*at_port, "targetPort"), validate_port(port.target_port))
        if not spec.addresses and not auto_allocation and port.protocol in (None, "", "TCP"):
            v.warnings.append(FieldError(
                "addresses are required for ports serving TCP (or unset) protocol when IP Autoallocation is not enabled",
                at_port))
        v.errors += at((*at_port, "name"), validate_port_name(name))
        v.errors += at((*at_port, "protocol"), validate_protocol(port.protocol))
        v.errors += at((*at_port, "number"), validate_port(number))
    return names


def _check_resolution(resource: Resource, spec: ServiceEntry, service_ports: set[str], v: Verdict) -> None:
    resolution = spec.resolution or Resolution.NONE
    endpoints = spec.endpoints or []
    if resolution == Resolution.NONE:
        if endpoints:
            v.errors.append(FieldError("no endpoints should be provided for resolution type none", ("spec", "endpoints")))
        if spec.workload_selector is not None:
            v.warnings.append(FieldError("workloadSelector should not be set when resolution mode is NONE",
                                         ("spec", "workloadSelector")))
    elif resolution == Resolution.STATIC:
        for i, endpoint in enumerate(endpoints):
            v.under(("spec", "endpoints", i), lambda one, e=endpoint: validate_workload_entry(one, e, service_ports, False))
    elif resolution in (Resolution.DNS, Resolution.DNS_ROUND_ROBIN):
        _check_dns(spec, service_ports, v)
    elif resolution == Resolution.DYNAMIC_DNS:
        _check_dynamic_dns(resource, spec, v)


def _check_dns(spec: ServiceEntry, service_ports: set[str], v: Verdict) -> None:
    resolution = spec.resolution
    endpoints = spec.endpoints or []
    if not endpoints:
        for i, host in enumerate(spec.hosts or []):
            if validate_fqdn(host):
                v.errors.append(FieldError(f"hosts must be FQDN if no endpoints are provided for resolution mode {resolution}",
                                           ("spec", "hosts", i)))
    if resolution == Resolution.DNS_ROUND_ROBIN and len(endpoints) > 1:
        v.errors.append(FieldError(f"there must only be 0 or 1 endpoint for resolution mode {resolution}", ("spec", "endpoints")))
    for i, endpoint in enumerate(endpoints):
        at_endpoint = ("spec", "endpoints", i)
        address = endpoint.address or ""
        if validate_ip(address) and validate_fqdn(address):
            v.errors.append(FieldError(f'endpoint address "{address}" is not a valid FQDN or an IP address',
                                       (*at_endpoint, "address")))
        v.errors += at((*at_endpoint, "labels"), label_errors(endpoint.labels))
        for name, port in (endpoint.ports or {}).items():
            if name not in service_ports:
                v.errors.append(FieldError(f"endpoint port {port} is not defined by the service entry",
                                           (*at_endpoint, "ports", name)))
            v.errors += at((*at_endpoint, "ports", name), validate_port_name(name) + validate_port(port))
    if spec.addresses and len(spec.hosts or []) > 1:
        if any(parse_protocol(p.protocol) in TCP_PROTOCOLS for p in spec.ports or []):
            v.warnings.append(FieldError(
                "service entry can not have more than one host specified simultaneously with address and tcp port", ("spec", "hosts")))


def _check_dynamic_dns(resource: Resource, spec: ServiceEntry, v: Verdict) -> None:
    """DYNAMIC_DNS resolves each request's Host/SNI: no endpoints, HTTP or TLS ports only."""
    if spec.endpoints:
        v.errors.append(FieldError("no endpoints should be provided for resolution type DYNAMIC_DNS", ("spec", "endpoints")))
    for i, port in enumerate(spec.ports or []):
        protocol = parse_protocol(port.protocol)
        if protocol not in HTTP_PROTOCOLS and protocol not in TLS_PROTOCOLS:
            v.errors.append(FieldError(
                f"protocol {port.protocol or 'unset'} is not supported for resolution mode DYNAMIC_DNS, use HTTP or TLS",
                ("spec", "ports", i, "protocol")))
    if spec.location == Location.MESH_INTERNAL and resource.labels.get(USE_WAYPOINT_LABEL):
        v.errors.append(FieldError("resolution mode DYNAMIC_DNS with location MESH_INTERNAL is not supported with a waypoint",
                                   ("spec", "location")))
