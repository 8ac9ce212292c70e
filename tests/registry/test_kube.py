"""Kubernetes Services in the registry: names, addresses, ports and where traffic goes."""

from __future__ import annotations

from pilotfish.registry.model import Locality, Protocol, Resolution, Workload

from .yaml_resources import endpoints, registry, service

SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop, labels: {app: web}}
spec:
  clusterIP: 10.96.0.10
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080}
  - {name: grpc-api, port: 9000, targetPort: api}
  - {name: metrics, port: 9100}
"""


def pod(name: str, ip: str, *, labels: str = "{app: web}", ns: str = "shop", status_extra: str = "", spec_extra: str = "") -> str:
    return f"""
---
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: {ns}, labels: {labels}}}
spec:
  serviceAccountName: web-sa
  containers:
  - name: app
    ports: [{{name: api, containerPort: 9443}}]
{spec_extra}
status:
  phase: Running
  podIP: {ip}
{status_extra}
"""


def test_service_host_address_ports_and_protocols() -> None:
    snap = registry(SERVICE)
    svc = service(snap, "web.shop.svc.cluster.local", "shop")
    assert svc.addresses == ("10.96.0.10",)
    assert svc.name == "web" and svc.source == "kubernetes"
    assert svc.resolution is Resolution.CLIENT_SIDE_LB
    assert [(p.name, p.number, p.protocol) for p in svc.ports] == [
        ("http", 80, Protocol.HTTP), ("grpc-api", 9000, Protocol.GRPC), ("metrics", 9100, Protocol.UNSUPPORTED)]
    assert svc.labels == {"app": "web"}
    assert svc.export_to == frozenset({"*"})


def test_domain_suffix_and_default_namespace() -> None:
    snap = registry("""
    apiVersion: v1
    kind: Service
    metadata: {name: api}
    spec: {ports: [{port: 80}]}
    """, domain_suffix="mesh.example")
    svc = service(snap, "api.default.svc.mesh.example")
    assert svc.ports[0].name == ""


def test_headless_service_has_no_address_and_passes_through() -> None:
    snap = registry(SERVICE.replace("clusterIP: 10.96.0.10", "clusterIP: None") + pod("web-1", "10.1.0.5"))
    svc = service(snap, "web.shop.svc.cluster.local", "shop")
    assert svc.addresses == ()
    assert svc.resolution is Resolution.PASSTHROUGH
    assert [e.address for e in snap.endpoints_of(svc)] == ["10.1.0.5"]


def test_dual_stack_cluster_ips() -> None:
    snap = registry(SERVICE.replace("clusterIP: 10.96.0.10", "clusterIP: 10.96.0.10\n  clusterIPs: [10.96.0.10, 'fd00::a']"))
    assert service(snap, "web.shop.svc.cluster.local", "shop").addresses == ("10.96.0.10", "fd00::a")


def test_export_to_annotation() -> None:
    text = SERVICE.replace("labels: {app: web}}", "labels: {app: web}, annotations: {networking.istio.io/exportTo: '., istio-system'}}")
    assert service(registry(text), "web.shop.svc.cluster.local", "shop").export_to == frozenset({".", "istio-system"})


def test_pods_become_endpoints_with_target_ports_resolved() -> None:
    snap = registry(SERVICE + pod("web-2", "10.1.0.12") + pod("web-1", "10.1.0.9") + pod("other", "10.1.0.3", labels="{app: other}"))
    eps = endpoints(snap, "web.shop.svc.cluster.local", "shop")
    assert [e.address for e in eps] == ["10.1.0.9", "10.1.0.12"]  # numeric order
    first = eps[0]
    assert first.ports == {"http": 8080, "grpc-api": 9443, "metrics": 9100}
    assert first.workload_name == "web-1" and first.namespace == "shop"
    assert first.service_account == "web-sa"
    assert first.labels == {"app": "web"}
    assert first.healthy


def test_pod_in_another_namespace_is_not_selected() -> None:
    snap = registry(SERVICE + pod("web-x", "10.1.0.7", ns="other"))
    assert endpoints(snap, "web.shop.svc.cluster.local", "shop") == ()


def test_pod_readiness_from_conditions() -> None:
    not_ready = "  conditions:\n  - {type: Ready, status: 'False'}"
    snap = registry(SERVICE + pod("web-1", "10.1.0.9", status_extra=not_ready) + pod("web-2", "10.1.0.10"))
    health = {e.address: e.healthy for e in endpoints(snap, "web.shop.svc.cluster.local", "shop")}
    assert health == {"10.1.0.9": False, "10.1.0.10": True}


def test_finished_pod_and_pod_without_ip_serve_nothing() -> None:
    done = pod("web-1", "10.1.0.9").replace("phase: Running", "phase: Succeeded")
    no_ip = pod("web-2", "10.1.0.10").replace("podIP: 10.1.0.10", "podIPs: []")
    snap = registry(SERVICE + done + no_ip)
    assert endpoints(snap, "web.shop.svc.cluster.local", "shop") == ()
    assert snap.workloads == ()


def test_pod_locality_from_topology_labels_and_node() -> None:
    labeled = pod("web-1", "10.1.0.9", labels="{app: web, topology.kubernetes.io/region: eu, topology.kubernetes.io/zone: eu-1a, topology.istio.io/subzone: rack4}")
    on_node = pod("web-2", "10.1.0.10", spec_extra="  nodeName: node-a")
    node = """
---
apiVersion: v1
kind: Node
metadata: {name: node-a, labels: {topology.kubernetes.io/region: us, topology.kubernetes.io/zone: us-2b}}
"""
    snap = registry(SERVICE + labeled + on_node + node)
    loc = {e.address: e.locality for e in endpoints(snap, "web.shop.svc.cluster.local", "shop")}
    assert loc["10.1.0.9"] == Locality("eu", "eu-1a", "rack4")
    assert loc["10.1.0.10"] == Locality("us", "us-2b")


def test_endpoint_slices_take_precedence_over_pods() -> None:
    slice_ = """
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-abc, namespace: shop, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080}, {name: grpc-api, port: 9443}]
endpoints:
- addresses: [10.2.0.1]
  conditions: {ready: true}
  zone: zone-a
  targetRef: {kind: Pod, name: web-1, namespace: shop}
- addresses: [10.2.0.2]
  conditions: {ready: false}
- addresses: [10.2.0.3]
"""
    snap = registry(SERVICE + slice_ + pod("web-1", "10.2.0.1") + pod("stray", "10.9.9.9"))
    eps = endpoints(snap, "web.shop.svc.cluster.local", "shop")
    assert [(e.address, e.healthy) for e in eps] == [("10.2.0.1", True), ("10.2.0.2", False), ("10.2.0.3", True)]
    assert eps[0].ports == {"http": 8080, "grpc-api": 9443}
    assert eps[0].workload_name == "web-1" and eps[0].service_account == "web-sa"
    assert eps[0].locality == Locality(zone="zone-a")
    assert eps[1].labels == {}


def test_slices_of_one_service_merge_by_address() -> None:
    def slice_(name: str, port: str) -> str:
        return f"""
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: {name}, namespace: shop, labels: {{kubernetes.io/service-name: web}}}}
addressType: IPv4
ports: [{port}]
endpoints: [{{addresses: [10.2.0.1]}}]
"""
    snap = registry(SERVICE + slice_("a", "{name: http, port: 8080}") + slice_("b", "{name: metrics, port: 9102}"))
    (ep,) = endpoints(snap, "web.shop.svc.cluster.local", "shop")
    assert ep.ports == {"http": 8080, "metrics": 9102}


def test_pods_sharing_an_address_are_endpoints_of_their_own() -> None:
    """hostNetwork pods (and the local mesh without loopback aliases) share an address; their
    slices give each its own port, and each stays an endpoint, as Kubernetes lists them."""
    def slice_(pod_name: str, port: int) -> str:
        return f"""
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: web-{pod_name}, namespace: shop, labels: {{kubernetes.io/service-name: web}}}}
addressType: IPv4
ports: [{{name: http, port: {port}}}]
endpoints: [{{addresses: [10.3.0.1], targetRef: {{kind: Pod, name: {pod_name}, namespace: shop}}}}]
"""
    snap = registry(SERVICE + pod("web-a", "10.3.0.1") + pod("web-b", "10.3.0.1") + slice_("web-a", 41001)
                    + slice_("web-b", 41002))
    eps = endpoints(snap, "web.shop.svc.cluster.local", "shop")
    assert [(e.address, e.workload_name, e.ports["http"]) for e in eps] == [
        ("10.3.0.1", "web-a", 41001), ("10.3.0.1", "web-b", 41002)]
    # Without slices, each selected pod is an endpoint too.
    eps = endpoints(registry(SERVICE + pod("web-a", "10.3.0.1") + pod("web-b", "10.3.0.1")), "web.shop.svc.cluster.local", "shop")
    assert [e.workload_name for e in eps] == ["web-a", "web-b"]


def test_deployments_add_no_endpoints_but_connected_workloads_do() -> None:
    deployment = """
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web-v1, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web, version: v1}}
    spec: {containers: [{name: app, ports: [{name: api, containerPort: 9443}]}]}
"""
    assert endpoints(registry(SERVICE + deployment), "web.shop.svc.cluster.local", "shop") == ()
    joined = Workload(name="web-v1", namespace="shop", address="127.0.0.5", labels={"app": "web", "version": "v1"}, service_account="web-sa")
    snap = registry(SERVICE + deployment, connected=(joined,))
    (ep,) = endpoints(snap, "web.shop.svc.cluster.local", "shop")
    assert ep.address == "127.0.0.5" and ep.labels["version"] == "v1"
    # A named targetPort the workload cannot resolve is left out; numeric ones apply.
    assert ep.ports == {"http": 8080, "metrics": 9100}
    assert [w.address for w in snap.workloads] == ["127.0.0.5"]


def test_connected_sidecar_of_a_known_pod_is_not_counted_twice() -> None:
    joined = Workload(name="web-1", namespace="shop", address="10.1.0.9", labels={"app": "web"})
    snap = registry(SERVICE + pod("web-1", "10.1.0.9"), connected=(joined,))
    assert len(endpoints(snap, "web.shop.svc.cluster.local", "shop")) == 1
    assert len(snap.workloads) == 1


def test_service_without_selector_has_only_its_slices() -> None:
    text = SERVICE.replace("  selector: {app: web}\n", "")
    assert endpoints(registry(text + pod("web-1", "10.1.0.9")), "web.shop.svc.cluster.local", "shop") == ()


def test_external_name_service_resolves_the_external_host() -> None:
    snap = registry("""
    apiVersion: v1
    kind: Service
    metadata: {name: db, namespace: shop}
    spec: {type: ExternalName, externalName: db.example.com, ports: [{name: tcp, port: 5432}]}
    """)
    svc = service(snap, "db.shop.svc.cluster.local", "shop")
    assert svc.mesh_external and svc.resolution is Resolution.DNS
    (ep,) = snap.endpoints_of(svc)
    assert (ep.address, ep.ports) == ("db.example.com", {"tcp": 5432})


def test_legacy_endpoints_object_when_no_slices() -> None:
    legacy = """
---
apiVersion: v1
kind: Endpoints
metadata: {name: web, namespace: shop}
subsets:
- addresses: [{ip: 10.3.0.1}]
  notReadyAddresses: [{ip: 10.3.0.2}]
  ports: [{name: http, port: 8080}]
"""
    eps = endpoints(registry(SERVICE + legacy), "web.shop.svc.cluster.local", "shop")
    assert [(e.address, e.healthy, dict(e.ports)) for e in eps] == [
        ("10.3.0.1", True, {"http": 8080}), ("10.3.0.2", False, {"http": 8080})]
