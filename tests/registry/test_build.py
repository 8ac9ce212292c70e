"""The merged registry: Bookinfo end to end, precedence between sources, order, bad input."""

from __future__ import annotations

from pilotfish.config.base import ObjectMeta, Resource
from pilotfish.config.loader import load_resources
from pilotfish.config.models.kube import ServiceSpec
from pilotfish.registry.build import build_registry
from pilotfish.registry.model import Locality, Protocol, Resolution, Workload
from tests.corpus import corpus_path

from .yaml_resources import endpoints, registry, resources, service

BOOKINFO_PODS = """
apiVersion: v1
kind: Pod
metadata: {name: reviews-v1-abc, namespace: default, labels: {app: reviews, version: v1}}
spec: {serviceAccountName: bookinfo-reviews, containers: [{name: reviews, ports: [{containerPort: 9080}]}]}
status: {phase: Running, podIP: 10.1.1.1, conditions: [{type: Ready, status: 'True'}]}
---
apiVersion: v1
kind: Pod
metadata: {name: reviews-v2-def, namespace: default, labels: {app: reviews, version: v2}}
spec: {serviceAccountName: bookinfo-reviews, containers: [{name: reviews}]}
status: {phase: Running, podIP: 10.1.1.2}
---
apiVersion: v1
kind: Pod
metadata: {name: ratings-v1-xyz, namespace: default, labels: {app: ratings, version: v1}}
spec: {serviceAccountName: bookinfo-ratings, containers: [{name: ratings}]}
status: {phase: Running, podIP: 10.1.2.1}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: productpage-1, namespace: default, labels: {kubernetes.io/service-name: productpage}}
addressType: IPv4
ports: [{name: http, port: 9080}]
endpoints:
- {addresses: [10.1.3.1], conditions: {ready: true}, zone: us-west1-a}
"""


def bookinfo_resources() -> list[Resource]:
    path = corpus_path("bookinfo", "samples", "bookinfo", "platform", "kube", "bookinfo.yaml")
    loaded, errors = load_resources([str(path)])
    assert errors == []
    return loaded + resources(BOOKINFO_PODS)


def test_bookinfo_services_and_endpoints() -> None:
    snap = build_registry(bookinfo_resources())
    assert [s.hostname for s in snap.services] == [
        "details.default.svc.cluster.local", "productpage.default.svc.cluster.local",
        "ratings.default.svc.cluster.local", "reviews.default.svc.cluster.local"]
    reviews = service(snap, "reviews.default.svc.cluster.local")
    assert reviews.ports[0].name == "http" and reviews.ports[0].number == 9080 and reviews.ports[0].protocol is Protocol.HTTP
    eps = snap.endpoints_of(reviews)
    assert [(e.address, e.labels["version"], e.ports["http"]) for e in eps] == [("10.1.1.1", "v1", 9080), ("10.1.1.2", "v2", 9080)]
    assert {e.service_account for e in eps} == {"bookinfo-reviews"}
    assert [e.address for e in endpoints(snap, "ratings.default.svc.cluster.local")] == ["10.1.2.1"]
    (page,) = endpoints(snap, "productpage.default.svc.cluster.local")
    assert page.address == "10.1.3.1" and page.locality == Locality(zone="us-west1-a")
    assert endpoints(snap, "details.default.svc.cluster.local") == ()  # a Deployment alone adds none


def test_bookinfo_instances_that_connect_join_their_service() -> None:
    details = Workload(name="details-v1", namespace="default", address="127.0.10.1", labels={"app": "details", "version": "v1"},
                       service_account="bookinfo-details", locality=Locality("local", "a"))
    snap = build_registry(bookinfo_resources(), connected=[details])
    (ep,) = endpoints(snap, "details.default.svc.cluster.local")
    assert (ep.address, ep.ports, ep.service_account, ep.locality) == ("127.0.10.1", {"http": 9080}, "bookinfo-details", Locality("local", "a"))
    assert {w.name for w in snap.workloads} == {"reviews-v1-abc", "reviews-v2-def", "ratings-v1-xyz", "details-v1"}


def test_service_entry_with_workload_entry_locality_and_weight() -> None:
    snap = registry("""
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ratings-vm, namespace: default}
spec:
  hosts: [ratings.vm.internal]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: ratings-vm}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ratings-vm-1, namespace: default}
spec:
  address: 192.168.10.4
  labels: {app: ratings-vm, version: v3}
  locality: us-central1/us-central1-b
  weight: 40
  serviceAccount: bookinfo-ratings
  ports: {http: 19080}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ratings-vm-2, namespace: default}
spec: {address: 192.168.10.5, labels: {app: ratings-vm}, locality: europe-west1/europe-west1-c, weight: 60}
""")
    eps = endpoints(snap, "ratings.vm.internal")
    assert [(e.address, e.locality.label, e.weight, e.ports["http"]) for e in eps] == [
        ("192.168.10.4", "us-central1/us-central1-b", 40, 19080), ("192.168.10.5", "europe-west1/europe-west1-c", 60, 9080)]
    assert {w.name for w in snap.workloads} == {"ratings-vm-1", "ratings-vm-2"}


def test_kubernetes_service_wins_over_a_service_entry_for_the_same_host() -> None:
    snap = registry("""
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: shadow, namespace: default}
spec:
  hosts: [web.default.svc.cluster.local]
  ports: [{number: 1234, name: tcp, protocol: TCP}]
  resolution: DNS
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec: {clusterIP: 10.96.1.1, ports: [{name: http, port: 80}]}
""")
    svc = service(snap, "web.default.svc.cluster.local")
    assert svc.source == "kubernetes" and svc.ports[0].number == 80


def test_kubernetes_service_selects_workload_entries() -> None:
    snap = registry("""
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec: {selector: {app: web}, ports: [{name: http, port: 80, targetPort: 8080}, {name: admin, port: 81, targetPort: admin}]}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: web-vm, namespace: default}
spec: {address: 10.8.0.1, labels: {app: web}, ports: {http: 18080, admin: 18081}}
""")
    (ep,) = endpoints(snap, "web.default.svc.cluster.local")
    assert ep.ports == {"http": 18080, "admin": 18081}
    assert ep.workload_name == "web-vm"


def test_order_is_deterministic() -> None:
    items = bookinfo_resources()
    forward = build_registry(items)
    backward = build_registry(list(reversed(items)))
    assert [s.hostname for s in forward.services] == [s.hostname for s in backward.services]
    assert list(forward.endpoints) == list(backward.endpoints)
    assert forward.endpoints == backward.endpoints
    assert forward.workloads == backward.workloads


def test_unreadable_objects_are_skipped_not_raised() -> None:
    nameless = Resource(api_version="v1", kind="Service", metadata=ObjectMeta(generate_name="web-"),
                        spec=ServiceSpec.model_validate({"ports": [{"port": 80}]}))
    wrong_spec = Resource(api_version="v1", kind="Service", metadata=ObjectMeta(name="odd"), spec=None)
    bad = resources("""
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec: {clusterIP: not-an-ip, selector: {app: web}, ports: [{name: http, port: 80}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: default, labels: {app: web}}
spec: {containers: [{name: app}]}
status: {phase: Running, podIP: 10.0.0.300}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext, namespace: default}
spec: {hosts: [x.example.com], addresses: [bogus], ports: [{number: 80, name: http}], resolution: STATIC,
       endpoints: [{address: 10.1.1.1.1}, {address: 10.1.1.1}]}
""")
    snap = build_registry([nameless, wrong_spec, *bad])
    web = service(snap, "web.default.svc.cluster.local")
    assert web.addresses == () and web.resolution is Resolution.CLIENT_SIDE_LB
    assert snap.endpoints_of(web) == () and snap.workloads == ()
    ext = service(snap, "x.example.com")
    assert ext.addresses == ()
    assert [e.address for e in snap.endpoints_of(ext)] == ["10.1.1.1"]
    assert len(snap.services) == 2
