"""Kubernetes Gateway analyzer: policies that select a Gateway API gateway's pods by label.

Ported from istio/istio pkg/config/analysis/analyzers/k8sgateway. Such a selector is ignored;
a policy attaches to a Kubernetes Gateway with ``targetRef``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping

from ..selectors import labels_match
from .context import AUTHORIZATION_POLICY, POD, REQUEST_AUTHENTICATION, TELEMETRY, WASM_PLUGIN, Snapshot
from .framework import Message, analyzer, new_message

GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name"
POLICY_KINDS = (AUTHORIZATION_POLICY, REQUEST_AUTHENTICATION, TELEMETRY, WASM_PLUGIN)


def _gateway_pod_labels(snap: Snapshot) -> dict[str, list[Mapping[str, str]]]:
    out: dict[str, list[Mapping[str, str]]] = defaultdict(list)
    for pod in snap.each(POD):
        if GATEWAY_NAME_LABEL in pod.labels:
            out[pod.namespace].append(pod.labels)
    return out


@analyzer("k8sgateway.SelectorAnalyzer", "Check that selectors are effective for Kubernetes gateway", inputs=(*POLICY_KINDS, POD))
def ineffective_selectors(snap: Snapshot) -> Iterator[Message]:
    pods = _gateway_pod_labels(snap)
    for gvk in POLICY_KINDS:
        for entry in snap.each(gvk):
            spec = entry.spec
            if getattr(spec, "target_ref", None) is not None:
                continue
            selector = getattr(spec, "selector", None)
            if selector is None:
                continue
            wanted = dict(getattr(selector, "match_labels", None) or {})
            for labels in pods.get(entry.namespace, []):
                if labels_match(wanted, labels):
                    yield new_message("IneffectiveSelector", entry, labels.get(GATEWAY_NAME_LABEL, ""))


ANALYZERS = [ineffective_selectors]
