"""DestinationRule validation: a port of Istio's ValidateDestinationRule.

The host may be a wildcard domain; the traffic policy and each subset's policy are checked
(traffic_policy.py); subset names must be unique DNS labels; a rule with a workload selector
may only be exported to its own namespace.
"""

from __future__ import annotations

from ..base import Resource
from ..errors import FieldError, Verdict, at
from ..models.destinationrule import DestinationRule, Subset
from .attachment import crd_selector_errors, validate_policy_workload_selector
from .destination import validate_subset_name
from .domains import validate_wildcard_domain
from .metadata import validate_export_to, validate_reserved_annotations, validate_tag_labels
from .traffic_policy import validate_traffic_policy


def validate_destination_rule(resource: Resource) -> Verdict:
    meta_errors = validate_reserved_annotations(resource.namespace, resource.name, resource.annotations)
    if meta_errors:
        return Verdict(errors=meta_errors)
    rule: DestinationRule = resource.spec
    namespace = resource.namespace
    v = Verdict()
    v.errors += crd_selector_errors(("spec", "workloadSelector"), rule.workload_selector)
    v.errors += at(("spec", "host"), validate_wildcard_domain(rule.host))
    v.under(("spec", "trafficPolicy"), lambda one: validate_traffic_policy(one, namespace, rule.traffic_policy))
    seen: set[str] = set()
    for i, subset in enumerate(rule.subsets or []):
        if subset.name in seen:
            v.errors.append(FieldError(f"duplicate subset names: {subset.name}", ("spec", "subsets", i, "name")))
        seen.add(subset.name)
        v.under(("spec", "subsets", i), lambda one, subset=subset: validate_subset(one, namespace, subset))
    v.errors += at(("spec", "exportTo"), validate_export_to(namespace, rule.export_to,
                                                           dr_with_selector=rule.workload_selector is not None))
    errs, warnings = validate_policy_workload_selector(rule.workload_selector)
    v.errors += at(("spec", "workloadSelector"), errs)
    v.warnings += at(("spec", "workloadSelector"), warnings)
    return v


def validate_subset(v: Verdict, namespace: str, subset: Subset) -> None:
    v.errors += at(("name",), validate_subset_name(subset.name))
    v.errors += at(("labels",), validate_tag_labels(subset.labels))
    v.under(("trafficPolicy",), lambda one: validate_traffic_policy(one, namespace, subset.traffic_policy))
