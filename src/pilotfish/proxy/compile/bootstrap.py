"""Bootstrap → RuntimeConfig: clusters first (routes check cluster names), then listeners."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from ..access_log import AccessLogSink
from ..cluster import Cluster
from ..errors import ProxyConfigError
from ..runtime import AdminConfig, ListenerConfig, RuntimeConfig
from ..stats import StatsStore
from .clusters import compile_cluster
from .listeners import compile_listener, socket_address


@dataclass
class Compiled:
    runtime: RuntimeConfig
    stats: StatsStore
    sinks: dict[str, AccessLogSink]


def compile_bootstrap(bootstrap: Any, rng: random.Random | None = None,
                      warnings: list[str] | None = None) -> Compiled:
    rng = rng or random.Random()
    stats = StatsStore()
    sr = bootstrap.static_resources
    clusters: dict[str, Cluster] = {}
    for i, c in enumerate(sr.clusters):
        path = f"static_resources.clusters[{i}]"
        settings = compile_cluster(c, path)
        if settings.name in clusters:
            raise ProxyConfigError(f"duplicate cluster name {settings.name!r}", f"{path}.name")
        clusters[settings.name] = Cluster(settings, stats.cluster(c.alt_stat_name or settings.name), rng)
    sinks: dict[str, AccessLogSink] = {}
    listeners: list[ListenerConfig] = []
    seen: set[str] = set()
    for i, lst in enumerate(sr.listeners):
        path = f"static_resources.listeners[{i}]"
        lc = compile_listener(lst, path, stats, clusters, sinks)
        if lc.name in seen:
            raise ProxyConfigError(f"duplicate listener name {lc.name!r}", f"{path}.name")
        seen.add(lc.name)
        listeners.append(lc)
    admin = None
    if bootstrap.HasField("admin") and bootstrap.admin.HasField("address"):
        address, port = socket_address(bootstrap.admin.address, "admin.address")
        admin = AdminConfig(address, port)
    return Compiled(RuntimeConfig(listeners, clusters, admin, bootstrap, list(warnings or [])), stats, sinks)
