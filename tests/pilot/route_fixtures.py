"""Shared builders for the RDS tests: a PushContext from Istio YAML and Bookinfo's services."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pilotfish.config.base import Resource
from pilotfish.config.loader import documents_from_text, to_resource
from pilotfish.config.models.kube import MeshConfig, default_mesh_config
from pilotfish.pilot.proxy import Proxy, ProxyType
from pilotfish.pilot.push_context import PushContext
from pilotfish.registry.model import Port, Protocol, RegistrySnapshot, Service


def resources(text: str) -> list[Resource]:
    out = []
    for doc in documents_from_text(text, "test.yaml"):
        assert not isinstance(doc, Exception), doc
        out.append(to_resource(doc))
    return out


def svc(name: str, ns: str = "default", ports: Iterable[int] = (9080,), vip: str = "",
        protocol: Protocol = Protocol.HTTP) -> Service:
    return Service(hostname=f"{name}.{ns}.svc.cluster.local", namespace=ns,
                   ports=tuple(Port(f"http-{p}", p, protocol) for p in ports),
                   addresses=(vip,) if vip else (), name=name, source="kubernetes")


BOOKINFO = (svc("productpage", vip="10.0.0.1"), svc("reviews", vip="10.0.0.2"),
            svc("ratings", vip="10.0.0.3"), svc("details", vip="10.0.0.4"))


def push_of(yaml_text: str = "", services: Iterable[Service] = BOOKINFO, mesh: MeshConfig | None = None) -> PushContext:
    return PushContext(resources=tuple(resources(yaml_text)) if yaml_text.strip() else (),
                       registry=RegistrySnapshot(services=tuple(services)),
                       mesh=mesh or default_mesh_config())


def sidecar(ns: str = "default", labels: Mapping[str, str] | None = None, generator: str = "") -> Proxy:
    return Proxy(type=ProxyType.SIDECAR, ip_addresses=("10.1.0.5",), id=f"app.{ns}",
                 dns_domain=f"{ns}.svc.cluster.local", namespace=ns, labels=dict(labels or {}),
                 generator=generator)


def gateway(labels: Mapping[str, str] | None = None, ns: str = "istio-system") -> Proxy:
    return Proxy(type=ProxyType.ROUTER, ip_addresses=("10.1.0.9",), id=f"ingress.{ns}",
                 dns_domain=f"{ns}.svc.cluster.local", namespace=ns,
                 labels=dict(labels or {"istio": "ingressgateway"}))


def accepted_by_proxy(config: object) -> None:
    """Our proxy's RDS check: every field inside its supported subset, and the table compiles
    (it NACKs the whole response otherwise)."""
    from pilotfish.proxy.compile.routes import compile_route_config
    from pilotfish.proxy.compile.subset import CheckResult, check_message

    result = CheckResult()
    check_message(config, "route_config", result)  # type: ignore[arg-type]
    assert not result.warnings, result.warnings
    compile_route_config(config, "route_config", set(), validate_default=False)
