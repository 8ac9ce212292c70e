"""Label selectors: Istio's WorkloadSelector (matchLabels) and Kubernetes' LabelSelector."""

from __future__ import annotations

from collections.abc import Mapping


def labels_match(selector: Mapping[str, str] | None, labels: Mapping[str, str] | None) -> bool:
    """An empty or absent selector selects everything (Istio's and Kubernetes' rule)."""
    if not selector:
        return True
    labels = labels or {}
    return all(labels.get(k) == v for k, v in selector.items())


def expression_matches(key: str, operator: str, values: list[str] | None, labels: Mapping[str, str]) -> bool:
    """One Kubernetes matchExpressions term."""
    values = values or []
    if operator == "In":
        return key in labels and labels[key] in values
    if operator == "NotIn":
        return key not in labels or labels[key] not in values
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    raise ValueError(f"unknown label selector operator {operator!r}")
