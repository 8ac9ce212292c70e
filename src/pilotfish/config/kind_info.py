"""How a kind is declared: API group, served versions, model, plural, scope.

Each models module lists its kinds as ``KINDS = [KindInfo(...), ...]``; ``kinds`` (a layer
above the models) collects them into the registry, so this declaration imports no model.
"""

from __future__ import annotations

from dataclasses import dataclass

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
