"""generate(): results shared between proxies within a push never leak across what tells them apart."""

from __future__ import annotations

from pilotfish.pilot.generate import generate
from pilotfish.pilot.proxy import proxy_from_node
from pilotfish.pilot.push_context import PushContext
from pilotfish.registry.model import Endpoint, Locality, Port, Protocol, RegistrySnapshot, Service
from pilotfish.xds.type_urls import CLUSTER, ENDPOINT, ROUTE

HOST = "web.default.svc.cluster.local"
PRIVATE = Service(HOST, "default", (Port("http", 8000, Protocol.HTTP),), export_to=frozenset({"."}))
EPS = (Endpoint("10.0.0.1", locality=Locality("r1", "z1")), Endpoint("10.0.0.2", locality=Locality("r2", "z2")))


def sidecar(ns: str, ip: str, **labels: str):
    return proxy_from_node(f"sidecar~{ip}~app.{ns}~{ns}.svc.cluster.local", {"NAMESPACE": ns, "LABELS": labels})


def test_shared_results_stay_per_namespace() -> None:
    push = PushContext(registry=RegistrySnapshot(services=(PRIVATE,), endpoints={(HOST, "default"): EPS}))
    name = f"outbound|8000||{HOST}"
    mine, other = sidecar("default", "10.1.0.1", app="a"), sidecar("other", "10.1.0.2", app="a")
    for _ in range(2):  # the second round is served from what the first made
        assert name in generate(push, mine, CLUSTER) and name not in generate(push, other, CLUSTER)
        assert len(generate(push, mine, ENDPOINT, {name})[name].endpoints) == 2
        assert len(generate(push, other, ENDPOINT, {name})[name].endpoints) == 0
        domains = {d for vh in generate(push, mine, ROUTE, {"8000"})["8000"].virtual_hosts for d in vh.domains}
        assert "web:8000" in domains
        assert all("web" not in d for vh in generate(push, other, ROUTE, {"8000"})["8000"].virtual_hosts
                   for d in vh.domains)


def test_alike_sidecars_share_one_route_configuration() -> None:
    push = PushContext(registry=RegistrySnapshot(services=(PRIVATE,), endpoints={(HOST, "default"): EPS}))
    a = generate(push, sidecar("default", "10.1.0.1", app="a"), ROUTE, {"8000"})["8000"]
    b = generate(push, sidecar("default", "10.1.0.3", app="b"), ROUTE, {"8000"})["8000"]
    assert a is b  # no VirtualService matches on sourceLabels: labels do not tell them apart


def test_namespaces_finding_different_destination_rules_get_their_own_clusters_and_endpoints() -> None:
    """Shared results are keyed by the DestinationRule a namespace finds, not only by service."""
    from envoy.config.cluster.v3 import cluster_pb2

    from pilotfish.config.loader import documents_from_text, to_resource

    public = Service(HOST, "default", (Port("http", 8000, Protocol.HTTP),))
    eps = (Endpoint("10.0.0.1", labels={"version": "v1"}), Endpoint("10.0.0.2", labels={"version": "v2"}))
    dr = to_resource(next(documents_from_text(f"""apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: web, namespace: team-a}}
spec:
  host: {HOST}
  trafficPolicy: {{loadBalancer: {{simple: ROUND_ROBIN}}}}
  subsets: [{{name: v1, labels: {{version: v1}}}}]
""", "dr.yaml")))
    push = PushContext(resources=(dr,), registry=RegistrySnapshot(services=(public,), endpoints={(HOST, "default"): eps}))
    a, b = sidecar("team-a", "10.2.0.1"), sidecar("team-b", "10.2.0.2")
    for _ in range(2):
        ca, cb = generate(push, a, CLUSTER), generate(push, b, CLUSTER)
        assert ca[f"outbound|8000||{HOST}"].lb_policy == cluster_pb2.Cluster.ROUND_ROBIN
        assert cb[f"outbound|8000||{HOST}"].lb_policy == cluster_pb2.Cluster.LEAST_REQUEST
        assert f"outbound|8000|v1|{HOST}" in ca and f"outbound|8000|v1|{HOST}" not in cb
        subset = f"outbound|8000|v1|{HOST}"
        assert len(generate(push, a, ENDPOINT, {subset})[subset].endpoints[0].lb_endpoints) == 1
        assert not generate(push, b, ENDPOINT, {subset})[subset].endpoints


def _vs(weights: tuple[int, int], labels: str = "") -> object:
    from pilotfish.config.loader import documents_from_text, to_resource

    match = f"\n  - match: [{{sourceLabels: {{{labels}}}}}]\n    route: [{{destination: {{host: web, subset: v1}}}}]" if labels else ""
    text = f"""apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: web, namespace: default}}
spec:
  hosts: [web]
  http:{match}
  - route:
    - {{destination: {{host: web, subset: v1}}, weight: {weights[0]}}}
    - {{destination: {{host: web, subset: v2}}, weight: {weights[1]}}}
"""
    return to_resource(next(documents_from_text(text, "vs.yaml")))


def test_an_edited_virtualservice_patches_the_earlier_route_configuration_exactly() -> None:
    """A push after an in-place VirtualService edit patches the earlier push's route
    configurations; the result is byte for byte what a full translation makes."""
    other = Service("api.default.svc.cluster.local", "default", (Port("http", 8000, Protocol.HTTP),))
    public = Service(HOST, "default", (Port("http", 8000, Protocol.HTTP),))
    registry = RegistrySnapshot(services=(public, other), endpoints={(HOST, "default"): EPS})
    proxy = sidecar("default", "10.1.0.1", app="client")
    for labels in ("", "app: client"):
        before, after = _vs((80, 20), labels), _vs((50, 50), labels)
        first = PushContext(resources=(before,), registry=registry)
        generate(first, proxy, ROUTE, {"8000"})
        prior = {k: v for k, v in first.generated.items() if isinstance(k, tuple) and k[0] == "rds"}
        patched = PushContext(resources=(after,), registry=registry, edited=((before, after),), prior_routes=prior)
        full = PushContext(resources=(after,), registry=registry)
        got = generate(patched, proxy, ROUTE, {"8000"})["8000"].SerializeToString(deterministic=True)
        want = generate(full, proxy, ROUTE, {"8000"})["8000"].SerializeToString(deterministic=True)
        assert got == want
        if not labels:  # (with the sourceLabels rule first, its catch-all hides the weights)
            assert got != generate(first, proxy, ROUTE, {"8000"})["8000"].SerializeToString(deterministic=True)


def test_an_edit_that_changes_which_proxies_a_route_applies_to_is_translated_in_full() -> None:
    registry = RegistrySnapshot(services=(Service(HOST, "default", (Port("http", 8000, Protocol.HTTP),)),),
                                endpoints={(HOST, "default"): EPS})
    proxy = sidecar("default", "10.1.0.1", app="client")
    before, after = _vs((80, 20), "app: nobody"), _vs((80, 20), "app: client")
    first = PushContext(resources=(before,), registry=registry)
    generate(first, proxy, ROUTE, {"8000"})
    prior = {k: v for k, v in first.generated.items() if isinstance(k, tuple) and k[0] == "rds"}
    patched = PushContext(resources=(after,), registry=registry, edited=((before, after),), prior_routes=prior)
    full = PushContext(resources=(after,), registry=registry)
    assert (generate(patched, proxy, ROUTE, {"8000"})["8000"].SerializeToString(deterministic=True)
            == generate(full, proxy, ROUTE, {"8000"})["8000"].SerializeToString(deterministic=True))
