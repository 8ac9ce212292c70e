"""Sidecar analyzers: selectors that match no pod, overlapping Sidecars, ambient workloads.

Ported from istio/istio pkg/config/analysis/analyzers/sidecar.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from typing import Any

from .context import NAMESPACE, POD, SIDECAR, Entry, Snapshot, selector_string
from .framework import Message, analyzer, new_message

AMBIENT_REDIRECTION_ANNOTATION = "ambient.istio.io/redirection"
DATAPLANE_MODE_LABEL = "istio.io/dataplane-mode"
REVISION_LABEL = "istio.io/rev"
INJECTION_LABEL = "istio-injection"


def pod_in_ambient_mode(pod: Entry | None) -> bool:
    return pod is not None and pod.annotations.get(AMBIENT_REDIRECTION_ANNOTATION) == "enabled"


def namespace_in_ambient_mode(ns: Entry | None) -> bool:
    """A namespace labelled for ambient that is not also labelled for sidecar injection."""
    if ns is None:
        return False
    if ns.labels.get(INJECTION_LABEL) == "enabled" or ns.labels.get(REVISION_LABEL):
        return False
    return ns.labels.get(DATAPLANE_MODE_LABEL) == "ambient"


def workload_labels(sidecar: Any) -> Mapping[str, str]:
    ws = getattr(sidecar, "workload_selector", None)
    if ws is None:
        return {}
    return getattr(ws, "labels", None) or {}


def _names(entries: list[Entry]) -> list[str]:
    return [e.name for e in entries]


@analyzer(
    "sidecar.SelectorAnalyzer",
    "Validates that sidecars that define a workload selector match at least one pod, and that there aren't "
    "multiple sidecar resources that select overlapping pods",
    inputs=(SIDECAR, POD, NAMESPACE),
)
def selectors(snap: Snapshot) -> Iterator[Message]:
    pod_sidecars: dict[tuple[str, str], list[Entry]] = defaultdict(list)
    pods: dict[tuple[str, str], Entry] = {}
    ns_sidecars: dict[str, list[Entry]] = defaultdict(list)
    for entry in snap.each(SIDECAR):
        labels = workload_labels(entry.spec)
        if not labels:
            ns_sidecars[entry.namespace].append(entry)
            continue
        matched = snap.pods_matching(labels, entry.namespace)
        for pod in matched:
            pod_sidecars[(pod.namespace, pod.name)].append(entry)
            pods[(pod.namespace, pod.name)] = pod
        if not matched:
            yield new_message("ReferencedResourceNotFound", entry, "selector", selector_string(labels),
                              path=("spec", "workloadSelector", "labels", min(labels)))

    reported: set[str] = set()
    for key, sidecars in pod_sidecars.items():
        ambient = pod_in_ambient_mode(pods[key])
        if len(sidecars) == 1 and not ambient:
            continue
        for sc in sidecars:
            if ambient:
                if sc.full_name not in reported:
                    reported.add(sc.full_name)
                    yield new_message("IneffectivePolicy", sc, "selected workload is in ambient mode, the policy has no impact")
                continue
            yield new_message("ConflictingSidecarWorkloadSelectors", sc, _names(sidecars), key[0], key[1])

    for ns, sidecars in ns_sidecars.items():
        if namespace_in_ambient_mode(snap.find(NAMESPACE, "", ns)):
            for sc in sidecars:
                if sc.full_name not in reported:
                    reported.add(sc.full_name)
                    yield new_message("IneffectivePolicy", sc, "namespace is in ambient mode, the policy has no impact")
            continue
        if len(sidecars) > 1:
            for sc in sidecars:
                yield new_message("MultipleSidecarsWithoutWorkloadSelectors", sc, _names(sidecars), ns)


# Istio folded this check into SelectorAnalyzer (istio/istio#48466), so it needs what that one needs.
@analyzer(
    "sidecar.DefaultSelectorAnalyzer",
    "Validates that there aren't multiple sidecar resources that have no selector",
    inputs=(SIDECAR, POD, NAMESPACE),
)
def default_selectors(snap: Snapshot) -> Iterator[Message]:
    by_ns: dict[str, list[Entry]] = defaultdict(list)
    for entry in snap.each(SIDECAR):
        if getattr(entry.spec, "workload_selector", None) is None:
            by_ns[entry.namespace].append(entry)
    for ns, sidecars in by_ns.items():
        if len(sidecars) > 1:
            for sc in sidecars:
                yield new_message("MultipleSidecarsWithoutWorkloadSelectors", sc, _names(sidecars), ns)


ANALYZERS = [default_selectors, selectors]
