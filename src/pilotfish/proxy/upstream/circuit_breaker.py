"""Envoy's per-cluster, per-priority ResourceManager: the circuit breakers.

Each limit is a counter against a maximum; ``try_*`` checks and takes in O(1) and counts the
overflow Envoy counts (``upstream_cx_overflow``, ``upstream_rq_pending_overflow``,
``upstream_rq_retry_overflow``). Defaults are Envoy's: 1024 connections, 1024 pending
requests, 1024 requests, 3 retries, unlimited connection pools. A ``retry_budget`` replaces the
fixed ``max_retries`` by ``max(budget_percent% of (active + pending requests),
min_retry_concurrency)`` (20% and 3 when the budget is present but a field is not).

Who takes what (as Envoy's HTTP/1 pool and router):
* a new upstream connection: ``try_connection()`` (failing is ``upstream_cx_overflow``; the
  request then waits for a pooled connection instead of failing);
* a request that must wait for a connection: ``try_pending()`` (failing: 503 UO);
* a request bound to a connection: ``try_request()`` (failing: 503 UO, and Envoy counts it as
  ``upstream_rq_pending_overflow`` too);
* a scheduled retry: ``retries`` via RetryState (failing: ``upstream_rq_retry_overflow``, UO).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

UNLIMITED = (1 << 64) - 1
DEFAULT_PRIORITY, HIGH_PRIORITY = 0, 1
PRIORITY_NAMES = ("default", "high")


@dataclass(frozen=True, slots=True)
class Thresholds:
    """One CircuitBreakers.Thresholds entry, defaults filled in."""

    max_connections: int = 1024
    max_pending_requests: int = 1024
    max_requests: int = 1024
    max_retries: int = 3
    max_connection_pools: int = UNLIMITED
    budget_percent: float | None = None  # set when retry_budget is configured
    min_retry_concurrency: int | None = None
    track_remaining: bool = False


@dataclass(frozen=True, slots=True)
class CircuitBreakerSettings:
    default: Thresholds = Thresholds()
    high: Thresholds = Thresholds()
    max_connections_per_host: int | None = None  # per_host_thresholds (DEFAULT priority only)

    def for_priority(self, priority: int) -> Thresholds:
        return self.high if priority == HIGH_PRIORITY else self.default


class Resource:
    """A counted resource with a fixed maximum (Envoy's ManagedResourceImpl)."""

    __slots__ = ("max", "count")

    def __init__(self, maximum: int) -> None:
        self.max = maximum
        self.count = 0

    def can_create(self) -> bool:
        return self.count < self.max

    def inc(self) -> None:
        self.count += 1

    def dec(self) -> None:
        if self.count > 0:
            self.count -= 1

    @property
    def remaining(self) -> int:
        return self.max - self.count if self.max > self.count else 0

    @property
    def open(self) -> bool:
        """The ``circuit_breakers.<priority>.*_open`` gauge: the limit is reached."""
        return self.count >= self.max


class RetryBudget(Resource):
    """``max_retries``, or a budget relative to the cluster's active and pending requests."""

    __slots__ = ("budget_percent", "min_concurrency", "requests", "pending")

    def __init__(self, t: Thresholds, requests: Resource, pending: Resource) -> None:
        super().__init__(t.max_retries)
        self.budget_percent = t.budget_percent
        self.min_concurrency = t.min_retry_concurrency
        self.requests = requests
        self.pending = pending

    @property
    def uses_budget(self) -> bool:
        return self.budget_percent is not None or self.min_concurrency is not None

    def current_max(self) -> int:
        if not self.uses_budget:
            return self.max
        percent = 20.0 if self.budget_percent is None else self.budget_percent
        floor = 3 if self.min_concurrency is None else self.min_concurrency
        active = self.requests.count + self.pending.count
        return max(int(percent / 100.0 * active), floor)

    def can_create(self) -> bool:
        return self.count < self.current_max()

    @property
    def remaining(self) -> int:
        if self.uses_budget:
            return 0  # Envoy clears the gauge: it depends on other resources
        return self.max - self.count if self.max > self.count else 0

    @property
    def open(self) -> bool:
        return self.count >= self.current_max()


class ResourceManager:
    """One cluster's resources at one routing priority."""

    __slots__ = ("connections", "pending_requests", "requests", "retries", "connection_pools",
                 "max_connections_per_host", "track_remaining", "priority",
                 "cx_overflow", "rq_pending_overflow", "rq_retry_overflow", "cx_pool_overflow")

    def __init__(self, t: Thresholds = Thresholds(), priority: int = DEFAULT_PRIORITY,
                 max_connections_per_host: int | None = None) -> None:
        self.priority = priority
        self.connections = Resource(t.max_connections)
        self.pending_requests = Resource(t.max_pending_requests)
        self.requests = Resource(t.max_requests)
        self.connection_pools = Resource(t.max_connection_pools)
        self.retries = RetryBudget(t, self.requests, self.pending_requests)
        self.max_connections_per_host = max_connections_per_host
        self.track_remaining = t.track_remaining
        self.cx_overflow = 0
        self.rq_pending_overflow = 0
        self.rq_retry_overflow = 0
        self.cx_pool_overflow = 0

    def try_connection(self) -> bool:
        c = self.connections
        if c.count < c.max:
            c.count += 1
            return True
        self.cx_overflow += 1
        return False

    def try_pending(self) -> bool:
        p = self.pending_requests
        if p.count < p.max:
            p.count += 1
            return True
        self.rq_pending_overflow += 1
        return False

    def try_request(self) -> bool:
        r = self.requests
        if r.count < r.max:
            r.count += 1
            return True
        self.rq_pending_overflow += 1  # Envoy's attachStreamToClient counts it here too
        return False

    def try_connection_pool(self) -> bool:
        p = self.connection_pools
        if p.count < p.max:
            p.count += 1
            return True
        self.cx_pool_overflow += 1
        return False

    def try_retry(self) -> bool:
        r = self.retries
        if r.can_create():
            r.count += 1
            return True
        self.rq_retry_overflow += 1
        return False

    def gauges(self) -> Iterator[tuple[str, int]]:
        """``circuit_breakers.<priority>.*`` gauges, as Envoy names them."""
        prefix = f"circuit_breakers.{PRIORITY_NAMES[self.priority]}."
        pairs = (("cx", self.connections), ("rq_pending", self.pending_requests),
                 ("rq", self.requests), ("rq_retry", self.retries), ("cx_pool", self.connection_pools))
        for name, res in pairs:
            yield prefix + name + "_open", int(res.open)
        if self.track_remaining:
            for name, res in (("cx", self.connections), ("pending", self.pending_requests),
                              ("rq", self.requests), ("retries", self.retries),
                              ("cx_pools", self.connection_pools)):
                yield prefix + "remaining_" + name, res.remaining

    def counters(self) -> Iterator[tuple[str, int]]:
        yield "upstream_cx_overflow", self.cx_overflow
        yield "upstream_rq_pending_overflow", self.rq_pending_overflow
        yield "upstream_rq_retry_overflow", self.rq_retry_overflow
        yield "upstream_cx_pool_overflow", self.cx_pool_overflow


class ClusterResources:
    """The two ResourceManagers of a cluster (DEFAULT and HIGH routing priority)."""

    __slots__ = ("managers", "settings")

    def __init__(self, settings: CircuitBreakerSettings = CircuitBreakerSettings()) -> None:
        self.settings = settings
        self.managers = (ResourceManager(settings.default, DEFAULT_PRIORITY, settings.max_connections_per_host),
                         ResourceManager(settings.high, HIGH_PRIORITY, settings.max_connections_per_host))

    def __getitem__(self, priority: int) -> ResourceManager:
        return self.managers[priority]

    @property
    def default(self) -> ResourceManager:
        return self.managers[0]
