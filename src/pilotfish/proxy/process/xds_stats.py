"""Envoy's management-server and xDS subscription stats: the ADS client's stats sink.

Envoy keeps ``control_plane.*`` for the stream and one set of subscription stats per
subscription: ``cluster_manager.cds.*``, ``listener_manager.lds.*``,
``http.<stat_prefix>.rds.<route_config_name>.*`` and, for EDS, ``cluster.<name>.*``. Counting
follows Envoy's gRPC subscription: every response is one ``update_attempt`` and then one
``update_success`` (``version`` = xxHash64 of its ``version_info``, ``update_time`` = now in ms)
or one ``update_rejected``; a failed or closed stream is an ``update_attempt`` and an
``update_failure`` of every subscription, an initial fetch timeout an ``update_attempt`` and an
``init_fetch_timeout`` of each subscription still waiting. Requests (ACKs, NACKs, subscription
changes) count nothing. RDS and EDS responses count for the names they carry only; a
partly-accepted LDS or CDS response counts as rejected (it is NACKed), as Envoy's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import xxhash

from ...xds.type_urls import CLUSTER, ENDPOINT, LISTENER, ROUTE
from ..common.stats import ControlPlaneStats, StatsStore, SubscriptionStats
from .xds_references import eds_stat_names, route_stat_prefixes


def version_hash(version_info: str) -> int:
    """Envoy's ``version`` gauge: HashUtil::xxHash64 of the version_info (seed 0)."""
    return xxhash.xxh64_intdigest(version_info.encode())


class XdsStats:
    """The scopes of one ADS client (xds.client.StatsSink); ``config`` (the dynamic config)
    names the routes' HCMs and the EDS clusters; ``clock`` is the wall clock (update_time)."""

    def __init__(self, store: StatsStore, config: Any, clock: Callable[[], float]) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        self.control: ControlPlaneStats = store.control_plane()

    def subscribe(self, type_url: str) -> None:
        """Create the scope of a wildcard subscription when it starts (it shows zeros)."""
        self.scopes(type_url, ())

    # ---- scopes ---------------------------------------------------------------------------
    def scopes(self, type_url: str, names: Iterable[str]) -> list[SubscriptionStats]:
        store = self.store
        if type_url == CLUSTER:
            return [store.subscription("cluster_manager.cds")]
        if type_url == LISTENER:
            return [store.subscription("listener_manager.lds")]
        names = list(names)
        if not names:
            return []
        bootstrap = getattr(self.config, "bootstrap", None)
        res = self.config.resources
        sr = bootstrap.static_resources if bootstrap is not None else None
        if type_url == ROUTE:
            listeners = [*(sr.listeners if sr is not None else ()), *(e.message for e in res.listeners.values())]
            refs = route_stat_prefixes(listeners)
            return [store.subscription(f"http.{p}.rds.{n}") for n in names for p in sorted(refs.get(n, ()))]
        if type_url == ENDPOINT:
            clusters = [*(sr.clusters if sr is not None else ()), *(e.message for e in res.clusters.values())]
            refs = eds_stat_names(clusters)
            return [store.subscription(f"cluster.{c}") for n in names for c in sorted(refs.get(n, ()))]
        return []

    # ---- events ---------------------------------------------------------------------------
    def connected(self, up: bool) -> None:
        self.control.connected_state = 1 if up else 0

    def response(self, type_url: str, version: str, names: Iterable[str], rejected: Iterable[str],
                 whole: bool, empty: bool) -> None:
        """One response: ``rejected`` names (RDS/EDS) or ``whole`` (the response was NACKed)."""
        now = int(self.clock() * 1000)
        vhash = version_hash(version)
        if type_url in (CLUSTER, LISTENER):
            outcomes = [(s, whole) for s in self.scopes(type_url, ())]
        else:
            bad = set(rejected)
            outcomes = [(s, whole or n in bad) for n in names for s in self.scopes(type_url, (n,))]
        for scope, failed in outcomes:
            scope.update_attempt += 1
            if failed:
                scope.update_rejected += 1
                continue
            scope.update_success += 1
            scope.version = vhash
            scope.update_time = now
            if empty:
                scope.update_empty += 1

    def stream_failed(self, subscriptions: Iterable[tuple[str, Iterable[str]]]) -> None:
        self.control.connected_state = 0
        for type_url, names in subscriptions:
            for scope in self.scopes(type_url, names):
                scope.update_attempt += 1
                scope.update_failure += 1

    def initial_fetch_timeout(self, subscriptions: Iterable[tuple[str, Iterable[str]]]) -> None:
        for type_url, names in subscriptions:
            for scope in self.scopes(type_url, names):
                scope.update_attempt += 1
                scope.init_fetch_timeout += 1
