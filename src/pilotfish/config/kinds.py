"""The registry of kinds the mesh understands: API group, served versions, model.

Each models module declares its kinds as ``KINDS = [KindInfo(...), ...]``; this module
collects them. Lookups take an apiVersion so a resource with an unserved version is refused
the way the API server would refuse it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from pydantic import BaseModel


@dataclass(frozen=True)
class KindInfo:
    group: str  # "" for the Kubernetes core group
    kind: str
    versions: tuple[str, ...]
    model: type[BaseModel]
    plural: str
    namespaced: bool = True
    spec_key: str | None = "spec"  # None: the content is the document's other top-level fields
    istio: bool = True  # an Istio CRD kind (validated by the webhook rules), not a Kubernetes built-in

    def api_versions(self) -> tuple[str, ...]:
        return tuple(f"{self.group}/{v}" if self.group else v for v in self.versions)


@cache
def registry() -> dict[tuple[str, str], KindInfo]:
    from . import models

    table: dict[tuple[str, str], KindInfo] = {}
    for module in models.MODULES:
        for info in getattr(module, "KINDS", ()):
            table[(info.group, info.kind)] = info
    return table


def lookup(api_version: str, kind: str) -> KindInfo | None:
    """The kind's info when ``api_version`` names one of its served versions, else None."""
    group, _, version = api_version.rpartition("/")
    info = registry().get((group, kind))
    if info is None or version not in info.versions:
        return None
    return info


def by_kind(kind: str) -> list[KindInfo]:
    return [info for (_, k), info in registry().items() if k == kind]


def all_kinds() -> list[KindInfo]:
    return list(registry().values())
