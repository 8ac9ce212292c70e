"""DestinationRule analyzers: TLS without CA certificates, hosts and subsets that select nothing.

Ported from istio/istio pkg/config/analysis/analyzers/destinationrule.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .context import DESTINATION_RULE, NODE, POD, SERVICE, SERVICE_ENTRY, Snapshot, selector_matches
from .framework import Message, analyzer, new_message

VERIFYING_MODES = ("SIMPLE", "MUTUAL")

# Node labels istiod copies onto endpoints (pilot/pkg/serviceregistry/util/label).
NODE_TOPOLOGY_LABELS = ("topology.kubernetes.io/region", "topology.kubernetes.io/zone", "topology.istio.io/subzone")
HOSTNAME_LABEL = "kubernetes.io/hostname"


def _mode(tls: Any) -> str:
    mode = getattr(tls, "mode", None) if tls is not None else None
    return str(mode) if mode is not None else "DISABLE"


def _unverified(tls: Any, has_workload_selector: bool) -> bool:
    """TLS that checks no server certificate: no CA, and no credential a selected workload brings."""
    if _mode(tls) not in VERIFYING_MODES or getattr(tls, "ca_certificates", None):
        return False
    return not (getattr(tls, "credential_name", None) and has_workload_selector)


def _port_text(port: Any) -> str:
    """PortSelector as protobuf text, the way Istio prints it: ``number:443``."""
    number = getattr(port, "number", None) if port is not None else None
    return f"number:{number}" if number else ""


@analyzer("destinationrule.CaCertificateAnalyzer", "Checks if caCertificates is set when TLS mode is SIMPLE/MUTUAL",
          inputs=(DESTINATION_RULE,))
def ca_certificates(snap: Snapshot) -> Iterator[Message]:
    for entry in snap.each(DESTINATION_RULE):
        dr = entry.spec
        policy = dr.traffic_policy
        selected = dr.workload_selector is not None
        tls = getattr(policy, "tls", None) if policy is not None else None
        if _unverified(tls, selected):
            yield new_message("NoServerCertificateVerificationDestinationLevel", entry, entry.full_name, entry.namespace,
                              _mode(tls), dr.host, path=("spec", "trafficPolicy", "tls", "caCertificates"))
        for i, pls in enumerate ((getattr(policy, "port_level_settings", None) or []) if policy is not None else []):
            if _unverified(pls.tls, selected):
                yield new_message(
                    "NoServerCertificateVerificationPortLevel",
                    entry, entry.full_name, entry.namespace, _mode(pls.tls), dr.host, _port_text(pls.port),
                    path=("spec", "trafficPolicy", "portLevelSettings", i, "tls", "caCertificates"),
                )


def _pod_labels(pod_labels: dict[str, str], node_name: str | None, nodes: dict[str, dict[str, str]]) -> dict[str, str]:
    """Pod labels plus the topology labels of its node, as the service registry sees the endpoint."""
    labels = dict(pod_labels)
    if not node_name or node_name not in nodes:
        return labels
    node = nodes[node_name]
    for key in NODE_TOPOLOGY_LABELS:
        if key in node:
            labels[key] = node[key]
    labels[HOSTNAME_LABEL] = node_name
    return labels


@analyzer(
    "destinationrule.SubsetSelectPodAnalyzer",
    "Checks if pods are selected by subsets in destination rules.",
    inputs=(DESTINATION_RULE, POD, SERVICE, SERVICE_ENTRY, NODE),
    aliases=("destinationrule.PodNotSelectedAnalyzer",),
)
def subsets_select_pods(snap: Snapshot) -> Iterator[Message]:
    nodes = {n.name: n.labels for n in snap.each(NODE)}
    pods = [_pod_labels(p.labels, getattr(p.spec, "node_name", None), nodes) for p in snap.each(POD)]
    for entry in snap.each(DESTINATION_RULE):
        dr = entry.spec
        svc = snap.destination_host(entry.namespace, dr.export_to, dr.host or "")
        if svc is None:
            yield new_message("UnknownDestinationRuleHost", entry, dr.host, path=("spec", "host"))
            continue
        for i, subset in enumerate(dr.subsets or []):
            selector = {**(svc.workload_selector or {}), **(subset.labels or {})}
            if not any(selector_matches(selector, labels) for labels in pods):
                yield new_message("DestinationRuleSubsetNotSelectPods", entry, subset.name, path=("spec", "subsets", i))


ANALYZERS = [ca_certificates, subsets_select_pods]
