"""extensions.istio.io: WasmPlugin and TrafficExtension (Wasm or Lua filters in the proxy).

Follows crd-all.gen.yaml. OpenAPI limits (lengths, the sha256 pattern, port range, required
fields) are enforced on load; CEL rules, list-map uniqueness and one-of choices are checked in
validation/extensions.py.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field

from ..base import IstioModel
from ..kind_info import KindInfo
from .common import PolicyTargetReference, WorkloadSelector

Int32 = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]
Sha256 = Annotated[str, Field(pattern=r"(^$|^[a-f0-9]{64}$)")]
TargetRefs = Annotated[list[PolicyTargetReference], Field(max_length=16)]


class PluginPhase(StrEnum):
    UNSPECIFIED_PHASE = "UNSPECIFIED_PHASE"
    AUTHN = "AUTHN"
    AUTHZ = "AUTHZ"
    STATS = "STATS"


class PullPolicy(StrEnum):
    UNSPECIFIED_POLICY = "UNSPECIFIED_POLICY"
    IfNotPresent = "IfNotPresent"
    Always = "Always"


class FailStrategy(StrEnum):
    FAIL_CLOSE = "FAIL_CLOSE"
    FAIL_OPEN = "FAIL_OPEN"
    FAIL_RELOAD = "FAIL_RELOAD"


class PluginType(StrEnum):
    UNSPECIFIED_PLUGIN_TYPE = "UNSPECIFIED_PLUGIN_TYPE"
    HTTP = "HTTP"
    NETWORK = "NETWORK"


class EnvValueSource(StrEnum):
    INLINE = "INLINE"
    HOST = "HOST"


class WorkloadMode(StrEnum):
    UNDEFINED = "UNDEFINED"
    CLIENT = "CLIENT"
    SERVER = "SERVER"
    CLIENT_AND_SERVER = "CLIENT_AND_SERVER"


class EnvVar(IstioModel):
    name: Annotated[str, Field(min_length=1, max_length=256)]
    value_from: EnvValueSource | None = None
    value: Annotated[str, Field(max_length=2048)] | None = None


class VmConfig(IstioModel):
    env: Annotated[list[EnvVar], Field(max_length=256)] | None = None


class PortSelector(IstioModel):
    """A destination port; required here, unlike networking's PortSelector."""

    number: Annotated[int, Field(ge=1, le=65535)]


class TrafficSelector(IstioModel):
    mode: WorkloadMode | None = None
    ports: list[PortSelector] | None = None


class WasmPlugin(IstioModel):
    selector: WorkloadSelector | None = None
    target_ref: PolicyTargetReference | None = None
    target_refs: TargetRefs | None = None
    url: Annotated[str, Field(min_length=1)]
    sha256: Sha256 | None = None
    image_pull_policy: PullPolicy | None = None
    image_pull_secret: Annotated[str, Field(min_length=1, max_length=253)] | None = None
    verification_key: str | None = None
    plugin_config: dict[str, Any] | None = None
    plugin_name: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    phase: PluginPhase | None = None
    priority: Int32 | None = None
    fail_strategy: FailStrategy | None = None
    vm_config: VmConfig | None = None
    match: list[TrafficSelector] | None = None
    type: PluginType | None = None


# ---------------------------------------------------------------- TrafficExtension


class ExtensionPhase(StrEnum):
    UNSPECIFIED = "UNSPECIFIED"
    AUTHN = "AUTHN"
    AUTHZ = "AUTHZ"
    STATS = "STATS"


class WasmConfig(IstioModel):
    """TrafficExtension's Wasm filter: WasmPlugin's module fields without the placement ones."""

    url: Annotated[str, Field(min_length=1)]
    sha256: Sha256 | None = None
    image_pull_policy: PullPolicy | None = None
    image_pull_secret: Annotated[str, Field(min_length=1, max_length=253)] | None = None
    verification_key: str | None = None
    plugin_config: dict[str, Any] | None = None
    plugin_name: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    fail_strategy: FailStrategy | None = None
    vm_config: VmConfig | None = None
    type: PluginType | None = None


class LuaConfig(IstioModel):
    inline_code: Annotated[str, Field(min_length=1, max_length=65536)]


class TrafficExtension(IstioModel):
    selector: WorkloadSelector | None = None
    target_refs: TargetRefs | None = None
    phase: ExtensionPhase | None = None
    priority: Int32 | None = None
    match: list[TrafficSelector] | None = None
    wasm: WasmConfig | None = None
    lua: LuaConfig | None = None


KINDS = [
    KindInfo(group="extensions.istio.io", kind="WasmPlugin", versions=("v1alpha1",), model=WasmPlugin, plural="wasmplugins"),
    KindInfo(group="extensions.istio.io", kind="TrafficExtension", versions=("v1alpha1",), model=TrafficExtension, plural="trafficextensions"),
]
