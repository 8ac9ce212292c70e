"""Gateway (networking.istio.io): servers a gateway proxy exposes, with their TLS settings.

``ServerTLSSettings`` and ``Port`` are shared with Sidecar ingress listeners.
"""

from __future__ import annotations

from enum import StrEnum
from pydantic import Field

from ..base import IstioModel
from ..kind_info import KindInfo
from .virtualservice import UInt32

NETWORKING = "networking.istio.io"
NETWORKING_VERSIONS = ("v1", "v1alpha3", "v1beta1")


class TLSMode(StrEnum):
    """ServerTLSSettings.TLSmode."""

    PASSTHROUGH = "PASSTHROUGH"
    SIMPLE = "SIMPLE"
    MUTUAL = "MUTUAL"
    AUTO_PASSTHROUGH = "AUTO_PASSTHROUGH"
    ISTIO_MUTUAL = "ISTIO_MUTUAL"
    OPTIONAL_MUTUAL = "OPTIONAL_MUTUAL"


class TLSProtocol(StrEnum):
    """ServerTLSSettings.TLSProtocol."""

    TLS_AUTO = "TLS_AUTO"
    TLSV1_0 = "TLSV1_0"
    TLSV1_1 = "TLSV1_1"
    TLSV1_2 = "TLSV1_2"
    TLSV1_3 = "TLSV1_3"


class TLSCertificate(IstioModel):
    """ServerTLSSettings.TLSCertificate: one of up to two server certificates (RSA + ECDSA)."""

    server_certificate: str | None = None
    private_key: str | None = None
    ca_certificates: str | None = None


class ServerTLSSettings(IstioModel):
    """TLS for a gateway server or a sidecar ingress listener.

    The CRD caps ``credentialNames`` and ``tlsCertificates`` at two items; Istio's webhook only
    warns past two ("can support up to 2 server certificates"), and we follow the webhook.
    """

    https_redirect: bool | None = None
    mode: TLSMode | None = None
    server_certificate: str | None = None
    private_key: str | None = None
    ca_certificates: str | None = None
    ca_crl: str | None = None
    credential_name: str | None = None
    credential_names: list[str] | None = Field(default=None, min_length=1)
    tls_certificates: list[TLSCertificate] | None = Field(default=None, min_length=1)
    ca_cert_credential_name: str | None = None
    subject_alt_names: list[str] | None = None
    verify_certificate_spki: list[str] | None = None
    verify_certificate_hash: list[str] | None = None
    min_protocol_version: TLSProtocol | None = None
    max_protocol_version: TLSProtocol | None = None
    cipher_suites: list[str] | None = None
    ecdh_curves: list[str] | None = None
    insecure_skip_verify: bool | None = None


class Port(IstioModel):
    """A gateway server's port. The CRD requires number, protocol and name; validation checks
    that, so analysis can still read a Gateway that omits them."""

    number: UInt32 | None = None
    protocol: str | None = None
    name: str | None = None
    target_port: UInt32 | None = None


class Server(IstioModel):
    """One listener of a gateway: port, hosts it serves, optional TLS."""

    port: Port | None = None  # required by the CRD (checked in validation)
    hosts: list[str] | None = None  # required by the CRD (checked in validation)
    bind: str | None = None
    tls: ServerTLSSettings | None = None
    default_endpoint: str | None = None
    name: str | None = None


class Gateway(IstioModel):
    """The Gateway spec: servers, and the labels selecting the gateway pods."""

    servers: list[Server] | None = None
    selector: dict[str, str] | None = None


KINDS = [KindInfo(group=NETWORKING, kind="Gateway", versions=NETWORKING_VERSIONS, model=Gateway, plural="gateways")]
