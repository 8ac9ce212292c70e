"""From the config in the store to what runs: the gateways' Services the mesh provides, the
workloads to run, and each instance's agent spec (address, private ports, environment).
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import yaml

from ..agent.spec import NO_SIDECAR, ROUTER, SIDECAR, AgentSpec, AppSpec
from ..config.base import Resource
from ..config.loader import documents_from_text, to_resource
from .workloads import Workload, workloads

SYSTEM_NAMESPACE = "istio-system"
INGRESS_LABELS = {"app": "istio-ingressgateway", "istio": "ingressgateway"}
EGRESS_LABELS = {"app": "istio-egressgateway", "istio": "egressgateway"}


def gateway_services(http_port: int = 8080, https_port: int = 8443) -> list[Resource]:
    """istio-ingressgateway and istio-egressgateway as Istio's default profile installs them: the
    Gateway-facing ports 80 and 443 served on unprivileged target ports (``up --ingress-port``
    changes the HTTP one; editing the Service in the store changes any)."""
    docs = []
    for name, labels in (("istio-ingressgateway", INGRESS_LABELS), ("istio-egressgateway", EGRESS_LABELS)):
        docs.append({"apiVersion": "v1", "kind": "Service",
                     "metadata": {"name": name, "namespace": SYSTEM_NAMESPACE, "labels": dict(labels)},
                     "spec": {"selector": dict(labels), "ports": [
                         {"name": "status-port", "port": 15021, "targetPort": 15021, "protocol": "TCP"},
                         {"name": "http2", "port": 80, "targetPort": http_port, "protocol": "TCP"},
                         {"name": "https", "port": 443, "targetPort": https_port, "protocol": "TCP"}]}})
    text = yaml.safe_dump_all(docs)
    return [to_resource(d) for d in documents_from_text(text, "<built-in gateways>")]  # type: ignore[arg-type]


def namespace_labels(resources: Iterable[Resource]) -> dict[str, dict[str, str]]:
    """Labels of each namespace. A namespace the config names without a Namespace object is one
    the local mesh made for it, and the mesh labels those for injection (istio-injection=enabled),
    as a user of a cluster labels the namespaces they mesh; a Namespace in the config decides for
    itself."""
    items = list(resources)
    out: dict[str, dict[str, str]] = {}
    for r in items:
        if r.kind == "Namespace":
            out[r.name] = dict(r.labels)
    for r in items:
        ns = r.namespace or "default"
        if ns not in out and r.kind != "Namespace":
            out[ns] = {"istio-injection": "enabled"}
    return out


def wanted_workloads(resources: Iterable[Resource], errors: list[str] | None = None) -> list[Workload]:
    items = list(resources)
    return workloads(items, namespace_labels(items), errors)


def free_port() -> int:
    """A port on 127.0.0.1 that nothing holds now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Instance:
    """One running copy of a workload (a pod) or a gateway, as its agent runs it."""

    spec: AgentSpec
    workload: Workload | None  # None for a gateway
    host: int  # the last byte of its address
    ready: bool = False  # as last probed; its Pod says so

    @property
    def name(self) -> str:
        return self.spec.name


def instance_spec(w: Workload, name: str, ip: str, xds: str, log_dir: str, shared: bool = False) -> AgentSpec:
    """The agent spec of one instance: with a sidecar when injection says so, else the app alone.
    ``shared``: instances share 127.0.0.1, so every port of theirs is one of its own."""
    spec = sidecar_spec(w, name, ip, xds, log_dir)
    if shared:
        _own_ports(spec)
        spec.inbound_ports = {p: free_port() for p in w.ports}
    if not w.injected:
        spec.role, spec.http_proxy_port = NO_SIDECAR, 0
    return spec


def pod_document(inst: Instance, ready: bool) -> dict[str, Any]:
    """The Pod of an instance, as the kubelet would report it: its labels, address, ports and
    readiness (the agent's ``/healthz/ready``). istiod's registry takes endpoints from Pods, so
    they outlive an istiod restart, and an instance that is not ready gets no traffic, as
    Kubernetes' endpoints follow readiness probes."""
    spec = inst.spec
    ports = inst.workload.ports if inst.workload is not None else ()
    container = inst.workload.container if inst.workload is not None else "istio-proxy"
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": spec.name, "namespace": spec.namespace, "labels": dict(spec.labels)},
            "spec": {"serviceAccountName": spec.service_account,
                     "containers": [{"name": container, "ports": [{"containerPort": p} for p in ports]}]},
            "status": {"phase": "Running", "podIP": spec.ip,
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def sidecar_spec(w: Workload, name: str, ip: str, xds: str, log_dir: str) -> AgentSpec:
    ports = {p: free_port() for p in w.ports}
    env = w.environment(name, ip)
    metrics_port, metrics_path = 0, "/metrics"
    if w.annotations.get("prometheus.io/scrape") == "true" and w.annotations.get("prometheus.io/port", "").isdigit():
        declared = int(w.annotations["prometheus.io/port"])
        metrics_port = ports.get(declared, 0)
        metrics_path = w.annotations.get("prometheus.io/path", "/metrics")
    labels = dict(w.labels)
    return AgentSpec(
        role=SIDECAR, name=name, namespace=w.namespace, ip=ip, xds_address=xds, log_dir=log_dir, labels=labels,
        annotations=dict(w.annotations), service_account=w.service_account, workload_name=w.name,
        http_proxy_port=free_port(),
        app=AppSpec(argv=w.argv(ports), env=env, cwd=w.cwd, ports=ports, metrics_port=metrics_port,
                    metrics_path=metrics_path))


def gateway_spec(kind: str, name: str, ip: str, xds: str, log_dir: str, shared: bool = False) -> AgentSpec:
    labels = INGRESS_LABELS if kind == "ingress" else EGRESS_LABELS
    workload = labels["app"]
    spec = AgentSpec(role=ROUTER, name=name, namespace=SYSTEM_NAMESPACE, ip=ip, xds_address=xds, log_dir=log_dir,
                     labels=dict(labels), service_account=f"{workload}-service-account", workload_name=workload)
    if shared:
        _own_ports(spec)
    return spec


def _own_ports(spec: AgentSpec) -> None:
    """Istio's fixed ports (15000, 15020, 15021, 15090) would collide on a shared address."""
    spec.admin_port, spec.metrics_port, spec.health_port, spec.proxy_metrics_port = (free_port() for _ in range(4))


def wants_egress(resources: Iterable[Resource]) -> bool:
    """Whether a Gateway selects the egress gateway (Istio's egress tasks)."""
    return any(r.kind == "Gateway" and getattr(r.spec, "selector", None)
               and all(EGRESS_LABELS.get(k) == v for k, v in r.spec.selector.items()) for r in resources)


def selecting_services(labels: dict[str, str], namespace: str, resources: Iterable[Resource]) -> list[Resource]:
    """The Services whose selector matches an instance's labels."""
    out = []
    for r in resources:
        if r.kind != "Service" or (r.namespace or "default") != namespace or r.spec is None:
            continue
        selector: dict[str, Any] = r.spec.selector or {}
        if selector and all(labels.get(k) == v for k, v in selector.items()):
            out.append(r)
    return out


def _target(port: Any) -> int:
    target = port.target_port
    return int(target) if isinstance(target, int) or (isinstance(target, str) and target.isdigit()) else int(port.port)


def inbound_ports(spec: AgentSpec, resources: Iterable[Resource]) -> dict[int, int]:
    """Service port → where the instance's sidecar serves it (``status``' ports.inbound): the
    target port, or the instance's own port for it on a shared address."""
    out: dict[int, int] = {}
    for svc in selecting_services(dict(spec.labels), spec.namespace, resources):
        for p in svc.spec.ports or ():
            target = _target(p)
            out[int(p.port)] = spec.inbound_ports.get(target, target)
    return out


def endpoint_slices(inst: Instance, ready: bool, resources: Iterable[Resource]) -> list[dict[str, Any]]:
    """On a shared address, one EndpointSlice per Service selecting the instance, with the
    instance's own ports, as Kubernetes' controller writes slices for hostNetwork pods: istiod
    takes a Service's endpoints from its slices when it has any."""
    spec = inst.spec
    out = []
    for svc in selecting_services(dict(spec.labels), spec.namespace, resources):
        ports = [{"name": p.name or "", "port": spec.inbound_ports.get(_target(p), _target(p)), "protocol": "TCP"}
                 for p in svc.spec.ports or ()]
        out.append({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                    "metadata": {"name": f"{svc.name}-{spec.name}", "namespace": spec.namespace,
                                 "labels": {"kubernetes.io/service-name": svc.name}},
                    "addressType": "IPv4", "ports": ports,
                    "endpoints": [{"addresses": [spec.ip], "conditions": {"ready": ready},
                                   "targetRef": {"kind": "Pod", "name": spec.name, "namespace": spec.namespace}}]})
    return out
