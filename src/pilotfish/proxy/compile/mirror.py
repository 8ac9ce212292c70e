"""RouteAction.request_mirror_policies → MirrorPolicy tuple (router/shadow.py runs them)."""

from __future__ import annotations

from typing import Any

from ..common.errors import ProxyConfigError
from ..common.fractional import Fraction
from ..router.shadow import MirrorPolicy
from .resilience import fraction


def compile_mirror_policies(policies: Any, path: str, cluster_names: set[str],
                            validate: bool, runtime: Any = None) -> tuple[MirrorPolicy, ...]:
    """RouteAction.request_mirror_policies → MirrorPolicy tuple (``trace_sampled`` cannot change
    traffic and is left to compile/subset.py's warning). ``runtime`` (layered_runtime.Runtime) gives
    ``runtime_fraction.runtime_key`` its value."""
    out = []
    for i, p in enumerate(policies):
        ppath = f"{path}[{i}]"
        for name in ("request_headers_mutations", "host_rewrite_literal"):
            if getattr(p, name):
                raise ProxyConfigError(f"{name} is not supported yet", f"{ppath}.{name}")
        if bool(p.cluster) == bool(p.cluster_header):
            raise ProxyConfigError("a mirror policy needs one of cluster and cluster_header", ppath)
        if validate and p.cluster and p.cluster not in cluster_names:
            raise ProxyConfigError(f"unknown shadow cluster {p.cluster!r}", f"{ppath}.cluster")
        pct = Fraction(100, 100)
        if p.HasField("runtime_fraction"):
            rf = p.runtime_fraction
            pct = fraction(rf.default_value, f"{ppath}.runtime_fraction.default_value")
            if runtime is not None:
                pct = Fraction(*runtime.fraction(rf.runtime_key, (pct.numerator, pct.denominator)))
        out.append(MirrorPolicy(p.cluster, pct, not p.disable_shadow_host_suffix_append,
                                p.cluster_header.lower().encode()))
    return tuple(out)
