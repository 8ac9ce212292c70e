"""VirtualService (networking.istio.io): HTTP, TLS and TCP routing rules for a set of hosts.

Field names and shapes follow the CRD (crds/crd-all.gen.yaml); every served version
(v1alpha3, v1beta1, v1) has the same schema. Optional fields default to None so "unset"
and "set to empty" stay apart, which Istio's validation depends on. The CRD's ``oneOf``
groups ("at most one of") are enforced here, as the API server would at apply time.
"""

from __future__ import annotations

import enum
from typing import Annotated

from pydantic import Field, model_validator

from ..base import IstioModel
from ..duration import GoDuration
from ..kind_info import KindInfo
from .common import PortSelector

UInt32 = Annotated[int, Field(ge=0, le=4_294_967_295)]
"""A protobuf uint32 (the CRD's ``minimum: 0, maximum: 4294967295``)."""

Int32 = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]
"""A protobuf int32 (the CRD's ``format: int32``)."""


def check_one_of(model: IstioModel, *names: str) -> None:
    """Reject a message with more than one member of a protobuf oneof set (the CRD's oneOf)."""
    present = [n for n in names if getattr(model, n) is not None]
    if len(present) > 1:
        aliases = [type(model).model_fields[n].alias or n for n in present]
        wanted = ", ".join(type(model).model_fields[n].alias or n for n in names)
        raise ValueError(f"only one of {wanted} may be set (found {', '.join(aliases)})")


class StringMatch(IstioModel):
    """Exact, prefix or RE2 regex match on a string; at most one of the three."""

    exact: str | None = None
    prefix: str | None = None
    regex: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> StringMatch:
        check_one_of(self, "exact", "prefix", "regex")
        return self

    @property
    def kind(self) -> str | None:
        """Which member is set ("exact", "prefix", "regex"), or None for an empty match."""
        for name in ("exact", "prefix", "regex"):
            if getattr(self, name) is not None:
                return name
        return None

    @property
    def value(self) -> str:
        return self.exact or self.prefix or self.regex or ""


class Percent(IstioModel):
    """A percentage in [0.0, 100.0]."""

    value: float | None = None


class Destination(IstioModel):
    """Where traffic goes: a service host, an optional subset and port."""

    host: str
    subset: str | None = None
    port: PortSelector | None = None


class HeaderOperations(IstioModel):
    set: dict[str, str] | None = None
    add: dict[str, str] | None = None
    remove: list[str] | None = None


class Headers(IstioModel):
    """Header manipulation for requests and responses."""

    request: HeaderOperations | None = None
    response: HeaderOperations | None = None


class HTTPMatchRequest(IstioModel):
    """Conditions a request must meet for a rule to apply (all of them)."""

    name: str | None = None
    uri: StringMatch | None = None
    scheme: StringMatch | None = None
    method: StringMatch | None = None
    authority: StringMatch | None = None
    headers: dict[str, StringMatch] | None = None
    port: UInt32 | None = None
    source_labels: dict[str, str] | None = None
    gateways: list[str] | None = None
    query_params: dict[str, StringMatch] | None = None
    ignore_uri_case: bool | None = None
    without_headers: dict[str, StringMatch] | None = None
    source_namespace: str | None = None
    stat_prefix: str | None = None


class HTTPRouteDestination(IstioModel):
    # Required by the CRD; optional here so analyzers can load such a rule. Validation rejects it.
    destination: Destination | None = None
    weight: Int32 | None = None
    headers: Headers | None = None


class RouteDestination(IstioModel):
    destination: Destination | None = None  # required; see HTTPRouteDestination
    weight: Int32 | None = None


class RedirectPortSelection(enum.StrEnum):
    FROM_PROTOCOL_DEFAULT = "FROM_PROTOCOL_DEFAULT"
    FROM_REQUEST_PORT = "FROM_REQUEST_PORT"


class HTTPRedirect(IstioModel):
    uri: str | None = None
    prefix_rewrite: str | None = None
    authority: str | None = None
    port: UInt32 | None = None
    derive_port: RedirectPortSelection | None = None
    scheme: str | None = None
    redirect_code: UInt32 | None = None

    @model_validator(mode="after")
    def _one_port(self) -> HTTPRedirect:
        check_one_of(self, "port", "derive_port")
        return self


class HTTPBody(IstioModel):
    """A direct response body: text or base64-encoded bytes."""

    string_: str | None = None
    bytes_: str | None = None

    @model_validator(mode="after")
    def _one_body(self) -> HTTPBody:
        check_one_of(self, "string_", "bytes_")
        return self


class HTTPDirectResponse(IstioModel):
    status: UInt32
    body: HTTPBody | None = None


class Delegate(IstioModel):
    """Hands a route over to another VirtualService (by name and namespace)."""

    name: str | None = None
    namespace: str | None = None


class RegexRewrite(IstioModel):
    match: str | None = None
    rewrite: str | None = None


class HTTPRewrite(IstioModel):
    uri: str | None = None
    authority: str | None = None
    uri_regex_rewrite: RegexRewrite | None = None


class HTTPRetry(IstioModel):
    attempts: Int32 | None = None
    per_try_timeout: GoDuration | None = None
    retry_on: str | None = None
    retry_remote_localities: bool | None = None
    retry_ignore_previous_hosts: bool | None = None
    backoff: GoDuration | None = None


class UnmatchedPreflights(enum.StrEnum):
    UNSPECIFIED = "UNSPECIFIED"
    FORWARD = "FORWARD"
    IGNORE = "IGNORE"


class CorsPolicy(IstioModel):
    allow_origins: list[StringMatch] | None = None
    allow_origin: list[str] | None = None  # deprecated: use allowOrigins
    allow_methods: list[str] | None = None
    allow_headers: list[str] | None = None
    expose_headers: list[str] | None = None
    max_age: GoDuration | None = None
    allow_credentials: bool | None = None
    unmatched_preflights: UnmatchedPreflights | None = None


class FaultDelay(IstioModel):
    fixed_delay: GoDuration | None = None
    exponential_delay: GoDuration | None = None
    percent: Int32 | None = None  # deprecated: use percentage
    percentage: Percent | None = None

    @model_validator(mode="after")
    def _one_delay(self) -> FaultDelay:
        check_one_of(self, "fixed_delay", "exponential_delay")
        return self


class FaultAbort(IstioModel):
    http_status: Int32 | None = None
    grpc_status: str | None = None
    http2_error: str | None = None
    percentage: Percent | None = None

    @model_validator(mode="after")
    def _one_error(self) -> FaultAbort:
        check_one_of(self, "http_status", "grpc_status", "http2_error")
        return self

    @property
    def error_type(self) -> str | None:
        for name in ("http_status", "grpc_status", "http2_error"):
            if getattr(self, name) is not None:
                return name
        return None


class HTTPFaultInjection(IstioModel):
    delay: FaultDelay | None = None
    abort: FaultAbort | None = None


class HTTPMirrorPolicy(IstioModel):
    destination: Destination | None = None  # required; see HTTPRouteDestination
    percentage: Percent | None = None


class HTTPRoute(IstioModel):
    """One HTTP rule: matches, then exactly one of route, redirect, direct response or delegate."""

    name: str | None = None
    match: list[HTTPMatchRequest] | None = None
    route: list[HTTPRouteDestination] | None = None
    redirect: HTTPRedirect | None = None
    direct_response: HTTPDirectResponse | None = None
    delegate: Delegate | None = None
    rewrite: HTTPRewrite | None = None
    timeout: GoDuration | None = None
    retries: HTTPRetry | None = None
    fault: HTTPFaultInjection | None = None
    mirror: Destination | None = None
    mirrors: list[HTTPMirrorPolicy] | None = None
    mirror_percent: UInt32 | None = None  # deprecated: use mirrorPercentage
    mirror_percent_legacy: UInt32 | None = Field(default=None, alias="mirror_percent")  # the proto's json_name
    mirror_percentage: Percent | None = None
    cors_policy: CorsPolicy | None = None
    headers: Headers | None = None

    @property
    def effective_mirror_percent(self) -> int | None:
        """The deprecated mirror percent, whichever of its two spellings was used."""
        return self.mirror_percent if self.mirror_percent is not None else self.mirror_percent_legacy


class TLSMatchAttributes(IstioModel):
    sni_hosts: list[str]
    destination_subnets: list[str] | None = None
    port: UInt32 | None = None
    source_labels: dict[str, str] | None = None
    gateways: list[str] | None = None
    source_namespace: str | None = None


class TLSRoute(IstioModel):
    match: list[TLSMatchAttributes]
    route: list[RouteDestination] | None = None


class L4MatchAttributes(IstioModel):
    destination_subnets: list[str] | None = None
    port: UInt32 | None = None
    source_labels: dict[str, str] | None = None
    gateways: list[str] | None = None
    source_namespace: str | None = None
    source_subnet: str | None = None


class TCPRoute(IstioModel):
    match: list[L4MatchAttributes] | None = None
    route: list[RouteDestination] | None = None


class VirtualService(IstioModel):
    """networking.istio.io VirtualService spec."""

    hosts: list[str] | None = None
    gateways: list[str] | None = None
    http: list[HTTPRoute] | None = None
    tls: list[TLSRoute] | None = None
    tcp: list[TCPRoute] | None = None
    export_to: list[str] | None = None


KINDS = [
    KindInfo(
        group="networking.istio.io",
        kind="VirtualService",
        versions=("v1", "v1beta1", "v1alpha3"),
        model=VirtualService,
        plural="virtualservices",
    )
]
