"""Security analyzers: AuthorizationPolicies that select nothing or name unknown namespaces, and
RequestAuthentications on an istiod that may fetch JWKS from any address.

Ported from istio/istio pkg/config/analysis/analyzers/authz and authn.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping

from .context import (
    AUTHORIZATION_POLICY,
    DEPLOYMENT,
    MESH_CONFIG,
    NAMESPACE,
    POD,
    REQUEST_AUTHENTICATION,
    Entry,
    Snapshot,
    selector_matches,
    selector_string,
)
from .framework import Message, analyzer, new_message
from .sidecar import INJECTION_LABEL, pod_in_ambient_mode

ISTIO_PROXY = "istio-proxy"
SIDECAR_INJECT = "sidecar.istio.io/inject"
BLOCKED_CIDRS_ENV = "BLOCKED_CIDRS_IN_JWKS_URIS"


def _has_istio_proxy(containers: list) -> bool:
    for c in containers:
        if c.name == ISTIO_PROXY:
            return bool(c.image)
    return False


def pod_in_mesh(snap: Snapshot, pod: Entry) -> bool:
    """Whether a pod has (or will be injected with) a sidecar (util.PodInMesh)."""
    spec = pod.spec
    if _has_istio_proxy([*(spec.containers or []), *(spec.init_containers or [])]):
        return True
    for meta in (pod.labels, pod.annotations):
        if SIDECAR_INJECT in meta:
            return meta[SIDECAR_INJECT] == "true"
    ns = snap.namespace(pod.namespace)
    return ns is not None and ns.labels.get(INJECTION_LABEL) == "enabled"


def _mesh_pod_labels(snap: Snapshot) -> dict[str, list[Mapping[str, str]]]:
    out: dict[str, list[Mapping[str, str]]] = defaultdict(list)
    for pod in snap.pods_by_namespace.values():
        for p in pod:
            if pod_in_mesh(snap, p) or pod_in_ambient_mode(p):
                out[p.namespace].append(p.labels)
    return out


def namespace_matches(namespace: str, expr: str) -> bool:
    """An AuthorizationPolicy namespace expression: exact (case-insensitive), ``*``, ``prefix*`` or ``*suffix``."""
    if expr == "*":
        return True
    if expr.startswith("*"):
        return namespace.endswith(expr[1:])
    if expr.endswith("*"):
        return namespace.startswith(expr[:-1])
    return namespace.lower() == expr.lower()


def _no_matching_workloads(snap: Snapshot, entry: Entry, pods: dict[str, list[Mapping[str, str]]]) -> Iterator[Message]:
    selector = getattr(entry.spec, "selector", None)
    labels = dict(getattr(selector, "match_labels", None) or {}) if selector is not None else {}
    at = ("spec", "selector", "matchLabels", min(labels)) if labels else ("spec", "selector")
    if entry.namespace == snap.mesh_config.root_namespace:
        if selector is not None and not any(selector_matches(labels, p) for ps in pods.values() for p in ps):
            yield new_message("NoMatchingWorkloadsFound", entry, selector_string(labels), path=at)
        return
    if selector is None:
        if not pods.get(entry.namespace):
            yield new_message("NoMatchingWorkloadsFound", entry, "")
        return
    if not any(selector_matches(labels, p) for p in pods.get(entry.namespace, [])):
        yield new_message("NoMatchingWorkloadsFound", entry, selector_string(labels), path=at)


def _unknown_namespaces(snap: Snapshot, entry: Entry) -> Iterator[Message]:
    namespaces = [ns.name for ns in snap.each(NAMESPACE)]
    for i, rule in enumerate(getattr(entry.spec, "rules", None) or []):
        for j, rule_from in enumerate(rule.from_ or []):
            source = rule_from.source
            if source is None:
                continue
            for key, exprs in (("namespaces", source.namespaces), ("notNamespaces", source.not_namespaces)):
                for k, expr in enumerate(exprs or []):
                    if not any(namespace_matches(ns, expr) for ns in namespaces):
                        yield new_message("ReferencedResourceNotFound", entry, "namespace", expr,
                                          path=("spec", "rules", i, "from", j, "source", key, k))


@analyzer(
    "auth.AuthorizationPoliciesAnalyzer",
    "Checks the validity of authorization policies",
    inputs=(MESH_CONFIG, AUTHORIZATION_POLICY, NAMESPACE, POD),
    aliases=("authz.AuthorizationPoliciesAnalyzer",),
)
def authorization_policies(snap: Snapshot) -> Iterator[Message]:
    pods = _mesh_pod_labels(snap)
    for entry in snap.each(AUTHORIZATION_POLICY):
        yield from _no_matching_workloads(snap, entry, pods)
        yield from _unknown_namespaces(snap, entry)


def _format_names(names: list[str], limit: int = 5) -> str:
    if len(names) <= limit:
        return ", ".join(names)
    return f"{', '.join(names[:limit])}, and {len(names) - limit} more"


def _sets_blocked_cidrs(deployment: Entry) -> bool:
    template = deployment.spec.template
    spec = template.spec if template is not None else None
    for c in (spec.containers or []) if spec is not None else []:
        for env in c.env or []:
            if env.name == BLOCKED_CIDRS_ENV and env.value:
                return True
    return False


@analyzer(
    "authn.BlockedCIDRsAnalyzer",
    "Checks that BLOCKED_CIDRS_IN_JWKS_URIS is configured on istiod when RequestAuthentication resources exist",
    inputs=(REQUEST_AUTHENTICATION, DEPLOYMENT),
)
def blocked_cidrs(snap: Snapshot) -> Iterator[Message]:
    names = [ra.full_name for ra in snap.each(REQUEST_AUTHENTICATION)]
    if not names:
        return
    for deployment in snap.each(DEPLOYMENT):
        if deployment.labels.get("app") != "istiod" or _sets_blocked_cidrs(deployment):
            continue
        yield new_message("JwksUriFetchUnrestricted", deployment, len(names), _format_names(names))


ANALYZERS = [authorization_policies, blocked_cidrs]
