"""Gateway validation: Istio's ValidateGateway, validateServer and validateTLSOptions.

``validate_tls_options`` is shared with Sidecar ingress listeners, which carry the same
ServerTLSSettings message.
"""

from __future__ import annotations

from ..base import Resource
from ..errors import FieldError, Verdict, at
from ..models.gateway import Gateway, Port, Server, ServerTLSSettings, TLSMode, TLSProtocol
from .domains import is_dns1123_label_any_case, validate_wildcard_domain
from .metadata import validate_reserved_annotations
from .network import HTTP_PROTOCOLS, TLS_PROTOCOLS, UNIX_ADDRESS_PREFIX, UNSUPPORTED_PROTOCOL, parse_protocol, validate_ip, validate_port, validate_unix_address

NETWORKING_GROUP = "networking.istio.io"
GATEWAY_SEMANTICS_ANNOTATION = "internal.istio.io/gateway-semantics"

# Istio's security.ValidCipherSuites (BoringSSL names, PSK suites left out).
VALID_CIPHER_SUITES = frozenset(
    {
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
        "ECDHE-ECDSA-AES128-SHA",
        "ECDHE-RSA-AES128-SHA",
        "ECDHE-ECDSA-AES256-SHA",
        "ECDHE-RSA-AES256-SHA",
        "AES128-GCM-SHA256",
        "AES256-GCM-SHA384",
        "AES128-SHA",
        "AES256-SHA",
        "DES-CBC3-SHA",
    }
)


def is_valid_cipher_suite(suite: str) -> bool:
    """Istio's IsValidCipherSuite: known names, ``ALL``, or an expression led by an operator (``-X``)."""
    if suite in ("", "ALL"):
        return True
    if not suite[0].isalnum():
        return True
    return suite in VALID_CIPHER_SUITES


def tls_mode(tls: ServerTLSSettings) -> TLSMode:
    """The effective mode: an unset enum is its zero value, PASSTHROUGH."""
    return tls.mode or TLSMode.PASSTHROUGH


def crd_tls_errors(path: str, tls: ServerTLSSettings | None) -> list[str]:
    """The CRD's CEL rules on ServerTLSSettings (one certificate source per list field)."""
    if tls is None:
        return []
    names, certs, name = tls.credential_names is not None, tls.tls_certificates is not None, tls.credential_name is not None
    errs = []
    if certs and names:
        errs.append(f"{path}: Invalid value: \"object\": only one of credentialNames or tlsCertificates can be set")
    if name and names:
        errs.append(f"{path}: Invalid value: \"object\": only one of credentialName or credentialNames can be set")
    return errs


def validate_tls_options(tls: ServerTLSSettings | None) -> Verdict:
    """Istio's validateTLSOptions: certificate sources per mode, ciphers, protocol versions."""
    v = Verdict()
    if tls is None:
        return v
    if tls.min_protocol_version in (TLSProtocol.TLSV1_0, TLSProtocol.TLSV1_1) and not tls.cipher_suites:
        v.warnings.append(
            "TLS version below TLSV1_2 require setting compatible ciphers as by default they no longer include compatible ciphers."
        )
    _check_cipher_suites(tls.cipher_suites or [], v)
    mode = tls_mode(tls)
    server_cert, key, ca = tls.server_certificate or "", tls.private_key or "", tls.ca_certificates or ""
    credential, credential_names, certs = tls.credential_name or "", tls.credential_names or [], tls.tls_certificates or []
    if mode == TLSMode.ISTIO_MUTUAL:
        for present, what in (
            (server_cert, "server certificate"),
            (key, "private key"),
            (ca, "CA bundle"),
            (certs, "tlsCertificates"),
            (credential, "credentialName"),
            (credential_names, "credentialNames"),
        ):
            if present:
                v.errors.append(f"ISTIO_MUTUAL TLS cannot have associated {what}")
        return v
    if mode in (TLSMode.PASSTHROUGH, TLSMode.AUTO_PASSTHROUGH):
        if tls.ca_crl or server_cert or key or ca or certs or credential or credential_names:
            v.warnings.append(f"{mode} mode does not use certificates, they will be ignored")
    sources = sum((bool(server_cert and key), bool(credential), bool(credential_names), bool(certs)))
    if sources > 1:
        v.errors.append(
            "only one of credential_name, credential_names, server_certificate/private_key, tls_certificates should be specified"
        )
    terminating = mode in (TLSMode.SIMPLE, TLSMode.MUTUAL, TLSMode.OPTIONAL_MUTUAL)
    if terminating and (credential or credential_names):
        # Credentials are fetched over SDS; nothing else is needed.
        return v
    if terminating:
        prefix = "SIMPLE TLS" if mode == TLSMode.SIMPLE else "MUTUAL TLS"
        if mode != TLSMode.SIMPLE and not ca:
            v.errors.append(f"{prefix} requires a client CA bundle")
        if len(certs) > 2:
            v.warnings.append(f"{prefix} can support up to 2 server certificates")
        pairs = [(c.server_certificate, c.private_key) for c in certs] or [(server_cert, key)]
        for cert, private_key in pairs:
            if not cert:
                v.errors.append(f"{prefix} requires a server certificate")
            if not private_key:
                v.errors.append(f"{prefix} requires a private key")
    if tls.ca_crl:
        if credential:
            v.errors.append("CRL is not supported with credentialName. CRL has to be specified in the credential")
        if mode == TLSMode.SIMPLE:
            v.errors.append("CRL is not supported with SIMPLE TLS")
    return v


def _check_cipher_suites(suites: list[str], v: Verdict) -> None:
    invalid, seen, duplicate = set(), set(), set()
    for suite in suites:
        if not is_valid_cipher_suite(suite):
            invalid.add(suite)
        elif suite in seen:
            duplicate.add(suite)
        else:
            seen.add(suite)
    if invalid:
        v.warnings.append(f"ignoring invalid cipher suites: [{' '.join(sorted(invalid))}]")
    if duplicate:
        v.warnings.append(f"ignoring duplicate cipher suites: [{' '.join(sorted(duplicate))}]")


def validate_namespace_slash_wildcard_hostname(host: str, is_gateway: bool, gateway_semantics: bool = False) -> list[str]:
    """Istio's ValidateNamespaceSlashWildcardHostname: ``ns/host`` for sidecars, optional ns for gateways."""
    ns, slash, name = host.partition("/")
    if not slash:
        if is_gateway:
            return _validate_hostname_part(host, True)
        return ["host must be of form namespace/dnsName"]
    errs = []
    if not ns or not name:
        errs.append("config namespace and dnsName in host entry cannot be empty")
    if is_gateway:
        if ns not in ("*", ".") and (ns != "~" or not gateway_semantics) and not is_dns1123_label_any_case(ns):
            errs.append(f'invalid namespace value "{ns}" in gateway')
    elif ns not in ("*", ".", "~") and not is_dns1123_label_any_case(ns):
        errs.append(f'invalid namespace value "{ns}" in sidecar')
    return errs + _validate_hostname_part(name, is_gateway)


def _validate_hostname_part(host: str, is_gateway: bool) -> list[str]:
    errs = []
    if host != "*" and "." not in host:
        errs.append("short names (non FQDN) are not allowed")
    domain_errs = validate_wildcard_domain(host)
    if domain_errs:
        if not is_gateway:
            errs += domain_errs
        if validate_ip(host):
            errs += domain_errs  # a gateway also accepts an IP as its host
    if "*" in host and len(host) != 1 and not host.startswith("*."):
        errs.append(f'partial wildcard "{host}" not allowed')
    return errs


def _port_repr(port: Port) -> str:
    # Go prints the proto message with %v; name the set fields the same way.
    parts = [f"number:{port.number}"] if port.number else []
    parts += [f'{k}:"{val}"' for k, val in (("protocol", port.protocol), ("name", port.name)) if val]
    return " ".join(parts)


def validate_server_port(port: Port | None, bind: str) -> list[str]:
    if port is None:
        return ["port is required"]
    errs = []
    if parse_protocol(port.protocol) == UNSUPPORTED_PROTOCOL:
        errs.append(
            f'invalid protocol "{port.protocol}", supported protocols are HTTP, HTTP2, GRPC, GRPC-WEB, MONGO, REDIS, MYSQL, TCP'
        )
    number = port.number or 0
    if number > 0 or not bind.startswith(UNIX_ADDRESS_PREFIX):
        errs += validate_port(number)
    if port.target_port:
        errs.append("targetPort has no impact on Gateways")
    if not port.name:
        errs.append(f"port name must be set: {_port_repr(port)}")
    return errs


def validate_server_bind(port: Port | None, bind: str) -> list[str]:
    if bind.startswith(UNIX_ADDRESS_PREFIX):
        errs = validate_unix_address(bind[len(UNIX_ADDRESS_PREFIX) :])
        if port is not None and port.number:
            errs.append(f"port number must be 0 for unix domain socket: {_port_repr(port)}")
        return errs
    if bind:
        return validate_ip(bind)
    return []


def crd_server_errors(path: str, server: Server) -> list[str]:
    """The CRD's required fields on a Server and its Port."""
    errs = [f"{path}.{name}: Required value" for name in ("port", "hosts") if getattr(server, name) is None]
    if server.port is not None:
        errs += [f"{path}.port.{name}: Required value" for name in ("number", "protocol", "name") if getattr(server.port, name) is None]
    return errs


def validate_server(server: Server, gateway_semantics: bool = False, path: str = "server") -> Verdict:
    """Istio's validateServer: hosts, port, bind, TLS options and TLS/protocol consistency."""
    v = Verdict(errors=crd_server_errors(path, server))
    if not server.hosts:
        v.errors.append("server config must contain at least one host")
    for host in server.hosts or []:
        v.errors += validate_namespace_slash_wildcard_hostname(host, True, gateway_semantics)
    bind = server.bind or ""
    port_errs = validate_server_port(server.port, bind)
    v.errors += port_errs
    v.errors += validate_server_bind(server.port, bind)
    tls = validate_tls_options(server.tls)
    v.errors += tls.errors
    v.warnings += tls.warnings
    v.errors += crd_tls_errors(f"{path}.tls", server.tls)
    if not port_errs and server.port is not None:
        protocol = parse_protocol(server.port.protocol)
        if protocol in TLS_PROTOCOLS and server.tls is None:
            v.errors.append("server must have TLS settings for HTTPS/TLS protocols")
        elif protocol not in TLS_PROTOCOLS and server.tls is not None:
            if protocol in HTTP_PROTOCOLS:
                tls_set = server.tls
                passthrough = tls_mode(tls_set) in (TLSMode.PASSTHROUGH, TLSMode.AUTO_PASSTHROUGH)
                if not passthrough or tls_set.ca_certificates or tls_set.private_key or tls_set.server_certificate:
                    v.errors.append("server cannot have TLS settings for plain text HTTP ports")
            else:
                v.errors.append("server cannot have TLS settings for non HTTPS/TLS ports")
    return v


def validate_gateway(resource: Resource) -> Verdict:
    """Istio's ValidateGateway (networking.istio.io only; Gateway API Gateways have no webhook rules here)."""
    if resource.group != NETWORKING_GROUP:
        return Verdict()
    reserved = validate_reserved_annotations(resource.namespace, resource.name, resource.annotations)
    if reserved:
        return Verdict(errors=reserved)
    spec: Gateway = resource.spec
    semantics = resource.annotations.get(GATEWAY_SEMANTICS_ANNOTATION) == "gateway"
    v = Verdict()
    if not is_dns1123_label_any_case(resource.name) and not semantics:
        v.errors.append(FieldError(f'invalid gateway name: "{resource.name}"', ("metadata", "name")))
    servers = spec.servers or []
    if not servers:
        v.errors.append(FieldError("gateway must have at least one server", ("spec", "servers")))
    for i, server in enumerate(servers):
        sv = validate_server(server, semantics, f"spec.servers[{i}]")
        v.errors += at(("spec", "servers", i), sv.errors)
        v.warnings += at(("spec", "servers", i), sv.warnings)
    names: set[str] = set()
    for i, server in enumerate(servers):
        if server.port is None:
            continue
        name = server.port.name or ""
        if name in names:
            v.errors.append(FieldError(f"port names in servers must be unique: duplicate name {name}",
                                       ("spec", "servers", i, "port", "name")))
        names.add(name)
        redirect = server.tls is not None and bool(server.tls.https_redirect)
        if redirect and parse_protocol(server.port.protocol) not in HTTP_PROTOCOLS:
            v.warnings.append(FieldError("tls.httpsRedirect should only be used with http servers",
                                         ("spec", "servers", i, "tls", "httpsRedirect")))
    return v
