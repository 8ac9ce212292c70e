"""Gateway analyzers: workload and Service ports, credentials, conflicts, shared certificates."""

from __future__ import annotations

import base64
import datetime as dt

from pilotfish.config.analysis import analyze
from pilotfish.config.analysis.testing import findings, load_yaml


def gateway(name: str, selector: str = "istio: ingressgateway", port: int = 80, hosts: str = '"*"', tls: str = "", ns: str = "") -> str:
    namespace = f", namespace: {ns}" if ns else ""
    return f"""
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: {name}{namespace}}}
spec:
  selector: {{{selector}}}
  servers:
  - port: {{number: {port}, name: p{port}, protocol: HTTPS}}
    hosts: [{hosts}]
    {tls}
---"""


def run(text: str, name: str) -> list[tuple[str, str]]:
    return findings(analyze(load_yaml(text), analyzers=[name]))


def test_gateway_selecting_no_pod_is_reported() -> None:
    assert run(gateway("gw", "istio: nothing"), "gateway.IngressGatewayPortAnalyzer") == [("IST0101", "Gateway gw")]


def test_gateway_port_must_be_a_service_port_or_target_port() -> None:
    workload = """
apiVersion: v1
kind: Pod
metadata: {name: gw-pod, labels: {app: gw}}
---
apiVersion: v1
kind: Service
metadata: {name: gw}
spec:
  selector: {app: gw}
  ports: [{name: http, port: 80, targetPort: 8080}]
"""
    assert run(gateway("a", "app: gw", 80) + workload, "gateway.IngressGatewayPortAnalyzer") == []
    assert run(gateway("b", "app: gw", 8080) + workload, "gateway.IngressGatewayPortAnalyzer") == []
    assert run(gateway("c", "app: gw", 9999) + workload, "gateway.IngressGatewayPortAnalyzer") == [("IST0162", "Gateway c")]


def test_default_ingress_gateway_exposes_80_and_443() -> None:
    assert run(gateway("gw", port=443), "gateway.IngressGatewayPortAnalyzer") == []
    assert run(gateway("gw", port=8443), "gateway.IngressGatewayPortAnalyzer") == [("IST0162", "Gateway gw")]


def _self_signed(days_valid: int) -> tuple[str, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "example.com")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(now - dt.timedelta(days=2)).not_valid_after(now + dt.timedelta(days=days_valid))
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return base64.b64encode(pem).decode(), base64.b64encode(key_pem).decode()


def secret(name: str, cert: str, key: str) -> str:
    return f"""
apiVersion: v1
kind: Secret
metadata: {{name: {name}, namespace: istio-system}}
type: kubernetes.io/tls
data: {{tls.crt: "{cert}", tls.key: "{key}"}}
---"""


def test_credential_must_exist_in_the_gateway_workload_namespace_and_be_valid() -> None:
    good_cert, key = _self_signed(30)
    expired_cert, _ = _self_signed(-1)
    tls = "tls: {{mode: SIMPLE, credentialName: {}}}"
    text = (
        secret("good", good_cert, key)
        + secret("expired", expired_cert, key)
        + secret("nokey", good_cert, "")
        + gateway("ok", tls=tls.format("good"))
        + gateway("missing", tls=tls.format("absent"))
        + gateway("old", tls=tls.format("expired"))
        + gateway("partial", tls=tls.format("nokey"))
    )
    assert run(text, "gateway.SecretAnalyzer") == [
        ("IST0101", "Gateway missing"),
        ("IST0161", "Gateway old"),
        ("IST0161", "Gateway partial"),
    ]


def test_same_selector_port_and_host_conflict() -> None:
    text = gateway("a", hosts='"foo.com"') + gateway("b", hosts='"foo.com", "bar.com"') + gateway("c", hosts='"baz.com"')
    assert run(text, "gateway.ConflictingGatewayAnalyzer") == [("IST0145", "Gateway a"), ("IST0145", "Gateway b")]
    assert run(gateway("a", hosts='"foo.com"') + gateway("b", port=81, hosts='"foo.com"'), "gateway.ConflictingGatewayAnalyzer") == []


def test_duplicate_credential_across_gateways() -> None:
    tls = "tls: {mode: SIMPLE, credentialName: shared}"
    text = gateway("a", tls=tls, ns="istio-system") + gateway("b", hosts='"x.com"', tls=tls, ns="istio-system")
    assert run(text, "gateway.CertificateAnalyzer") == [
        ("IST0138", "Gateway istio-system/a"),
        ("IST0138", "Gateway istio-system/b"),
    ]
