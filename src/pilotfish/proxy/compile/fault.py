"""The fault filter's config → FaultFilter (``envoy.filters.http.fault``) and route-level
``typed_per_filter_config`` overrides."""

from __future__ import annotations

from typing import Any

from ..common.errors import ProxyConfigError
from ..common.stats import StatsStore
from ..filters.fault_filter import FAULT_TYPE, FaultFilter, active_faults
from .resilience import compile_fault, compile_fault_any


def compile_fault_filter(name: str, msg: Any, path: str, stats: StatsStore, stat_prefix: str,
                         warnings: list[str] | None = None, runtime: Any = None) -> FaultFilter:
    """An HttpFilter named ``name`` holding an HTTPFault (already unpacked); ``runtime``
    (layered_runtime.Runtime) gives its runtime keys their values."""
    if not name:
        raise ProxyConfigError("the fault filter needs a name (typed_per_filter_config keys refer to it)",
                               f"{path}.name")
    policy = compile_fault(msg, f"{path}.typed_config", warnings, runtime)
    return FaultFilter(name, policy, active_faults(stats, stat_prefix))


def compile_per_filter(configs: Any, path: str, warnings: list[str] | None = None,
                       runtime: Any = None) -> dict[str, Any]:
    """A typed_per_filter_config map: filter name → compiled override (fault filters only)."""
    out: dict[str, Any] = {}
    for key, value in configs.items():
        kpath = f"{path}[{key!r}]"
        type_name = value.type_url.rsplit("/", 1)[-1]
        if type_name != FAULT_TYPE:
            raise ProxyConfigError(f"typed_per_filter_config of type {type_name!r} is not supported "
                                   f"(supported: {FAULT_TYPE})", kpath)
        out[key] = compile_fault_any(value, kpath, warnings, runtime)
    return out
