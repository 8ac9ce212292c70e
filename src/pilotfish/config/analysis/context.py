"""The snapshot analyzers read: every resource indexed by kind, namespace and name.

It is built once per analysis and never changed. It adds the mesh's MeshConfig (Istio's
defaults unless one is given) and a stand-in ingress gateway (a Service and a Pod labelled
``istio: ingressgateway`` in the root namespace), so that config referring to the default
gateway is not reported as broken.

A snapshot of files only (``files_only=True``, what ``istioctl analyze --use-kube=false``
builds) holds no ``RUNTIME_KINDS``: Services, Pods, Namespaces, Nodes and Secrets are what a
cluster reports, so istioctl skips them in files (the stand-in gateway included) and skips every
analyzer that reads them (see ``framework.Analyzer.inputs``).

Resources that name no namespace are analyzed as if they were in ``default`` (what
``kubectl apply`` would do); messages still name them as the input did.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from .. import kinds
from ..base import ObjectMeta, Resource
from ..errors import Position
from ..models.kube import MeshConfig, MeshNetworks, PodSpec, ServicePort, ServiceSpec, default_mesh_config
from ..host import resolve_short_name
from ..selectors import labels_match

GVK = tuple[str, str]  # (API group, kind)

NETWORKING = "networking.istio.io"
SECURITY = "security.istio.io"

VIRTUAL_SERVICE: GVK = (NETWORKING, "VirtualService")
DESTINATION_RULE: GVK = (NETWORKING, "DestinationRule")
GATEWAY: GVK = (NETWORKING, "Gateway")
SERVICE_ENTRY: GVK = (NETWORKING, "ServiceEntry")
SIDECAR: GVK = (NETWORKING, "Sidecar")
WORKLOAD_ENTRY: GVK = (NETWORKING, "WorkloadEntry")
WORKLOAD_GROUP: GVK = (NETWORKING, "WorkloadGroup")
ENVOY_FILTER: GVK = (NETWORKING, "EnvoyFilter")
PROXY_CONFIG: GVK = (NETWORKING, "ProxyConfig")
AUTHORIZATION_POLICY: GVK = (SECURITY, "AuthorizationPolicy")
PEER_AUTHENTICATION: GVK = (SECURITY, "PeerAuthentication")
REQUEST_AUTHENTICATION: GVK = (SECURITY, "RequestAuthentication")
TELEMETRY: GVK = ("telemetry.istio.io", "Telemetry")
WASM_PLUGIN: GVK = ("extensions.istio.io", "WasmPlugin")
NAMESPACE: GVK = ("", "Namespace")
NODE: GVK = ("", "Node")
SERVICE: GVK = ("", "Service")
POD: GVK = ("", "Pod")
SECRET: GVK = ("", "Secret")
CONFIG_MAP: GVK = ("", "ConfigMap")
DEPLOYMENT: GVK = ("apps", "Deployment")
K8S_GATEWAY: GVK = ("gateway.networking.k8s.io", "Gateway")
HTTP_ROUTE: GVK = ("gateway.networking.k8s.io", "HTTPRoute")
GRPC_ROUTE: GVK = ("gateway.networking.k8s.io", "GRPCRoute")
CUSTOM_RESOURCE_DEFINITION: GVK = ("apiextensions.k8s.io", "CustomResourceDefinition")
MESH_CONFIG: GVK = ("", "MeshConfig")  # not a resource: the mesh's config, always present
MESH_NETWORKS: GVK = ("", "MeshNetworks")

# The kinds only a cluster supplies. istioctl reads none of them from files, the analyzers that
# need one are skipped when analyzing files alone (kuberesource.DefaultExcludedSchemas, and
# IstiodAnalyzer.AddReaderKubeSource), and only Istio's analyzer tests take them from YAML.
RUNTIME_KINDS: frozenset[GVK] = frozenset({SERVICE, NAMESPACE, NODE, POD, SECRET})

DEFAULT_NAMESPACE = "default"
ISTIO_SYSTEM = "istio-system"
CLUSTER_DOMAIN = "cluster.local"
KUBE_DOMAIN = "svc." + CLUSTER_DOMAIN
EXPORT_ALL = "*"
EXPORT_LOCAL = "."
MESH_GATEWAY = "mesh"
# Namespaces istioctl never analyzes (pkg/kube/inject IgnoredNamespaces).
IGNORED_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease", "local-path-storage"})


@dataclass(frozen=True)
class Entry:
    """One resource as the analyzers see it: the input Resource and its effective namespace."""

    resource: Resource
    namespace: str

    @property
    def gvk(self) -> GVK:
        return (self.resource.group, self.resource.kind)

    @property
    def kind(self) -> str:
        return self.resource.kind

    @property
    def name(self) -> str:
        return self.resource.name

    @property
    def spec(self) -> Any:
        return self.resource.spec

    @property
    def status(self) -> Any:
        return self.resource.status

    @property
    def labels(self) -> dict[str, str]:
        return self.resource.labels

    @property
    def annotations(self) -> dict[str, str]:
        return self.resource.annotations

    @property
    def full_name(self) -> str:
        """``namespace/name`` (just ``name`` when cluster-scoped), as Istio's resource.FullName prints."""
        return f"{self.namespace}/{self.name}" if self.namespace else self.name

    @property
    def position(self) -> Position:
        return self.resource.position


@dataclass(frozen=True)
class ServiceView:
    """A destination host as the analyzers see it: a ServiceEntry, or a Service turned into one."""

    hosts: tuple[str, ...]
    ports: tuple[ServicePort, ...]
    workload_selector: Mapping[str, str] | None = None
    entry: Entry | None = None


def _effective_namespace(resource: Resource) -> str:
    info = kinds.lookup(resource.api_version, resource.kind)
    if info is not None and not info.namespaced:
        return ""
    return resource.namespace or DEFAULT_NAMESPACE


def _is_ignored(entry: Entry) -> bool:
    ns = entry.name if entry.gvk == NAMESPACE else entry.namespace
    return ns in IGNORED_NAMESPACES


def default_ingress_resources(mesh: MeshConfig) -> list[Resource]:
    """The stand-in ingress gateway istioctl adds for files-only analysis (unless ingress is OFF)."""
    if mesh.ingress_controller_mode == "OFF":
        return []
    ns, name = mesh.root_namespace, mesh.ingress_service
    labels = {"istio": "ingressgateway"}
    pod = Resource(
        api_version="v1",
        kind="Pod",
        metadata=ObjectMeta(name=f"{name}-dummypod", namespace=ns, labels=labels),
        spec=PodSpec.model_validate({"containers": [{"name": "istio-proxy"}]}),
        position=Position("internal-ingress"),
    )
    ports = [
        {"name": "http2", "nodePort": 31380, "port": 80, "protocol": "TCP", "targetPort": 80},
        {"name": "https", "nodePort": 31390, "port": 443, "protocol": "TCP", "targetPort": 443},
        {"name": "tcp", "nodePort": 31400, "port": 31400, "protocol": "TCP", "targetPort": 31400},
        {"name": "tls", "nodePort": 31447, "port": 15443, "protocol": "TCP", "targetPort": 15443},
    ]
    svc = Resource(
        api_version="v1",
        kind="Service",
        metadata=ObjectMeta(name=name, namespace=ns),
        spec=ServiceSpec.model_validate({"ports": ports, "selector": labels}, by_alias=True, by_name=False),
        position=Position("internal-ingress"),
    )
    return [pod, svc]


def convert_host_to_fqdn(namespace: str, host: str, domain: str = KUBE_DOMAIN) -> str:
    """``reviews`` -> ``reviews.<ns>.svc.cluster.local``; dotted names and wildcards unchanged."""
    return str(resolve_short_name(host, namespace, domain.removeprefix("svc.")))


def full_name_from_fqdn(fqdn: str) -> tuple[str, str]:
    """(namespace, name) of ``name.ns.svc.cluster.local``; ("", "") for any other host."""
    suffix = "." + KUBE_DOMAIN
    if not fqdn.endswith(suffix):
        return "", ""
    head = fqdn[: -len(suffix)]
    name, dot, ns = head.rpartition(".")
    if not dot or not name or not ns:
        return "", ""
    return ns, name


def resource_name_from_host(namespace: str, host: str) -> tuple[str, str]:
    """(namespace, name) a destination host refers to: parsed from an FQDN, else a short name."""
    ns, name = full_name_from_fqdn(host)
    if not ns:
        return namespace, host
    return ns, name


def scoped_fqdn(scope: str, namespace: str, host: str) -> str:
    return f"{scope}/{convert_host_to_fqdn(namespace, host)}"


def split_scoped(scoped: str) -> tuple[str, str]:
    scope, _, fqdn = scoped.partition("/")
    return scope, fqdn


def is_export_to_all(export_to: Iterable[str] | None) -> bool:
    items = list(export_to or [])
    return not items or EXPORT_ALL in items


@dataclass
class Snapshot:
    """All resources of one analysis, indexed; read-only once built (use ``build``)."""

    entries: tuple[Entry, ...]
    mesh_config: MeshConfig
    mesh_networks: MeshNetworks
    now: datetime  # the instant certificates are checked against
    missing_kinds: frozenset[GVK] = frozenset()  # kinds this snapshot cannot know (RUNTIME_KINDS for files alone)
    _by_kind: dict[GVK, tuple[Entry, ...]] = field(default_factory=dict, repr=False)
    _by_key: dict[tuple[GVK, str, str], Entry] = field(default_factory=dict, repr=False)

    @classmethod
    def build(
        cls,
        resources: Iterable[Resource],
        mesh_config: MeshConfig | None = None,
        mesh_networks: MeshNetworks | None = None,
        *,
        add_defaults: bool = True,
        now: datetime | None = None,
        files_only: bool = False,
    ) -> Snapshot:
        """Index ``resources``; with ``files_only``, as istioctl reads files without a cluster:
        resources of ``RUNTIME_KINDS`` are left out and recorded in ``missing_kinds``."""
        mesh = mesh_config or default_mesh_config()
        missing = RUNTIME_KINDS if files_only else frozenset()
        ordered: dict[tuple[GVK, str, str], Entry] = {}
        extra = default_ingress_resources(mesh) if add_defaults else []
        for res in [*resources, *extra]:
            entry = Entry(res, _effective_namespace(res))
            if _is_ignored(entry) or entry.gvk in missing:
                continue
            ordered[(entry.gvk, entry.namespace, entry.name)] = entry  # a later definition wins
        by_kind: dict[GVK, list[Entry]] = defaultdict(list)
        for entry in ordered.values():
            by_kind[entry.gvk].append(entry)
        snap = cls(tuple(ordered.values()), mesh, mesh_networks or MeshNetworks(), now or datetime.now(UTC), missing)
        snap._by_kind = {k: tuple(sorted(v, key=lambda e: (e.namespace, e.name))) for k, v in by_kind.items()}
        snap._by_key = ordered
        return snap

    # ------------------------------------------------------------ lookups

    def each(self, gvk: GVK) -> tuple[Entry, ...]:
        """Every resource of a kind, ordered by namespace then name."""
        return self._by_kind.get(gvk, ())

    def find(self, gvk: GVK, namespace: str, name: str) -> Entry | None:
        return self._by_key.get((gvk, namespace, name))

    def find_short_or_full(self, gvk: GVK, namespace: str, ref: str) -> Entry | None:
        """A ``name`` in ``namespace``, or a ``namespace/name`` reference (resource.NewShortOrFullName)."""
        ns, name = short_or_full_name(namespace, ref)
        return self.find(gvk, ns, name)

    def exists(self, gvk: GVK, namespace: str, name: str) -> bool:
        return self.find(gvk, namespace, name) is not None

    def namespace(self, name: str) -> Entry | None:
        return self.find(NAMESPACE, "", name)

    @cached_property
    def pods_by_namespace(self) -> dict[str, tuple[Entry, ...]]:
        out: dict[str, list[Entry]] = defaultdict(list)
        for pod in self.each(POD):
            out[pod.namespace].append(pod)
        return {k: tuple(v) for k, v in out.items()}

    def pods_matching(self, selector: Mapping[str, str] | None, namespace: str | None = None) -> list[Entry]:
        """Pods whose labels include every selector pair (all pods for an empty selector)."""
        pods = self.each(POD) if namespace is None else self.pods_by_namespace.get(namespace, ())
        return [p for p in pods if selector_matches(selector, p.labels)]

    @cached_property
    def service_hosts(self) -> dict[str, ServiceView]:
        """Every destination host by ``scope/fqdn`` (util.InitServiceEntryHostMap).

        The scope is the namespace the host is visible from, or ``*``. ServiceEntry hosts come
        first, then Services (exportTo annotation honoured) under their cluster-local name.
        """
        result: dict[str, ServiceView] = {}
        for entry in self.each(SERVICE_ENTRY):
            se = entry.spec
            view = ServiceView(tuple(se.hosts or ()), tuple(_se_ports(se)), _se_selector(se), entry)
            export_to = list(se.export_to or [])
            for host in se.hosts or ():
                if not export_to or EXPORT_ALL in export_to:
                    result[scoped_fqdn(EXPORT_ALL, entry.namespace, host)] = view
                    continue
                for ns in export_to:
                    scope = entry.namespace if ns == EXPORT_LOCAL else ns
                    result[scoped_fqdn(scope, entry.namespace, host)] = view
        for entry in self.each(SERVICE):
            spec: ServiceSpec = entry.spec
            host = convert_host_to_fqdn(entry.namespace, entry.name)
            view = ServiceView((host,), tuple(spec.ports or ()), None, entry)
            for scope in _visible_namespaces(entry.annotations.get("networking.istio.io/exportTo", ""), entry.namespace):
                result[scoped_fqdn(scope, entry.namespace, entry.name)] = view
        return result

    def destination_host(self, source_ns: str, export_to: Iterable[str] | None, host: str) -> ServiceView | None:
        """The service a destination host names, as visible from ``source_ns`` (util.GetDestinationHost)."""
        hosts = self.service_hosts
        found = hosts.get(scoped_fqdn(EXPORT_ALL, source_ns, host))
        if found is not None:
            return found
        scopes = list(export_to or [])
        if not scopes:
            found = hosts.get(scoped_fqdn(source_ns, source_ns, host))
            if found is not None:
                return found
        else:
            for scope in scopes:
                found = hosts.get(scoped_fqdn(source_ns if scope == EXPORT_LOCAL else scope, source_ns, host))
                if found is not None:
                    return found
        bare = host[1:] if host.startswith("*") else host
        for key, view in hosts.items():
            scope, se_host = split_scoped(key)
            if not se_host.startswith("*") or scope not in (EXPORT_ALL, source_ns):
                continue
            if bare.endswith(se_host[1:]):
                return view
        return None


def short_or_full_name(namespace: str, ref: str) -> tuple[str, str]:
    if "/" in ref:
        ns, _, name = ref.partition("/")
        return ns, name
    return namespace, ref


selector_matches = labels_match
"""klabels.SelectorFromSet(selector).Matches(labels): every pair present (empty matches all)."""


def selector_string(selector: Mapping[str, str] | None) -> str:
    """klabels.SelectorFromSet(...).String(): ``k1=v1,k2=v2`` sorted by key."""
    return ",".join(f"{k}={v}" for k, v in sorted((selector or {}).items()))


def _visible_namespaces(annotation: str, namespace: str) -> list[str]:
    if not annotation:
        return [EXPORT_ALL]
    return [namespace if ns == EXPORT_LOCAL else ns for ns in annotation.split(",")]


def _se_ports(se: Any) -> list[ServicePort]:
    out = []
    for p in getattr(se, "ports", None) or ():
        out.append(ServicePort(name=getattr(p, "name", None), port=int(getattr(p, "number", 0) or 0), protocol=_str(getattr(p, "protocol", None))))
    return out


def _se_selector(se: Any) -> Mapping[str, str] | None:
    ws = getattr(se, "workload_selector", None)
    return getattr(ws, "labels", None) if ws is not None else None


def _str(value: Any) -> str | None:
    return None if value is None else str(value)
