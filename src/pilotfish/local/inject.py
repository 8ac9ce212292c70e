"""Sidecar injection as Istio decides it (the injector webhook's selectors, then
pkg/kube/inject's injectRequired), and ``kube-inject``'s rewrite of a manifest.

The webhook is called for a pod when its namespace is labelled ``istio-injection=enabled`` (or
``istio.io/rev=default``) and the pod is not labelled ``sidecar.istio.io/inject=false``, or when
the namespace has neither label and the pod is labelled ``sidecar.istio.io/inject=true``. The
injector then skips hostNetwork pods, kube-system and kube-public, and pods whose
``sidecar.istio.io/inject`` (label, else annotation) is not y/yes/true/on; unset means inject.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

INJECT = "sidecar.istio.io/inject"
_YES = ("y", "yes", "true", "on")
_IGNORED_NAMESPACES = ("kube-system", "kube-public")
PROXY_IMAGE = "docker.io/pilotfish/proxyv2"


def webhook_selects(namespace_labels: Mapping[str, str], pod_labels: Mapping[str, str]) -> bool:
    injection = namespace_labels.get("istio-injection")
    revision = namespace_labels.get("istio.io/rev")
    if injection == "enabled" or (injection is None and revision == "default"):
        return pod_labels.get(INJECT) != "false"
    if injection is None and revision is None:
        return pod_labels.get(INJECT) == "true"
    return False


def injection_wanted(namespace_labels: Mapping[str, str], pod_labels: Mapping[str, str],
                     pod_annotations: Mapping[str, str], host_network: bool = False,
                     namespace: str = "") -> bool:
    if not webhook_selects(namespace_labels, pod_labels):
        return False
    if host_network or namespace in _IGNORED_NAMESPACES:
        return False
    wanted = pod_labels.get(INJECT, pod_annotations.get(INJECT, ""))
    return wanted == "" or wanted.lower() in _YES


def _pod_template(doc: dict[str, Any]) -> dict[str, Any] | None:
    kind = doc.get("kind")
    if kind == "Pod":
        return doc
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        return ((doc.get("spec") or {}).get("template"))
    if kind == "CronJob":
        return (((doc.get("spec") or {}).get("jobTemplate") or {}).get("spec") or {}).get("template")
    return None


def kube_inject(doc: dict[str, Any], version: str) -> dict[str, Any]:
    """The document with Istio's sidecar added to its pod template, as ``istioctl kube-inject``
    writes it (which injects whatever the namespace says, unless the pod opts out). Other kinds,
    and pods that opt out or are already injected, come back unchanged."""
    out = copy.deepcopy(doc)
    template = _pod_template(out)
    if template is None:
        return out
    meta = template.setdefault("metadata", {}) or {}
    template["metadata"] = meta
    labels = meta.setdefault("labels", {}) or {}
    annotations = meta.setdefault("annotations", {}) or {}
    meta["labels"], meta["annotations"] = labels, annotations
    spec = template.setdefault("spec", {})
    wanted = str(labels.get(INJECT, annotations.get(INJECT, "")))
    if (wanted and wanted.lower() not in _YES) or spec.get("hostNetwork") or "sidecar.istio.io/status" in annotations:
        return out
    containers = spec.setdefault("containers", [])
    app = containers[0].get("name", "") if containers else ""
    name = labels.get("app") or labels.get("app.kubernetes.io/name") or doc.get("metadata", {}).get("name", "")
    labels.setdefault("security.istio.io/tlsMode", "istio")
    labels.setdefault("service.istio.io/canonical-name", str(name))
    labels.setdefault("service.istio.io/canonical-revision", str(labels.get("version", "latest")))
    annotations.update({
        "istio.io/rev": "default",
        "kubectl.kubernetes.io/default-container": app,
        "kubectl.kubernetes.io/default-logs-container": app,
        "prometheus.io/path": "/stats/prometheus", "prometheus.io/port": "15020", "prometheus.io/scrape": "true",
        "sidecar.istio.io/status": json.dumps({"initContainers": None, "containers": ["istio-proxy"],
                                               "volumes": ["workload-socket", "istio-envoy", "istio-data"],
                                               "imagePullSecrets": None, "revision": "default"},
                                              separators=(",", ":")),
    })
    containers.append({
        "name": "istio-proxy", "image": f"{PROXY_IMAGE}:{version}",
        "args": ["agent", "--spec", "/etc/istio/proxy/spec.json"],
        "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                {"name": "INSTANCE_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "SERVICE_ACCOUNT", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
                {"name": "ISTIO_META_INTERCEPTION_MODE", "value": "NONE"}],
        "ports": [{"containerPort": 15090, "name": "http-envoy-prom", "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/healthz/ready", "port": 15021}, "periodSeconds": 15,
                           "failureThreshold": 4},
        "securityContext": {"runAsUser": 1337, "runAsGroup": 1337, "runAsNonRoot": True,
                            "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True},
        "volumeMounts": [{"name": "workload-socket", "mountPath": "/var/run/secrets/workload-spiffe-uds"},
                         {"name": "istio-envoy", "mountPath": "/etc/istio/proxy"},
                         {"name": "istio-data", "mountPath": "/var/lib/istio/data"}],
    })
    volumes = spec.setdefault("volumes", [])
    volumes += [{"name": "workload-socket", "emptyDir": {}},
                {"name": "istio-envoy", "emptyDir": {"medium": "Memory"}},
                {"name": "istio-data", "emptyDir": {}}]
    return out
