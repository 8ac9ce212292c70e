"""The shared shape of every resource: pydantic base model, metadata and the envelope.

Models use camelCase aliases (the YAML/JSON names) and reject unknown fields as the CRD
schemas do. In Python, fields are snake_case; YAML is always read by alias only.
"""

from __future__ import annotations

from typing import Any

from pydantic import AliasGenerator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from .errors import Position


def _alias(name: str) -> str:
    # A trailing underscore avoids a Python keyword ("from_", "not_"); the YAML name drops it.
    return to_camel(name.rstrip("_"))


class IstioModel(BaseModel):
    """Base for every spec message: strict field names, immutable once built."""

    model_config = ConfigDict(
        alias_generator=AliasGenerator(alias=_alias),
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
        frozen=True,
        strict=False,
        protected_namespaces=(),
    )

    def dump(self) -> dict[str, Any]:
        """The resource as YAML would carry it: camelCase, unset fields left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_unset=True)


class OpenModel(IstioModel):
    """For Kubernetes objects we read only partly: unknown fields are kept, not rejected."""

    model_config = ConfigDict(extra="allow")


class ObjectMeta(OpenModel):
    """Kubernetes ObjectMeta; the fields the mesh reads are typed, the rest kept."""

    name: str = ""
    generate_name: str | None = None
    namespace: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    resource_version: str | None = None
    generation: int | None = None
    uid: str | None = None
    creation_timestamp: str | None = None


class Resource(BaseModel):
    """One config object: Kubernetes envelope around a typed spec, plus where it came from."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    api_version: str
    kind: str
    metadata: ObjectMeta
    spec: Any = None
    status: Any = None
    position: Position = Field(default_factory=Position)
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0] if "/" in self.api_version else ""

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str:
        return self.metadata.namespace or ""

    @property
    def labels(self) -> dict[str, str]:
        return self.metadata.labels or {}

    @property
    def annotations(self) -> dict[str, str]:
        return self.metadata.annotations or {}

    @property
    def ref(self) -> str:
        """``Kind namespace/name`` (or ``Kind name`` when cluster-scoped or unset), as istioctl prints."""
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"
