"""Registry test input: YAML read through the real loader and models."""

from __future__ import annotations

import textwrap

from pilotfish.config.base import Resource
from pilotfish.config.errors import LoadError
from pilotfish.config.loader import documents_from_text, to_resource
from pilotfish.registry.build import build_registry
from pilotfish.registry.model import Endpoint, RegistrySnapshot, Service, Workload


def resources(text: str) -> list[Resource]:
    out: list[Resource] = []
    for doc in documents_from_text(textwrap.dedent(text), "test.yaml"):
        assert not isinstance(doc, LoadError), doc
        out.append(to_resource(doc))
    return out


def registry(text: str, connected: tuple[Workload, ...] = (), domain_suffix: str = "cluster.local") -> RegistrySnapshot:
    return build_registry(resources(text), connected=connected, domain_suffix=domain_suffix)


def service(snap: RegistrySnapshot, hostname: str, namespace: str = "default") -> Service:
    found = [s for s in snap.by_hostname(hostname) if s.namespace == namespace]
    assert len(found) == 1, [s.hostname for s in snap.services]
    return found[0]


def endpoints(snap: RegistrySnapshot, hostname: str, namespace: str = "default") -> tuple[Endpoint, ...]:
    return snap.endpoints_of(service(snap, hostname, namespace))
