"""Telemetry validation: the CRD's CEL and one-of rules, then Istio's ValidateTelemetry."""

from __future__ import annotations

from ..base import Resource
from ..errors import FieldPath, Verdict, at, crd_error
from ..models.telemetry import AccessLogging, CustomTag, Metrics, ProviderRef, TagOperation, TagOverride, Telemetry, Tracing
from .attachment import attachment_errors, attachment_schema_errors
from .metadata import validate_reserved_annotations
from .telemetry_cel import CelSyntaxError, parse_cel

_ONE_OF = 'Invalid value: "object": must validate one and only one schema (oneOf)'
_ONE_MS = 1_000_000


# ---------------------------------------------------------------- CRD rules


def _tracing_schema_errors(tracing: list[Tracing] | None) -> list[str]:
    errs: list[str] = []
    for i, t in enumerate(tracing or []):
        for name, tag in (t.custom_tags or {}).items():
            if sum(x is not None for x in (tag.literal, tag.environment, tag.header, tag.formatter)) > 1:
                errs.append(crd_error(("spec", "tracing", i, "customTags", name), _ONE_OF))
    return errs


def _metrics_schema_errors(metrics: list[Metrics] | None) -> list[str]:
    errs: list[str] = []
    for i, m in enumerate(metrics or []):
        if m.reporting_interval is not None and m.reporting_interval.nanos < _ONE_MS:
            errs.append(crd_error(("spec", "metrics", i, "reportingInterval"), 'Invalid value: "string": must be a valid duration greater than 1ms'))
        for j, o in enumerate(m.overrides or []):
            path: FieldPath = ("spec", "metrics", i, "overrides", j)
            if o.match is not None and o.match.metric is not None and o.match.custom_metric is not None:
                errs.append(crd_error((*path, "match"), _ONE_OF))
            for tag, to in (o.tag_overrides or {}).items():
                if to.operation == TagOperation.UPSERT and not to.value:
                    errs.append(crd_error((*path, "tagOverrides", tag), 'Invalid value: "object": value must be set when operation is UPSERT'))
                if to.operation == TagOperation.REMOVE and to.value is not None:
                    errs.append(crd_error((*path, "tagOverrides", tag), 'Invalid value: "object": value must not be set when operation is REMOVE'))
    return errs


def telemetry_schema_errors(spec: Telemetry) -> list[str]:
    return attachment_schema_errors(spec) + _tracing_schema_errors(spec.tracing) + _metrics_schema_errors(spec.metrics)


# ---------------------------------------------------------------- Istio's webhook


def _key(name: str) -> FieldPath:
    """A map entry by its key; an empty key is named by its map."""
    return (name,) if name else ()


def _provider_errors(providers: list[ProviderRef] | None) -> list[str]:
    """Istio's validateTelemetryProviders: the first provider without a name."""
    for k, p in enumerate(providers or []):
        if not p.name:
            return at(("providers", k, "name"), ["providers.name may not be empty"])
    return []


def _custom_tag_errors(name: str, tag: CustomTag) -> list[str]:
    errs = ["tag name may not be empty"] if name == "" else []
    if tag.literal is not None and not tag.literal.value:
        errs += at(("literal", "value"), ["literal tag value may not be empty"])
    elif tag.header is not None and not tag.header.name:
        errs += at(("header", "name"), ["header tag name may not be empty"])
    elif tag.environment is not None and not tag.environment.name:
        errs += at(("environment", "name"), ["environment tag name may not be empty"])
    return errs


def _tracing_errors(v: Verdict, t: Tracing) -> None:
    if t.providers is not None and len(t.providers) > 1:
        v.warnings += at(("providers",), ["multiple providers is not currently supported"])
    v.errors += _provider_errors(t.providers)
    pct = t.random_sampling_percentage
    if pct is not None and not 0 <= pct <= 100:
        v.errors += at(("randomSamplingPercentage",), ["randomSamplingPercentage must be in range [0.0, 100.0]"])
    for name, tag in (t.custom_tags or {}).items():
        v.errors += at(("customTags", *_key(name)), _custom_tag_errors(name, tag))


def _tag_override_errors(v: Verdict, tag: str, to: TagOverride) -> None:
    if tag == "":
        v.warnings.append("tagOverrides.name may not be empty")
    # An unset operation is UPSERT, the proto's zero value.
    if to.operation in (None, TagOperation.UPSERT) and not to.value:
        v.errors += at(("value",), ["tagOverrides.value must be set when operation is UPSERT"])
    elif to.operation == TagOperation.REMOVE and to.value:
        v.errors += at(("value",), ["tagOverrides.value may only be set when operation is UPSERT"])


def _metrics_errors(v: Verdict, m: Metrics) -> None:
    v.errors += _provider_errors(m.providers)
    for j, o in enumerate(m.overrides or []):
        for tag, to in (o.tag_overrides or {}).items():
            v.under(("overrides", j, "tagOverrides", *_key(tag)), lambda one, tag=tag, to=to: _tag_override_errors(one, tag, to))
        if o.match is not None and o.match.custom_metric is not None and o.match.custom_metric == "":
            v.errors += at(("overrides", j, "match", "customMetric"), ["customMetric may not be empty"])


def _access_logging_errors(entry: AccessLogging) -> list[str]:
    errs: list[str] = []
    if entry.filter is not None:
        try:
            parse_cel(entry.filter.expression or "")
        except CelSyntaxError as exc:
            errs += at(("filter", "expression"), [f"must be a valid CEL expression, {exc}"])
    return errs + _provider_errors(entry.providers)


def telemetry_errors(spec: Telemetry) -> Verdict:
    """Istio's ValidateTelemetry, each message at its field from the root."""
    v = Verdict(*attachment_errors(spec))
    for i, m in enumerate(spec.metrics or []):
        v.under(("spec", "metrics", i), lambda one, m=m: _metrics_errors(one, m))
    if spec.tracing is not None and len(spec.tracing) > 1:
        v.warnings += at(("spec", "tracing"), ["multiple tracing is not currently supported"])
    for i, t in enumerate(spec.tracing or []):
        v.under(("spec", "tracing", i), lambda one, t=t: _tracing_errors(one, t))
    for i, entry in enumerate(spec.access_logging or []):
        v.errors += at(("spec", "accessLogging", i), _access_logging_errors(entry))
    return v


def validate_telemetry(resource: Resource) -> Verdict:
    spec: Telemetry = resource.spec
    if schema := telemetry_schema_errors(spec):
        return Verdict(errors=schema)
    if meta := validate_reserved_annotations(resource.namespace, resource.name, resource.annotations):
        return Verdict(errors=meta)
    return telemetry_errors(spec)
