"""Whether a Secret is a usable gateway credential, as istiod's secret controller judges it.

The certificate and key are read from ``cert``/``key`` (Istio's generic layout) or
``tls.crt``/``tls.key`` (kubernetes.io/tls); the first PEM block of the certificate must parse
and every certificate in it must be valid at ``now`` (pilot/pkg/credentials/kube and
pilot/pkg/xds ValidateCertificate).
"""

from __future__ import annotations

import base64
import binascii
import warnings
from datetime import datetime
from typing import Any

GENERIC = ("cert", "key")
KUBERNETES_TLS = ("tls.crt", "tls.key")


def secret_data(secret: Any) -> dict[str, bytes]:
    """The Secret's data as bytes: ``data`` (base64) merged with ``stringData`` as the API server does."""
    out: dict[str, bytes] = {}
    for key, value in (getattr(secret, "data", None) or {}).items():
        try:
            out[key] = base64.b64decode(value or "", validate=False)
        except (binascii.Error, ValueError):
            out[key] = b""
    for key, value in (getattr(secret, "string_data", None) or {}).items():
        out[key] = (value or "").encode()
    return out


def certificate_of(data: dict[str, bytes]) -> bytes | None:
    """The certificate bytes of a credential Secret, or None when it lacks a cert/key pair."""
    for cert_key, key_key in (GENERIC, KUBERNETES_TLS):
        if data.get(cert_key) and data.get(key_key):
            return data[cert_key]
    return None


def certificate_is_valid(pem: bytes, now: datetime) -> bool:
    try:
        from cryptography import x509
    except ImportError:  # without cryptography only the PEM framing can be checked
        return b"-----BEGIN CERTIFICATE-----" in pem
    start = pem.find(b"-----BEGIN")
    if start < 0:
        return False
    end = pem.find(b"-----END", start)
    end = pem.find(b"-----", end + 8) + 5 if end >= 0 else -1
    if end < 5:
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. a non-positive serial number: Go accepts it too
            certs = x509.load_pem_x509_certificates(pem[start:end])
    except ValueError:
        return False
    for cert in certs:
        if now > cert.not_valid_after_utc or now < cert.not_valid_before_utc:
            return False
    return bool(certs)


def secret_is_valid(secret: Any, now: datetime) -> bool:
    cert = certificate_of(secret_data(secret))
    return cert is not None and certificate_is_valid(cert, now)
