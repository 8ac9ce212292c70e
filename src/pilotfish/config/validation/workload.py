"""WorkloadEntry and WorkloadGroup validation (Istio's ValidateWorkloadEntry,
ValidateWorkloadGroup, validateReadinessProbe) plus the CRD's CEL rules for them.

Also the WorkloadEntry check ServiceEntry runs on its endpoints.
"""

from __future__ import annotations

import re

from ..base import Resource
from ..errors import FieldError, FieldPath, Verdict, at, format_path
from ..models.workload import ReadinessProbe, WorkloadEntry, WorkloadGroup
from .domains import validate_fqdn
from .metadata import metadata_errors, validate_tag_labels
from .network import UNIX_ADDRESS_PREFIX, validate_ip, validate_port, validate_port_name, validate_unix_address

PROBE_HEADER_NAME = re.compile(r"^[-A-Za-z0-9]+$")
CRD_PORT_NAME = re.compile(r"^[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?$")


def crd_workload_entry_errors(at_entry: FieldPath, entry: WorkloadEntry, *, address_required: bool = True) -> list[str]:
    """CEL on WorkloadEntry: an address (or network), and Unix socket rules (paths from the root)."""
    errs: list[str] = []
    path, at_address, at_ports = format_path(at_entry), (*at_entry, "address"), (*at_entry, "ports")
    address = entry.address
    if address_required and address is None and entry.network is None:
        errs.append(FieldError(f'{path}: Invalid value: "object": Address is required', at_entry))
    if (address or "").startswith(UNIX_ADDRESS_PREFIX):
        if entry.ports is not None:
            errs.append(FieldError(f'{path}: Invalid value: "object": UDS may not include ports', at_entry))
        after = address[len(UNIX_ADDRESS_PREFIX) :]
        if after[:1] not in ("/", "@"):
            errs.append(FieldError(f'{path}.address: Invalid value: "string": UDS must be an absolute path or abstract socket', at_address))
        if address.endswith("/"):
            errs.append(FieldError(f'{path}.address: Invalid value: "string": UDS may not be a dir', at_address))
    # (the texts name a port as ports[name]; the path stops at ports so the text is not named twice)
    for name, number in (entry.ports or {}).items():
        if not (len(name) < 63 and CRD_PORT_NAME.match(name)):
            errs.append(FieldError(f'{path}.ports: Invalid value: "object": port name must be valid', at_ports))
        if not 0 < number <= 65535:
            errs.append(FieldError(f'{path}.ports[{name}]: Invalid value: "integer": port must be between 1-65535', at_ports))
    return errs


def validate_workload_entry(v: Verdict, entry: WorkloadEntry, service_ports: set[str] | None, allow_fqdn: bool) -> None:
    """Istio's validateWorkloadEntry (paths below the entry); ``service_ports`` is set when checking
    a ServiceEntry endpoint."""
    address = entry.address or ""
    if not address:
        if not entry.network:
            v.errors.append(FieldError("address is required", ("address",)))
            return
        v.warnings.append(FieldError(f'address is unset with network "{entry.network}"', ("network",)))
    unix = address.startswith(UNIX_ADDRESS_PREFIX)
    if unix:
        v.errors += at(("address",), validate_unix_address(address[len(UNIX_ADDRESS_PREFIX) :]))
        if entry.ports:
            v.errors.append(FieldError(f"unix endpoint {address} must not include ports", ("ports",)))
    elif address and validate_ip(address):
        if not allow_fqdn:
            v.errors.append(FieldError(f'endpoint address "{address}" is not a valid IP address', ("address",)))
        elif validate_fqdn(address):
            v.errors.append(FieldError(f'endpoint address "{address}" is not a valid FQDN or an IP address', ("address",)))
    for name, port in (entry.ports or {}).items():
        if service_ports is not None and name not in service_ports:
            v.errors.append(FieldError(f"endpoint port {port} is not defined by the service entry", ("ports", name)))
        v.errors += at(("ports", name), validate_port_name(name) + validate_port(port))
    v.errors += at(("labels",), label_errors(entry.labels))
    if unix and service_ports is not None and len(service_ports) != 1:
        v.errors.append("exactly 1 service port required for unix endpoints")


def label_errors(labels: dict[str, str] | None) -> list[str]:
    """Istio's labels.Instance.Validate, each message at its label's key."""
    return [m for key, value in (labels or {}).items() for m in at((key,), validate_tag_labels({key: value}))]


def validate_workload_entry_resource(resource: Resource) -> Verdict:
    errs = metadata_errors(resource, spec_required=True)
    if errs:
        return Verdict(errors=errs)
    spec: WorkloadEntry = resource.spec
    v = Verdict()
    v.under(("spec",), lambda one: validate_workload_entry(one, spec, None, True))
    v.errors += crd_workload_entry_errors(("spec",), spec)
    return v


def validate_readiness_probe(probe: ReadinessProbe | None) -> list[str]:
    """Istio's validateReadinessProbe (paths below the probe). Like Istio, a probe must use
    httpGet, tcpSocket or exec."""
    if probe is None:
        return []
    errs: list[str] = [
        FieldError(f"{name} must be non-negative", (name,))
        for name, value in (
            ("periodSeconds", probe.period_seconds),
            ("initialDelaySeconds", probe.initial_delay_seconds),
            ("timeoutSeconds", probe.timeout_seconds),
            ("successThreshold", probe.success_threshold),
            ("failureThreshold", probe.failure_threshold),
        )
        if (value or 0) < 0
    ]
    if probe.http_get is not None:
        errs += at(("httpGet", "port"), validate_port(probe.http_get.port or 0))
        if probe.http_get.scheme not in (None, "", "HTTPS", "HTTP"):
            errs.append(FieldError('httpGet.scheme must be one of "HTTPS", "HTTP"', ("httpGet", "scheme")))
        for i, header in enumerate(probe.http_get.http_headers or []):
            errs += at(("httpGet", "httpHeaders", i, "name"), _probe_header_name_errors(header.name or ""))
    elif probe.tcp_socket is not None:
        errs += at(("tcpSocket", "port"), validate_port(probe.tcp_socket.port or 0))
    elif probe.exec is not None:
        if not probe.exec.command:
            errs.append(FieldError("exec.command is required", ("exec", "command")))
    elif probe.grpc is not None:
        # Istio's webhook has no case for the grpc method and rejects it.
        errs.append(FieldError("unknown health check method *v1alpha3.ReadinessProbe_Grpc", ("grpc",)))
    else:
        errs.append("unknown health check method <nil>")
    return errs


def _probe_header_name_errors(name: str) -> list[str]:
    if not name:
        return ["header name cannot be empty"]
    if not PROBE_HEADER_NAME.match(name):
        return [f"header name {name} is not a valid header name"]
    return []


def crd_probe_errors(at_probe: FieldPath, probe: ReadinessProbe | None) -> list[str]:
    """CEL on ReadinessProbe: port ranges and the httpGet scheme (paths from the root)."""
    if probe is None:
        return []
    path = format_path(at_probe)
    errs: list[str] = []
    ports = (("httpGet", probe.http_get), ("tcpSocket", probe.tcp_socket), ("grpc", probe.grpc))
    for name, method in ports:
        port = getattr(method, "port", None)
        at_port = (*at_probe, name, "port")
        if method is not None and port is None and name != "grpc":
            errs.append(FieldError(f"{path}.{name}.port: Required value", at_port))
        if port is not None and not 0 < port <= 65535:
            errs.append(FieldError(f'{path}.{name}.port: Invalid value: "integer": port must be between 1-65535', at_port))
    if probe.http_get is not None and probe.http_get.scheme not in (None, "", "HTTP", "HTTPS"):
        errs.append(FieldError(f'{path}.httpGet.scheme: Invalid value: "string": scheme must be one of [HTTP, HTTPS]',
                               (*at_probe, "httpGet", "scheme")))
    if probe.exec is not None and probe.exec.command is None:
        errs.append(FieldError(f"{path}.exec.command: Required value", (*at_probe, "exec", "command")))
    return errs


def validate_workload_group(resource: Resource) -> Verdict:
    errs = metadata_errors(resource, spec_required=True)
    if errs:
        return Verdict(errors=errs)
    spec: WorkloadGroup = resource.spec
    if spec.template is None:
        return Verdict(errors=at(("spec", "template"), ["template is required", "spec.template: Required value"]))
    crd = crd_workload_entry_errors(("spec", "template"), spec.template, address_required=False)
    crd += crd_probe_errors(("spec", "probe"), spec.probe)
    if spec.metadata is not None:
        label_errs = validate_tag_labels(spec.metadata.labels)
        if label_errs:
            return Verdict(errors=crd + [FieldError(f"invalid labels: {'; '.join(label_errs)}", ("spec", "metadata", "labels"))])
    # The template is not checked as a WorkloadEntry: its address and ports are filled in later.
    return Verdict(errors=crd + at(("spec", "probe"), validate_readiness_probe(spec.probe)))
