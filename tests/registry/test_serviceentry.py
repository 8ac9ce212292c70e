"""ServiceEntries in the registry: one service per host, and the endpoints Istio would give it."""

from __future__ import annotations

from pilotfish.registry.model import Locality, Protocol, Resolution, Workload

from .yaml_resources import endpoints, registry, service


def entry(body: str, *, name: str = "ext", ns: str = "shop") -> str:
    return f"""
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: {name}, namespace: {ns}}}
spec:
{body}
"""


def test_one_service_per_host_with_ports_and_addresses() -> None:
    snap = registry(entry("""
  hosts: [api.example.com, www.example.com]
  addresses: [192.0.2.10, 198.51.100.0/24, 203.0.113.7/32, not-an-ip]
  ports: [{number: 443, name: https, protocol: HTTPS}, {number: 80, name: web, protocol: http}]
  resolution: DNS
"""))
    api = service(snap, "api.example.com", "shop")
    www = service(snap, "www.example.com", "shop")
    assert api.addresses == www.addresses == ("192.0.2.10", "198.51.100.0/24", "203.0.113.7")
    assert [(p.name, p.number, p.protocol) for p in api.ports] == [("https", 443, Protocol.HTTPS), ("web", 80, Protocol.HTTP)]
    assert api.mesh_external and api.resolution is Resolution.DNS
    assert api.name == "ext" and api.source == "serviceentry"


def test_dns_entry_without_endpoints_resolves_its_host() -> None:
    snap = registry(entry("""
  hosts: [api.example.com]
  ports: [{number: 443, name: https, protocol: TLS, targetPort: 8443}, {number: 80, name: http, protocol: HTTP}]
  resolution: DNS_ROUND_ROBIN
"""))
    assert service(snap, "api.example.com", "shop").resolution is Resolution.DNS_ROUND_ROBIN
    (ep,) = endpoints(snap, "api.example.com", "shop")
    assert ep.address == "api.example.com"
    assert ep.ports == {"https": 8443, "http": 80}


def test_resolution_and_location_defaults() -> None:
    snap = registry(entry("""
  hosts: [db.internal]
  ports: [{number: 5432, name: tcp, protocol: TCP}]
"""))
    svc = service(snap, "db.internal", "shop")
    assert svc.resolution is Resolution.PASSTHROUGH  # NONE: go where the caller dialled
    assert svc.mesh_external
    assert endpoints(snap, "db.internal", "shop") == ()


def test_static_inline_endpoints_with_locality_weight_and_identity() -> None:
    snap = registry(entry("""
  hosts: [vm.shop.internal]
  location: MESH_INTERNAL
  resolution: STATIC
  exportTo: [".", istio-system]
  ports: [{number: 80, name: http, protocol: HTTP, targetPort: 8000}, {number: 9090, name: grpc, protocol: GRPC}]
  endpoints:
  - address: 10.0.0.1
    ports: {http: 8080}
    labels: {version: v1}
    locality: us-east/us-east-1a/rack1
    weight: 3
    serviceAccount: vm-sa
    network: net-1
  - address: 10.0.0.2
  - address: db.example.com
"""))
    svc = service(snap, "vm.shop.internal", "shop")
    assert not svc.mesh_external and svc.resolution is Resolution.CLIENT_SIDE_LB
    assert svc.export_to == frozenset({".", "istio-system"})
    first, second = endpoints(snap, "vm.shop.internal", "shop")  # the hostname is not a STATIC address
    assert first.address == "10.0.0.1"
    assert first.ports == {"http": 8080, "grpc": 9090}  # the entry's port, else the port number
    assert first.locality == Locality("us-east", "us-east-1a", "rack1")
    assert (first.weight, first.service_account, first.network, first.namespace) == (3, "vm-sa", "net-1", "shop")
    assert first.labels == {"version": "v1"}
    assert second.ports == {"http": 8000, "grpc": 9090}  # targetPort when the entry names none
    assert second.weight == 1 and second.locality == Locality()


def test_dns_inline_endpoints_may_be_host_names() -> None:
    snap = registry(entry("""
  hosts: [mirror.example.com]
  resolution: DNS
  ports: [{number: 443, name: tls, protocol: TLS}]
  endpoints: [{address: eu.mirror.example.com}, {address: us.mirror.example.com, weight: 2}]
"""))
    eps = endpoints(snap, "mirror.example.com", "shop")
    assert [(e.address, e.weight) for e in eps] == [("eu.mirror.example.com", 1), ("us.mirror.example.com", 2)]


WORKLOAD_ENTRIES = """
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-b, namespace: shop}
spec:
  address: 10.0.1.2
  labels: {app: billing}
  ports: {grpc: 7000}
  locality: eu/eu-west-1/a
  weight: 5
  serviceAccount: billing
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-a, namespace: shop, labels: {app: billing, tier: vm}}
spec:
  address: 10.0.1.1
  labels: {topology.istio.io/locality: eu.eu-west-2}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-other-ns, namespace: elsewhere}
spec: {address: 10.0.9.9, labels: {app: billing}}
"""


def test_workload_selector_picks_workload_entries_pods_and_connected_workloads() -> None:
    pod = """
---
apiVersion: v1
kind: Pod
metadata: {name: billing-pod, namespace: shop, labels: {app: billing}}
spec: {containers: [{name: app, ports: [{name: grpc, containerPort: 7100}]}]}
status: {phase: Running, podIP: 10.4.0.1}
"""
    joined = Workload(name="billing-local", namespace="shop", address="127.0.0.9", labels={"app": "billing"})
    snap = registry(entry("""
  hosts: [billing.shop.mesh]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 8080, name: grpc, protocol: GRPC, targetPort: 9000}]
  workloadSelector: {labels: {app: billing}}
""") + WORKLOAD_ENTRIES + pod, connected=(joined,))
    eps = {e.workload_name: e for e in endpoints(snap, "billing.shop.mesh", "shop")}
    assert set(eps) == {"vm-a", "vm-b", "billing-pod", "billing-local"}
    assert eps["vm-b"].ports == {"grpc": 7000}
    assert eps["vm-b"].locality == Locality("eu", "eu-west-1", "a") and eps["vm-b"].weight == 5
    assert eps["vm-a"].ports == {"grpc": 9000}  # no port of that name: the targetPort
    assert eps["vm-a"].locality == Locality("eu", "eu-west-2")  # from the locality label
    assert eps["vm-a"].labels["tier"] == "vm"  # metadata labels join the spec's
    assert eps["billing-pod"].ports == {"grpc": 7100}  # the pod's container port of that name
    assert eps["billing-local"].address == "127.0.0.9"


def test_workload_group_completes_connected_workloads() -> None:
    group = """
---
apiVersion: networking.istio.io/v1
kind: WorkloadGroup
metadata: {name: reviews-vm, namespace: shop}
spec:
  metadata: {labels: {app: reviews}}
  template: {ports: {http: 9081}, serviceAccount: reviews, network: vm-net, weight: 2}
"""
    joined = Workload(name="reviews-vm", namespace="shop", address="127.0.0.20", labels={"version": "v4"})
    snap = registry(entry("""
  hosts: [reviews.shop.mesh]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: reviews}}
""") + group, connected=(joined,))
    (ep,) = endpoints(snap, "reviews.shop.mesh", "shop")
    assert ep.ports == {"http": 9081}
    assert (ep.service_account, ep.network, ep.weight) == ("reviews", "vm-net", 2)
    assert ep.labels == {"app": "reviews", "version": "v4"}


def test_same_host_in_two_namespaces_is_two_services() -> None:
    body = """
  hosts: [api.example.com]
  ports: [{number: 443, name: https, protocol: HTTPS}]
  resolution: DNS
"""
    snap = registry(entry(body, ns="a") + entry(body, ns="b"))
    assert sorted(s.namespace for s in snap.by_hostname("api.example.com")) == ["a", "b"]


def test_two_workload_entries_at_one_address_are_two_endpoints() -> None:
    """Two instances on one machine (ports apart) are two WorkloadEntries, both selected."""
    snap = registry(entry("""
  hosts: [web.internal]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 8000, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: web}}
""", ns="default") + """
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: web-v1, namespace: default}
spec: {address: 127.0.0.1, ports: {http: 9001}, labels: {app: web, version: v1}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: web-v2, namespace: default}
spec: {address: 127.0.0.1, ports: {http: 9002}, labels: {app: web, version: v2}}
""")
    eps = endpoints(snap, "web.internal", "default")
    assert sorted((e.address, e.ports["http"], e.labels["version"]) for e in eps) == [
        ("127.0.0.1", 9001, "v1"), ("127.0.0.1", 9002, "v2")]
