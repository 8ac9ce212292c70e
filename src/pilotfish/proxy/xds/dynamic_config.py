"""Accepted xDS resources → a compiled snapshot → the running server, or an error to NACK with.

Each update builds a candidate set of resources, compiles the whole configuration from it (the
bootstrap's static part included) and only then touches the server: new clusters are warmed,
the server swaps listeners and clusters in one step, kept clusters get their new endpoints.
A compile error leaves everything as it was.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..compile.dynamic import compile_snapshot
from ..errors import ProxyConfigError
from .resources import Resources, eds_names, route_names
from .type_state import ENDPOINT, ROUTE

if TYPE_CHECKING:
    from ..server import ProxyServer


class DynamicConfig:
    def __init__(self, server: ProxyServer, clock: Callable[[], float] = time.time) -> None:
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
        """Apply one accepted-looking response; raise ProxyConfigError to have it NACKed."""
        candidate = self.resources.with_response(type_url, version, messages, self.clock())
        candidate = candidate.keep_only(self._route_names(candidate), self._eds_names(candidate))
        server = self.server
        previous = server.config
        compiled = server.compiled
        runtime = compile_snapshot(self.bootstrap, candidate, stats=compiled.stats, sinks=compiled.sinks,
                                   rng=compiled.rng or server.rng, previous=previous,
                                   warnings=previous.warnings)
        loop = asyncio.get_running_loop()
        kept = {id(c) for c in previous.clusters.values()}
        fresh = [c for c in runtime.clusters.values() if id(c) not in kept]
        for cluster in fresh:  # warmed before anything can route to them
            await cluster.initialize(loop)
        try:
            await server.apply_config(runtime)
        except OSError as exc:
            for cluster in fresh:
                cluster.close()
            raise ProxyConfigError(f"cannot bind: {exc.strerror or exc}", "listener") from None
        for cluster, settings in runtime.host_updates:
            cluster.update_settings(settings)  # the same install path a static load_assignment takes
        self.resources = candidate
        self.updates += 1
