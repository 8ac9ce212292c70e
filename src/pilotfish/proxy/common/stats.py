"""Envoy-style stats as plain integer attributes: a request costs a few ``+= 1``.

Each scope (cluster, HTTP connection manager, listener) is a slotted object; names and tags
are only built when /stats or /stats/prometheus is read. A name has one scope: a cluster or
listener replaced by an xDS update keeps counting into it, and it goes (prune_scopes) once the
configuration no longer names it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any, TypeVar

from . import histogram
from .istio_metrics import IstioMetrics, merge_rows
from .stats_render import render_json, render_prometheus, render_text
from .stats_tags import TagProducer, default_producer

__all__ = ["StatsStore", "merge_snapshots", "render_json", "render_prometheus", "render_text"]


class _Scope:
    """Counters and gauges are ints; a histogram is a list of circllhist bin counts
    (histogram.py), recorded with a table index and a ``+= 1``."""

    __slots__ = ()
    COUNTERS: tuple[str, ...] = ()
    GAUGES: tuple[str, ...] = ()
    HISTOGRAMS: tuple[str, ...] = ()

    def __init__(self) -> None:
        for name in self.COUNTERS + self.GAUGES:
            setattr(self, name, 0)
        for name in self.HISTOGRAMS:
            setattr(self, name, histogram.new_counts())

    def histograms(self) -> Iterator[tuple[str, list[int]]]:
        for name in self.HISTOGRAMS:
            yield name, getattr(self, name)

    def values(self) -> Iterator[tuple[str, int, bool]]:
        """(name, value, is_counter) for every stat of the scope."""
        for name in self.COUNTERS:
            yield name, getattr(self, name), True
        for name in self.GAUGES:
            yield name, getattr(self, name), False


S = TypeVar("S", bound=_Scope)


class ClusterStats(_Scope):
    COUNTERS = (
        "upstream_rq_total", "upstream_rq_completed", "upstream_rq_timeout",
        "upstream_rq_retry", "upstream_rq_retry_success", "upstream_rq_pending_total",
        "upstream_cx_total", "upstream_cx_connect_fail", "upstream_cx_connect_timeout",
        "upstream_cx_destroy", "upstream_cx_idle_timeout", "upstream_cx_max_requests",
        "upstream_cx_protocol_error", "upstream_rq_rx_reset", "upstream_cx_none_healthy",
        "upstream_cx_rx_bytes_total", "upstream_cx_tx_bytes_total", "membership_change",
        "upstream_rq_per_try_timeout", "upstream_rq_retry_limit_exceeded",
        "upstream_rq_retry_backoff_exponential", "upstream_rq_per_try_idle_timeout",
    )
    GAUGES = ("upstream_cx_active", "membership_total", "membership_healthy")  # (and upstream_rq_active)
    HISTOGRAMS = ("upstream_cx_connect_ms", "upstream_cx_length_ms", "upstream_rq_time")
    __slots__ = COUNTERS + GAUGES + HISTOGRAMS + ("rq_code", "extra", "rq_retried")

    def __init__(self) -> None:
        super().__init__()
        # upstream_rq_<code> of every completed request (index 0: without a response, or with a
        # status beyond 599); the classes and upstream_rq_completed are summed when read.
        self.rq_code = [0] * 600
        self.extra: tuple[Any, ...] = ()  # parts with their own values(): circuit breakers, outlier, HC
        self.rq_retried = 0  # attempts after the first, which upstream_rq_total counts too

    # A request counts in upstream_rq_total when it starts (and again per retry) and in rq_code
    # when it completes, so the requests still active follow from those when read rather than
    # from a gauge moved twice per request.
    @property
    def upstream_rq_active(self) -> int:
        return self.upstream_rq_total - sum(self.rq_code) - self.rq_retried

    def values(self) -> Iterator[tuple[str, int, bool]]:
        completed = sum(self.rq_code)
        for name, value, counter in super().values():
            yield name, completed if name == "upstream_rq_completed" else value, counter
        yield "upstream_rq_active", self.upstream_rq_total - completed - self.rq_retried, False
        classes = [0] * 6
        for code, n in enumerate(self.rq_code):
            if n:
                classes[code // 100] += n
        for c in range(1, 6):
            yield f"upstream_rq_{c}xx", classes[c], True
        for code, n in enumerate(self.rq_code):
            if n and code:
                yield f"upstream_rq_{code}", n, True
        for part in self.extra:
            yield from part.values()


class HttpStats(_Scope):
    """``http.<stat_prefix>.*``: the connection manager and its router."""

    COUNTERS = (
        "downstream_rq_total", "downstream_rq_http1_total", "downstream_cx_total",
        "downstream_cx_http1_total", "downstream_cx_destroy", "downstream_cx_protocol_error",
        "downstream_cx_idle_timeout", "downstream_rq_header_timeout", "downstream_rq_timeout",
        "downstream_rq_too_large", "downstream_rq_rx_reset", "downstream_rq_completed",
        "downstream_cx_rx_bytes_total", "downstream_cx_tx_bytes_total",
        "no_route", "no_cluster", "rq_redirect", "rq_direct_response",
        "downstream_rq_idle_timeout", "downstream_rq_max_duration_reached",
        # headers_with_underscores_action (Envoy counts them as http1.* codec stats)
        "requests_rejected_with_underscores_in_headers", "dropped_headers_with_underscores",
        "downstream_rq_failed_path_normalization", "downstream_rq_redirected_with_normalized_path",
        "downstream_rq_overload_close", "downstream_cx_overload_disable_keepalive",  # overload.py
    )
    GAUGES = ("downstream_cx_active",)  # (and downstream_rq_active, derived: see below)
    HISTOGRAMS = ("downstream_cx_length_ms", "downstream_rq_time")
    __slots__ = COUNTERS + GAUGES + HISTOGRAMS + ("rq_class", "rq_dropped")

    def __init__(self) -> None:
        super().__init__()
        self.rq_class = [0] * 6  # downstream_rq_<n>xx
        self.rq_dropped = 0  # requests that ended without finishing (a queued one with bad bytes)

    # Every finished stream counts once in rq_class (index 0: reset before a response), so what
    # follows from it is derived when read, not counted per request: downstream_rq_completed is
    # their sum, and the requests still active are the others. HTTP/1.1 being the only
    # downstream codec, its requests are all of them.
    @property
    def downstream_rq_active(self) -> int:
        return self.downstream_rq_total - sum(self.rq_class) - self.rq_dropped

    def values(self) -> Iterator[tuple[str, int, bool]]:
        completed = sum(self.rq_class)
        derived = {"downstream_rq_completed": completed, "downstream_rq_http1_total": self.downstream_rq_total}
        for name, value, counter in super().values():
            yield name, derived.get(name, value), counter
        yield "downstream_rq_active", self.downstream_rq_total - completed - self.rq_dropped, False
        for c in range(1, 6):
            yield f"downstream_rq_{c}xx", self.rq_class[c], True


class ListenerStats(_Scope):
    COUNTERS = ("downstream_cx_total", "downstream_cx_destroy",
                # refused connections (overload.ConnectionGate)
                "downstream_cx_overflow", "downstream_global_cx_overflow", "downstream_cx_overload_reject")
    GAUGES = ("downstream_cx_active",)
    HISTOGRAMS = ("downstream_cx_length_ms",)
    __slots__ = COUNTERS + GAUGES + HISTOGRAMS


class SubscriptionStats(_Scope):
    """Envoy's xDS subscription stats (``cluster_manager.cds.*``, ``listener_manager.lds.*``,
    ``http.<stat_prefix>.rds.<route>.*``, ``cluster.<name>.*`` for EDS), counted per response.

    ``version`` is the xxHash64 of the last accepted ``version_info`` and ``update_time`` the
    wall clock of the last accepted response in milliseconds, as Envoy's. ``update_empty``
    counts accepted responses that carried no resource for the subscription.
    """

    COUNTERS = ("update_attempt", "update_success", "update_rejected", "update_failure",
                "update_empty", "init_fetch_timeout")
    GAUGES = ("version", "update_time")
    __slots__ = COUNTERS + GAUGES


class ControlPlaneStats(_Scope):
    """``control_plane.*``: the ADS stream's state (no rate limiting is applied: zero)."""

    COUNTERS = ("rate_limit_enforced",)
    GAUGES = ("connected_state", "pending_requests")
    __slots__ = COUNTERS + GAUGES


#: Families whose scopes follow the configuration: a name has one scope, kept across updates,
#: removed (prune_scopes) once nothing in the configuration names it.
PRUNED_FAMILIES = ("cluster", "listener", "http", "http.rds")
#: Gauges that describe the one ADS client rather than add up across worker processes.
_NOT_SUMMED = frozenset({"version", "update_time", "connected_state", "pending_requests",
                         "pressure", "active", "scale_percent"})  # (overload.*: the most loaded worker)


class StatsStore:
    """Every scope, by the prefix Envoy gives it, plus the tags /stats/prometheus needs.

    Output goes through a snapshot (plain lists and dicts, JSON-safe) so that the admin of a
    multi-process proxy can sum the snapshots of all workers before rendering.
    """

    def __init__(self, node: Any = None) -> None:
        self.scopes: list[tuple[str, str, str, str, _Scope]] = []  # (prefix, family, tag, value, scope)
        self._index: dict[tuple[str, type], _Scope] = {}  # one scope per (prefix, class)
        self.server: dict[str, int] = {}
        self.node = node  # the bootstrap's Node: Istio metrics label with its metadata
        self.istio: IstioMetrics | None = None  # set when a listener has the istio.stats filter
        self.tags: TagProducer = default_producer()  # the bootstrap's stats_config (compile/stats_config.py)
        # Histogram intervals, as Envoy's stats flush: the counts at the last two flushes, by
        # (prefix, name).
        self._flushed: dict[tuple[str, str], list[int]] = {}
        self._previous: dict[tuple[str, str], list[int]] = {}
        self._flush_timer: Any = None

    def start_flush(self, loop: Any, period: float = 5.0) -> None:
        """Flush every ``period`` seconds (the bootstrap's stats_flush_interval, 5 s by default)."""
        def tick() -> None:
            self.flush()
            self._flush_timer = loop.call_later(period, tick)

        if self._flush_timer is None:
            self._flush_timer = loop.call_later(period, tick)

    def stop_flush(self) -> None:
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None

    def flush(self) -> None:
        """End a histogram interval: Envoy's interval quantiles cover the last flush period
        (the difference of the two last flushes' counts, taken when read)."""
        self._previous = self._flushed
        self._flushed = {(prefix, name): counts[:] for prefix, _, _, _, scope in self.scopes
                         for name, counts in _histograms(scope)}

    def _recent(self, prefix: str, name: str) -> list[int] | None:
        """The samples of the last flush interval; None before the first flush."""
        now = self._flushed.get((prefix, name))
        if now is None:
            return None
        before = self._previous.get((prefix, name))
        return now if before is None else [a - b for a, b in zip(now, before)]

    def _scope(self, cls: type[S], prefix: str, family: str, tag: str, value: str) -> S:
        """The scope of ``prefix``, made on first use: a cluster or listener replaced by an
        update continues the counters of the one it replaces, as Envoy's do."""
        key = (prefix, cls)
        s = self._index.get(key)
        if s is None:
            s = self._index[key] = cls()
            self.scopes.append((prefix, family, tag, value, s))
        return s  # type: ignore[return-value]

    def cluster(self, name: str) -> ClusterStats:
        return self._scope(ClusterStats, f"cluster.{name}", "cluster", "envoy_cluster_name", name)

    def control_plane(self) -> ControlPlaneStats:
        return self._scope(ControlPlaneStats, "control_plane", "control_plane", "", "")

    def subscription(self, prefix: str) -> SubscriptionStats:
        """``cluster_manager.cds``, ``listener_manager.lds``, ``http.<sp>.rds.<route>`` or
        ``cluster.<name>`` (EDS: beside the cluster's own stats, as Envoy's)."""
        if prefix.startswith("cluster."):
            name = prefix[len("cluster."):]
            return self._scope(SubscriptionStats, prefix, "cluster", "envoy_cluster_name", name)
        if prefix.startswith("http."):
            route = prefix.rsplit(".rds.", 1)[1]
            return self._scope(SubscriptionStats, prefix, "http.rds", "envoy_rds_route_config", route)
        return self._scope(SubscriptionStats, prefix, prefix, "", "")

    def prune_scopes(self, live: set[str]) -> None:
        """Drop the cluster, listener, connection manager and RDS scopes not named in ``live``."""
        gone = [e for e in self.scopes if e[1] in PRUNED_FAMILIES and e[0] not in live]
        if not gone:
            return
        for entry in gone:
            self._index.pop((entry[0], type(entry[4])), None)
        ids = {id(e) for e in gone}
        self.scopes = [e for e in self.scopes if id(e) not in ids]

    def http(self, stat_prefix: str) -> HttpStats:
        for prefix, family, _, _, scope in self.scopes:
            if family == "http" and prefix == f"http.{stat_prefix}":
                return scope  # type: ignore[return-value]
        s = HttpStats()
        self.scopes.append((f"http.{stat_prefix}", "http", "envoy_http_conn_manager_prefix", stat_prefix, s))
        return s

    def listener(self, address: str) -> ListenerStats:
        return self._scope(ListenerStats, f"listener.{address}", "listener", "envoy_listener_address", address)

    def snapshot(self) -> dict[str, Any]:
        """Current values as plain data: {"scopes": [...], "server": {...}, "istio": {...}|None}."""
        istio = None
        if self.istio is not None:
            istio = {"rows": self.istio.rows(), "dropped": sorted(self.istio.dropped),
                     "removed": {k: sorted(v) for k, v in self.istio.removed_labels.items()},
                     "version": self.istio.istio_version}
        hists = []
        for p, f, t, v, s in self.scopes:
            for name, counts in _histograms(s):
                recent = self._recent(p, name)
                hists.append([p, f, t, v, name, histogram.sparse(counts),
                              None if recent is None else histogram.sparse(recent)])
        return {
            "scopes": [[p, f, t, v, [list(x) for x in s.values()]] for p, f, t, v, s in self.scopes],
            "histograms": hists,
            "server": {**self.server, **process_stats(self)},
            "istio": istio,
        }

    def text(self, name_filter: Any = None) -> str:
        return render_text(self.snapshot(), name_filter)

    def prometheus(self, name_filter: Any = None) -> str:
        return render_prometheus(self.snapshot(), name_filter, self.tags)


def _histograms(scope: Any) -> Iterator[tuple[str, list[int]]]:
    """A scope's histograms; scopes kept by other modules (faults, Istio filters) have none."""
    hists = getattr(scope, "histograms", None)
    return hists() if hists is not None else iter(())


def process_stats(store: StatsStore) -> dict[str, int]:
    """This process's ``server.*`` values that add up across workers, read at snapshot time:
    open downstream connections and memory (from /proc/self/statm; Python has no tcmalloc, so
    ``memory_allocated`` is the private resident size and ``memory_heap_size`` the data segment)."""
    total = sum(s.downstream_cx_active for _, f, _, _, s in store.scopes if f == "listener")  # type: ignore[attr-defined]
    try:
        with open("/proc/self/statm") as f:
            _, resident, shared, _, _, data, _ = (int(x) for x in f.read().split())
        page = os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        resident = shared = data = page = 0
    return {"memory_allocated": (resident - shared) * page, "memory_heap_size": data * page,
            "memory_physical_size": resident * page, "total_connections": total}


#: Server values that are a sum over the worker processes; the others are the first worker's.
_SUMMED_SERVER = ("memory_allocated", "memory_heap_size", "memory_physical_size", "total_connections")


def merge_snapshots(snaps: list[dict[str, Any]]) -> dict[str, Any]:
    """Sum the snapshots of several workers (the first one's server values and order win)."""
    if len(snaps) == 1:
        return snaps[0]
    scopes: dict[tuple[str, str, str, str], dict[str, list[Any]]] = {}
    for snap in snaps:
        for prefix, family, tag, value, stats in snap["scopes"]:
            into = scopes.setdefault((prefix, family, tag, value), {})
            for name, v, counter in stats:
                if name in into:
                    if not counter and name in _NOT_SUMMED:
                        into[name][1] = max(into[name][1], v)
                    else:
                        into[name][1] += v
                else:
                    into[name] = [name, v, counter]
    hists: dict[tuple[str, ...], list[Any]] = {}
    for snap in snaps:
        for *key, cumulative, recent in snap.get("histograms", ()):
            entry = hists.setdefault(tuple(key), [*key, {}, None])
            histogram.add_sparse(entry[-2], cumulative)
            if recent is not None:
                if entry[-1] is None:
                    entry[-1] = {}
                histogram.add_sparse(entry[-1], recent)
    server = dict(snaps[0]["server"])
    for name in _SUMMED_SERVER:
        if name in server:
            server[name] = sum(s["server"].get(name, 0) for s in snaps)
    istio = None
    groups = [s["istio"] for s in snaps if s.get("istio")]
    if groups:
        istio = dict(groups[0])
        istio["rows"] = merge_rows([g["rows"] for g in groups])
    return {"scopes": [[*k, list(v.values())] for k, v in scopes.items()], "histograms": list(hists.values()),
            "server": server, "istio": istio}
