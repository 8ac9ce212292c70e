"""Bootstrap + accepted xDS resources → a NEW RuntimeConfig, keeping what did not change.

Compiling never touches the running snapshot: a Cluster whose message is unchanged is reused
(its hosts and pools survive), and new endpoint sets for kept clusters are returned in
``host_updates`` for the swap to install. A listener whose RDS route has not arrived warms; if
an older version of it is serving, that one keeps serving on the new clusters.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from .layered_runtime import Runtime, load as load_runtime
from ..filters.access_log import AccessLogSink
from ..upstream.cluster import EDS, Cluster, ClusterSettings
from ..common.errors import ProxyConfigError
from ..http.config import ListenerConfig
from .compiled import AdminConfig, RuntimeConfig
from ..common.stats import ClusterStats, StatsStore
from .clusters import compile_cluster, compile_load_assignment
from .listeners import RouteWarming, compile_listener, socket_address
from .service_clusters import data_path_clusters

_EDS = 3
_ADS_SOURCES = ("ads", "self")


@dataclass(frozen=True, slots=True)
class StatsUndo:
    """A shared cluster scope's state before a candidate Cluster took it over."""

    scope: ClusterStats
    extra: tuple[Any, ...]
    membership_total: int
    membership_healthy: int

    @classmethod
    def of(cls, scope: ClusterStats) -> StatsUndo:
        return cls(scope, scope.extra, scope.membership_total, scope.membership_healthy)

    def restore(self) -> None:
        s = self.scope
        s.extra, s.membership_total, s.membership_healthy = (self.extra, self.membership_total,
                                                              self.membership_healthy)


@dataclass(frozen=True)
class DynamicState:
    """What /config_dump shows beyond the bootstrap: accepted resources and who is warming."""

    resources: Any  # xds.resources.Resources
    warming_clusters: tuple[str, ...] = ()
    warming_listeners: tuple[str, ...] = ()


def compile_snapshot(bootstrap: Any, resources: Any, *, stats: StatsStore,
                     sinks: dict[str, AccessLogSink], rng: random.Random,
                     previous: RuntimeConfig | None = None,
                     warnings: list[str] | None = None,
                     undo: list[StatsUndo] | None = None,
                     layers: Runtime | None = None) -> RuntimeConfig:
    """``resources`` is None for a static-only bootstrap (RDS and EDS are then errors).

    A replaced cluster's successor shares its stats scope (counters continue); what the new
    Cluster writes into a scope at construction is recorded in ``undo`` so that a snapshot that
    is never applied can give the scope back to the cluster still serving (``StatsUndo.restore``).
    ``layers``: the runtime layers as read at startup (read here when not given).
    """
    errors: list[ProxyConfigError] = []
    runtime = layers
    if runtime is None:
        try:
            runtime = load_runtime(bootstrap, rng)
        except ProxyConfigError as exc:
            errors.extend(exc.errors)
            runtime = Runtime({}, rng)
    clusters, keys, updates, warming_clusters = _clusters(bootstrap, resources, stats, rng, previous, undo,
                                                          errors)
    listeners, warming_listeners = _listeners(bootstrap, resources, stats, clusters, sinks, previous, errors,
                                              runtime)
    if errors:  # every cluster and listener was compiled: all their problems are listed at once
        raise ProxyConfigError.collected(errors)
    admin = None
    if bootstrap.HasField("admin") and bootstrap.admin.HasField("address"):
        address, port = socket_address(bootstrap.admin.address, "admin.address")
        admin = AdminConfig(address, port)
    dynamic = None
    if resources is not None:
        dynamic = DynamicState(resources, tuple(warming_clusters), tuple(warming_listeners))
    return RuntimeConfig(listeners, clusters, admin, bootstrap, list(warnings or []),
                         cluster_keys=keys, host_updates=updates, dynamic=dynamic)


def _clusters(bootstrap: Any, resources: Any, stats: StatsStore, rng: random.Random,
              previous: RuntimeConfig | None, undo: list[StatsUndo] | None, errors: list[ProxyConfigError]
              ) -> tuple[dict[str, Cluster], dict[str, bytes], list[tuple[Cluster, ClusterSettings]], list[str]]:
    prev = previous.clusters if previous is not None else {}
    prev_keys = previous.cluster_keys if previous is not None else {}
    endpoints: Mapping[str, Any] = {}
    sources = [(f"static_resources.clusters[{i}]", c, True) for i, c in data_path_clusters(bootstrap)]
    if resources is not None:
        endpoints = {name: e.message for name, e in resources.endpoints.items()}
        sources += [(f"Cluster[{name}]", e.message, False) for name, e in resources.clusters.items()]
    clusters: dict[str, Cluster] = {}
    keys: dict[str, bytes] = {}
    updates: list[tuple[Cluster, ClusterSettings]] = []
    warming: list[str] = []
    seen: set[str] = set()
    failed: dict[str, None] = {}
    for path, c, static in sources:
        if c.name in seen:
            errors.append(ProxyConfigError(f"duplicate cluster name {c.name!r}", f"{path}.name"))
            continue
        seen.add(c.name)
        try:
            if c.WhichOneof("cluster_discovery_type") == "type" and c.type == _EDS:
                if resources is None:
                    raise ProxyConfigError("EDS clusters need dynamic_resources.ads_config", f"{path}.type")
                service = c.eds_cluster_config.service_name or c.name
                cla = endpoints.get(service)
                settings = _eds_settings(c, path, service, cla)
                if cla is None and not static:
                    warming.append(c.name)  # Envoy keeps a new EDS cluster warming until its endpoints arrive
                    continue
            else:
                settings = compile_cluster(c, path)
        except ProxyConfigError as exc:
            errors.extend(exc.errors)
            failed[c.name] = None  # still a known name: routes naming it are not in error too
            continue
        key = c.SerializeToString(deterministic=True)
        old = prev.get(c.name)
        if old is not None and prev_keys.get(c.name) == key:
            cluster = old
            if old.settings != settings:
                updates.append((old, settings))
        else:
            scope = stats.cluster(c.alt_stat_name or settings.name)
            if undo is not None:
                undo.append(StatsUndo.of(scope))
            cluster = Cluster(settings, scope, rng)
        clusters[c.name] = cluster
        keys[c.name] = key
    if failed:  # this snapshot is refused anyway; listeners compile against every cluster name
        return {**clusters, **failed}, keys, updates, warming  # type: ignore[dict-item]
    return clusters, keys, updates, warming


def precheck(kind: str, msg: Any, path: str, *, stats: StatsStore, sinks: dict[str, AccessLogSink],
             clusters: Mapping[str, Cluster], routes: Mapping[str, Any]) -> None:
    """Compile one Listener, Cluster or ClusterLoadAssignment alone; raise what compiling the
    whole snapshot would raise for it. Lets a response with several bad resources be sorted out
    in one pass rather than one whole-snapshot compile per bad resource. (A RouteConfiguration
    compiles only inside its listeners: the whole compile finds those.)"""
    if kind == "Cluster":
        if msg.WhichOneof("cluster_discovery_type") == "type" and msg.type == _EDS:
            _eds_settings(msg, path, msg.eds_cluster_config.service_name or msg.name, None)
        else:
            compile_cluster(msg, path)
    elif kind == "Listener":
        try:
            compile_listener(msg, path, stats, dict(clusters), sinks, routes)
        except RouteWarming:
            pass
    elif kind == "ClusterLoadAssignment":
        compile_load_assignment(msg, path, EDS)


def _eds_settings(c: Any, path: str, service: str, cla: Any) -> ClusterSettings:
    """An EDS cluster with the endpoints of its ClusterLoadAssignment, compiled by the same
    function as a static load_assignment (weights, health, localities, priorities)."""
    source = c.eds_cluster_config.eds_config.WhichOneof("config_source_specifier")
    if source not in _ADS_SOURCES:
        raise ProxyConfigError("EDS needs eds_config ads {} (ADS is the only xDS transport)",
                               f"{path}.eds_cluster_config.eds_config")
    settings = compile_cluster(c, path)
    if cla is None:
        return settings
    assignment = compile_load_assignment(cla, f"ClusterLoadAssignment[{service}]", settings.kind)
    return replace(settings, assignment=assignment)


def _listeners(bootstrap: Any, resources: Any, stats: StatsStore, clusters: dict[str, Cluster],
               sinks: dict[str, AccessLogSink], previous: RuntimeConfig | None,
               errors: list[ProxyConfigError], runtime: Runtime
               ) -> tuple[list[ListenerConfig], list[str]]:
    prev = {lc.name: lc for lc in previous.listeners} if previous is not None else {}
    routes = None
    sources = [(f"static_resources.listeners[{i}]", lst)
               for i, lst in enumerate(bootstrap.static_resources.listeners)]
    if resources is not None:
        routes = {name: e.message for name, e in resources.routes.items()}
        sources += [(f"Listener[{name}]", e.message) for name, e in resources.listeners.items()]
    listeners: list[ListenerConfig] = []
    warming: list[str] = []
    names: set[str] = set()
    addresses: dict[tuple[str, int], str] = {}
    for path, lst in sources:
        try:
            lc = compile_listener(lst, path, stats, clusters, sinks, routes, runtime)
        except ProxyConfigError as exc:
            errors.extend(exc.errors)
            continue
        except RouteWarming:
            name = lst.name
            warming.append(name)
            old = prev.get(name)
            if old is None:
                continue
            # The serving version keeps serving (on the new clusters) until the new one is warm.
            lc = replace(old, hcm=replace(old.hcm, clusters=clusters))
        else:
            lc.source = lst
            lc.key = lst.SerializeToString(deterministic=True)
        if lc.name in names:
            errors.append(ProxyConfigError(f"duplicate listener name {lc.name!r}", f"{path}.name"))
            continue
        names.add(lc.name)
        if lc.port:
            other = addresses.setdefault((lc.address, lc.port), lc.name)
            if other != lc.name:
                errors.append(ProxyConfigError(f"address {lc.address}:{lc.port} is already used by listener "
                                               f"{other!r}", f"{path}.address"))
                continue
        listeners.append(lc)
    return listeners, warming
