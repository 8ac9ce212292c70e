"""Where a policy applies: ``selector``, ``targetRef`` and ``targetRefs``.

Shared by the kinds that attach that way (AuthorizationPolicy, RequestAuthentication,
Telemetry, WasmPlugin, TrafficExtension): the CRD rules first, then Istio's webhook checks.
"""

from __future__ import annotations

from typing import Protocol

from ..models.common import PolicyTargetReference, WorkloadSelector
from . import common


class Attached(Protocol):
    @property
    def selector(self) -> WorkloadSelector | None: ...
    @property
    def target_refs(self) -> list[PolicyTargetReference] | None: ...


def _target_ref(spec: Attached) -> PolicyTargetReference | None:
    return getattr(spec, "target_ref", None)


def attachment_schema_errors(spec: Attached) -> list[str]:
    """The CRD's CEL and schema rules on selector, targetRef and targetRefs."""
    errs = []
    if sum(x is not None for x in (spec.selector, _target_ref(spec), spec.target_refs)) > 1:
        errs.append('spec: Invalid value: "object": only one of targetRefs or selector can be set')
    errs += common.crd_selector_errors("spec.selector", spec.selector)
    errs += common.crd_target_ref_errors("spec.targetRef", _target_ref(spec))
    for i, ref in enumerate(spec.target_refs or []):
        errs += common.crd_target_ref_errors(f"spec.targetRefs[{i}]", ref)
    return errs


def attachment_errors(spec: Attached) -> tuple[list[str], list[str]]:
    """Istio's validateOneOfSelectorType, validateWorkloadSelector and target reference checks."""
    errs = common.validate_one_of_selector_type(spec.selector, _target_ref(spec), spec.target_refs)
    sel_errs, warnings = common.validate_policy_workload_selector(spec.selector)
    errs += sel_errs
    errs += common.validate_policy_target_reference(_target_ref(spec))
    for ref in spec.target_refs or []:
        errs += common.validate_policy_target_reference(ref)
    return errs, warnings
