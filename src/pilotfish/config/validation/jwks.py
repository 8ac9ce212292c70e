"""Inline JWKS in RequestAuthentication: must parse as a JWK or JWK set (RFC 7517).

Istio parses it with lestrrat-go/jwx; a key set that carries private material still parses
but earns a warning, since verifying tokens only ever needs the public half.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

# Members each key type needs, and the members that make it private.
_REQUIRED = {"RSA": ("n", "e"), "EC": ("crv", "x", "y"), "OKP": ("crv", "x"), "oct": ("k",)}
_PRIVATE = {"RSA": ("d", "p", "q", "dp", "dq", "qi"), "EC": ("d",), "OKP": ("d",)}
_BINARY = {"n", "e", "x", "y", "k", "d", "p", "q", "dp", "dq", "qi"}


def _b64(value: Any, member: str) -> None:
    if not isinstance(value, str):
        raise ValueError(f"failed to parse key: {member} must be a base64url string")
    padded = value + "=" * (-len(value) % 4)
    try:
        base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"failed to decode {member}: {exc}") from None


def _check_key(key: Any) -> str:
    if not isinstance(key, dict):
        raise ValueError("failed to parse key: expected a JSON object")
    kty = key.get("kty")
    if kty not in _REQUIRED:
        raise ValueError(f"invalid key type from JSON ({kty})")
    for member in _REQUIRED[kty]:
        if member not in key:
            raise ValueError(f"failed to parse key: required field {member} is missing")
    for member in _BINARY & set(key):
        _b64(key[member], member)
    return kty


def parse_jwks(text: str) -> list[dict[str, Any]]:
    """The keys of a JWK set (or of one bare JWK); ValueError when it is not one."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"failed to unmarshal JSON into key set: {exc}") from None
    if not isinstance(doc, dict):
        raise ValueError("failed to unmarshal JSON into key set: expected a JSON object")
    keys = doc["keys"] if "keys" in doc else [doc]
    if not isinstance(keys, list):
        raise ValueError("failed to parse key set: keys must be a list")
    for key in keys:
        _check_key(key)
    return keys


def private_key_warnings(keys: list[dict[str, Any]]) -> list[str]:
    out = []
    for i, key in enumerate(keys):
        kty = key["kty"]
        private = kty == "oct" or any(m in key for m in _PRIVATE.get(kty, ()))
        if private:
            kind = "symmetric" if kty == "oct" else f"private {kty}"
            kid = f" (kid {key['kid']!r})" if "kid" in key else ""
            out.append(f"jwks key {i}{kid} contains {kind} key material; only public keys are needed to verify tokens")
    return out


def jwks_errors_and_warnings(text: str) -> tuple[list[str], list[str]]:
    try:
        keys = parse_jwks(text)
    except ValueError as exc:
        return [f"jwks parse error: {exc}"], []
    return [], private_key_warnings(keys)
