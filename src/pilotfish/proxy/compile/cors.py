"""The CORS filter's config → CorsFilter (``envoy.filters.http.cors``) and its per-route
``CorsPolicy`` entries in ``typed_per_filter_config``."""

from __future__ import annotations

from typing import Any

from ..common.errors import ProxyConfigError
from ..filters.cors_filter import CorsFilter, CorsPolicy
from ..common.fractional import Fraction
from .layered_runtime import EMPTY as EMPTY_RUNTIME, Runtime
from .matchers import string_matcher
from .resilience import fraction


def compile_cors_filter(name: str, path: str) -> CorsFilter:
    """An HttpFilter named ``name`` holding a Cors message (which has no fields)."""
    if not name:
        raise ProxyConfigError("the cors filter needs a name (typed_per_filter_config keys refer to it)",
                               f"{path}.name")
    return CorsFilter(name)


def _text(value: str) -> bytes | None:
    return value.encode() if value else None


def _bool(msg: Any, name: str) -> bool | None:
    return getattr(msg, name).value if msg.HasField(name) else None


def _enabled(msg: Any, name: str, path: str, runtime: Runtime) -> Any:
    """A RuntimeFractionalPercent: its runtime key's value, else its default."""
    if not msg.HasField(name):
        return None
    rf = getattr(msg, name)
    default = fraction(rf.default_value, f"{path}.{name}.default_value")
    numerator, denominator = runtime.fraction(rf.runtime_key, (default.numerator, default.denominator))
    return Fraction(numerator, denominator)


def compile_cors_policy(msg: Any, path: str, runtime: Runtime = EMPTY_RUNTIME) -> CorsPolicy:
    """A CorsPolicy message (already unpacked) → CorsPolicy; unset fields stay None."""
    origins = tuple(string_matcher(m, f"{path}.allow_origin_string_match[{i}]")
                    for i, m in enumerate(msg.allow_origin_string_match))
    return CorsPolicy(
        origins=origins or None,
        allow_methods=_text(msg.allow_methods),
        allow_headers=_text(msg.allow_headers),
        expose_headers=_text(msg.expose_headers),
        max_age=_text(msg.max_age),
        allow_credentials=_bool(msg, "allow_credentials"),
        allow_private_network_access=_bool(msg, "allow_private_network_access"),
        forward_not_matching_preflights=_bool(msg, "forward_not_matching_preflights"),
        enabled=_enabled(msg, "filter_enabled", path, runtime),
    )
