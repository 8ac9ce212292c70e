"""``typed_per_filter_config`` maps (route configuration, virtual host, route) → compiled
per-filter overrides, and how a more specific level combines with a less specific one."""

from __future__ import annotations

from typing import Any

from ..common.errors import ProxyConfigError
from ..filters.cors_filter import CORS_POLICY_TYPE, CorsPolicy
from ..filters.fault_filter import FAULT_TYPE
from .cors import compile_cors_policy
from .layered_runtime import EMPTY as EMPTY_RUNTIME
from .resilience import compile_fault_any
from .subset import unpack_any


def _cors(value: Any, path: str, warnings: list[str] | None, runtime: Any) -> CorsPolicy:
    return compile_cors_policy(unpack_any(value, path, "per_filter_config"), path, runtime or EMPTY_RUNTIME)


#: The override types this proxy reads, by type: each one's compiler.
_COMPILERS = {FAULT_TYPE: compile_fault_any, CORS_POLICY_TYPE: _cors}


def compile_per_filter(configs: Any, path: str, warnings: list[str] | None = None,
                       runtime: Any = None) -> dict[str, Any]:
    """A typed_per_filter_config map: filter name → compiled override."""
    out: dict[str, Any] = {}
    for key, value in configs.items():
        kpath = f"{path}[{key!r}]"
        type_name = value.type_url.rsplit("/", 1)[-1]
        compiler = _COMPILERS.get(type_name)
        if compiler is None:
            raise ProxyConfigError(f"typed_per_filter_config of type {type_name!r} is not supported "
                                   f"(supported: {', '.join(sorted(_COMPILERS))})", kpath)
        out[key] = compiler(value, kpath, warnings, runtime)
    return out


def merged(outer: dict[str, Any], inner: dict[str, Any]) -> dict[str, Any]:
    """``inner``'s overrides over ``outer``'s: a fault config replaces the less specific one
    whole; a CORS policy takes the less specific one's values for the attributes it leaves unset
    (Envoy's CorsFilter reads each attribute from the most specific policy that sets it)."""
    out = {**outer, **inner}
    for key, value in inner.items():
        base = outer.get(key)
        if isinstance(value, CorsPolicy) and isinstance(base, CorsPolicy):
            out[key] = value.over(base)
    return out
