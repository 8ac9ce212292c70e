"""Sidecar validation: Istio's ValidateSidecar plus the CRD's CEL rules."""

from __future__ import annotations

import re

from ..base import Resource
from ..errors import FieldError, Verdict, at
from ..models.gateway import TLSMode
from ..models.sidecar import (
    CaptureMode,
    IstioEgressListener,
    IstioIngressListener,
    OutboundTrafficPolicy,
    OutboundTrafficPolicyMode,
    Sidecar,
    SidecarPort,
)
from .attachment import crd_networking_selector_errors, validate_alpha_workload_selector
from .destination import validate_destination
from .domains import validate_fqdn
from .gateway import crd_tls_errors, validate_namespace_slash_wildcard_hostname, validate_tls_options
from .metadata import metadata_errors
from .network import HTTP_PROTOCOLS, TLS_PROTOCOLS, UNIX_ADDRESS_PREFIX, parse_protocol, validate_ip, validate_port, validate_port_name, validate_protocol, validate_unix_address
from .traffic_policy import connection_pool_errors

DEFAULT_ENDPOINT_HOSTS = ("127.0.0.1", "0.0.0.0", "::1", "::")
GO_INT = re.compile(r"^[+-]?[0-9]+$")


def split_host_port(hostport: str) -> tuple[str, str, str | None]:
    """Go's net.SplitHostPort: (host, port, error text or None)."""

    def fail(why: str) -> tuple[str, str, str]:
        return "", "", f"address {hostport}: {why}"

    i = hostport.rfind(":")
    if i < 0:
        return fail("missing port in address")
    j = k = 0
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            return fail("missing ']' in address")
        if end + 1 == len(hostport):
            return fail("missing port in address")
        if end + 1 != i:
            return fail("too many colons in address" if hostport[end + 1] == ":" else "missing port in address")
        host, j, k = hostport[1:end], 1, end + 1
    else:
        host = hostport[:i]
        if ":" in host:
            return fail("too many colons in address")
    if "[" in hostport[j:]:
        return fail("unexpected '[' in address")
    if "]" in hostport[k:]:
        return fail("unexpected ']' in address")
    return host, hostport[i + 1 :], None


def validate_default_endpoint(endpoint: str) -> list[str]:
    """``127.0.0.1:port``, ``0.0.0.0:port``, ``[::1]:port``, ``[::]:port``, ``:port`` or ``unix://path``."""
    if endpoint.startswith(UNIX_ADDRESS_PREFIX):
        return validate_unix_address(endpoint[len(UNIX_ADDRESS_PREFIX) :])
    host, port, err = split_host_port(endpoint)
    errs = [err] if err else []
    if host and host not in DEFAULT_ENDPOINT_HOSTS:
        errs.append(
            "sidecar: defaultEndpoint must be of form 127.0.0.1:<port>,0.0.0.0:<port>,[::1]:port,[::]:port,unix://filepath or unset"
        )
    if not GO_INT.match(port):
        errs.append(f'sidecar: defaultEndpoint port ({port}) is not a number: strconv.Atoi: parsing "{port}": invalid syntax')
    else:
        errs += validate_port(int(port))
    return errs


def _ingress_port_errors(port: SidecarPort, bind: str) -> list[str]:
    errs = validate_port_name(port.name) if port.name else []
    errs += validate_protocol(port.protocol) + validate_port(port.number or 0)
    if bind:
        errs += validate_ip(bind)
    return errs


def _egress_port_errors(port: SidecarPort, bind: str, capture_mode: CaptureMode | None) -> list[str]:
    errs = validate_port_name(port.name) if port.name else []
    errs += validate_protocol(port.protocol)
    if not port.number:
        # Port 0: the listener is a Unix domain socket named by bind.
        if not bind.startswith(UNIX_ADDRESS_PREFIX):
            errs.append("sidecar: ports with 0 value must have a unix domain socket bind address")
        else:
            errs += validate_unix_address(bind[len(UNIX_ADDRESS_PREFIX) :])
        if capture_mode not in (None, CaptureMode.DEFAULT, CaptureMode.NONE):
            errs.append("sidecar: captureMode must be DEFAULT/NONE for unix domain socket listeners")
        return errs
    errs += validate_port(port.number)
    if bind:
        errs += validate_ip(bind)
    return errs


def _validate_ingress(index: int, listener: IstioIngressListener, v: Verdict) -> None:
    port = listener.port
    if port is None:
        v.errors += ["sidecar: port is required for ingress listeners", f"spec.ingress[{index}].port: Required value"]
        return
    if port.target_port:
        v.errors.append("targetPort has no impact on Sidecars")
    v.errors += _ingress_port_errors(port, listener.bind or "")
    if listener.default_endpoint:
        v.errors += validate_default_endpoint(listener.default_endpoint)
    tls = listener.tls
    if tls is not None:
        if tls.subject_alt_names:
            v.errors.append("sidecar: subjectAltNames is not supported in ingress tls")
        if tls.https_redirect:
            v.errors.append("sidecar: httpsRedirect is not supported")
        if tls.credential_name:
            v.errors.append("sidecar: credentialName is not currently supported")
        if tls.credential_names:
            v.errors.append("sidecar: credentialNames is not currently supported")
        if tls.tls_certificates:
            v.errors.append("sidecar: tls_certificates is not currently supported")
        mode = tls.mode or TLSMode.PASSTHROUGH
        if mode in (TLSMode.ISTIO_MUTUAL, TLSMode.AUTO_PASSTHROUGH):
            v.errors.append(f"configuration is invalid: cannot set mode to {mode} in sidecar ingress tls")
        if parse_protocol(port.protocol) not in TLS_PROTOCOLS:
            v.errors.append("server cannot have TLS settings for non HTTPS/TLS ports")
        tv = validate_tls_options(tls)
        v.errors += tv.errors + crd_tls_errors(f"spec.ingress[{index}].tls", tls)
        v.warnings += tv.warnings
    pool = listener.connection_pool
    v.errors += at(("connectionPool",), connection_pool_errors(pool))
    if pool is not None and pool.http is not None and parse_protocol(port.protocol) not in HTTP_PROTOCOLS:
        v.warnings.append(
            f'sidecar: HTTP connection pool settings are configured for port {port.number or 0} ("{port.name or ""}") '
            f"but its protocol is not HTTP ({port.protocol or ''}); only TCP settings will apply"
        )


def _validate_egress(spec: Sidecar, namespace: str, v: Verdict) -> None:
    ports: set[int] = set()
    sockets: set[str] = set()
    catch_all = False
    egress = spec.egress or []
    for index, listener in enumerate(egress):
        here = ("spec", "egress", index)
        if listener.hosts is None:
            v.errors.append(FieldError(f"spec.egress[{index}].hosts: Required value", (*here, "hosts")))
        if listener.port is None:
            if catch_all:
                v.errors.append(FieldError("sidecar: egress can have only one listener with empty port", here))
                continue
            if index == len(egress) - 1:
                catch_all = True
            else:
                v.errors.append(FieldError(
                    "sidecar: the egress listener with empty port should be the last listener in the list", here))
        else:
            v.under((*here, "port"), lambda one, lst=listener: _validate_egress_port(lst.port, lst, ports, sockets, one))
        v.under((*here, "hosts"), lambda one, lst=listener: _validate_egress_hosts(lst, namespace, one))


def _validate_egress_port(port: SidecarPort, listener: IstioEgressListener, ports: set[int], sockets: set[str], v: Verdict) -> None:
    bind = listener.bind or ""
    if port.target_port:
        v.errors.append("targetPort has no impact on Sidecars")
    v.errors += _egress_port_errors(port, bind, listener.capture_mode)
    if not port.number:
        if bind in sockets:
            v.errors.append("sidecar: unix domain socket values for listeners must be unique")
        sockets.add(bind)
    else:
        if port.number in ports:
            v.errors.append("sidecar: ports on IP bound listeners must be unique")
        ports.add(port.number)


def _validate_egress_hosts(listener: IstioEgressListener, namespace: str, v: Verdict) -> None:
    """Hosts are ``namespace/dnsName``; overlapping entries are only warned about, as in Istio."""
    if not listener.hosts:
        v.errors.append("sidecar: egress listener must contain at least one host")
        return
    by_namespace: dict[str, set[str]] = {}
    for host in listener.hosts:
        ns, slash, svc = host.partition("/")
        if slash:
            ns = namespace if ns == "." else ns
            seen = by_namespace.setdefault(ns, set())
            if (svc != "*" and (svc in seen or "*" in seen)) or (svc == "*" and seen):
                v.warnings.append(f"duplicated egress host: {host}")
            seen.add(svc)
        v.errors += validate_namespace_slash_wildcard_hostname(host, False)
    # "~/host" entries exclude hosts from */*, so they do not count as additions.
    if "*" in by_namespace.get("*", set()) and len(set(by_namespace) - {"~"}) != 1:
        v.warnings.append("`*/*` host select all resources, no other hosts can be added")


def _outbound_policy_errors(policy: OutboundTrafficPolicy | None) -> list[str]:
    if policy is None or policy.egress_proxy is None:
        return []
    if policy.mode != OutboundTrafficPolicyMode.ALLOW_ANY:
        return ["sidecar: egress_proxy must be set only with ALLOW_ANY outbound_traffic_policy mode"]
    errs = validate_fqdn(policy.egress_proxy.host)
    if policy.egress_proxy.port is None:
        return errs + ["sidecar: egress_proxy port must be non-nil"]
    return errs + validate_destination(policy.egress_proxy)


def validate_sidecar(resource: Resource) -> Verdict:
    """Istio's ValidateSidecar."""
    errs = metadata_errors(resource)
    if errs:
        return Verdict(errors=errs)
    spec: Sidecar = resource.spec
    selector_errs, warning = validate_alpha_workload_selector(spec.workload_selector)
    if selector_errs:
        return Verdict(errors=selector_errs)
    v = Verdict()
    if warning:
        v.warnings.append(f"sidecar: {warning}, will be applied to all services in namespace")
    if not spec.egress and not spec.ingress and spec.outbound_traffic_policy is None and spec.inbound_connection_pool is None:
        return Verdict(errors=["sidecar: empty configuration provided"])
    ports: set[int] = set()
    for index, listener in enumerate(spec.ingress or []):
        v.under(("spec", "ingress", index), lambda one, i=index, lst=listener: _validate_ingress(i, lst, one))
        if listener.port is None:
            continue
        number = listener.port.number or 0
        if number in ports:
            v.errors.append(FieldError("sidecar: ports on IP bound listeners must be unique",
                                       ("spec", "ingress", index, "port")))
        ports.add(number)
    v.errors += at(("spec", "inboundConnectionPool"), connection_pool_errors(spec.inbound_connection_pool))
    _validate_egress(spec, resource.namespace, v)
    v.errors += at(("spec", "outboundTrafficPolicy"), _outbound_policy_errors(spec.outbound_traffic_policy))
    v.errors += crd_networking_selector_errors(("spec", "workloadSelector"), spec.workload_selector)
    return v
