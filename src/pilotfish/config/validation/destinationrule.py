"""DestinationRule validation: a port of Istio's ValidateDestinationRule.

The host may be a wildcard domain; the traffic policy and each subset's policy are checked
(traffic_policy.py); subset names must be unique DNS labels; a rule with a workload selector
may only be exported to its own namespace.
"""

from __future__ import annotations

from ..base import Resource
from ..errors import Verdict
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
    v.errors += crd_selector_errors("spec.workloadSelector", rule.workload_selector)
    v.errors += validate_wildcard_domain(rule.host)
    validate_traffic_policy(v, namespace, rule.traffic_policy)
    seen: set[str] = set()
    for subset in rule.subsets or []:
        if subset.name in seen:
            v.errors.append(f"duplicate subset names: {subset.name}")
        seen.add(subset.name)
        validate_subset(v, namespace, subset)
    v.errors += validate_export_to(namespace, rule.export_to, dr_with_selector=rule.workload_selector is not None)
    errs, warnings = validate_policy_workload_selector(rule.workload_selector)
    v.errors += errs
    v.warnings += warnings
    return v


def validate_subset(v: Verdict, namespace: str, subset: Subset) -> None:
    v.errors += validate_subset_name(subset.name)
    v.errors += validate_tag_labels(subset.labels)
    validate_traffic_policy(v, namespace, subset.traffic_policy)
