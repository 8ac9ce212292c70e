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
