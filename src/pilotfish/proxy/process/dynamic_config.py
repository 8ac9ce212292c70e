"""Accepted xDS resources → a compiled snapshot → the running server, or an error to NACK with.

Each update builds a candidate set of resources, compiles the whole configuration from it (the
bootstrap's static part included) and only then touches the server: new clusters are warmed,
the server swaps listeners and clusters in one step, kept clusters get their new endpoints.

A response is accepted or rejected resource by resource, as Envoy's listener and cluster
managers do: the resources that compile are applied and each one that does not is rejected —
a new one does not exist, one that existed keeps its previous version in force — and the
response is still NACKed, ``error_detail`` naming every rejected resource and why
(``RejectedResources``). A resource the client already rejected while decoding (it does not
decode, or its name appears twice) is handed in through ``ResponseResources.rejected`` and
treated the same way. An error that names no resource of the response (a cross-resource
conflict elsewhere) rejects the whole response and leaves everything as it was
(``ResourceRejected``: the proxy's ProxyConfigError becomes pilotfish.xds's error here).

Stats scopes follow the configuration: a cluster or listener replaced by an update continues
its predecessor's scope, and a scope nothing names any more is removed once the server's drain
period is over (the connections that still counted into it are gone by then).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ...xds.errors import RejectedResources, ResourceRejected
from ...xds.resources import Failure, Resources
from ...xds.type_urls import ENDPOINT, KIND, LISTENER, ROUTE
from ..compile.dynamic import StatsUndo, compile_snapshot, precheck
from ..common.errors import ProxyConfigError
from .xds_references import eds_names, route_names, route_stat_prefixes

if TYPE_CHECKING:
    from ..compile.compiled import RuntimeConfig
    from .server import ProxyServer


_UNNAMED = re.compile(r"resources\[\d+\]")  # the key of a rejected resource without a name


class DynamicConfig:
    """The ADS client's config target (xds.client.ConfigTarget); ``clock`` is the wall clock
    (when a resource was accepted or rejected, for /config_dump)."""

    def __init__(self, server: ProxyServer, clock: Callable[[], float]) -> None:
        self.server = server
        self.clock = clock
        runtime = server.config
        self.bootstrap = runtime.bootstrap
        dyn = runtime.dynamic
        self.resources: Resources = dyn.resources if dyn is not None else Resources()
        self.updates = 0

    # ---- what to subscribe to ------------------------------------------------------------
    def _route_names(self, resources: Resources) -> set[str]:
        sr = self.bootstrap.static_resources
        return route_names([*sr.listeners, *(e.message for e in resources.listeners.values())])

    def _eds_names(self, resources: Resources) -> set[str]:
        sr = self.bootstrap.static_resources
        return eds_names([*sr.clusters, *(e.message for e in resources.clusters.values())])

    def wanted(self, type_url: str) -> frozenset[str]:
        if type_url == ROUTE:
            return frozenset(self._route_names(self.resources))
        if type_url == ENDPOINT:
            return frozenset(self._eds_names(self.resources))
        return frozenset()

    def is_warm(self, type_url: str) -> bool:
        """Every route (or endpoint set) the accepted config references has arrived."""
        have = self.resources.routes if type_url == ROUTE else self.resources.endpoints
        return all(name in have for name in self.wanted(type_url))

    # ---- an update -----------------------------------------------------------------------
    async def update(self, type_url: str, version: str, messages: Mapping[str, Any]) -> None:
        """Apply one response; raise ResourceRejected to have it NACKed.

        RejectedResources: the rest was applied. Any other ResourceRejected: nothing was.
        """
        rejected: dict[str, str] = dict(getattr(messages, "rejected", {}))
        keep_absent = bool(getattr(messages, "unnamed", False))
        accepted = {n: m for n, m in messages.items() if n not in rejected}
        kind = KIND[type_url]
        prev = self.resources.of(type_url)
        checked = False
        try:
            for _ in range(len(accepted) + 1):  # each pass applies, or rejects one more resource
                try:
                    await self._apply(type_url, version, accepted, rejected, keep_absent, messages)
                    break
                except ProxyConfigError as exc:
                    name = _culprit(kind, exc, accepted, prev)
                    if name is None:
                        raise ResourceRejected(str(exc)) from None
                    rejected[name] = str(exc)
                    del accepted[name]
                if not checked:  # one bad resource found: find the others without whole compiles
                    checked = True
                    rejected.update(self._precheck(kind, accepted, prev))
                    for bad in rejected:
                        accepted.pop(bad, None)
        finally:
            self._schedule_prune()
        if rejected:
            raise RejectedResources(kind, rejected)

    async def _apply(self, type_url: str, version: str, accepted: dict[str, Any], rejected: Mapping[str, str],
                     keep_absent: bool, sent: Mapping[str, Any]) -> None:
        now = self.clock()
        if rejected or keep_absent:
            candidate = self.resources.with_partial(type_url, version, accepted, rejected, now, keep_absent)
        else:
            candidate = self.resources.with_response(type_url, version, accepted, now)
        failures = {n: Failure(sent.get(n), version, err, now) for n, err in rejected.items()
                    if n in sent or not _UNNAMED.fullmatch(n)}
        candidate = candidate.with_failures(type_url, failures, [*sent, *failures])
        candidate = candidate.keep_only(self._route_names(candidate), self._eds_names(candidate))
        server = self.server
        previous = server.config
        compiled = server.compiled
        undo: list[StatsUndo] = []
        try:
            runtime = compile_snapshot(self.bootstrap, candidate, stats=compiled.stats, sinks=compiled.sinks,
                                       rng=compiled.rng or server.rng, previous=previous,
                                       warnings=previous.warnings, undo=undo, layers=compiled.layers)
        except ProxyConfigError:
            _restore(undo)
            raise
        loop = asyncio.get_running_loop()
        kept = {id(c) for c in previous.clusters.values()}
        fresh = [c for c in runtime.clusters.values() if id(c) not in kept]
        try:
            for cluster in fresh:  # warmed before anything can route to them
                await cluster.initialize(loop)
            await server.apply_config(runtime)
        except OSError as exc:
            for cluster in fresh:
                cluster.close()
            _restore(undo)
            raise ProxyConfigError(f"cannot bind: {exc.strerror or exc}",
                                   _bind_path(type_url, exc, runtime, previous)) from None
        for cluster, settings in runtime.host_updates:
            cluster.update_settings(settings)  # the same install path a static load_assignment takes
        self.resources = candidate
        self.updates += 1

    def _precheck(self, kind: str, accepted: Mapping[str, Any], prev: Mapping[str, Any]) -> dict[str, str]:
        """Errors of the added or changed resources, each compiled alone."""
        compiled = self.server.compiled
        routes = {n: e.message for n, e in self.resources.routes.items()}
        out = {}
        for name, msg in accepted.items():
            old = prev.get(name)
            if old is not None and old.message == msg:
                continue
            try:
                precheck(kind, msg, f"{kind}[{name}]", stats=compiled.stats, sinks=compiled.sinks,
                         clusters=self.server.config.clusters, routes=routes)
            except ProxyConfigError as exc:
                out[name] = str(exc)
        return out

    # ---- stats scopes --------------------------------------------------------------------
    def live_scopes(self) -> set[str]:
        """The prefixes of the cluster, listener, connection manager and RDS scopes the
        configuration still names (PRUNED_FAMILIES)."""
        sr = self.bootstrap.static_resources
        res = self.resources
        clusters = [*sr.clusters, *(e.message for e in res.clusters.values())]
        live = {f"cluster.{c.alt_stat_name or c.name}" for c in clusters}
        for lc in self.server.config.listeners:
            live.add(f"listener.{lc.address}_{lc.port}")
            if lc.hcm is not None:
                live.add(f"http.{lc.hcm.stat_prefix}")
        listeners = [*sr.listeners, *(e.message for e in res.listeners.values())]
        for route, prefixes in route_stat_prefixes(listeners).items():
            live.update(f"http.{p}.rds.{route}" for p in prefixes)
        return live

    def _schedule_prune(self) -> None:
        """Drop dead scopes after the drain period (a draining listener or cluster still counts)."""
        loop = asyncio.get_running_loop()
        loop.call_later(self.server.drain_time, self.prune_scopes)

    def prune_scopes(self) -> None:
        self.server.stats.prune_scopes(self.live_scopes())


def _restore(undo: list[StatsUndo]) -> None:
    for u in reversed(undo):
        u.restore()


def _culprit(kind: str, exc: ProxyConfigError, accepted: Mapping[str, Any],
             prev: Mapping[str, Any]) -> str | None:
    """The resource of this response an error names (``Listener[name]...``), if it is one the
    response added or changed; None when the error lies elsewhere."""
    m = re.match(rf"{re.escape(kind)}\[(.*?)\](?:\.|$)", exc.field_path)
    if m is None:
        return None
    name = m.group(1)
    if name not in accepted:
        for candidate in accepted:  # a name holding "]."
            if exc.field_path.startswith(f"{kind}[{candidate}]"):
                name = candidate
                break
        else:
            return None
    old = prev.get(name)
    if old is not None and old.message == accepted[name]:
        return None
    return name


def _bind_path(type_url: str, exc: OSError, runtime: RuntimeConfig, previous: RuntimeConfig) -> str:
    """``Listener[name]`` of the listener whose address could not be bound (an LDS response;
    any other response that fails to bind is rejected whole)."""
    if type_url != LISTENER:
        return "listener"
    old = {lc.name: (lc.address, lc.port) for lc in previous.listeners}
    new = [lc for lc in runtime.listeners if old.get(lc.name) != (lc.address, lc.port)]
    text = str(exc)
    for lc in new:
        if len(new) == 1 or f"'{lc.address}', {lc.port})" in text:
            return f"Listener[{lc.name}].address"
    return "listener"
