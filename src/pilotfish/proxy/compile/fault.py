"""The fault filter's config → FaultFilter (``envoy.filters.http.fault``); its route-level
``typed_per_filter_config`` overrides are compiled in per_filter.py."""

from __future__ import annotations

from typing import Any

from ..common.errors import ProxyConfigError
from ..common.stats import StatsStore
from ..filters.fault_filter import FaultFilter, active_faults
from .resilience import compile_fault


def compile_fault_filter(name: str, msg: Any, path: str, stats: StatsStore, stat_prefix: str,
                         warnings: list[str] | None = None, runtime: Any = None) -> FaultFilter:
    """An HttpFilter named ``name`` holding an HTTPFault (already unpacked); ``runtime``
    (layered_runtime.Runtime) gives its runtime keys their values."""
    if not name:
        raise ProxyConfigError("the fault filter needs a name (typed_per_filter_config keys refer to it)",
                               f"{path}.name")
    policy = compile_fault(msg, f"{path}.typed_config", warnings, runtime)
    return FaultFilter(name, policy, active_faults(stats, stat_prefix))

