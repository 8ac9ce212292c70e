"""DestinationRule trafficPolicy → cluster fields: what a user's DestinationRule changes on the wire."""

from __future__ import annotations

from envoy.config.cluster.v3 import cluster_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2

from pilotfish.config.loader import documents_from_text, to_resource
from pilotfish.config.models.kube import mesh_config_from_yaml
from pilotfish.pilot.cluster_policy import (
    HTTP_OPTIONS_KEY,
    MAX_UINT32,
    consistent_hash_of,
    mesh_defaults,
)
from pilotfish.pilot.clusters import build_clusters
from pilotfish.pilot.proxy import proxy_from_node
from pilotfish.pilot.push_context import PushContext
from pilotfish.registry.model import Endpoint, Port, Protocol, RegistrySnapshot, Service

HOST = "reviews.default.svc.cluster.local"
SERVICE = Service(HOST, "default", (Port("http", 9080, Protocol.HTTP), Port("grpc", 9090, Protocol.GRPC)))
PROXY = proxy_from_node("sidecar~10.1.0.9~client.default~default.svc.cluster.local", {"NAMESPACE": "default"})
Cluster = cluster_pb2.Cluster


def push_with(dr_yaml: str = "", mesh: str = "") -> PushContext:
    resources = tuple(to_resource(d) for d in documents_from_text(dr_yaml, "dr.yaml")) if dr_yaml else ()
    registry = RegistrySnapshot(services=(SERVICE,), endpoints={(HOST, "default"): (
        Endpoint("10.0.0.1", labels={"version": "v1"}),)})
    return PushContext(resources=resources, registry=registry, mesh=mesh_config_from_yaml(mesh))


def clusters(dr_yaml: str = "", mesh: str = "") -> dict[str, Cluster]:
    return {c.name: c for c in build_clusters(push_with(dr_yaml, mesh), PROXY)}


def dr(spec: str) -> str:
    return ("apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
            "metadata: {name: reviews, namespace: default}\nspec:\n  host: reviews\n" + spec)


def outbound(port: int = 9080, subset: str = "") -> str:
    return f"outbound|{port}|{subset}|{HOST}"


def test_without_a_rule_istio_defaults_apply():
    c = clusters()[outbound()]
    assert c.lb_policy == Cluster.LEAST_REQUEST
    assert c.connect_timeout.seconds == 10
    t = c.circuit_breakers.thresholds[0]
    assert (t.max_connections.value, t.max_pending_requests.value, t.max_requests.value,
            t.max_retries.value) == (MAX_UINT32,) * 4
    assert t.track_remaining
    assert not c.HasField("outlier_detection")


def test_simple_load_balancers():
    for name, want in (("ROUND_ROBIN", Cluster.ROUND_ROBIN), ("RANDOM", Cluster.RANDOM),
                       ("LEAST_REQUEST", Cluster.LEAST_REQUEST), ("LEAST_CONN", Cluster.LEAST_REQUEST)):
        c = clusters(dr(f"  trafficPolicy:\n    loadBalancer: {{simple: {name}}}\n"))[outbound()]
        assert c.lb_policy == want, name


def test_passthrough_load_balancer_sends_to_the_original_destination():
    c = clusters(dr("  trafficPolicy:\n    loadBalancer: {simple: PASSTHROUGH}\n"))[outbound()]
    assert c.type == Cluster.ORIGINAL_DST
    assert c.lb_policy == Cluster.CLUSTER_PROVIDED
    assert not c.HasField("eds_cluster_config")


def test_consistent_hash_ring_and_maglev():
    ring = clusters(dr("  trafficPolicy:\n    loadBalancer:\n      consistentHash:\n"
                       "        httpHeaderName: x-user\n        ringHash: {minimumRingSize: 2048}\n"))[outbound()]
    assert ring.lb_policy == Cluster.RING_HASH
    assert ring.ring_hash_lb_config.minimum_ring_size.value == 2048
    maglev = clusters(dr("  trafficPolicy:\n    loadBalancer:\n      consistentHash:\n"
                         "        useSourceIp: true\n        maglev: {tableSize: 65537}\n"))[outbound()]
    assert maglev.lb_policy == Cluster.MAGLEV
    assert maglev.maglev_lb_config.table_size.value == 65537
    default = clusters(dr("  trafficPolicy:\n    loadBalancer:\n      consistentHash: {httpHeaderName: x}\n"))
    assert default[outbound()].ring_hash_lb_config.minimum_ring_size.value == 1024


def test_connection_pool_becomes_circuit_breakers_and_protocol_options():
    c = clusters(dr("""  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: 7, connectTimeout: 250ms, tcpKeepalive: {time: 30s, interval: 5s, probes: 3}}
      http: {http1MaxPendingRequests: 11, http2MaxRequests: 13, maxRetries: 2,
             maxRequestsPerConnection: 5, idleTimeout: 90s}
"""))[outbound()]
    t = c.circuit_breakers.thresholds[0]
    assert (t.max_connections.value, t.max_pending_requests.value, t.max_requests.value,
            t.max_retries.value) == (7, 11, 13, 2)
    assert c.connect_timeout.ToMilliseconds() == 250
    ka = c.upstream_connection_options.tcp_keepalive
    assert (ka.keepalive_time.value, ka.keepalive_interval.value, ka.keepalive_probes.value) == (30, 5, 3)
    options = http_protocol_options_pb2.HttpProtocolOptions()
    c.typed_extension_protocol_options[HTTP_OPTIONS_KEY].Unpack(options)
    assert options.common_http_protocol_options.idle_timeout.seconds == 90
    assert options.common_http_protocol_options.max_requests_per_connection.value == 5
    assert options.explicit_http_config.HasField("http_protocol_options")


def test_outlier_detection():
    c = clusters(dr("""  trafficPolicy:
    outlierDetection: {consecutive5xxErrors: 3, consecutiveGatewayErrors: 2, interval: 10s,
                       baseEjectionTime: 1m, maxEjectionPercent: 50, minHealthPercent: 20,
                       splitExternalLocalOriginErrors: true, consecutiveLocalOriginFailures: 4}
"""))[outbound()]
    od = c.outlier_detection
    assert (od.consecutive_5xx.value, od.enforcing_consecutive_5xx.value) == (3, 100)
    assert (od.consecutive_gateway_failure.value, od.enforcing_consecutive_gateway_failure.value) == (2, 100)
    assert od.interval.seconds == 10 and od.base_ejection_time.seconds == 60
    assert od.max_ejection_percent.value == 50
    assert od.HasField("enforcing_success_rate") and od.enforcing_success_rate.value == 0
    assert od.split_external_local_origin_errors and od.consecutive_local_origin_failure.value == 4
    assert c.common_lb_config.healthy_panic_threshold.value == 20


def test_port_level_settings_replace_the_top_level_for_that_port_only():
    out = clusters(dr("""  trafficPolicy:
    loadBalancer: {simple: RANDOM}
    connectionPool: {tcp: {maxConnections: 100}}
    portLevelSettings:
    - port: {number: 9090}
      loadBalancer: {simple: ROUND_ROBIN}
"""))
    assert out[outbound(9080)].lb_policy == Cluster.RANDOM
    assert out[outbound(9080)].circuit_breakers.thresholds[0].max_connections.value == 100
    assert out[outbound(9090)].lb_policy == Cluster.ROUND_ROBIN
    # not inherited: the port-level entry sets no connection pool
    assert out[outbound(9090)].circuit_breakers.thresholds[0].max_connections.value == MAX_UINT32


def test_subset_policy_overrides_the_rule_field_by_field():
    out = clusters(dr("""  trafficPolicy:
    loadBalancer: {simple: RANDOM}
    connectionPool: {tcp: {maxConnections: 100}}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy:
      loadBalancer: {simple: ROUND_ROBIN}
  - name: v2
    labels: {version: v2}
"""))
    v1 = out[outbound(9080, "v1")]
    assert v1.lb_policy == Cluster.ROUND_ROBIN
    assert v1.circuit_breakers.thresholds[0].max_connections.value == 100
    assert out[outbound(9080, "v2")].lb_policy == Cluster.RANDOM


def test_mesh_connect_timeout_and_default_traffic_policy():
    out = clusters(mesh="connectTimeout: 3s\ndefaultTrafficPolicy:\n  connectionPool: {tcp: {maxConnections: 9}}\n")
    c = out[outbound()]
    assert c.connect_timeout.seconds == 3
    assert c.circuit_breakers.thresholds[0].max_connections.value == 9
    assert out["BlackHoleCluster"].connect_timeout.seconds == 3


def test_mesh_defaults_fall_back_on_malformed_values():
    d = mesh_defaults(mesh_config_from_yaml("connectTimeout: soon\n"))
    assert d.connect_timeout.seconds == 10
    assert d.locality_lb_setting is not None and d.locality_lb_setting.enabled


def test_consistent_hash_of_follows_subset_and_port():
    push = push_with(dr("""  trafficPolicy:
    loadBalancer: {consistentHash: {httpHeaderName: x-user}}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy:
      loadBalancer: {consistentHash: {httpCookie: {name: session, ttl: 0s}}}
  - name: v2
    labels: {version: v2}
    trafficPolicy:
      loadBalancer: {simple: RANDOM}
"""))
    top = consistent_hash_of(push, "default", SERVICE, "", 9080)
    assert top is not None and top.http_header_name == "x-user"
    v1 = consistent_hash_of(push, "default", SERVICE, "v1", SERVICE.ports[0])
    assert v1 is not None and v1.http_cookie is not None and v1.http_cookie.name == "session"
    assert consistent_hash_of(push, "default", SERVICE, "v2", 9080) is None
    assert consistent_hash_of(push_with(), "default", SERVICE, "", 9080) is None
