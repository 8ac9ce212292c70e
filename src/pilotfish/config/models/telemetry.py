"""telemetry.istio.io Telemetry: tracing, metrics and access logging per workload.

Follows crd-all.gen.yaml (v1alpha1 and v1 share one schema). OpenAPI limits are enforced on
load; the CEL rules and the one-of choices are checked in validation/telemetry.py.
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


class ProviderRef(IstioModel):
    """A provider by its name in MeshConfig.extensionProviders."""

    name: NonEmptyStr


class WorkloadMode(StrEnum):
    CLIENT_AND_SERVER = "CLIENT_AND_SERVER"
    CLIENT = "CLIENT"
    SERVER = "SERVER"


# ---------------------------------------------------------------- tracing


class TracingSelector(IstioModel):
    mode: WorkloadMode | None = None


class LiteralTag(IstioModel):
    value: NonEmptyStr


class Environment(IstioModel):
    name: NonEmptyStr
    default_value: str | None = None


class RequestHeader(IstioModel):
    name: NonEmptyStr
    default_value: str | None = None


class Formatter(IstioModel):
    value: NonEmptyStr


class CustomTag(IstioModel):
    """One of literal, environment, header or formatter."""

    literal: LiteralTag | None = None
    environment: Environment | None = None
    header: RequestHeader | None = None
    formatter: Formatter | None = None


class Tracing(IstioModel):
    match: TracingSelector | None = None
    providers: list[ProviderRef] | None = None
    random_sampling_percentage: Annotated[float, Field(ge=0, le=100)] | None = None
    disable_span_reporting: bool | None = None
    custom_tags: dict[str, CustomTag] | None = None
    use_request_id_for_trace_sampling: bool | None = None
    enable_istio_tags: bool | None = None
    disable_context_propagation: bool | None = None


# ---------------------------------------------------------------- metrics


class IstioMetric(StrEnum):
    ALL_METRICS = "ALL_METRICS"
    REQUEST_COUNT = "REQUEST_COUNT"
    REQUEST_DURATION = "REQUEST_DURATION"
    REQUEST_SIZE = "REQUEST_SIZE"
    RESPONSE_SIZE = "RESPONSE_SIZE"
    TCP_OPENED_CONNECTIONS = "TCP_OPENED_CONNECTIONS"
    TCP_CLOSED_CONNECTIONS = "TCP_CLOSED_CONNECTIONS"
    TCP_SENT_BYTES = "TCP_SENT_BYTES"
    TCP_RECEIVED_BYTES = "TCP_RECEIVED_BYTES"
    GRPC_REQUEST_MESSAGES = "GRPC_REQUEST_MESSAGES"
    GRPC_RESPONSE_MESSAGES = "GRPC_RESPONSE_MESSAGES"


class MetricSelector(IstioModel):
    """Which metric an override applies to: one of ``metric`` or ``customMetric``, plus a mode."""

    metric: IstioMetric | None = None
    custom_metric: NonEmptyStr | None = None
    mode: WorkloadMode | None = None


class TagOperation(StrEnum):
    UPSERT = "UPSERT"
    REMOVE = "REMOVE"


class TagOverride(IstioModel):
    operation: TagOperation | None = None
    value: str | None = None


class MetricsOverrides(IstioModel):
    match: MetricSelector | None = None
    disabled: bool | None = None
    tag_overrides: dict[str, TagOverride] | None = None


class Metrics(IstioModel):
    providers: list[ProviderRef] | None = None
    overrides: list[MetricsOverrides] | None = None
    reporting_interval: GoDuration | None = None


# ---------------------------------------------------------------- access logging


class AccessLogFilter(IstioModel):
    expression: str | None = None


class AccessLoggingSelector(IstioModel):
    mode: WorkloadMode | None = None


class AccessLogging(IstioModel):
    match: AccessLoggingSelector | None = None
    providers: list[ProviderRef] | None = None
    disabled: bool | None = None
    filter: AccessLogFilter | None = None


class Telemetry(IstioModel):
    selector: WorkloadSelector | None = None
    target_ref: PolicyTargetReference | None = None
    target_refs: Annotated[list[PolicyTargetReference], Field(max_length=16)] | None = None
    tracing: list[Tracing] | None = None
    metrics: list[Metrics] | None = None
    access_logging: list[AccessLogging] | None = None


KINDS = [
    KindInfo(group="telemetry.istio.io", kind="Telemetry", versions=("v1", "v1alpha1"), model=Telemetry, plural="telemetries"),
]
