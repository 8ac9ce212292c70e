"""Where a policy applies: ``selector``, ``targetRef`` and ``targetRefs``.

Shared by the kinds that attach that way (AuthorizationPolicy, RequestAuthentication,
Telemetry, WasmPlugin, TrafficExtension; DestinationRule and ProxyConfig use the selector
checks alone): the CRD rules first, then Istio's webhook checks. The networking kinds
(Sidecar, ServiceEntry, EnvoyFilter) select workloads by ``labels`` instead of
``matchLabels``, with checks of their own at the end.
"""

from __future__ import annotations

import re
from typing import Protocol

from ..errors import FieldPath, at, format_path
from ..models.common import PolicyTargetReference, WorkloadSelector
from ..models.workload import WorkloadSelector as NetworkingSelector

# Istio's allowedTargetRefs: (canonical group, kind) and how the error message prints them.
ALLOWED_TARGET_REFS = (
    ("core", "Service", "core/v1/Service"),
    ("networking.istio.io", "ServiceEntry", "networking.istio.io/v1/ServiceEntry"),
    ("gateway.networking.k8s.io", "Gateway", "gateway.networking.k8s.io/v1/Gateway"),
    ("gateway.networking.k8s.io", "GatewayClass", "gateway.networking.k8s.io/v1/GatewayClass"),
)
_REF_GROUP = re.compile(r"^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_REF_KIND = re.compile(r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$")


def validate_one_of_selector_type(
    selector: WorkloadSelector | None, target_ref: PolicyTargetReference | None, target_refs: list[PolicyTargetReference] | None
) -> list[str]:
    if sum((selector is not None, target_ref is not None, bool(target_refs))) > 1:
        return ["only one of targetRefs or workloadSelector can be set"]
    return []


def validate_policy_workload_selector(selector: WorkloadSelector | None) -> tuple[list[str], list[str]]:
    """Istio's validateWorkloadSelector for type.v1beta1 selectors: (errors, warnings)."""
    if selector is None:
        return [], []
    errs = []
    match_labels = selector.match_labels or {}
    for k, v in match_labels.items():
        if k == "":
            errs.append(f'empty key is not supported in selector: "{k}={v}"')
        if "*" in k or "*" in v:
            errs.append(f'wildcard is not supported in selector: "{k}={v}"')
    warnings = [] if match_labels else ["workload selector specified without labels"]
    return errs, warnings


def validate_policy_target_reference(ref: PolicyTargetReference | None) -> list[str]:
    if ref is None:
        return []
    group, kind, name, namespace = ref.group, ref.kind, ref.name, ref.namespace
    errs = []
    if not name:
        errs.append("targetRef name must be set")
    if namespace:
        errs.append("targetRef namespace must not be set; cross namespace referencing is not supported")
    canonical = group or "core"
    if not any(g == canonical and k == kind for g, k, _ in ALLOWED_TARGET_REFS):
        allowed = " ".join(text for _, _, text in ALLOWED_TARGET_REFS)
        errs.append(f"targetRef must be to one of [{allowed}] but was {group or ''}/{kind or ''}")
    return errs


def crd_selector_errors(where: FieldPath, selector: WorkloadSelector | None) -> list[str]:
    """The CRD schema and CEL rules on type.v1beta1.WorkloadSelector.matchLabels, about the selector
    at ``where`` (the API server's texts name the field from the root)."""
    path = format_path(where)
    labels = (selector.match_labels if selector else None) or {}
    errs = []
    if len(labels) > 4096:
        errs.append(f"{path}.matchLabels: Too many: {len(labels)}: must have at most 4096 items")
    if any("*" in k for k in labels):
        errs.append(f"{path}.matchLabels: Invalid value: \"object\": wildcard not allowed in label key match")
    if any(k == "" for k in labels):
        errs.append(f"{path}.matchLabels: Invalid value: \"object\": key must not be empty")
    for k, v in labels.items():
        if len(v) > 63:
            errs.append(f"{path}.matchLabels.{k}: Too long: may not be more than 63 bytes")
        if "*" in v:
            errs.append(f"{path}.matchLabels.{k}: Invalid value: \"string\": wildcard not allowed in label value match")
    return at(where, errs)


def crd_target_ref_errors(where: FieldPath, ref: PolicyTargetReference | None) -> list[str]:
    """The CRD schema and CEL rules on type.v1beta1.PolicyTargetReference at ``where``."""
    path = format_path(where)
    if ref is None:
        return []
    group, kind, name, namespace = ref.group, ref.kind, ref.name, ref.namespace
    errs = []
    if group is not None and (len(group) > 253 or not _REF_GROUP.match(group)):
        errs.append(f"{path}.group in body should match '{_REF_GROUP.pattern}'")
    if kind is None:
        errs.append(f"{path}.kind: Required value")
    elif not kind or len(kind) > 63 or not _REF_KIND.match(kind):
        errs.append(f"{path}.kind in body should match '{_REF_KIND.pattern}'")
    if name is None:
        errs.append(f"{path}.name: Required value")
    elif not name or len(name) > 253:
        errs.append(f"{path}.name in body should be at least 1 chars long and at most 253")
    if namespace:
        errs.append(f"{path}.namespace: Invalid value: \"string\": cross namespace referencing is not currently supported")
    return at(where, errs)


class Attached(Protocol):
    @property
    def selector(self) -> WorkloadSelector | None: ...
    @property
    def target_refs(self) -> list[PolicyTargetReference] | None: ...


def _target_ref(spec: Attached) -> PolicyTargetReference | None:
    return getattr(spec, "target_ref", None)


def attachment_schema_errors(spec: Attached) -> list[str]:
    """The CRD's CEL and schema rules on selector, targetRef and targetRefs (paths from the root)."""
    errs = []
    if sum(x is not None for x in (spec.selector, _target_ref(spec), spec.target_refs)) > 1:
        errs += at(("spec",), ['spec: Invalid value: "object": only one of targetRefs or selector can be set'])
    errs += crd_selector_errors(("spec", "selector"), spec.selector)
    errs += crd_target_ref_errors(("spec", "targetRef"), _target_ref(spec))
    for i, ref in enumerate(spec.target_refs or []):
        errs += crd_target_ref_errors(("spec", "targetRefs", i), ref)
    return errs


def attachment_errors(spec: Attached) -> tuple[list[str], list[str]]:
    """Istio's validateOneOfSelectorType, validateWorkloadSelector and target reference checks
    (paths from the root)."""
    errs = at(("spec",), validate_one_of_selector_type(spec.selector, _target_ref(spec), spec.target_refs))
    sel_errs, warnings = validate_policy_workload_selector(spec.selector)
    errs += at(("spec", "selector"), sel_errs)
    errs += at(("spec", "targetRef"), validate_policy_target_reference(_target_ref(spec)))
    for i, ref in enumerate(spec.target_refs or []):
        errs += at(("spec", "targetRefs", i), validate_policy_target_reference(ref))
    return errs, at(("spec", "selector"), warnings)


def validate_alpha_workload_selector(selector: NetworkingSelector | None) -> tuple[list[str], str | None]:
    """Istio's ValidateAlphaWorkloadSelector: (errors, warning) for networking's ``labels`` selector."""
    if selector is None:
        return [], None
    errs = []
    for key, value in (selector.labels or {}).items():
        if key == "":
            errs.append(f'empty key is not supported in selector: "{key}={value}"')
        if "*" in key or "*" in value:
            errs.append(f'wildcard is not supported in selector: "{key}={value}"')
    return errs, None if selector.labels else "workload selector specified without labels"


def crd_networking_selector_errors(where: FieldPath, selector: NetworkingSelector | None) -> list[str]:
    """CEL on networking WorkloadSelector label values, about the selector at ``where``."""
    path = format_path(where)
    labels = (selector.labels if selector else None) or {}
    return at(where, [
        f'{path}.labels[{key}]: Invalid value: "string": wildcard is not supported in selector'
        for key, value in labels.items()
        if "*" in value
    ])
