"""Label selectors: Istio's WorkloadSelector and Kubernetes' equality-based selectors."""

from __future__ import annotations

from collections.abc import Mapping


def labels_match(selector: Mapping[str, str] | None, labels: Mapping[str, str] | None) -> bool:
    """An empty or absent selector selects everything (Istio's and Kubernetes' rule)."""
    if not selector:
        return True
    labels = labels or {}
    return all(labels.get(k) == v for k, v in selector.items())
