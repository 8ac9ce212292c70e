"""security.istio.io: AuthorizationPolicy, PeerAuthentication, RequestAuthentication.

Field names, enums and the OpenAPI limits (required fields, lengths, patterns, item counts)
follow crd-all.gen.yaml; those limits are what the API server enforces before Istio's webhook
runs, so a resource breaking them fails to load. The CEL rules live in validation/security.py.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from ..base import IstioModel
from ..duration import GoDuration
from ..kind_info import KindInfo
from .common import PolicyTargetReference, WorkloadSelector

NonEmptyStr = Annotated[str, Field(min_length=1)]
ServiceAccountStr = Annotated[str, Field(max_length=320)]
TargetRefs = Annotated[list[PolicyTargetReference], Field(max_length=16)]


# ---------------------------------------------------------------- AuthorizationPolicy


class Action(StrEnum):
    ALLOW = "ALLOW"
    DENY = "DENY"
    AUDIT = "AUDIT"
    CUSTOM = "CUSTOM"


class Source(IstioModel):
    """Who sends the request; every list is OR-ed, the not-lists exclude."""

    principals: list[str] | None = None
    not_principals: list[str] | None = None
    request_principals: list[str] | None = None
    not_request_principals: list[str] | None = None
    namespaces: list[str] | None = None
    not_namespaces: list[str] | None = None
    service_accounts: Annotated[list[ServiceAccountStr], Field(max_length=16)] | None = None
    not_service_accounts: Annotated[list[ServiceAccountStr], Field(max_length=16)] | None = None
    ip_blocks: list[str] | None = None
    not_ip_blocks: list[str] | None = None
    remote_ip_blocks: list[str] | None = None
    not_remote_ip_blocks: list[str] | None = None
    trust_domains: list[str] | None = None
    not_trust_domains: list[str] | None = None


class Operation(IstioModel):
    """What the request does: host, port, method, path (ports are strings in the API)."""

    hosts: list[str] | None = None
    not_hosts: list[str] | None = None
    ports: list[str] | None = None
    not_ports: list[str] | None = None
    methods: list[str] | None = None
    not_methods: list[str] | None = None
    paths: list[str] | None = None
    not_paths: list[str] | None = None


class RuleFrom(IstioModel):
    source: Source | None = None


class RuleTo(IstioModel):
    operation: Operation | None = None


class Condition(IstioModel):
    """A ``when`` clause: an Istio attribute and the values it must (not) have."""

    key: str
    values: list[str] | None = None
    not_values: list[str] | None = None


class Rule(IstioModel):
    from_: Annotated[list[RuleFrom], Field(max_length=512)] | None = None
    to: list[RuleTo] | None = None
    when: list[Condition] | None = None


class ExtensionProvider(IstioModel):
    name: str | None = None


class AuthorizationPolicy(IstioModel):
    selector: WorkloadSelector | None = None
    target_ref: PolicyTargetReference | None = None
    target_refs: TargetRefs | None = None
    rules: Annotated[list[Rule], Field(max_length=512)] | None = None
    action: Action | None = None
    provider: ExtensionProvider | None = None


# ---------------------------------------------------------------- PeerAuthentication


class MutualTLSMode(StrEnum):
    UNSET = "UNSET"
    DISABLE = "DISABLE"
    PERMISSIVE = "PERMISSIVE"
    STRICT = "STRICT"


class MutualTLS(IstioModel):
    mode: MutualTLSMode | None = None


class PeerAuthentication(IstioModel):
    selector: WorkloadSelector | None = None
    mtls: MutualTLS | None = None
    # Keys are port numbers; YAML carries them as strings, a non-number key fails to load.
    port_level_mtls: Annotated[dict[int, MutualTLS], Field(min_length=1)] | None = None


# ---------------------------------------------------------------- RequestAuthentication


class JWTHeader(IstioModel):
    name: NonEmptyStr
    prefix: str | None = None


class ClaimToHeader(IstioModel):
    header: Annotated[str, Field(min_length=1, pattern=r"^[-_A-Za-z0-9]+$")]
    claim: NonEmptyStr


class Presence(StrEnum):
    OPTIONAL = "OPTIONAL"
    REQUIRED = "REQUIRED"


JwksUriStr = Annotated[str, Field(min_length=1, max_length=2048)]


class JWTRule(IstioModel):
    issuer: NonEmptyStr | None = None
    audiences: list[NonEmptyStr] | None = None
    jwks_uri: JwksUriStr | None = None
    # The proto field name, which protojson (and so the CRD) also accepts.
    jwks_uri_legacy: JwksUriStr | None = Field(default=None, alias="jwks_uri")
    jwks: str | None = None
    from_headers: list[JWTHeader] | None = None
    from_params: list[NonEmptyStr] | None = None
    from_cookies: list[NonEmptyStr] | None = None
    output_payload_to_header: str | None = None
    forward_original_token: bool | None = None
    output_claim_to_headers: list[ClaimToHeader] | None = None
    timeout: GoDuration | None = None
    space_delimited_claims: Annotated[list[NonEmptyStr], Field(max_length=64)] | None = None
    presence: Presence | None = None

    @property
    def effective_jwks_uri(self) -> str:
        """The JWKS URI whichever spelling set it (both are the same proto field)."""
        return self.jwks_uri or self.jwks_uri_legacy or ""


class RequestAuthentication(IstioModel):
    selector: WorkloadSelector | None = None
    target_ref: PolicyTargetReference | None = None
    target_refs: TargetRefs | None = None
    jwt_rules: Annotated[list[JWTRule], Field(max_length=4096)] | None = None


_VERSIONS = ("v1", "v1beta1")

KINDS = [
    KindInfo(group="security.istio.io", kind="AuthorizationPolicy", versions=_VERSIONS, model=AuthorizationPolicy, plural="authorizationpolicies"),
    KindInfo(group="security.istio.io", kind="PeerAuthentication", versions=_VERSIONS, model=PeerAuthentication, plural="peerauthentications"),
    KindInfo(group="security.istio.io", kind="RequestAuthentication", versions=_VERSIONS, model=RequestAuthentication, plural="requestauthentications"),
]
