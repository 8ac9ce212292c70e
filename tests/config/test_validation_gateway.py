"""Gateway validation: Istio's ValidateGateway, validateServer and validateTLSOptions."""

from __future__ import annotations

from typing import Any

from pilotfish.config.errors import Verdict
from pilotfish.config.loader import Document, to_resource
from pilotfish.config.validation import validate
from pilotfish.config.validation.gateway import is_valid_cipher_suite


def check(spec: Any, name: str = "gw", annotations: dict[str, str] | None = None, api_version: str = "networking.istio.io/v1") -> Verdict:
    meta: dict[str, Any] = {"name": name, "namespace": "ns"}
    if annotations:
        meta["annotations"] = annotations
    doc = {"apiVersion": api_version, "kind": "Gateway", "metadata": meta, "spec": spec}
    return validate(to_resource(Document(doc, "test.yaml", 1)))


def server(port: dict[str, Any] | None = None, hosts: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    out = {"port": port or {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": hosts or ["example.com"]}
    out.update(extra)
    return out


HTTPS = {"number": 443, "name": "https", "protocol": "HTTPS"}


def test_plain_http_gateway_is_valid() -> None:
    v = check({"servers": [server()]})
    assert v.valid and not v.warnings


def test_gateway_without_servers_is_rejected() -> None:
    assert "gateway must have at least one server" in check({}).errors


def test_gateway_name_must_be_a_dns_label() -> None:
    assert 'invalid gateway name: "my.gw"' in check({"servers": [server()]}, name="my.gw").errors


def test_hosts_short_names_and_partial_wildcards_are_rejected() -> None:
    assert "short names (non FQDN) are not allowed" in check({"servers": [server(hosts=["foo"])]}).errors
    errors = check({"servers": [server(hosts=["*bar.com"])]}).errors
    assert 'partial wildcard "*bar.com" not allowed' in errors


def test_namespace_prefixed_hosts() -> None:
    assert check({"servers": [server(hosts=["ns1/foo.com", "*/bar.com", "./baz.com", "1.1.1.1"])]}).valid
    assert 'invalid namespace value "~" in gateway' in check({"servers": [server(hosts=["~/foo.com"])]}).errors
    converted = {"internal.istio.io/gateway-semantics": "gateway"}
    assert check({"servers": [server(hosts=["~/foo.com"])]}, annotations=converted).valid


def test_port_checks() -> None:
    errors = check({"servers": [server(port={"number": 66000, "name": "h", "protocol": "kafka"})]}).errors
    assert "port number 66000 must be in the range 1..65535" in errors
    assert any(e.startswith('invalid protocol "kafka"') for e in errors)
    assert "targetPort has no impact on Gateways" in check({"servers": [server(port={"number": 80, "name": "h", "protocol": "HTTP", "targetPort": 8080})]}).errors


def test_missing_port_fields_are_reported_as_required() -> None:
    errors = check({"servers": [{"hosts": ["a.com"], "port": {"number": 80, "protocol": "HTTP"}}]}).errors
    assert "spec.servers[0].port.name: Required value" in errors
    assert any(e.startswith("port name must be set") for e in errors)


def test_duplicate_port_names() -> None:
    v = check({"servers": [server(), server(port={"number": 8080, "name": "http", "protocol": "HTTP"})]})
    assert "port names in servers must be unique: duplicate name http" in v.errors


def test_unix_socket_bind() -> None:
    assert check({"servers": [server(port={"number": 0, "name": "h", "protocol": "HTTP"}, bind="unix://@foo")]}).valid
    errors = check({"servers": [server(bind="unix://@foo")]}).errors
    assert any(e.startswith("port number must be 0 for unix domain socket") for e in errors)
    assert "foo.bar is not a valid IP" in check({"servers": [server(bind="foo.bar")]}).errors


def test_https_needs_tls_and_http_only_takes_a_redirect() -> None:
    assert "server must have TLS settings for HTTPS/TLS protocols" in check({"servers": [server(port=HTTPS)]}).errors
    assert check({"servers": [server(tls={"httpsRedirect": True})]}).valid
    assert "server cannot have TLS settings for plain text HTTP ports" in check({"servers": [server(tls={"mode": "SIMPLE", "credentialName": "c"})]}).errors
    tcp = {"number": 31400, "name": "tcp", "protocol": "TCP"}
    assert "server cannot have TLS settings for non HTTPS/TLS ports" in check({"servers": [server(port=tcp, tls={"httpsRedirect": True})]}).errors


def test_https_redirect_on_https_is_a_warning() -> None:
    v = check({"servers": [server(port=HTTPS, tls={"httpsRedirect": True})]})
    assert v.valid and "tls.httpsRedirect should only be used with http servers" in v.warnings


def tls_check(tls: dict[str, Any]) -> Verdict:
    return check({"servers": [server(port=HTTPS, tls=tls)]})


def test_simple_and_mutual_need_certificates() -> None:
    errors = tls_check({"mode": "SIMPLE"}).errors
    assert "SIMPLE TLS requires a server certificate" in errors and "SIMPLE TLS requires a private key" in errors
    assert "MUTUAL TLS requires a client CA bundle" in tls_check({"mode": "MUTUAL", "serverCertificate": "c", "privateKey": "k"}).errors
    assert tls_check({"mode": "MUTUAL", "credentialName": "sds"}).valid
    assert tls_check({"mode": "OPTIONAL_MUTUAL", "serverCertificate": "c", "privateKey": "k", "caCertificates": "ca"}).valid


def test_only_one_certificate_source() -> None:
    errors = tls_check({"mode": "SIMPLE", "serverCertificate": "c", "privateKey": "k", "credentialName": "sds"}).errors
    assert any("only one of credential_name, credential_names" in e for e in errors)
    crd = tls_check({"mode": "SIMPLE", "credentialName": "a", "credentialNames": ["b"]}).errors
    assert any("only one of credentialName or credentialNames can be set" in e for e in crd)


def test_tls_certificates_list() -> None:
    pair = {"serverCertificate": "c", "privateKey": "k"}
    assert tls_check({"mode": "SIMPLE", "tlsCertificates": [pair, pair]}).valid
    three = tls_check({"mode": "SIMPLE", "tlsCertificates": [pair, pair, pair]})
    assert three.valid and "SIMPLE TLS can support up to 2 server certificates" in three.warnings
    assert "SIMPLE TLS requires a private key" in tls_check({"mode": "SIMPLE", "tlsCertificates": [{"serverCertificate": "c"}]}).errors


def test_istio_mutual_takes_no_certificates() -> None:
    assert tls_check({"mode": "ISTIO_MUTUAL"}).valid
    assert "ISTIO_MUTUAL TLS cannot have associated credentialName" in tls_check({"mode": "ISTIO_MUTUAL", "credentialName": "x"}).errors


def test_passthrough_ignores_certificates_with_a_warning() -> None:
    v = tls_check({"mode": "PASSTHROUGH", "caCrl": "crl"})
    assert v.valid and "PASSTHROUGH mode does not use certificates, they will be ignored" in v.warnings


def test_crl_rules() -> None:
    assert "CRL is not supported with SIMPLE TLS" in tls_check({"mode": "SIMPLE", "serverCertificate": "c", "privateKey": "k", "caCrl": "x"}).errors
    assert tls_check({"mode": "SIMPLE", "credentialName": "c", "caCrl": "x"}).valid


def test_cipher_suites_and_old_protocols_warn() -> None:
    v = tls_check({"mode": "SIMPLE", "credentialName": "c", "cipherSuites": ["bogus", "AES128-SHA", "AES128-SHA"]})
    assert v.valid
    assert "ignoring invalid cipher suites: [bogus]" in v.warnings
    assert "ignoring duplicate cipher suites: [AES128-SHA]" in v.warnings
    old = tls_check({"mode": "SIMPLE", "credentialName": "c", "minProtocolVersion": "TLSV1_0"})
    assert any(w.startswith("TLS version below TLSV1_2") for w in old.warnings)
    assert is_valid_cipher_suite("-ECDHE-RSA-AES128-SHA") and is_valid_cipher_suite("ALL")


def test_reserved_annotation_rejects() -> None:
    v = check({"servers": [server()]}, annotations={"internal.istio.io/webhook-always-reject": "x"})
    assert not v.valid


def test_gateway_api_gateways_are_not_checked_here() -> None:
    doc = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "a.b", "namespace": "ns"},
        "spec": {"gatewayClassName": "istio", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]},
    }
    assert validate(to_resource(Document(doc, "t.yaml", 1))).valid
