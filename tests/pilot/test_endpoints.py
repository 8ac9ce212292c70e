"""EDS: where a cluster's traffic can go, as the asking proxy sees it."""

from __future__ import annotations

from envoy.config.core.v3 import health_check_pb2

from pilotfish.config.loader import documents_from_text, to_resource
from pilotfish.pilot.endpoints import build_endpoints
from pilotfish.pilot.proxy import proxy_from_node
from pilotfish.pilot.push_context import PushContext
from pilotfish.proxy.compile.clusters import compile_load_assignment
from pilotfish.proxy.compile.subset import CheckResult, check_message
from pilotfish.registry.model import Endpoint, Locality, Port, Protocol, RegistrySnapshot, Service

HOST = "reviews.default.svc.cluster.local"
REVIEWS = Service(HOST, "default", (Port("http", 9080, Protocol.HTTP), Port("admin", 9901, Protocol.HTTP)))
EPS = (
    Endpoint("10.0.0.1", ports={"http": 8080}, labels={"version": "v1"}, locality=Locality("r1", "z1"), weight=2),
    Endpoint("10.0.0.2", labels={"version": "v2"}, locality=Locality("r1", "z1"), healthy=False),
    Endpoint("10.0.0.3", labels={"version": "v2"}, locality=Locality("r2", "z9", "s1"), weight=3),
)
DR = """apiVersion: networking.istio.io/v1
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
PROXY = proxy_from_node("sidecar~10.9.0.1~client.default~default.svc.cluster.local", {"NAMESPACE": "default"})


def push_with(yaml_text: str = DR) -> PushContext:
    resources = tuple(to_resource(d) for d in documents_from_text(yaml_text, "x.yaml")) if yaml_text else ()
    return PushContext(resources=resources,
                       registry=RegistrySnapshot(services=(REVIEWS,), endpoints={(HOST, "default"): EPS}))


def one(name: str, push: PushContext | None = None):
    (cla,) = build_endpoints(push or push_with(), PROXY, {name})
    assert cla.cluster_name == name
    return cla


def addresses(cla) -> list[tuple[str, int]]:
    return [(e.endpoint.address.socket_address.address, e.endpoint.address.socket_address.port_value)
            for group in cla.endpoints for e in group.lb_endpoints]


def test_endpoints_grouped_by_locality_with_weights():
    cla = one(f"outbound|9080||{HOST}")
    assert [(g.locality.region, g.locality.zone, g.locality.sub_zone) for g in cla.endpoints] == [
        ("r1", "z1", ""), ("r2", "z9", "s1")]
    assert [g.load_balancing_weight.value for g in cla.endpoints] == [3, 3]
    assert addresses(cla) == [("10.0.0.1", 8080), ("10.0.0.2", 9080), ("10.0.0.3", 9080)]
    first = cla.endpoints[0].lb_endpoints
    assert first[0].load_balancing_weight.value == 2
    assert first[0].health_status == health_check_pb2.HEALTHY
    assert first[1].health_status == health_check_pb2.UNHEALTHY
    assert all(g.priority == 0 for g in cla.endpoints)  # no outlier detection: no failover


def test_instance_port_follows_the_requested_service_port():
    assert addresses(one(f"outbound|9901||{HOST}"))[0] == ("10.0.0.1", 9901)


def test_subset_filters_by_labels():
    assert addresses(one(f"outbound|9080|v1|{HOST}")) == [("10.0.0.1", 8080)]
    assert addresses(one(f"outbound|9080|v2|{HOST}")) == [("10.0.0.2", 9080), ("10.0.0.3", 9080)]


def test_unknown_names_get_an_empty_answer():
    for name in (f"outbound|9080|v9|{HOST}", f"outbound|1234||{HOST}", "outbound|9080||nope.default.svc.cluster.local",
                 "inbound|9080||", "not-a-cluster"):
        cla = one(name)
        assert not cla.endpoints, name


def test_every_requested_name_is_answered_once():
    names = {f"outbound|9080||{HOST}", f"outbound|9080|v1|{HOST}", "x"}
    assert sorted(c.cluster_name for c in build_endpoints(push_with(), PROXY, names)) == sorted(names)


def test_failover_priorities_need_outlier_detection():
    dr = DR.replace("  subsets:", "  trafficPolicy:\n    outlierDetection: {consecutive5xxErrors: 1}\n  subsets:")
    local = proxy_from_node("sidecar~10.9.0.1~client.default~default.svc.cluster.local", {"NAMESPACE": "default"},
                            Locality("r2", "z9", "s1"))
    (cla,) = build_endpoints(push_with(dr), local, {f"outbound|9080||{HOST}"})
    priorities = {g.locality.region: g.priority for g in cla.endpoints}
    assert priorities == {"r2": 0, "r1": 1}


def test_our_proxy_accepts_the_assignment():
    cla = one(f"outbound|9080||{HOST}")
    check_message(cla, "cla", CheckResult())
    compile_load_assignment(cla, "cla", "EDS")


def test_a_group_without_a_locality_still_carries_the_field():
    """grpcio refuses a LocalityLbEndpoints without ``locality``; Istio always sets it."""
    push = PushContext(registry=RegistrySnapshot(services=(REVIEWS,), endpoints={(HOST, "default"): (
        Endpoint("10.0.0.7", labels={"version": "v1"}),)}))
    (group,) = one(f"outbound|9080||{HOST}", push).endpoints
    assert group.HasField("locality") and group.locality.region == ""
