"""CDS: which clusters a proxy gets, their names and types, and that our proxy accepts them."""

from __future__ import annotations

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import config_source_pb2

from pilotfish.config.loader import documents_from_text, to_resource
from pilotfish.pilot.clusters import build_clusters
from pilotfish.pilot.proxy import proxy_from_node
from pilotfish.pilot.push_context import PushContext
from pilotfish.proxy.compile.clusters import compile_cluster
from pilotfish.proxy.compile.subset import CheckResult, check_message
from pilotfish.registry.model import (
    Endpoint,
    Locality,
    Port,
    Protocol,
    RegistrySnapshot,
    Resolution,
    Service,
)

Cluster = cluster_pb2.Cluster
REVIEWS = Service("reviews.default.svc.cluster.local", "default",
                  (Port("http", 9080, Protocol.HTTP), Port("dns", 53, Protocol.UDP)))
RATINGS = Service("ratings.default.svc.cluster.local", "default", (Port("http", 9080, Protocol.HTTP),),
                  export_to=frozenset({"."}))
EXTERNAL = Service("api.example.com", "default", (Port("https", 443, Protocol.TLS),),
                   resolution=Resolution.DNS, mesh_external=True)
ROUND_ROBIN_DNS = Service("db.example.com", "default", (Port("tcp", 5432, Protocol.TCP),),
                          resolution=Resolution.DNS_ROUND_ROBIN)
HEADLESS = Service("cassandra.default.svc.cluster.local", "default", (Port("cql", 9042, Protocol.TCP),),
                   resolution=Resolution.PASSTHROUGH)
ENDPOINTS = {
    (REVIEWS.hostname, "default"): (
        Endpoint("10.0.0.1", ports={"http": 9081}, labels={"version": "v1"}),
        Endpoint("10.0.0.2", labels={"version": "v2"}, locality=Locality("r1", "z1"))),
    (RATINGS.hostname, "default"): (Endpoint("10.0.1.1"),),
    (EXTERNAL.hostname, "default"): (Endpoint("api.example.com"),),
    (ROUND_ROBIN_DNS.hostname, "default"): (Endpoint("db.example.com"), Endpoint("db2.example.com")),
    (HEADLESS.hostname, "default"): (Endpoint("10.0.3.1"),),
}
SUBSETS = """apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  subsets:
  - name: v1
    labels: {version: v1}
  - name: v2
    labels: {version: v2}
"""


def push_with(yaml_text: str = "", services: tuple[Service, ...] = (REVIEWS, RATINGS, EXTERNAL, ROUND_ROBIN_DNS,
                                                                     HEADLESS)) -> PushContext:
    resources = tuple(to_resource(d) for d in documents_from_text(yaml_text, "x.yaml")) if yaml_text else ()
    return PushContext(resources=resources, registry=RegistrySnapshot(services=services, endpoints=ENDPOINTS))


def sidecar(ip: str = "10.9.9.9", namespace: str = "default"):
    return proxy_from_node(f"sidecar~{ip}~app.{namespace}~{namespace}.svc.cluster.local", {"NAMESPACE": namespace})


def by_name(push: PushContext, proxy) -> dict[str, Cluster]:
    return {c.name: c for c in build_clusters(push, proxy)}


def test_outbound_cluster_per_service_port_and_subset():
    names = set(by_name(push_with(SUBSETS), sidecar()))
    assert {"outbound|9080||reviews.default.svc.cluster.local",
            "outbound|9080|v1|reviews.default.svc.cluster.local",
            "outbound|9080|v2|reviews.default.svc.cluster.local",
            "outbound|9080||ratings.default.svc.cluster.local",
            "BlackHoleCluster", "PassthroughCluster", "InboundPassthroughCluster"} <= names
    assert "outbound|53||reviews.default.svc.cluster.local" not in names  # UDP


def test_eds_clusters_subscribe_over_ads():
    c = by_name(push_with(SUBSETS), sidecar())["outbound|9080|v1|reviews.default.svc.cluster.local"]
    assert c.type == Cluster.EDS
    assert c.eds_cluster_config.service_name == c.name
    assert c.eds_cluster_config.eds_config.HasField("ads")
    assert c.eds_cluster_config.eds_config.resource_api_version == config_source_pb2.V3
    assert not c.HasField("load_assignment")


def test_services_not_exported_to_the_proxy_namespace_are_absent():
    names = set(by_name(push_with(), sidecar(namespace="other")))
    assert "outbound|9080||reviews.default.svc.cluster.local" in names
    assert "outbound|9080||ratings.default.svc.cluster.local" not in names


def test_dns_resolutions_carry_their_endpoints_inline():
    out = by_name(push_with(), sidecar())
    strict = out["outbound|443||api.example.com"]
    assert strict.type == Cluster.STRICT_DNS
    assert strict.dns_lookup_family == Cluster.V4_ONLY
    assert strict.dns_refresh_rate.seconds == 60
    sa = strict.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address
    assert (sa.address, sa.port_value) == ("api.example.com", 443)
    logical = out["outbound|5432||db.example.com"]
    assert logical.type == Cluster.LOGICAL_DNS
    assert len(logical.load_assignment.endpoints) == 1
    assert len(logical.load_assignment.endpoints[0].lb_endpoints) == 1


def test_passthrough_resolution_is_original_dst_for_sidecars_and_eds_for_gateways():
    c = by_name(push_with(), sidecar())["outbound|9042||cassandra.default.svc.cluster.local"]
    assert (c.type, c.lb_policy) == (Cluster.ORIGINAL_DST, Cluster.CLUSTER_PROVIDED)
    gw = proxy_from_node("router~10.8.0.1~gw.istio-system~istio-system.svc.cluster.local",
                         {"NAMESPACE": "istio-system"})
    out = by_name(push_with(), gw)
    assert out["outbound|9042||cassandra.default.svc.cluster.local"].type == Cluster.EDS


def test_gateways_get_no_inbound_or_passthrough_clusters():
    gw = proxy_from_node("router~10.0.0.1~gw.istio-system~istio-system.svc.cluster.local",
                         {"NAMESPACE": "istio-system"})
    names = set(by_name(push_with(), gw))
    assert "BlackHoleCluster" in names
    assert "PassthroughCluster" not in names
    assert not any(n.startswith("inbound|") for n in names)


def test_inbound_cluster_is_named_after_and_goes_to_the_instance_port_on_loopback():
    out = by_name(push_with(), sidecar("10.0.0.1"))
    c = out["inbound|9081||"]
    assert c.type == Cluster.STATIC
    sa = c.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address
    assert (sa.address, sa.port_value) == ("127.0.0.1", 9081)
    assert "inbound|53||" not in out
    assert not any(n.startswith("inbound|") for n in by_name(push_with(), sidecar("10.5.5.5")))


def test_local_mesh_app_ports_move_the_inbound_target_but_not_the_cluster_name():
    proxy = proxy_from_node("sidecar~10.0.0.1~reviews-1.default~default.svc.cluster.local",
                            {"NAMESPACE": "default", "APP_PORTS": {"9081": 41234, "bogus": "x"}})
    c = by_name(push_with(), proxy)["inbound|9081||"]
    sa = c.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address
    assert (sa.address, sa.port_value) == ("127.0.0.1", 41234)
    assert proxy.app_ports == {9081: 41234}


def test_pods_sharing_an_address_each_get_only_their_own_inbound_clusters():
    """Where pods share an address (hostNetwork; the local mesh without loopback aliases), a
    proxy serves its own pod's endpoints, found through its pod name as Istio finds them."""
    shared = {(REVIEWS.hostname, "default"): (
        Endpoint("10.7.0.1", ports={"http": 41001}, workload_name="reviews-a", namespace="default"),
        Endpoint("10.7.0.1", ports={"http": 41002}, workload_name="reviews-b", namespace="default"))}
    push = PushContext(registry=RegistrySnapshot(services=(REVIEWS,), endpoints=shared))
    for pod, port in (("reviews-a", 41001), ("reviews-b", 41002)):
        proxy = proxy_from_node(f"sidecar~10.7.0.1~{pod}.default~default.svc.cluster.local", {"NAMESPACE": "default"})
        assert [n for n in by_name(push, proxy) if n.startswith("inbound|")] == [f"inbound|{port}||"]


def test_sidecar_ingress_default_endpoint_replaces_inferred_inbound_clusters():
    sc = """apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: default}
spec:
  ingress:
  - port: {number: 9080, protocol: HTTP, name: http}
    defaultEndpoint: 127.0.0.1:8080
    connectionPool: {tcp: {maxConnections: 5}}
  - port: {number: 7070, protocol: HTTP, name: other}
    defaultEndpoint: 0.0.0.0:7071
  - port: {number: 6060, protocol: HTTP, name: uds}
    defaultEndpoint: unix:///var/run/app.sock
"""
    out = by_name(push_with(sc), sidecar("10.0.0.1"))
    sa = out["inbound|9080||"].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address
    assert (sa.address, sa.port_value) == ("127.0.0.1", 8080)
    assert out["inbound|9080||"].circuit_breakers.thresholds[0].max_connections.value == 5
    sa = out["inbound|7070||"].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address
    assert (sa.address, sa.port_value) == ("10.0.0.1", 7071)
    assert "inbound|6060||" not in out


def test_catch_all_clusters():
    out = by_name(push_with(), sidecar())
    bh = out["BlackHoleCluster"]
    assert bh.type == Cluster.STATIC and not bh.load_assignment.endpoints
    pt = out["PassthroughCluster"]
    assert (pt.type, pt.lb_policy) == (Cluster.ORIGINAL_DST, Cluster.CLUSTER_PROVIDED)


def test_duplicate_names_keep_the_first():
    twin = Service(REVIEWS.hostname, "other", REVIEWS.ports)
    names = [c.name for c in build_clusters(push_with(services=(REVIEWS, twin)), sidecar())]
    assert len(names) == len(set(names))


def test_our_proxy_accepts_every_generated_cluster():
    policy = SUBSETS.replace("  subsets:", """  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: 7, connectTimeout: 1s, tcpKeepalive: {time: 10s}}
      http: {http1MaxPendingRequests: 3, maxRequestsPerConnection: 2, idleTimeout: 5s}
    outlierDetection: {consecutive5xxErrors: 2, interval: 1s, baseEjectionTime: 30s}
    loadBalancer:
      consistentHash: {httpHeaderName: x-user, ringHash: {minimumRingSize: 64}}
      localityLbSetting:
        failover: [{from: r1, to: r2}]
    retryBudget: {percent: 25}
  subsets:""")
    for proxy in (sidecar("10.0.0.1"), sidecar()):
        for c in build_clusters(push_with(policy), proxy):
            result = CheckResult()
            check_message(c, c.name, result)
            compile_cluster(c, c.name)


def test_proxyless_grpc_clients_get_round_robin_unless_hashing():
    """grpcio supports round robin and ring hash, not the mesh's LEAST_REQUEST (Istio's grpcgen)."""
    grpc = proxy_from_node("sidecar~10.9.9.8~client.default~default.svc.cluster.local",
                           {"NAMESPACE": "default", "GENERATOR": "grpc"})
    out = by_name(push_with(), grpc)
    assert out["outbound|9080||reviews.default.svc.cluster.local"].lb_policy == Cluster.ROUND_ROBIN
    assert by_name(push_with(), sidecar())["outbound|9080||reviews.default.svc.cluster.local"].lb_policy == Cluster.LEAST_REQUEST
