"""Bootstrap → RuntimeConfig: clusters first (routes check cluster names), then listeners."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from ..filters.access_log import AccessLogSink
from ..common.errors import ProxyConfigError
from .layered_runtime import EMPTY, Runtime, load as load_runtime
from .compiled import RuntimeConfig
from ..common.stats import StatsStore
from .dynamic import compile_snapshot
from .stats_config import compile_stats_tags
from .overload import OverloadConfig, compile_overload


@dataclass
class Compiled:
    runtime: RuntimeConfig
    stats: StatsStore
    sinks: dict[str, AccessLogSink]
    rng: random.Random | None = None  # the clusters' random source, reused by later snapshots
    layers: Runtime | None = None  # layered_runtime as read at startup, reused by later snapshots
    overload: OverloadConfig | None = None  # overload_manager and connection limits (compile/overload.py)


def compile_bootstrap(bootstrap: Any, rng: random.Random | None = None,
                      warnings: list[str] | None = None) -> Compiled:
    """The first snapshot. With ``dynamic_resources`` it holds the static part only; the xDS
    client compiles later snapshots from the same bootstrap plus what the server sends."""
    rng = rng or random.Random()
    stats = StatsStore(bootstrap.node)
    stats.tags = compile_stats_tags(bootstrap)
    sinks: dict[str, AccessLogSink] = {}
    resources = None
    if bootstrap.HasField("dynamic_resources"):
        from ...xds.resources import Resources

        resources = Resources()
    try:
        layers = load_runtime(bootstrap, rng)  # the disk layer is read once, here
    except ProxyConfigError:
        layers = None  # compile_snapshot lists the error with the others
    runtime = compile_snapshot(bootstrap, resources, stats=stats, sinks=sinks, rng=rng, warnings=warnings,
                               layers=layers)
    overload = compile_overload(bootstrap, layers or EMPTY)  # (parse_bootstrap warned)
    return Compiled(runtime, stats, sinks, rng, layers, overload)
