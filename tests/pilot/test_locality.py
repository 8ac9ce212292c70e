"""Locality load balancing: which localities a proxy tries first, and how it splits traffic."""

from __future__ import annotations

from envoy.config.cluster.v3 import cluster_pb2

from pilotfish.config.loader import documents_from_text, to_resource
from pilotfish.config.models.kube import mesh_config_from_yaml
from pilotfish.pilot.clusters import build_clusters
from pilotfish.pilot.endpoints import build_endpoints
from pilotfish.pilot.locality import locality_match, priority_of
from pilotfish.pilot.proxy import proxy_from_node
from pilotfish.pilot.push_context import PushContext
from pilotfish.registry.model import Endpoint, Locality, Port, Protocol, RegistrySnapshot, Service

HOST = "svc.default.svc.cluster.local"
NAME = f"outbound|80||{HOST}"
SERVICE = Service(HOST, "default", (Port("http", 80, Protocol.HTTP),))
EPS = (
    Endpoint("10.0.0.1", locality=Locality("us", "a", "1"), labels={"tier": "gold"}),
    Endpoint("10.0.0.2", locality=Locality("us", "a", "2")),
    Endpoint("10.0.0.3", locality=Locality("us", "b")),
    Endpoint("10.0.0.4", locality=Locality("eu", "x")),
    Endpoint("10.0.0.5", locality=Locality("ap", "y")),
)
OUTLIER = "    outlierDetection: {consecutive5xxErrors: 5}\n"


def dr(policy: str) -> str:
    return ("apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
            "metadata: {name: svc, namespace: default}\nspec:\n  host: svc\n  trafficPolicy:\n" + policy)


def assignment(policy: str = "", mesh: str = "", labels: dict[str, str] | None = None):
    resources = tuple(to_resource(d) for d in documents_from_text(dr(policy), "x.yaml")) if policy else ()
    push = PushContext(resources=resources, mesh=mesh_config_from_yaml(mesh),
                       registry=RegistrySnapshot(services=(SERVICE,), endpoints={(HOST, "default"): EPS}))
    proxy = proxy_from_node("sidecar~10.9.0.1~c.default~default.svc.cluster.local",
                            {"NAMESPACE": "default", "LABELS": labels or {}}, Locality("us", "a", "1"))
    (cla,) = build_endpoints(push, proxy, {NAME})
    return cla, {c.name: c for c in build_clusters(push, proxy)}


def priorities(cla) -> dict[str, int]:
    return {e.endpoint.address.socket_address.address: g.priority for g in cla.endpoints for e in g.lb_endpoints}


def weights(cla) -> dict[str, int]:
    return {"/".join(filter(None, (g.locality.region, g.locality.zone, g.locality.sub_zone))):
            g.load_balancing_weight.value for g in cla.endpoints if g.lb_endpoints}


def test_priority_rules():
    here = Locality("us", "a", "1")
    assert [priority_of(here, loc) for loc in (Locality("us", "a", "1"), Locality("us", "a", "2"),
                                               Locality("us", "b"), Locality("eu", "x"))] == [0, 1, 2, 3]
    assert locality_match(Locality("us", "a", "1"), "us/*")
    assert locality_match(Locality("us", "a", "1"), "us")
    assert not locality_match(Locality("us", "a", "1"), "us/b/*")


def test_default_failover_orders_by_closeness_with_outlier_detection():
    cla, _ = assignment(OUTLIER)
    assert priorities(cla) == {"10.0.0.1": 0, "10.0.0.2": 1, "10.0.0.3": 2, "10.0.0.4": 3, "10.0.0.5": 3}


def test_no_failover_without_outlier_detection():
    cla, _ = assignment("    loadBalancer: {simple: ROUND_ROBIN}\n")
    assert set(priorities(cla).values()) == {0}


def test_failover_rule_picks_the_next_region():
    cla, clusters = assignment(OUTLIER + "    loadBalancer:\n      localityLbSetting:\n"
                                         "        failover: [{from: us, to: eu}]\n")
    assert priorities(cla) == {"10.0.0.1": 0, "10.0.0.2": 1, "10.0.0.3": 2, "10.0.0.4": 3, "10.0.0.5": 4}
    assert clusters[NAME].common_lb_config.HasField("locality_weighted_lb_config")


def test_failover_priority_labels_split_localities():
    cla, _ = assignment(OUTLIER + "    loadBalancer:\n      localityLbSetting:\n"
                                  "        failoverPriority: [topology.kubernetes.io/region, tier]\n",
                        labels={"tier": "gold"})
    # same region and tier first, then the same region, then the rest (the first mismatch decides)
    assert priorities(cla) == {"10.0.0.1": 0, "10.0.0.2": 1, "10.0.0.3": 1, "10.0.0.4": 2, "10.0.0.5": 2}
    cla, _ = assignment(OUTLIER + "    loadBalancer:\n      localityLbSetting:\n"
                                  "        failoverPriority: [tier=silver]\n", labels={"tier": "gold"})
    assert set(priorities(cla).values()) == {0}  # an override value no endpoint has: one level


def test_distribute_sets_locality_weights_and_drops_unnamed_localities():
    cla, clusters = assignment("    loadBalancer:\n      localityLbSetting:\n        distribute:\n"
                               "        - from: us/a/*\n          to: {us/a/*: 80, eu/*: 20}\n")
    assert weights(cla) == {"us/a/1": 40, "us/a/2": 40, "eu/x": 20}
    assert clusters[NAME].common_lb_config.HasField("locality_weighted_lb_config")


def test_disabled_setting_turns_locality_lb_off():
    cla, _ = assignment(OUTLIER + "    loadBalancer:\n      localityLbSetting: {enabled: false}\n")
    assert set(priorities(cla).values()) == {0}
    cla, _ = assignment(OUTLIER, mesh="localityLbSetting: {enabled: false}\n")
    assert set(priorities(cla).values()) == {0}


def test_mesh_setting_applies_when_the_rule_has_none():
    cla, _ = assignment(OUTLIER, mesh="localityLbSetting:\n  failover: [{from: us, to: ap}]\n")
    assert priorities(cla)["10.0.0.5"] == 3 and priorities(cla)["10.0.0.4"] == 4


def test_plain_failover_leaves_the_cluster_lb_config_alone():
    _, clusters = assignment(OUTLIER)
    assert not clusters[NAME].common_lb_config.HasField("locality_weighted_lb_config")
    assert clusters[NAME].lb_policy == cluster_pb2.Cluster.LEAST_REQUEST
