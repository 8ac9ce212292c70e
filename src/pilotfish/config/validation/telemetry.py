"""Telemetry validation: the CRD's CEL and one-of rules, then Istio's ValidateTelemetry."""

from __future__ import annotations

from ..base import Resource
from ..errors import Verdict
from ..models.telemetry import AccessLogging, Metrics, ProviderRef, TagOperation, Telemetry, Tracing
from .attachment import attachment_errors, attachment_schema_errors
from .metadata import validate_reserved_annotations
from .telemetry_cel import CelSyntaxError, parse_cel

_ONE_OF = 'Invalid value: "object": must validate one and only one schema (oneOf)'
_ONE_MS = 1_000_000


# ---------------------------------------------------------------- CRD rules


def _tracing_schema_errors(tracing: list[Tracing] | None) -> list[str]:
    errs = []
    for i, t in enumerate(tracing or []):
        for name, tag in (t.custom_tags or {}).items():
            if sum(x is not None for x in (tag.literal, tag.environment, tag.header, tag.formatter)) > 1:
                errs.append(f"spec.tracing[{i}].customTags.{name}: {_ONE_OF}")
    return errs


def _metrics_schema_errors(metrics: list[Metrics] | None) -> list[str]:
    errs = []
    for i, m in enumerate(metrics or []):
        if m.reporting_interval is not None and m.reporting_interval.nanos < _ONE_MS:
            errs.append(f'spec.metrics[{i}].reportingInterval: Invalid value: "string": must be a valid duration greater than 1ms')
        for j, o in enumerate(m.overrides or []):
            path = f"spec.metrics[{i}].overrides[{j}]"
            if o.match is not None and o.match.metric is not None and o.match.custom_metric is not None:
                errs.append(f"{path}.match: {_ONE_OF}")
            for tag, to in (o.tag_overrides or {}).items():
                if to.operation == TagOperation.UPSERT and not to.value:
                    errs.append(f'{path}.tagOverrides.{tag}: Invalid value: "object": value must be set when operation is UPSERT')
                if to.operation == TagOperation.REMOVE and to.value is not None:
                    errs.append(f'{path}.tagOverrides.{tag}: Invalid value: "object": value must not be set when operation is REMOVE')
    return errs


def telemetry_schema_errors(spec: Telemetry) -> list[str]:
    return attachment_schema_errors(spec) + _tracing_schema_errors(spec.tracing) + _metrics_schema_errors(spec.metrics)


# ---------------------------------------------------------------- Istio's webhook


def _provider_errors(providers: list[ProviderRef] | None) -> list[str]:
    if any(not p.name for p in providers or []):
        return ["providers.name may not be empty"]
    return []


def _tracing_errors(tracing: list[Tracing] | None) -> tuple[list[str], list[str]]:
    errs, warnings = [], []
    if tracing is not None and len(tracing) > 1:
        warnings.append("multiple tracing is not currently supported")
    for t in tracing or []:
        if t.providers is not None and len(t.providers) > 1:
            warnings.append("multiple providers is not currently supported")
        errs += _provider_errors(t.providers)
        pct = t.random_sampling_percentage
        if pct is not None and not 0 <= pct <= 100:
            errs.append("randomSamplingPercentage must be in range [0.0, 100.0]")
        for name, tag in (t.custom_tags or {}).items():
            if name == "":
                errs.append("tag name may not be empty")
            if tag.literal is not None and not tag.literal.value:
                errs.append("literal tag value may not be empty")
            elif tag.header is not None and not tag.header.name:
                errs.append("header tag name may not be empty")
            elif tag.environment is not None and not tag.environment.name:
                errs.append("environment tag name may not be empty")
    return errs, warnings


def _metrics_errors(metrics: list[Metrics] | None) -> tuple[list[str], list[str]]:
    errs, warnings = [], []
    for m in metrics or []:
        errs += _provider_errors(m.providers)
        for o in m.overrides or []:
            for tag, to in (o.tag_overrides or {}).items():
                if tag == "":
                    warnings.append("tagOverrides.name may not be empty")
                # An unset operation is UPSERT, the proto's zero value.
                if to.operation in (None, TagOperation.UPSERT) and not to.value:
                    errs.append("tagOverrides.value must be set when operation is UPSERT")
                elif to.operation == TagOperation.REMOVE and to.value:
                    errs.append("tagOverrides.value may only be set when operation is UPSERT")
            if o.match is not None and o.match.custom_metric is not None and o.match.custom_metric == "":
                errs.append("customMetric may not be empty")
    return errs, warnings


def _access_logging_errors(logging: list[AccessLogging] | None) -> list[str]:
    errs = []
    for entry in logging or []:
        if entry.filter is not None:
            try:
                parse_cel(entry.filter.expression or "")
            except CelSyntaxError as exc:
                errs.append(f"must be a valid CEL expression, {exc}")
        errs += _provider_errors(entry.providers)
    return errs


def telemetry_errors(spec: Telemetry) -> tuple[list[str], list[str]]:
    """Istio's ValidateTelemetry: (errors, warnings)."""
    errs, warnings = attachment_errors(spec)
    metric_errs, metric_warnings = _metrics_errors(spec.metrics)
    tracing_errs, tracing_warnings = _tracing_errors(spec.tracing)
    errs += metric_errs + tracing_errs + _access_logging_errors(spec.access_logging)
    return errs, warnings + metric_warnings + tracing_warnings


def validate_telemetry(resource: Resource) -> Verdict:
    spec: Telemetry = resource.spec
    if schema := telemetry_schema_errors(spec):
        return Verdict(errors=schema)
    if meta := validate_reserved_annotations(resource.namespace, resource.name, resource.annotations):
        return Verdict(errors=meta)
    errs, warnings = telemetry_errors(spec)
    return Verdict(errors=errs, warnings=warnings)
